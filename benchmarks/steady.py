"""Steady-state training speed: the long iterations a real run spends its time in.

``benchmarks.bench`` measures a fresh policy's first iterations (~1.5k env steps, dominated by
resets and per-iteration fixed costs). Here every contender starts from a policy that
already keeps its robot up (CartPole and InvertedPendulum balancing, Hopper standing or
hopping), so that an iteration of M = 100 episodes is ~50k–100k env steps, as in the
reproduction's later iterations. Run from the repository root::

    python -m benchmarks.steady [--tasks CartPole Hopper] [--rounds 3] [--ref REV]
                                [--cache results/bench_cache] [--out results/steady.json]
    make bench-steady [REF=<commit>]

- **The policy**: PPO-DR trained with this checkout at M = 20 (seed 0) until it keeps its
  robot up (:data:`TRAIN_UNTIL`), saved once under ``--cache`` and reused.
- **Contenders**, each in its own process, restored from that checkpoint and then stepped
  round-robin, one iteration each per round (a burst of other work hits all alike; the first
  round is not timed):

  - ``new``: this checkout, PPO-DR, M = 100, 0 env runners (one core);
  - ``old``: the same on the commit ``--ref`` (a ``git worktree`` made for the run): the
    speed-up is a ratio measured side by side, not two dates;
  - ``sb3``: Stable-Baselines3 PPO with the same networks, *the policy's weights and the
    observation statistics copied in*, ``DummyVecEnv`` × 16 (SB3's fastest variant on one
    core in ``benchmarks.bench``), each iteration as many env steps as ``new``'s last iteration and
    the same optimiser work (``num_epochs × num_minibatches`` gradient steps, see
    ``benchmarks.contenders.sb3_rollout``).
- **One torch thread per contender**, as Ray gives a one-CPU Tune trial (``OMP_NUM_THREADS``
  = the actor's CPUs); ``--threads`` changes it.
- **Figures**, per env step (µs): total, sampling, learning; the env's own ``step`` time
  inside our sampling loop (``new`` measures it per batch step; the "raw env" cost), and the
  sampling overhead = sampling − env. Ratios: ``new`` over ``old`` and over ``sb3``
  (throughput, env steps per second of the whole iteration).

Why one file of ~460 lines: the driver and the worker processes it starts (``steady.py
worker ...``, possibly on another commit's checkout) must be the same script, so the workers'
code cannot move into modules of this checkout's ``benchmarks`` package.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
M = 100  # episodes per iteration, the paper's (MRPOConfig's default)
ENVS_PER_RUNNER = 16
# Train the cached policy until an iteration's mean episode length reaches this (the robot
# is kept up: CartPole and the pendula balance, Hopper stands or hops), or the step cap.
TRAIN_UNTIL = {"CartPole": 900.0, "InvertedPendulum": 900.0, "Hopper": 400.0}
TRAIN_STEP_CAP = {"CartPole": 400_000, "InvertedPendulum": 400_000, "Hopper": 1_500_000}


def _config(task: str, episodes: int, seed: int = 0):
    from mrpo_rllib.algorithms import MRPOConfig

    return (
        MRPOConfig()
        .environment(task)
        .training(selection="dr", episodes_per_iteration=episodes)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=ENVS_PER_RUNNER)
        .debugging(seed=seed)
    )


def train_policy(task: str, path: str, echo=print, step_cap: int | None = None) -> dict:
    """PPO-DR at M = 20 until an iteration's mean episode length reaches TRAIN_UNTIL[task]; saved
    to ``path``. Returns what it took."""
    algo = _config(task, 20).build_algo()
    t0, steps, it = time.perf_counter(), 0, 0
    try:
        while True:
            r = algo.train()["mrpo"]
            it += 1
            steps += r["sampled_timesteps"]
            length = r["sampled_timesteps"] / r["episodes"]
            echo(
                f"  train {task}: iteration {it}, {steps} steps, return {r['return_mean']:.0f}, length {length:.0f}"
            )
            if length >= TRAIN_UNTIL[task] or steps >= (step_cap or TRAIN_STEP_CAP[task]):
                break
        algo.save_to_path(os.path.abspath(path))  # RLlib reads a relative path as a URI
    finally:
        algo.stop()
    return {
        "env_steps": steps,
        "iterations": it,
        "return_mean": r["return_mean"],
        "episode_length": length,
        "wall_s": time.perf_counter() - t0,
    }


# -- contenders, each in its own process: one JSON line per command on stdout ----------------
def _worker_ours(task: str, ckpt: str) -> None:
    algo = _config(task, M).build_algo()
    algo.restore_from_path(os.path.abspath(ckpt))
    _ready()
    for line in sys.stdin:
        if line.strip() != "iter":
            break
        t0 = time.perf_counter()
        result = algo.train()
        wall = time.perf_counter() - t0
        r = result["mrpo"]
        runner = result.get("env_runners", {})
        env_step = runner.get("env_step_time_per_step_s")
        _reply(
            {
                "wall_s": wall,
                "env_steps": r["sampled_timesteps"],
                "sample_s": r["sample_time_s"],
                "learn_s": r["learn_time_s"],
                "env_step_s": env_step,
                "return_mean": r["return_mean"],
                "gradient_steps": r["gradient_steps"],
            }
        )
    algo.stop()


def _worker_sb3(task: str, ckpt: str) -> None:
    import numpy as np
    import torch

    from benchmarks.contenders import SB3Run
    from benchmarks.settings import BenchSettings

    weights, filt = _policy_weights(task, ckpt)
    s = BenchSettings(num_minibatches=32, num_epochs=10, seed=0)
    run = SB3Run(task, "DummyVecEnv", ENVS_PER_RUNNER, s)
    policy = run.model.policy
    state = policy.state_dict()
    for ours, theirs in _SB3_NAMES.items():
        if ours in weights:
            state[theirs] = torch.as_tensor(np.asarray(weights[ours]), dtype=state[theirs].dtype)
    policy.load_state_dict(state)
    rms = run.venv.obs_rms
    rms.mean, rms.var, rms.count = filt["mean"], filt["std"] ** 2, float(filt["count"])
    _ready()
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "iter":
            break
        it = run.step(int(parts[1]))
        _reply(
            {
                "wall_s": it["wall_s"],
                "env_steps": it["env_steps"],
                "sample_s": it["wall_s"] - it["learn_time_s"],
                "learn_s": it["learn_time_s"],
                "gradient_steps": it["gradient_steps"],
            }
        )
    run.close()


def _worker_minibatch(task: str, ckpt: str) -> None:
    """Learner cost per minibatch on an early iteration's small minibatches (a fresh policy:
    100 short episodes, 320 minibatches of a few rows), where per-minibatch overhead, not
    arithmetic, decides: RLlib's PPOTorchLearner, ours, and a bare loop (module forward, PPO
    loss, backward, gradient clip, Adam: no framework) on the same minibatches."""
    import torch
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    from mrpo_rllib.algorithms.learner import MRPOTorchLearner, logp_and_entropy

    algos = {name: _config(task, M).training(learner_class=cls).build_algo() for name, cls in
             (("rllib", PPOTorchLearner), ("ours", MRPOTorchLearner))}  # fmt: skip
    episodes, _ = algos["ours"]._sample_episodes(M)
    kwargs = algos["ours"]._minibatching(episodes)
    steps = kwargs["num_total_minibatches"]
    learner = algos["ours"].learner_group._learner
    module = learner.module["default_policy"]
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes)[
        "default_policy"
    ]
    batch = {
        k: torch.as_tensor(v)
        for k, v in batch.items()
        if k in ("obs", "actions", "action_logp", "advantages", "value_targets")
    }
    rows, size = len(batch["obs"]), kwargs["minibatch_size"]
    opt = torch.optim.Adam(module.parameters(), lr=3e-4)
    dist_cls = module.get_train_action_dist_cls()

    def bare() -> None:
        for i in range(steps):
            start = (i * size) % max(rows - size, 1)
            mb = {k: v[start : start + size] for k, v in batch.items()}
            out = module._forward_train(mb)
            logp, _ = logp_and_entropy(dist_cls, out["action_dist_inputs"], mb["actions"])
            ratio = torch.exp(logp - mb["action_logp"])
            surrogate = torch.min(mb["advantages"] * ratio, mb["advantages"] * torch.clamp(ratio, 0.8, 1.2))
            values = module.compute_values(mb)
            loss = (-surrogate + 0.5 * (values - mb["value_targets"]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 0.5)
            opt.step()

    contenders = {
        name: (lambda a=a: a.learner_group.update(episodes=episodes, timesteps={}, **kwargs))
        for name, a in algos.items()
    }
    contenders["bare"] = bare
    times: dict = {name: [] for name in contenders}
    for f in contenders.values():
        f()  # warm-up
    for _ in range(5):
        for name, f in contenders.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    _ready()
    _reply(
        {name: 1e3 * min(t) / steps for name, t in times.items()}
        | {"rows_per_minibatch": size, "minibatches": steps}
    )
    for a in algos.values():
        a.stop()


_SB3_NAMES = {
    "encoder.actor_encoder.net.mlp.0.weight": "mlp_extractor.policy_net.0.weight",
    "encoder.actor_encoder.net.mlp.0.bias": "mlp_extractor.policy_net.0.bias",
    "encoder.actor_encoder.net.mlp.2.weight": "mlp_extractor.policy_net.2.weight",
    "encoder.actor_encoder.net.mlp.2.bias": "mlp_extractor.policy_net.2.bias",
    "encoder.critic_encoder.net.mlp.0.weight": "mlp_extractor.value_net.0.weight",
    "encoder.critic_encoder.net.mlp.0.bias": "mlp_extractor.value_net.0.bias",
    "encoder.critic_encoder.net.mlp.2.weight": "mlp_extractor.value_net.2.weight",
    "encoder.critic_encoder.net.mlp.2.bias": "mlp_extractor.value_net.2.bias",
    "pi.net.mlp.0.weight": "action_net.weight",
    "pi.net.mlp.0.bias": "action_net.bias",
    "vf.net.mlp.0.weight": "value_net.weight",
    "vf.net.mlp.0.bias": "value_net.bias",
    "pi.log_std": "log_std",
}


def _policy_weights(task: str, ckpt: str) -> tuple[dict, dict]:
    """The learner module's weights and the observation filter's statistics of ``ckpt``."""
    from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter

    algo = _config(task, M).build_algo()
    try:
        algo.restore_from_path(os.path.abspath(ckpt))
        weights = algo.learner_group.get_weights()["default_policy"]
        piece = next(
            p for p in algo.env_runner._env_to_module.connectors if isinstance(p, BatchMeanStdFilter)
        )
        rs = piece.batch_filter().running_stats
        filt = {"mean": rs.mean.copy(), "std": rs.std.copy(), "count": rs.num_pushes}
    finally:
        algo.stop()
    return weights, filt


def _ready() -> None:
    _reply({"ready": True})


def _reply(obj: dict) -> None:
    sys.__stdout__.write("@@" + json.dumps(obj) + "\n")
    sys.__stdout__.flush()


class Contender:
    """A worker process and its per-iteration records."""

    def __init__(self, name: str, kind: str, task: str, ckpt: str, code: str, log_dir: str, threads: int = 1):
        self.name, self.kind, self.code = name, kind, code
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([code, os.path.join(code, "benchmarks"), HERE]))
        # as in a Tune trial of one CPU: Ray sets OMP_NUM_THREADS to the actor's CPUs, which
        # torch takes as its thread count
        env["OMP_NUM_THREADS"] = str(threads)
        env.pop("RAY_ADDRESS", None)
        self.log = open(os.path.join(log_dir, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "worker", kind, task, ckpt],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=code,
            env=env,
        )
        self.iters: list[dict] = []
        self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"{self.name} ended without a reply (see {self.log.name})")

    def step(self, arg: int | None = None) -> dict:
        self.proc.stdin.write("iter" + ("" if arg is None else f" {arg}") + "\n")
        self.proc.stdin.flush()
        it = self._read()
        it["load_avg_1min"] = os.getloadavg()[0]
        self.iters.append(it)
        return it

    def close(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=120)
        except Exception:
            self.proc.kill()
        self.log.close()


def _per_step(iters: list[dict]) -> dict:
    steps = sum(i["env_steps"] for i in iters)
    out = {
        "env_steps": steps,
        "us_per_step": 1e6 * sum(i["wall_s"] for i in iters) / steps,
        "sample_us_per_step": 1e6 * sum(i["sample_s"] for i in iters) / steps,
        "learn_us_per_step": 1e6 * sum(i["learn_s"] for i in iters) / steps,
        "gradient_steps_per_iteration": [i["gradient_steps"] for i in iters],
    }
    env = [i.get("env_step_s") for i in iters]
    if all(e is not None and e == e for e in env):  # measured by this code (not NaN)
        out["env_us_per_step"] = (
            1e6 * sum(e * i["env_steps"] for e, i in zip(env, iters, strict=True)) / steps
        )
        out["sampling_overhead_us_per_step"] = out["sample_us_per_step"] - out["env_us_per_step"]
    return out


def bench_task(task: str, args, ref_code: str | None, log_dir: str, echo=print) -> dict:
    ckpt = os.path.join(args.cache, task)
    trained = None
    if not os.path.isdir(ckpt):
        echo(f"{task}: training the steady-state policy (cached in {ckpt})")
        trained = train_policy(task, ckpt, echo, step_cap=args.train_steps)
    names = [("new", "ours", ROOT)]
    if ref_code:
        names.append(("old", "ours", ref_code))
    if not args.no_sb3:
        names.append(("sb3", "sb3", ROOT))
    contenders = [Contender(n, kind, task, ckpt, code, log_dir, args.threads) for n, kind, code in names]
    try:
        for rnd in range(args.rounds + 1):
            for c in contenders:
                steps = contenders[0].iters[-1]["env_steps"] if c.kind == "sb3" else None
                it = c.step(steps)
                echo(
                    f"  {task} round {rnd}{' (warm-up)' if rnd == 0 else ''} {c.name}: {it['env_steps']} steps, "
                    f"{1e6 * it['wall_s'] / it['env_steps']:.1f} µs/step "
                    f"(sample {1e6 * it['sample_s'] / it['env_steps']:.1f}, learn {1e6 * it['learn_s'] / it['env_steps']:.1f})"
                )
    finally:
        for c in contenders:
            c.close()
    figures = {c.name: _per_step(c.iters[1:]) for c in contenders}
    ratios, same = {}, {}
    by_name = {c.name: c for c in contenders}
    if "old" in by_name:
        # Same checkpoint, same seed: the same numbers, iteration by iteration (returns of
        # the sampled episodes depend on every earlier update)
        returns = {n: [i["return_mean"] for i in by_name[n].iters] for n in ("new", "old")}
        same = {"same_numbers_as_old": returns["new"] == returns["old"], "return_mean_per_iteration": returns}
    for other in ("old", "sb3"):
        if other in figures:
            ratios[f"new_over_{other}"] = figures[other]["us_per_step"] / figures["new"]["us_per_step"]
    return {"task": task, "policy": trained or "cached", "figures": figures, "ratios": ratios, **same}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        kind, task, ckpt = argv[1:4]
        {"ours": _worker_ours, "sb3": _worker_sb3, "minibatch": _worker_minibatch}[kind](task, ckpt)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["CartPole", "Hopper"])
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    p.add_argument("--ref", default=None, help="a commit to measure side by side as 'old'")
    p.add_argument("--cache", default=os.path.join(ROOT, "results", "bench_cache"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "steady.json"))
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--no-minibatch", action="store_true", help="skip the learner-per-minibatch figure")
    p.add_argument("--threads", type=int, default=1, help="torch threads per contender (a Tune trial's: 1)")
    p.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="cap on the cached policy's training (tests: a few hundred)",
    )
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    os.makedirs(args.cache, exist_ok=True)
    log_dir = tempfile.mkdtemp(prefix="steady-")
    ref_code = None
    if args.ref:
        ref_code = os.path.join(log_dir, "ref")
        _git("worktree", "add", "--detach", ref_code, args.ref)
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "ref": args.ref and _git("rev-parse", args.ref),
        "cores": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "torch_threads_per_contender": args.threads,
        "tasks": {},
    }
    try:
        for task in args.tasks:
            report["tasks"][task] = bench_task(task, args, ref_code, log_dir)
            _print_task(report["tasks"][task])
    finally:
        if ref_code:
            _git("worktree", "remove", "--force", ref_code)
    if not args.no_minibatch:
        c = Contender("minibatch", "minibatch", args.tasks[-1], "-", ROOT, log_dir, args.threads)
        report["learner_ms_per_minibatch"] = mb = c._read()
        c.close()
        print(
            f"\nlearner, ms per minibatch ({args.tasks[-1]}, early iteration, {mb['rows_per_minibatch']} rows, "
            f"best of 5): RLlib {mb['rllib']:.2f}, ours {mb['ours']:.2f}, bare forward/backward/Adam {mb['bare']:.2f}"
        )
    report["load_avg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out} (worker logs in {log_dir})")
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


def _print_task(t: dict) -> None:
    print(f"\n{t['task']}: µs per env step (steady state, M = {M})")
    print(f"  {'contender':10} {'total':>8} {'sample':>8} {'learn':>8} {'env':>8} {'overhead':>9}")
    for name, f in t["figures"].items():
        env = f.get("env_us_per_step")
        over = f.get("sampling_overhead_us_per_step")
        print(
            f"  {name:10} {f['us_per_step']:8.1f} {f['sample_us_per_step']:8.1f} {f['learn_us_per_step']:8.1f} "
            f"{'' if env is None else f'{env:8.1f}':>8} {'' if over is None else f'{over:9.1f}':>9}"
        )
    for k, v in t["ratios"].items():
        print(f"  {k}: {v:.2f}")
    if "same_numbers_as_old" in t:
        print(f"  same numbers as old (return of every iteration): {t['same_numbers_as_old']}")


if __name__ == "__main__":
    sys.exit(main())
