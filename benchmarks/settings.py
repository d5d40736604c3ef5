"""What a benchmark run measures: its settings (:class:`BenchSettings`), the three modes
(:data:`MODES`: ``tiny``, ``quick``, ``full``) and the goal of each figure (:data:`GOALS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    ``episodes_per_iteration``, ``num_minibatches`` and ``num_epochs`` (None: MRPOConfig's
    defaults, filled in by :func:`~benchmarks.scheduler.bench`) set both sides' optimiser work: ``num_epochs × num_minibatches`` gradient
    steps per iteration."""

    mode: str = "full"
    env_steps: int = 20000  # per task, for env_vs_raw
    env_tasks: tuple[str, ...] = PYBULLET_TASKS
    train_tasks: tuple[str, ...] = TRAIN_TASKS
    episodes_per_iteration: int | None = None  # M; None: MRPOConfig's default
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
        iterations=3,
        warmup_iterations=1,
    ),
    "full": BenchSettings(mode="full"),
}
