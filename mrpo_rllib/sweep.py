"""``mrpo tune``: run one experiment file as a Ray Tune sweep.

On the cluster at ``RAY_ADDRESS`` when set, else on an embedded local Ray. Each
trial is an :class:`~mrpo_rllib.algorithms.MRPO` Trainable named
``{algo}__{task}__kappa{k}__seed{s}``; its directory holds Tune's ``progress.csv``,
``result.json``, ``params.json``, TensorBoard events, ``checkpoint_000NNN/`` and our
``episodes.csv`` ledger. A failed trial is retried from its last checkpoint
(``max_failures``); running the same command again after the driver died resumes
the sweep from ``<storage>/<name>`` instead of starting over.

A restored trial redoes the iterations it reported after its last checkpoint. Tune's own
loggers only append, so ``progress.csv`` and ``result.json`` would hold those iterations
twice; :class:`ContinuousCSVLogger` and :class:`ContinuousJsonLogger` drop the rows past
the checkpoint a trial restarts from, so every file has each iteration exactly once (the
``episodes.csv`` ledger does the same on the Trainable's side).
"""

from __future__ import annotations

import csv
import io
import json
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
    from ray.rllib.algorithms.algorithm_config import NotProvided

    from mrpo_rllib.algorithms import MRPOConfig

    envs = NotProvided if exp.envs_per_env_runner is None else exp.envs_per_env_runner
    config = (
        MRPOConfig()
        .environment(exp.task)
        .env_runners(num_env_runners=exp.env_runners_per_trial, num_envs_per_env_runner=envs)
        .training(episodes_per_iteration=exp.episodes_per_iteration, **exp.training.kwargs())
        .debugging(log_level="ERROR")
    )
    space = config.to_dict()
    space["variant"] = tune.grid_search([t.as_variant() for t in exp.trials()])
    return space


def _restart_iteration(trial) -> int:
    """The iteration a (re)started trial continues from: its latest checkpoint's, else 0."""
    ckpt = trial.latest_checkpoint_result
    return int(ckpt.metrics.get("training_iteration", 0)) if ckpt is not None else 0


def drop_rows_after(path: str, iteration: int) -> int:
    """Keep the rows of ``path`` (Tune's ``progress.csv`` or ``result.json``) whose
    ``training_iteration`` is <= ``iteration``; returns how many were dropped."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return 0
    with open(path, newline="") as f:
        text = f.read()
    if path.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text, newline="")))  # quoted newlines stay in their field
        col = rows[0].index("training_iteration") if "training_iteration" in rows[0] else None
        if col is None:
            return 0
        keep = [rows[0], *(r for r in rows[1:] if r and float(r[col]) <= iteration)]
        dropped = len(rows) - len(keep)
        if dropped:
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(keep)
        return dropped
    lines = [ln for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("training_iteration", 0) <= iteration]
    if len(keep) < len(lines):
        with open(path, "w") as f:
            f.write("".join(ln + "\n" for ln in keep))
    return len(lines) - len(keep)


def _loggers():
    """Tune's CSV and JSON loggers, made safe for restarts (see the module docstring)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    class ContinuousCSVLogger(CSVLoggerCallback):
        def _setup_trial(self, trial):
            # Tune opens progress.csv lazily at a trial's first result (after copying it
            # back from remote storage); the file is opened for appending.
            super()._setup_trial(trial)
            path = os.path.join(trial.local_path, "progress.csv")
            drop_rows_after(path, _restart_iteration(trial))
            if self._trial_continue[trial]:
                # Keep the file's columns: a restored trial's first result may have more keys.
                with open(path, newline="") as f:
                    header = next(csv.reader(f))
                self._trial_csv[trial] = csv.DictWriter(self._trial_files[trial], header, restval="")

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.log_trial_end(trial, failed=True)  # reopened (and trimmed) at the next result

    class ContinuousJsonLogger(JsonLoggerCallback):
        def log_trial_start(self, trial):
            super().log_trial_start(trial)  # at every (re)start of the trial's actor
            drop_rows_after(os.path.join(trial.local_path, "result.json"), _restart_iteration(trial))

    return [ContinuousCSVLogger(), ContinuousJsonLogger()]


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
                    callbacks=_loggers(),
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
