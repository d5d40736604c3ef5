"""The contenders, each one training run stepped one iteration at a time: ours
(:class:`OursRun`, an MRPO/PPO-DR ``Algorithm``) and Stable-Baselines3 PPO doing the same work
per iteration (:class:`SB3Run`; :func:`sb3_rollout` sizes its rollout and minibatches).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import shutil
import tempfile
import time

from benchmarks.machine import load_average, proc_memory, runner_memory
from benchmarks.settings import AS_OURS, PER_CORE, BenchSettings


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
                "env_runners_per_trial": num_env_runners,
                "envs_per_env_runner": s.envs_per_env_runner,
                "training": {
                    "episodes_per_iteration": s.episodes_per_iteration,
                    "num_minibatches": s.num_minibatches,
                    "num_epochs": s.num_epochs,
                },
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
            "load_avg_1min": load_average()[0],
        }
        self.iters.append(it)
        return it

    def finish(self) -> dict:
        try:
            runners = []
            if self.num_env_runners > 0:
                runners = self.algo.env_runner_group.foreach_env_runner(runner_memory, local_env_runner=False)
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
            "load_avg_1min": load_average()[0],
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
