"""``mrpo tune``: run one experiment file as a Ray Tune sweep.

On the cluster at ``RAY_ADDRESS`` when set, else on an embedded local Ray. Each
trial is an :class:`~mrpo_rllib.algorithms.MRPO` Trainable named
``{algo}__{task}__kappa{k}__seed{s}``; its directory holds Tune's ``progress.csv``,
``result.json``, ``params.json``, TensorBoard events, ``checkpoint_000NNN/`` and our
``episodes.csv`` ledger. A failed trial is retried from its last checkpoint
(``max_failures``); running the same command again after the driver died resumes
the sweep from ``<storage>/<name>`` instead of starting over.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys

from mrpo_rllib.experiments import Experiment, load_experiment

DEFAULT_STORAGE = "results/tune"


def trial_table(exp: Experiment) -> str:
    """The trials of an experiment as a fixed-width table (what ``--dry-run`` prints)."""
    stop = ", ".join(f"{k}={v}" for k, v in exp.budget.stop().items())
    cpus = 1 + exp.env_runners_per_trial
    lines = [
        f"experiment {exp.name}: task {exp.task}, {len(exp.trials())} trials, stop at {stop}, "
        f"M={exp.episodes_per_iteration} episodes/iteration, {exp.env_runners_per_trial} env runner(s) "
        f"and {cpus} CPU(s) per trial, checkpoint every {exp.checkpoint_every}",
        f"{'trial':<48} {'algo':<6} {'seed':>4} {'kappa_start':>11} {'kappa_end':>9} {'ramp_iters':>10}",
    ]
    for t in exp.trials():
        k0, k1, ramp = (
            (f"{t.kappa_start:g}", f"{t.kappa_end:g}", str(t.kappa_ramp_iters))
            if t.algo == "mrpo"
            else ("-",) * 3
        )
        lines.append(f"{t.name:<48} {t.algo:<6} {t.seed:>4} {k0:>11} {k1:>9} {ramp:>10}")
    return "\n".join(lines)


def _param_space(exp: Experiment) -> dict:
    from ray import tune

    from mrpo_rllib.algorithms import MRPOConfig

    config = (
        MRPOConfig()
        .environment(exp.task)
        .env_runners(num_env_runners=exp.env_runners_per_trial)
        .training(episodes_per_iteration=exp.episodes_per_iteration, **exp.training.kwargs())
        .debugging(log_level="ERROR")
    )
    space = config.to_dict()
    space["variant"] = tune.grid_search([t.as_variant() for t in exp.trials()])
    return space


def _trial_name(trial) -> str:
    return trial.config["variant"]["name"]


def _init_ray():
    import ray

    if ray.is_initialized():
        return False
    logging.getLogger("ray").setLevel(logging.WARNING)
    # address="local": never attach to a stale `ray start` cluster found on this machine.
    ray.init(address=os.environ.get("RAY_ADDRESS") or "local", logging_level="WARNING")
    return True


def run_sweep(
    path: str,
    storage: str | None = None,
    dry_run: bool = False,
    resume: bool = False,
    echo=print,
    argv: list[str] | None = None,
):
    """Run (or resume) the sweep of one experiment file. Returns Tune's ResultGrid."""
    exp = load_experiment(path)
    if dry_run:
        echo(trial_table(exp))
        return None

    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, SyncConfig

    from mrpo_rllib.algorithms import MRPO

    remote_storage = storage is not None and "://" in storage
    storage = storage or DEFAULT_STORAGE
    if not remote_storage:
        storage = os.path.abspath(storage)
    exp_path = f"{storage.rstrip('/')}/{exp.name}"

    started = _init_ray()
    import ray

    try:
        if tune.Tuner.can_restore(exp_path):
            echo(f"resuming sweep {exp.name} from {exp_path}")
            tuner = tune.Tuner.restore(exp_path, trainable=MRPO, resume_unfinished=True, resume_errored=True)
        else:
            if resume:
                raise ValueError(f"--resume: nothing to resume at {exp_path}")
            if not remote_storage:
                os.makedirs(exp_path, exist_ok=True)
                shutil.copyfile(path, os.path.join(exp_path, "experiment.yaml"))
                with open(os.path.join(exp_path, "command.txt"), "w") as f:
                    f.write(shlex.join(["mrpo", *(argv if argv is not None else sys.argv)[1:]]) + "\n")
            echo(trial_table(exp))
            tuner = tune.Tuner(
                MRPO,
                param_space=_param_space(exp),
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=exp.max_concurrent_trials,
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name,
                    reuse_actors=False,
                ),
                run_config=RunConfig(
                    name=exp.name,
                    storage_path=storage,
                    stop=exp.budget.stop(),
                    checkpoint_config=CheckpointConfig(
                        checkpoint_frequency=exp.checkpoint_every, checkpoint_at_end=True
                    ),
                    failure_config=FailureConfig(max_failures=exp.max_failures),
                    sync_config=SyncConfig(sync_artifacts=remote_storage),
                    verbose=1,
                ),
            )
        results = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    errors = [r for r in results if r.error is not None]
    echo(
        f"sweep {exp.name}: {len(results)} trials, {len(results) - len(errors)} finished, "
        f"{len(errors)} errored; results in {exp_path}"
    )
    return results
