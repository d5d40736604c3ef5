"""``mrpo train``: one training run on embedded Ray (or the cluster at RAY_ADDRESS)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from mrpo_rllib import runs
from mrpo_rllib.envs import get_task


@dataclass
class TrainSettings:
    """Everything one run needs. Units: iterations, episodes, seconds."""

    task: str = "CartPole"
    algo: str = "mrpo"
    iterations: int = 20
    episodes_per_iteration: int = 50
    seed: int = 0
    out: str = "results"
    kappa_start: float = 0.25
    kappa_end: float = 2.0
    kappa_ramp_iters: int = 100
    worst_fraction: float = 0.1
    epopt_alpha: float = 0.1
    epopt_warmup_iters: int = 0
    num_env_runners: int = 2
    num_envs_per_env_runner: int | None = None  # None: MRPOConfig's default
    num_minibatches: int | None = None  # None: MRPOConfig's default
    minibatch_size: int | None = None  # RLlib's rows per minibatch instead of num_minibatches
    num_epochs: int = 10
    lr: float = 3e-4
    checkpoint_every: int = 0
    params: dict | str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        get_task(self.task)
        if self.algo not in runs.ALGOS:
            raise ValueError(f"algo must be one of {list(runs.ALGOS)}, got {self.algo!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.num_env_runners < 0:
            raise ValueError(f"num_env_runners must be >= 0, got {self.num_env_runners}")
        if self.num_envs_per_env_runner is not None and self.num_envs_per_env_runner < 1:
            raise ValueError(f"num_envs_per_env_runner must be >= 1, got {self.num_envs_per_env_runner}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")

    @property
    def run_name(self) -> str:
        label = runs.kappa_label(self.algo, self.kappa_start, self.kappa_end)
        return runs.run_name(self.algo, get_task(self.task).name, label, self.seed)


def build_config(s: TrainSettings):
    """The MRPOConfig of a run."""
    from ray.rllib.algorithms.algorithm_config import NotProvided

    from mrpo_rllib.algorithms import MRPOConfig

    envs = NotProvided if s.num_envs_per_env_runner is None else s.num_envs_per_env_runner
    return (
        MRPOConfig()
        .environment(get_task(s.task).name, env_config={"task": get_task(s.task).name, "params": s.params})
        .env_runners(num_env_runners=s.num_env_runners, num_envs_per_env_runner=envs)
        .training(
            selection=s.algo,
            kappa_start=s.kappa_start,
            kappa_end=s.kappa_end,
            kappa_ramp_iters=s.kappa_ramp_iters,
            worst_fraction=s.worst_fraction,
            epopt_alpha=s.epopt_alpha,
            epopt_warmup_iters=s.epopt_warmup_iters,
            episodes_per_iteration=s.episodes_per_iteration,
            **({} if s.num_minibatches is None else {"num_minibatches": s.num_minibatches}),
            **({} if s.minibatch_size is None else {"minibatch_size": s.minibatch_size}),
            num_epochs=s.num_epochs,
            lr=s.lr,
            **s.extra,
        )
        .debugging(seed=s.seed, log_level="ERROR")
    )


def _init_ray() -> bool:
    """Connect to RAY_ADDRESS if set, else start an embedded Ray. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    logging.getLogger("ray").setLevel(logging.ERROR)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(logging_level="ERROR", log_to_driver=False)
    else:
        # address="local": never attach to a stale `ray start` cluster found on this machine.
        ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    return True


def train(s: TrainSettings, argv: list[str] | None = None, echo=print) -> str:
    """Run one training run; returns the run directory."""
    s.validate()
    run_dir = os.path.join(s.out, s.run_name)
    if os.path.exists(run_dir):
        raise ValueError(f"run directory {run_dir} exists already; remove it or choose another --out")
    os.makedirs(run_dir)
    config = build_config(s).reporting(episode_ledger_dir=run_dir)
    config.validate()
    runs.save_config(run_dir, {"settings": asdict(s), "rllib": config.to_dict()})
    command = runs.save_command(run_dir, argv)

    import ray

    started = _init_ray()
    algo = None
    try:
        algo = config.build_algo()
        rows = []
        progress = os.path.join(run_dir, "progress.csv")
        echo(f"{s.run_name}: {s.iterations} iterations of {s.episodes_per_iteration} episodes")
        for _ in range(s.iterations):
            t0 = time.perf_counter()
            result = algo.train()
            echo(runs.fmt_iteration(result, time.perf_counter() - t0))
            flat = runs.flatten({k: v for k, v in result.items() if k != "config"})
            rows.append(flat)
            pd.DataFrame(rows).to_csv(progress, index=False)
            it = result["training_iteration"]
            if s.checkpoint_every and it % s.checkpoint_every == 0:
                algo.save_to_path(os.path.abspath(os.path.join(run_dir, "checkpoint")))
        algo.save_to_path(os.path.abspath(os.path.join(run_dir, "checkpoint")))
        runs.plot_curves(progress, os.path.join(run_dir, "curves.png"), s.run_name)
        df = pd.DataFrame(rows)
        runs.write_summary(run_dir, df, s.run_name, command)
        last = df.tail(min(5, len(df)))
        echo(
            f"done: {len(df)} iterations, {int(df['num_env_steps_sampled_lifetime'].iloc[-1]):,} env steps, "
            f"last {len(last)} iterations: average {last['mrpo/return_mean'].mean():.1f}, "
            f"10%-worst {last['mrpo/return_worst10'].mean():.1f}; "
            f"best average {df['mrpo/return_mean'].max():.1f}"
        )
        echo(f"run directory: {run_dir} (report.md, curves.png, progress.csv, episodes.csv, checkpoint/)")
    finally:
        if algo is not None:
            logdir = algo.logdir
            algo.stop()
            # RLlib makes an empty log dir under ~/ray_results for non-Tune runs.
            if logdir and os.path.isdir(logdir) and not os.listdir(logdir):
                shutil.rmtree(logdir, ignore_errors=True)
        if started:
            ray.shutdown()
    return run_dir
