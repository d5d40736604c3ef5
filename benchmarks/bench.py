"""Speed and overhead figures of mrpo_rllib, each a ratio against a reference measured in
the same run, on the same machine, back to back.

Not part of the installed package: ``benchmarks/`` is a package beside ``mrpo_rllib/``, run
from the repository root as a module (there is no ``mrpo bench``: the installed command never
imports a folder that is not installed)::

    python -m benchmarks.bench [--quick | --tiny] [--out results/bench.json]
                               [--envs-per-env-runner N]
    make bench [BENCH=full|quick|tiny]

This module is the command line (:func:`main`; returns 2, with a message, when
Stable-Baselines3 is missing outside ``--tiny``). The harness, by job:
:mod:`benchmarks.settings` (what a run measures, the modes, the goals),
:mod:`benchmarks.machine` (machine probes: CPU, versions, memory, load),
:mod:`benchmarks.contenders` (ours and Stable-Baselines3, one iteration at a time),
:mod:`benchmarks.scheduler` (the sections, the round-robin schedule, the report) and
:mod:`benchmarks.bench_envs` (env against raw pybullet). It uses only public things of our
package (``MRPOConfig``, ``result["mrpo"]``, the task table, the env modules' public
constants) and of Stable-Baselines3 (its constructor arguments, ``learn``, a
``BaseCallback``); it patches neither.

- ``env_vs_raw``: each pybullet task's steps/s against raw pybullet stepping of the same
  model (:func:`benchmarks.bench_envs.measure_env`). Goal ≥ 0.8.
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
import sys

from benchmarks.contenders import OursRun, SB3Run, sb3_available, sb3_minibatches, sb3_rollout
from benchmarks.scheduler import bench, clean, run_bench, summarize
from benchmarks.settings import MODES, SB3_MISSING, BenchSettings, MissingBenchDependency
from mrpo_rllib.algorithms.mrpo import DEFAULT_ENVS_PER_ENV_RUNNER

__all__ = [
    "MODES",
    "BenchSettings",
    "SB3_MISSING",
    "OursRun",
    "SB3Run",
    "bench",
    "clean",
    "main",
    "run_bench",
    "sb3_available",
    "sb3_minibatches",
    "sb3_rollout",
    "summarize",
]


def main(argv: list[str] | None = None) -> int:
    """The command line. 0 on success, 2 when Stable-Baselines3 is missing (outside ``--tiny``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="speed figures, each a ratio against a reference run alongside "
        "(see benchmarks/bench.py's docstring and docs/benchmarks.md)",
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
        print(f"benchmarks.bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
