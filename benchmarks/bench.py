"""Speed and overhead figures of mrpo_rllib, each a ratio against a reference measured in
the same run, on the same machine, back to back.

Not part of the installed package (``benchmarks/`` sits beside ``mrpo_rllib/``). Run from
the repository root::

    python benchmarks/bench.py [--quick | --tiny] [--out results/bench.json]
                               [--envs-per-env-runner N]
    make bench [BENCH=full|quick|tiny]

:func:`main` takes exactly ``mrpo bench``'s arguments (and returns 2, with a message, when
Stable-Baselines3 is missing outside ``--tiny``). The harness uses only public things of
our package (``TrainSettings``/``build_config``, ``result["mrpo"]``, the task table, the
env modules' public constants) and of Stable-Baselines3 (its constructor arguments,
``learn``, a ``BaseCallback``); it patches neither.

- ``env_vs_raw``: each pybullet task's steps/s against raw pybullet stepping of the same
  model (:func:`bench_envs.measure_env`, ``benchmarks/bench_envs.py``). Goal ≥ 0.8.
- ``train_vs_sb3``: end-to-end training throughput (env steps per wall-clock second of
  ``algo.train()``: sampling, selection, learning and weight sync) of our PPO-DR with 0, 1
  and 2 env runners, against Stable-Baselines3 PPO doing the same work per iteration: the
  same environment (``gymnasium.make`` of the same id), 64-64 tanh policy and value
  networks (separate), observation normalisation (``VecNormalize(norm_reward=False)``),
  lr, γ, λ, clip, value-loss coefficient 0.5, gradient clip 0.5, in every round as many env
  steps (``n_steps × n_envs``) as our DR runs sampled on average in that round, and the
  same optimiser work: ours takes ``num_epochs × num_minibatches`` gradient steps per
  iteration (MRPOConfig's defaults), SB3 ``n_epochs = num_epochs`` epochs of exactly
  ``num_minibatches`` minibatches (``batch_size = ⌈n_steps × n_envs / num_minibatches⌉``,
  the rollout nudged by a few steps where needed, see :func:`sb3_rollout`). The gradient
  steps each contender took are recorded and must be equal (the run stops otherwise). SB3
  runs as its documentation suggests: ``make_vec_env`` with ``DummyVecEnv`` (1 env, one per
  core, and as many as one of our env runners steps together) and ``SubprocVecEnv`` (one
  per core); the fastest is the reference. Goal ≥ 1.0.
- ``selection_share``: MRPO's selection and bookkeeping time (``result["mrpo"]
  ["selection_time_ms"]``: selection, metrics, episode ledger) as a fraction of the
  iteration's wall time. Goal ≤ 0.01.
- ``mrpo_vs_dr_iteration``: MRPO's mean iteration time over PPO-DR's, same task, M, env
  runners and seed. Goal ≤ 1.0.
- ``memory``: peak resident set (``VmHWM``) of each env runner actor and SB3 worker, and of
  the driver (which holds every contender's learner); the RSS each build added to it.
- ``machine``, ``versions``, ``settings``, ``date``, the load average per iteration (other
  work on the machine skews every figure).

How: per training task, every contender is built first, then they are stepped round-robin,
one iteration each per round, so that a burst of other work on the machine hits all of them
alike; construction and the first ``warmup_iterations`` rounds are not timed. Ratios use
total steps / total time; ``ratio_of_medians`` (of per-iteration rates) is the check
against bursts.

Modes: ``tiny`` (seconds: the test's), ``quick`` (< 15 min on 2 cores), ``full``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.algorithms.mrpo import DEFAULT_ENVS_PER_ENV_RUNNER

PYBULLET_TASKS = ("Walker2d", "Hopper", "HalfCheetah", "InvertedPendulum", "InvertedDoublePendulum")
TRAIN_TASKS = ("Hopper", "CartPole")
SB3_MISSING = "stable-baselines3 not installed (pip install -r requirements-bench.txt)"
GOALS = {
    "env_vs_raw": ">= 0.8",
    "train_vs_sb3": ">= 1.0",
    "selection_share": "<= 0.01",
    "mrpo_vs_dr_iteration": "<= 1.0",
}


PER_CORE, AS_OURS = 0, -1  # symbolic SB3 env counts (see BenchSettings.sb3_variants)


class MissingBenchDependency(RuntimeError):
    """A benchmark-only dependency (stable-baselines3) is not installed."""


@dataclass
class BenchSettings:
    """What one benchmark run measures. Iterations are PPO iterations of M episodes.

    ``num_minibatches`` and ``num_epochs`` (None: MRPOConfig's defaults, filled in by
    :func:`bench`) set both sides' optimiser work: ``num_epochs × num_minibatches`` gradient
    steps per iteration."""

    mode: str = "full"
    env_steps: int = 20000  # per task, for env_vs_raw
    env_tasks: tuple[str, ...] = PYBULLET_TASKS
    train_tasks: tuple[str, ...] = TRAIN_TASKS
    episodes_per_iteration: int = 100  # M
    iterations: int = 10  # timed iterations per run
    warmup_iterations: int = 1  # untimed iterations first (lazy init, first weight sync)
    env_runners: tuple[int, ...] = (0, 1, 2)  # ours with this many env runners
    mrpo_env_runners: int = 2  # MRPO vs DR compared at this many env runners
    envs_per_env_runner: int = DEFAULT_ENVS_PER_ENV_RUNNER  # ours: envs stepped as one batch
    # SB3 variants: (vec env class, number of envs); PER_CORE: one per core, AS_OURS: as many
    # as one of our env runners steps together (the same batch width for the policy).
    sb3_variants: tuple[tuple[str, int], ...] = (
        ("DummyVecEnv", 1),
        ("DummyVecEnv", PER_CORE),
        ("SubprocVecEnv", PER_CORE),
        ("DummyVecEnv", AS_OURS),
    )
    num_minibatches: int | None = None  # gradient steps per epoch; None: MRPOConfig's default
    num_epochs: int | None = None  # None: MRPOConfig's default
    seed: int = 0
    require_sb3: bool = True  # False: record train_vs_sb3 as skipped when SB3 is missing
    extra: dict = field(default_factory=dict)


MODES = {
    "tiny": BenchSettings(
        mode="tiny",
        env_steps=300,
        episodes_per_iteration=4,
        iterations=1,
        warmup_iterations=1,
        env_runners=(0,),
        mrpo_env_runners=0,
        sb3_variants=(("DummyVecEnv", 1),),
        num_epochs=1,  # num_minibatches: MRPOConfig's default, also on rollouts of ~50 steps
        require_sb3=False,
    ),
    "quick": BenchSettings(
        mode="quick",
        env_steps=5000,
        episodes_per_iteration=100,
        iterations=3,
        warmup_iterations=1,
    ),
    "full": BenchSettings(mode="full"),
}


# -- machine, versions, memory -------------------------------------------------------------
def machine_info() -> dict:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("ray", "torch", "gymnasium", "pybullet", "numpy", "stable-baselines3", "mrpo_rllib"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def proc_memory(pid: int | str = "self") -> dict:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MB."""
    out = {"pid": os.getpid() if pid == "self" else int(pid)}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmHWM", "VmRSS"):
                    out[f"{key}_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError as e:
        out["error"] = str(e)
    return out


def reset_peak_memory() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _runner_memory(runner) -> dict:
    """Run inside an env runner actor: its PID, peak memory and torch threads."""
    import torch

    return {
        "worker_index": getattr(runner, "worker_index", None),
        "torch_threads": torch.get_num_threads(),
        **proc_memory("self"),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- env_vs_raw ----------------------------------------------------------------------------
def _bench_envs():
    """``benchmarks/bench_envs.py``, beside this file, however this file was run or loaded
    (as a script, from ``sys.path``, or by file location)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import bench_envs

    return bench_envs


def bench_env_vs_raw(s: BenchSettings, echo=print) -> dict:
    try:
        measure_env = _bench_envs().measure_env
    except ImportError as e:
        return {"error": f"bench_envs.measure_env unavailable: {e}"}
    out = {}
    for task in s.env_tasks:
        try:
            m = measure_env(task, s.env_steps, seed=s.seed)
        except Exception as e:  # one broken task must not hide the others
            out[task] = {"error": f"{type(e).__name__}: {e}"}
            echo(f"  env {task:<24} error: {e}")
            continue
        out[task] = m
        echo(
            f"  env {task:<24} ours {m['ours_steps_per_s']:8.0f}/s  raw {m['raw_steps_per_s']:8.0f}/s  "
            f"ratio {m['ratio']:.2f}"
        )
    return out


# -- contenders: one training run each, stepped one iteration at a time ----------------------
def _stats(iters: list[dict], warmup: int) -> dict:
    """Throughput over the timed iterations: total steps / total wall time, and the median of
    the per-iteration rates (robust to another process taking the cores for a while)."""
    timed = iters[warmup:]
    steps = sum(i["env_steps"] for i in timed)
    wall = sum(i["wall_s"] for i in timed)
    rates = sorted(i["env_steps"] / i["wall_s"] for i in timed)
    mid = len(rates) // 2
    median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
    return {
        "timed_iterations": len(timed),
        "env_steps": steps,
        "wall_s": wall,
        "env_steps_per_s": steps / wall,
        "median_iteration_steps_per_s": median,
        "mean_steps_per_iteration": steps / len(timed),
        "mean_iteration_s": wall / len(timed),
    }


def _gradient_steps_per_iteration(iters: list[dict]) -> int | float:
    """The gradient steps every iteration took (their mean if they differ, which the
    benchmark does not allow: see :meth:`SB3Run.step` and :func:`bench_training`)."""
    steps = [i["gradient_steps"] for i in iters]
    return steps[0] if len(set(steps)) == 1 else sum(steps) / len(steps)


class OursRun:
    """Our algorithm built as ``mrpo train`` builds it (a one-trial experiment's config);
    ``step()`` times one ``algo.train()``."""

    def __init__(self, task: str, selection: str, num_env_runners: int, s: BenchSettings):
        from mrpo_rllib.experiments import parse_experiment

        self.task, self.selection, self.num_env_runners, self.s = task, selection, num_env_runners, s
        exp = parse_experiment(
            {
                "name": "bench",
                "task": task,
                "algorithms": [selection],
                "seeds": [s.seed],
                "budget": {"iterations": 1},
                "episodes_per_iteration": s.episodes_per_iteration,
                "env_runners_per_trial": num_env_runners,
                "envs_per_env_runner": s.envs_per_env_runner,
                "training": {"num_minibatches": s.num_minibatches, "num_epochs": s.num_epochs},
            },
            "bench",
        )
        (trial,) = exp.trials()
        self.ledger_dir = tempfile.mkdtemp(prefix="mrpo-bench-")
        config = exp.trial_config(trial).reporting(episode_ledger_dir=self.ledger_dir)
        rss0 = proc_memory("self").get("VmRSS_mb")
        t0 = time.perf_counter()
        self.algo = config.build_algo()
        self.build_s = time.perf_counter() - t0
        cfg = self.algo.config
        if (cfg.num_minibatches, cfg.num_epochs) != (s.num_minibatches, s.num_epochs):
            self.close()
            raise RuntimeError(
                f"built with num_minibatches={cfg.num_minibatches}, num_epochs={cfg.num_epochs}; "
                f"the benchmark asked for {s.num_minibatches}, {s.num_epochs}"
            )
        self.driver_rss_added_mb = (proc_memory("self").get("VmRSS_mb") or 0) - (rss0 or 0)
        self.iters: list[dict] = []

    @property
    def name(self) -> str:
        return f"{self.selection}/{self.num_env_runners}_env_runners"

    def step(self) -> dict:
        t0 = time.perf_counter()
        result = self.algo.train()
        wall = time.perf_counter() - t0
        m = result["mrpo"]
        it = {
            "wall_s": wall,
            "env_steps": int(m["sampled_timesteps"]),
            "sample_time_s": float(m["sample_time_s"]),
            "selection_time_ms": float(m["selection_time_ms"]),
            "learn_time_s": float(m["learn_time_s"]),
            "gradient_steps": int(m["gradient_steps"]),
            "kept_fraction": float(m["kept_fraction"]),
            "return_mean": float(m["return_mean"]),
            "load_avg_1min": _load()[0],
        }
        self.iters.append(it)
        return it

    def finish(self) -> dict:
        try:
            runners = []
            if self.num_env_runners > 0:
                runners = self.algo.env_runner_group.foreach_env_runner(
                    _runner_memory, local_env_runner=False
                )
        finally:
            self.close()
        timed = self.iters[self.s.warmup_iterations :]
        n = len(timed)
        return {
            "task": self.task,
            "selection": self.selection,
            "num_env_runners": self.num_env_runners,
            "build_s": self.build_s,
            **_stats(self.iters, self.s.warmup_iterations),
            "mean_sample_s": sum(i["sample_time_s"] for i in timed) / n,
            "mean_learn_s": sum(i["learn_time_s"] for i in timed) / n,
            "mean_selection_ms": sum(i["selection_time_ms"] for i in timed) / n,
            "selection_share": sum(i["selection_time_ms"] for i in timed)
            / 1e3
            / sum(i["wall_s"] for i in timed),
            "mean_kept_fraction": sum(i["kept_fraction"] for i in timed) / n,
            "gradient_steps_per_iteration": _gradient_steps_per_iteration(self.iters),
            "iterations": self.iters,
            "driver_rss_added_mb": self.driver_rss_added_mb,
            "env_runners": runners,
        }

    def close(self) -> None:
        if self.algo is None:
            return
        logdir = self.algo.logdir
        self.algo.stop()
        self.algo = None
        shutil.rmtree(self.ledger_dir, ignore_errors=True)
        # RLlib makes an empty log dir under ~/ray_results for non-Tune runs.
        if logdir and os.path.isdir(logdir) and not os.listdir(logdir):
            shutil.rmtree(logdir, ignore_errors=True)


def sb3_available() -> bool:
    return importlib.util.find_spec("stable_baselines3") is not None


def sb3_minibatches(n_steps: int, n_envs: int, batch_size: int) -> int:
    """Minibatches per epoch of SB3 2.x's PPO: ``PPO.train`` loops over
    ``rollout_buffer.get(batch_size)``, which yields slices of ``batch_size`` of the
    ``n_steps × n_envs`` rows, the last one shorter if it does not divide them."""
    return math.ceil(n_steps * n_envs / batch_size)


def sb3_rollout(budget: int, n_envs: int, num_minibatches: int) -> tuple[int, int]:
    """``(n_steps, batch_size)`` of SB3's PPO for one iteration of about ``budget`` env steps
    that takes exactly ``num_minibatches`` minibatches per epoch, as ours does.

    ``batch_size = ⌈n_steps × n_envs / num_minibatches⌉``; that yields ``num_minibatches``
    slices for most rollouts (any above ``num_minibatches × (num_minibatches − 1)`` rows),
    not for every short one (100 rows in 32 minibatches: slices of 4, so 25 of them). So
    ``n_steps`` is the one nearest ``budget / n_envs`` (the lower on a tie) whose rollout
    does, with ``batch_size ≥ 2`` (SB3 asserts ``batch_size > 1``). One exists within
    ``lcm(n_envs, num_minibatches)`` rows of any budget of at least ``2 × num_minibatches``
    rows: every multiple of it is one.
    """
    if num_minibatches < 1 or n_envs < 1:
        raise ValueError(f"num_minibatches and n_envs must be >= 1, got {num_minibatches}, {n_envs}")

    def fits(n_steps: int) -> bool:
        rows = n_steps * n_envs
        b = math.ceil(rows / num_minibatches)
        return n_steps >= 1 and b >= 2 and sb3_minibatches(n_steps, n_envs, b) == num_minibatches

    center = max(1, round(budget / n_envs))
    for d in range(center + 2 * num_minibatches + math.lcm(n_envs, num_minibatches) + 1):
        for n_steps in (center - d, center + d):
            if fits(n_steps):
                return n_steps, math.ceil(n_steps * n_envs / num_minibatches)
    raise AssertionError("unreachable: every multiple of lcm(n_envs, num_minibatches) >= 2k fits")


def _sb3_timer_callback():
    """A ``BaseCallback`` (SB3's public callback API) that notes when the rollout ends: the
    update (``PPO.train``) runs between that and the end of ``learn``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class RolloutEndTimer(BaseCallback):
        def __init__(self):
            super().__init__()
            self.rollout_end = None

        def _on_rollout_end(self) -> None:
            self.rollout_end = time.perf_counter()

        def _on_step(self) -> bool:
            return True

    return RolloutEndTimer()


class SB3Run:
    """SB3 PPO with our PPO settings. ``step(steps)`` runs one iteration (a rollout of about
    ``steps`` env steps in total over the ``n_envs`` envs, then the update of ``num_epochs ×
    num_minibatches`` gradient steps) and times it.

    Between iterations the rollout length and minibatch size are set through the model's
    public attributes (``n_steps``, ``batch_size``, a new ``rollout_buffer`` of its own
    ``rollout_buffer_class``/``rollout_buffer_kwargs``): the policy, its optimiser, the
    normalisation statistics and the envs' running episodes carry over, as in one long
    ``learn``. Gradient steps are counted by a step hook on the policy's torch optimiser
    (``Optimizer.register_step_post_hook``) and checked against the settings."""

    def __init__(self, task: str, vec_env: str, n_envs: int, s: BenchSettings):
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

        from mrpo_rllib.envs import get_task

        self.task, self.vec_env, self.s = task, vec_env, s
        self.n_envs = {PER_CORE: os.cpu_count() or 1, AS_OURS: s.envs_per_env_runner}.get(n_envs, n_envs)
        cls = {"DummyVecEnv": DummyVecEnv, "SubprocVecEnv": SubprocVecEnv}[vec_env]
        t0 = time.perf_counter()
        venv = make_vec_env(
            # gymnasium's "module:env_id": each env (in SubprocVecEnv's workers too) imports
            # mrpo_rllib, which registers mrpo/*, however this file was loaded
            f"mrpo_rllib:{get_task(task).env_id}",
            n_envs=self.n_envs,
            seed=s.seed,
            vec_env_cls=cls,
        )
        self.venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
        n_steps, batch_size = sb3_rollout(2 * s.num_minibatches, self.n_envs, s.num_minibatches)
        self.model = PPO(
            "MlpPolicy",
            self.venv,
            n_steps=n_steps,  # resized at every step()
            batch_size=batch_size,
            n_epochs=s.num_epochs,
            learning_rate=3e-4,
            gamma=0.99,
            gae_lambda=0.95,
            clip_range=0.2,
            ent_coef=0.0,
            vf_coef=0.5,
            max_grad_norm=0.5,
            target_kl=None,  # no early stop: every epoch runs, as ours
            policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
            seed=s.seed,
            device="cpu",
            verbose=0,
        )
        self.build_s = time.perf_counter() - t0
        self.torch_threads = torch.get_num_threads()
        self.iters: list[dict] = []
        self.timer = _sb3_timer_callback()
        self.optimizer_steps = 0

        def count(*_args, **_kwargs) -> None:
            self.optimizer_steps += 1

        self._hook = self.model.policy.optimizer.register_step_post_hook(count)

    @property
    def name(self) -> str:
        return f"{self.vec_env}x{self.n_envs}"

    def _resize(self, n_steps: int, batch_size: int) -> None:
        m = self.model
        m.batch_size = batch_size
        if m.n_steps == n_steps:
            return
        m.n_steps = n_steps
        m.rollout_buffer = m.rollout_buffer_class(
            n_steps,
            m.observation_space,
            m.action_space,
            device=m.device,
            gamma=m.gamma,
            gae_lambda=m.gae_lambda,
            n_envs=m.n_envs,
            **m.rollout_buffer_kwargs,
        )

    def step(self, steps: int) -> dict:
        k = self.s.num_minibatches
        n_steps, batch_size = sb3_rollout(steps, self.n_envs, k)
        self._resize(n_steps, batch_size)
        expected = self.s.num_epochs * sb3_minibatches(n_steps, self.n_envs, batch_size)
        counted0 = self.optimizer_steps
        t0 = time.perf_counter()
        self.model.learn(
            total_timesteps=n_steps * self.n_envs, callback=self.timer, reset_num_timesteps=not self.iters
        )
        wall = time.perf_counter() - t0
        counted = self.optimizer_steps - counted0
        if not counted == expected == self.s.num_epochs * k:
            raise RuntimeError(
                f"SB3 {self.name}: {counted} gradient steps (expected {expected} = {self.s.num_epochs} "
                f"epochs × minibatches of {batch_size} of {n_steps * self.n_envs} rows), "
                f"not num_epochs × num_minibatches = {self.s.num_epochs * k} as ours"
            )
        it = {
            "wall_s": wall,
            "env_steps": n_steps * self.n_envs,
            "budget_env_steps": steps,
            "n_steps": n_steps,
            "batch_size": batch_size,
            "gradient_steps": counted,
            "learn_time_s": t0 + wall - self.timer.rollout_end,
            "load_avg_1min": _load()[0],
        }
        self.iters.append(it)
        return it

    def finish(self) -> dict:
        timed = self.iters[self.s.warmup_iterations :]
        try:
            workers = []
            if hasattr(self.venv.venv, "processes"):
                workers = [proc_memory(p.pid) for p in self.venv.venv.processes]
        finally:
            self.close()
        return {
            "task": self.task,
            "vec_env": self.vec_env,
            "n_envs": self.n_envs,
            "n_epochs": self.s.num_epochs,
            "batch_size": sum(i["batch_size"] for i in timed) / len(timed),  # mean; per iteration below
            "gradient_steps_per_iteration": _gradient_steps_per_iteration(self.iters),
            "build_s": self.build_s,
            **_stats(self.iters, self.s.warmup_iterations),
            "mean_learn_s": sum(i["learn_time_s"] for i in timed) / len(timed),
            "torch_threads": self.torch_threads,
            "iterations": self.iters,
            "env_workers": workers,
        }

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.venv is not None:
            self.venv.close()
            self.venv = None


# -- the whole benchmark ---------------------------------------------------------------------
def _ray_cpus_needed(s: BenchSettings) -> int:
    runners = set(s.env_runners) | {s.mrpo_env_runners}
    return sum(runners) + s.mrpo_env_runners  # every DR run and the MRPO run alive at once


def _init_ray(s: BenchSettings) -> bool:
    import ray

    need = _ray_cpus_needed(s)
    if ray.is_initialized():
        have = ray.cluster_resources().get("CPU", 0)
        if have < need:
            raise ValueError(
                f"the running Ray has {have:g} CPUs; this benchmark keeps {need} env runners alive"
            )
        return False
    logging.getLogger("ray").setLevel(logging.ERROR)
    ray.init(
        address="local",  # embedded, never a stale cluster found on this machine
        num_cpus=max(os.cpu_count() or 1, need),  # logical: idle runners wait while others run
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
    )
    return True


def _ours_line(r: dict) -> str:
    return (
        f"{r['env_steps_per_s']:7.0f} steps/s  ({r['mean_steps_per_iteration']:.0f} steps/it, "
        f"{r['mean_iteration_s']:.2f} s/it: sample {r['mean_sample_s']:.2f}, learn {r['mean_learn_s']:.2f}, "
        f"select {r['mean_selection_ms']:.1f} ms)"
    )


def bench_training(task: str, s: BenchSettings, with_sb3: bool, echo=print) -> dict:
    """Every contender on ``task``, alive at once, stepped round-robin one iteration at a time,
    so that a burst of other work on the machine hits all of them alike. Round r: our PPO-DR
    at each runner count, MRPO, then each SB3 variant with as many env steps as our DR runs
    sampled on average in round r (same work per iteration); every contender must have taken
    ``num_epochs × num_minibatches`` gradient steps in the round (same optimiser work)."""
    reset_peak_memory()
    ours: dict[int, OursRun] = {}
    sb3: list[SB3Run] = []
    mrpo = None
    try:
        for n in sorted(set(s.env_runners) | {s.mrpo_env_runners}):
            ours[n] = OursRun(task, "dr", n, s)
        mrpo = OursRun(task, "mrpo", s.mrpo_env_runners, s)
        if with_sb3:
            for v, n in s.sb3_variants:
                sb3.append(SB3Run(task, v, n, s))
        want = s.num_epochs * s.num_minibatches  # gradient steps per iteration, every contender
        for r in range(s.warmup_iterations + s.iterations):
            its = [ours[n].step() for n in ours]
            its.append(mrpo.step())
            steps = [it["env_steps"] for it in its[:-1]]  # DR runs only
            budget = round(sum(steps) / len(steps))
            for c in sb3:
                its.append(c.step(budget))
            if any(it["gradient_steps"] != want for it in its):
                raise RuntimeError(
                    f"unequal optimiser work in round {r + 1}: gradient steps "
                    f"{[it['gradient_steps'] for it in its]}, expected {want} = {s.num_epochs} epochs × "
                    f"{s.num_minibatches} minibatches for every contender"
                )
            echo(
                f"  {task} round {r + 1}/{s.warmup_iterations + s.iterations} ({budget} steps/it) load {_load()}"
            )
        driver_peak = proc_memory("self")
        out_ours = {str(n): c.finish() for n, c in ours.items()}
        out_mrpo = mrpo.finish()
        out_sb3 = {c.name: c.finish() for c in sb3}
    finally:
        for c in [*ours.values(), mrpo, *sb3]:
            if c is not None:
                c.close()
    for n, r in out_ours.items():
        echo(f"  ours {task:<9} dr   {n} env runners: {_ours_line(r)}")
    echo(f"  ours {task:<9} mrpo {s.mrpo_env_runners} env runners: {_ours_line(out_mrpo)}")
    for name, r in out_sb3.items():
        echo(
            f"  sb3  {task:<9} {name:<15}: {r['env_steps_per_s']:7.0f} steps/s  "
            f"({r['mean_steps_per_iteration']:.0f} steps/it, {r['mean_iteration_s']:.2f} s/it: "
            f"learn {r['mean_learn_s']:.2f})"
        )
    return {"ours": out_ours, "mrpo": out_mrpo, "sb3": out_sb3, "driver": driver_peak}


def run_bench(s: BenchSettings, echo=print) -> dict:
    """Run every section of the benchmark; returns the report (JSON-ready after :func:`clean`)."""
    if s.require_sb3 and not sb3_available():
        raise MissingBenchDependency(f"{SB3_MISSING}; `mrpo bench --tiny` runs without it")
    with_sb3 = sb3_available()
    t_start = time.perf_counter()
    report: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": asdict(s),
        "machine": machine_info(),
        "versions": versions(),
        "goals": dict(GOALS),
        "load_avg_start": _load(),
    }
    echo(f"mrpo bench ({s.mode}): env_vs_raw, {s.env_steps} steps per task")
    report["env_vs_raw"] = bench_env_vs_raw(s, echo)

    import ray

    runs: dict[str, dict] = {}
    started = _init_ray(s)
    try:
        for task in s.train_tasks:
            runs[task] = bench_training(task, s, with_sb3, echo)
    finally:
        if started:
            ray.shutdown()

    if not with_sb3:
        report["train_vs_sb3"] = {"skipped": SB3_MISSING}
    else:
        tv: dict = {}
        for task, run in runs.items():
            sb3 = run["sb3"]
            ref_name = max(sb3, key=lambda k: sb3[k]["env_steps_per_s"])
            ref, ref_median = sb3[ref_name]["env_steps_per_s"], sb3[ref_name]["median_iteration_steps_per_s"]
            ours = {n: run["ours"][str(n)] for n in s.env_runners}
            ours_named = {f"{n}_env_runners": r for n, r in run["ours"].items()}
            ratios = {f"{n}_env_runners": r["env_steps_per_s"] / ref for n, r in ours.items()}
            tv[task] = {
                "ratio": ratios,
                "best_ratio": max(ratios.values()),
                "ratio_of_medians": {
                    f"{n}_env_runners": r["median_iteration_steps_per_s"] / ref_median
                    for n, r in ours.items()
                },
                "ours_steps_per_s": {f"{n}_env_runners": r["env_steps_per_s"] for n, r in ours.items()},
                "sb3_reference": ref_name,
                "sb3_reference_steps_per_s": ref,
                "sb3_steps_per_s": {k: v["env_steps_per_s"] for k, v in sb3.items()},
                "ours_mean_steps_per_iteration": sum(r["mean_steps_per_iteration"] for r in ours.values())
                / len(ours),
                "sb3_mean_steps_per_iteration": sb3[ref_name]["mean_steps_per_iteration"],
                # Same optimiser work: num_epochs × num_minibatches gradient steps per iteration.
                "num_epochs": s.num_epochs,
                "num_minibatches": s.num_minibatches,
                "gradient_steps_per_iteration": {
                    **{f"dr/{n}": r["gradient_steps_per_iteration"] for n, r in ours_named.items()},
                    f"mrpo/{s.mrpo_env_runners}_env_runners": run["mrpo"]["gradient_steps_per_iteration"],
                    **{f"sb3/{k}": v["gradient_steps_per_iteration"] for k, v in sb3.items()},
                },
                "sb3_reference_batch_size": sb3[ref_name]["batch_size"],
            }
        report["train_vs_sb3"] = tv

    report["selection_share"] = {
        task: {
            "share": run["mrpo"]["selection_share"],
            "mean_selection_ms": run["mrpo"]["mean_selection_ms"],
            "mean_iteration_s": run["mrpo"]["mean_iteration_s"],
            "num_env_runners": s.mrpo_env_runners,
        }
        for task, run in runs.items()
    }
    report["mrpo_vs_dr_iteration"] = {}
    for task, run in runs.items():
        m, d = run["mrpo"], run["ours"][str(s.mrpo_env_runners)]
        report["mrpo_vs_dr_iteration"][task] = {
            "ratio": m["mean_iteration_s"] / d["mean_iteration_s"],
            # Per sampled step: corrects for the two runs' different episode lengths.
            "per_step_ratio": (m["wall_s"] / m["env_steps"]) / (d["wall_s"] / d["env_steps"]),
            "mrpo_mean_iteration_s": m["mean_iteration_s"],
            "dr_mean_iteration_s": d["mean_iteration_s"],
            "mrpo_mean_kept_fraction": m["mean_kept_fraction"],
            "num_env_runners": s.mrpo_env_runners,
        }

    memory: dict = {}
    for task, run in runs.items():
        # One driver process holds every contender's learner (and SB3's model) at once.
        memory[task] = {
            "driver_peak_mb": run["driver"].get("VmHWM_mb"),
            "driver_rss_added_by_build_mb": {
                **{f"dr/{n}_env_runners": r["driver_rss_added_mb"] for n, r in run["ours"].items()},
                f"mrpo/{s.mrpo_env_runners}_env_runners": run["mrpo"]["driver_rss_added_mb"],
            },
            "env_runner_peak_mb": {
                **{
                    f"dr/{n}_env_runners": [w.get("VmHWM_mb") for w in r["env_runners"]]
                    for n, r in run["ours"].items()
                },
                f"mrpo/{s.mrpo_env_runners}_env_runners": [
                    w.get("VmHWM_mb") for w in run["mrpo"]["env_runners"]
                ],
            },
            "sb3_env_worker_peak_mb": {
                k: [w.get("VmHWM_mb") for w in v["env_workers"]] for k, v in run["sb3"].items()
            },
        }
    report["memory"] = memory
    report["runs"] = runs
    report["summary"] = summarize(report)
    report["load_avg_end"] = _load()
    report["duration_s"] = time.perf_counter() - t_start
    return report


def summarize(report: dict) -> dict:
    """The headline figures and whether each meets its goal."""
    out: dict = {}
    env = report.get("env_vs_raw", {})
    if "error" not in env:
        ratios = {t: v["ratio"] for t, v in env.items() if "ratio" in v}
        out["env_vs_raw"] = {**ratios, "min": min(ratios.values(), default=None)}
        out["env_vs_raw"]["met"] = bool(ratios) and min(ratios.values()) >= 0.8
    tv = report.get("train_vs_sb3", {})
    if "skipped" not in tv:
        out["train_vs_sb3"] = {t: v["ratio"] for t, v in tv.items()}
        out["train_vs_sb3"]["met"] = all(v["best_ratio"] >= 1.0 for v in tv.values())
    sh = report.get("selection_share", {})
    out["selection_share"] = {t: v["share"] for t, v in sh.items()}
    out["selection_share"]["met"] = all(v["share"] <= 0.01 for v in sh.values())
    md = report.get("mrpo_vs_dr_iteration", {})
    out["mrpo_vs_dr_iteration"] = {t: v["ratio"] for t, v in md.items()}
    out["mrpo_vs_dr_iteration"]["met"] = all(v["ratio"] <= 1.0 for v in md.values())
    return out


def clean(x):
    """JSON-safe: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def bench(mode: str = "full", out: str | None = None, echo=print, **overrides) -> dict:
    """Run the benchmark in ``mode`` (``tiny``/``quick``/``full``), write ``out`` (JSON)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    s = BenchSettings(**{**asdict(MODES[mode]), **overrides})
    s.env_tasks, s.train_tasks, s.env_runners = tuple(s.env_tasks), tuple(s.train_tasks), tuple(s.env_runners)
    s.sb3_variants = tuple(tuple(v) for v in s.sb3_variants)
    defaults = MRPOConfig()  # our learner's optimiser work unless given
    if s.num_minibatches is None:
        s.num_minibatches = defaults.num_minibatches
    if s.num_epochs is None:
        s.num_epochs = defaults.num_epochs
    with warnings.catch_warnings():
        # RLlib's "new API stack" notice, gymnasium's re-registration notes, SB3's note on a
        # rollout that is not a multiple of the minibatch (the last, shorter slice is counted).
        warnings.filterwarnings("ignore", category=UserWarning)
        logging.getLogger("ray.rllib").setLevel(logging.ERROR)
        report = clean(run_bench(s, echo))
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(report, f, indent=2, allow_nan=False)
        echo(f"wrote {out} ({report['duration_s']:.0f} s)")
    for key, value in report["summary"].items():
        echo(f"  {key}: {json.dumps(value)}")
    return report


def main(argv: list[str] | None = None) -> int:
    """The command line: ``mrpo bench``'s arguments exactly. 0 on success, 2 when
    Stable-Baselines3 is missing (outside ``--tiny``)."""
    parser = argparse.ArgumentParser(
        prog="mrpo bench",
        description="speed figures, each a ratio against a reference run alongside "
        "(see benchmarks/bench.py's docstring and the README's Benchmarks section)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer steps and iterations (< 15 min on 2 cores)")
    size.add_argument("--tiny", action="store_true", help="seconds-scale smoke run (SB3 optional)")
    parser.add_argument("--out", default="bench.json", help="JSON report (default bench.json)")
    parser.add_argument(
        "--envs-per-env-runner",
        type=int,
        default=None,
        help=f"ours: envs per env runner (default {DEFAULT_ENVS_PER_ENV_RUNNER})",
    )
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    overrides = {} if args.envs_per_env_runner is None else {"envs_per_env_runner": args.envs_per_env_runner}
    try:
        bench(mode, out=args.out, **overrides)
    except MissingBenchDependency as e:
        print(f"mrpo bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
