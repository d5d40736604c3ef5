"""``mrpo tune`` and ``mrpo train``: an experiment run as a Ray Tune sweep.

One execution path: ``mrpo train`` is a one-trial sweep through the same code, so every run
has the layout of :mod:`mrpo_rllib.runs`. On the cluster at ``RAY_ADDRESS`` when set, else on
an embedded local Ray (:mod:`mrpo_rllib.ray_session`). Each trial is an
:class:`~mrpo_rllib.algorithms.MRPO` Trainable named ``{algo}__{task}__kappa{k}__seed{s}``.
A failed trial is retried from its last checkpoint (``max_failures``); running the same
command again after the driver died resumes the sweep from ``<storage>/<name>``.

A restored trial redoes the iterations it reported after its last checkpoint. Tune's own
loggers only append, so ``progress.csv`` and ``result.json`` would hold those iterations
twice; :class:`ContinuousCSVLogger` and :class:`ContinuousJsonLogger` drop the rows past
the checkpoint a trial restarts from, so every file has each iteration exactly once (the
``episodes.csv`` ledger does the same on the Trainable's side).

The console: a progress table of MRPO's own metrics per trial (name, status, iteration, env
steps, average and 10%-worst return, kept fraction, κ) every ``REPORT_EVERY_S`` seconds;
Tune's per-trial configuration and result dumps only with ``verbose``. ``mrpo train`` prints
one line per iteration instead (:class:`IterationPrinter`).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from mrpo_rllib import runs
from mrpo_rllib.experiments import Experiment, dump_experiment
from mrpo_rllib.ray_session import ray_session

DEFAULT_STORAGE = "results/tune"
REPORT_EVERY_S = 30
# Tune's progress table: result key -> column title
PROGRESS_COLUMNS = {
    "training_iteration": "iter",
    "num_env_steps_sampled_lifetime": "env steps",
    "mrpo/return_mean": "average",
    "mrpo/return_worst10": "10%-worst",
    "mrpo/kept_fraction": "kept",
    "mrpo/kappa": "κ",
}


def trial_table(exp: Experiment) -> str:
    """The trials of an experiment as a fixed-width table (what ``--dry-run`` prints)."""
    base = exp.base_config()
    stop = ", ".join(f"{k}={v}" for k, v in exp.budget.stop().items())
    lines = [
        f"experiment {exp.name}: task {exp.task}, {len(exp.trials())} trials, stop at {stop}, "
        f"M={base.episodes_per_iteration} episodes/iteration, {base.num_env_runners} env runner(s) "
        f"and {1 + base.num_env_runners} CPU(s) per trial, checkpoint every {exp.checkpoint_every}",
        f"{'trial':<52} {'algo':<6} {'seed':>4} {'kappa_start':>11} {'kappa_end':>9} {'ramp_iters':>10}",
    ]
    for t in exp.trials():
        k0, k1, ramp = (
            (f"{t.kappa_start:g}", f"{t.kappa_end:g}", str(t.kappa_ramp_iters))
            if t.algo == "mrpo"
            else ("-",) * 3
        )
        lines.append(f"{t.name:<52} {t.algo:<6} {t.seed:>4} {k0:>11} {k1:>9} {ramp:>10}")
    return "\n".join(lines)


def _param_space(exp: Experiment) -> dict:
    from ray import tune

    space = exp.base_config().to_dict()
    space["variant"] = tune.grid_search([t.as_variant() for t in exp.trials()])
    return space


def _check_same_experiment(exp: Experiment, exp_path: str, remote_storage: bool) -> None:
    """A sweep resumes only the experiment it started with (Tune would silently continue the
    old trials); the definition it saved, ``experiment.yaml``, must hold the same keys and
    values as the one given now (its layout and comments may differ: earlier versions saved
    the file as given)."""
    saved = os.path.join(exp_path, runs.EXPERIMENT_FILE)
    if remote_storage or not os.path.isfile(saved):
        return
    with open(saved) as f:
        saved_data = yaml.safe_load(f)
    now = dump_experiment(exp)
    if saved_data != yaml.safe_load(now):
        before = yaml.safe_dump(saved_data, sort_keys=False)
        diff = "".join(difflib.unified_diff(before.splitlines(True), now.splitlines(True), saved, "now", n=0))
        raise ValueError(
            f"experiment {exp.name} at {exp_path} was started with another definition; resume it "
            f"with the same file and --set values, or give the new one another name or storage:\n{diff}"
        )


def code_version() -> str:
    """The code a sweep ran: the git commit of mrpo_rllib's checkout (``+modified`` when it
    has uncommitted changes), or ``unknown`` outside a git checkout (a cluster job's copy)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        git = ["git", "-C", here]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--", here], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + ("+modified" if dirty.stdout.strip() else "")


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
            path = os.path.join(trial.local_path, runs.PROGRESS_FILE)
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
            drop_rows_after(os.path.join(trial.local_path, runs.RESULT_FILE), _restart_iteration(trial))

    return [ContinuousCSVLogger(), ContinuousJsonLogger()]


def _trial_name(trial) -> str:
    return trial.config["variant"]["name"]


def fmt_iteration(result: Mapping[str, Any]) -> str:
    """One readable line per iteration (``mrpo train``'s console)."""
    m = result["mrpo"]
    kappa = m["kappa"]
    k = "  -  " if kappa is None or (isinstance(kappa, float) and math.isnan(kappa)) else f"{kappa:5.2f}"
    steps = result.get("num_env_steps_sampled_lifetime", 0)
    return (
        f"iter {result['training_iteration']:4d} | steps {int(steps):>9,d} | "
        f"avg {m['return_mean']:9.2f} | worst10 {m['return_worst10']:9.2f} | "
        f"kept {int(m['kept_episodes']):4d}/{int(m['episodes']):<4d} | κ {k} | "
        f"{result.get('time_this_iter_s', 0.0):6.1f} s"
    )


def _iteration_printer():
    from ray.tune import Callback

    class IterationPrinter(Callback):
        """One line per training iteration of every trial on stdout (``mrpo train``).
        Stateless: Tune pickles its callbacks with the experiment state."""

        def on_trial_result(self, iteration, trials, trial, result, **info):
            sys.stdout.write(fmt_iteration(result) + "\n")
            sys.stdout.flush()

    return IterationPrinter()


def _reporter():
    from ray.tune import CLIReporter

    return CLIReporter(
        metric_columns=PROGRESS_COLUMNS,
        parameter_columns=[],
        max_report_frequency=REPORT_EVERY_S,
        max_column_length=40,
    )


def run_sweep(
    exp: Experiment,
    storage: str | None = None,
    *,
    resume: bool = False,
    verbose: bool = False,
    per_iteration: bool = False,
    callbacks: list | tuple = (),
    loggers: list | tuple = (),
    echo=print,
    argv: list[str] | None = None,
):
    """Run (or resume) the sweep of ``exp``. Returns Tune's ResultGrid.

    Everything is validated (:meth:`Experiment.check`) before anything is written.
    ``per_iteration`` prints one line per iteration instead of Tune's progress table (what
    ``mrpo train`` shows); ``verbose`` adds Tune's per-trial configuration and result dumps.
    ``callbacks``: further Tune callbacks for the driver. ``loggers``: experiment trackers,
    ``"mlflow"`` and/or ``"wandb"`` (:mod:`mrpo_rllib.tracking`; offline by default).
    """
    exp.check(exp.name)
    from mrpo_rllib.tracking import check_loggers, tracking_callbacks

    loggers = check_loggers(loggers)  # a bad or missing one fails before anything is written
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, SyncConfig

    from mrpo_rllib.algorithms import MRPO

    remote_storage = storage is not None and "://" in storage
    storage = storage or DEFAULT_STORAGE
    if not remote_storage:
        storage = os.path.abspath(storage)
    exp_path = f"{storage.rstrip('/')}/{exp.name}"

    # Tune's classic console: our columns, no per-trial configuration tables unless asked.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    callbacks = _loggers() + ([_iteration_printer()] if per_iteration else []) + list(callbacks)
    callbacks += tracking_callbacks(loggers, exp, storage)
    verbosity = 3 if verbose else (0 if per_iteration else 1)
    with ray_session(dashboard=True, quiet=per_iteration and not verbose):
        if tune.Tuner.can_restore(exp_path):
            _check_same_experiment(exp, exp_path, remote_storage)
            echo(f"resuming sweep {exp.name} from {exp_path}")
            # The param space again: Tune keeps it with placeholders for every non-primitive value
            # (classes, functions) and resolves them from this one; without it, trials created
            # after the resume get unresolved placeholders and RLlib refuses their config.
            try:
                tuner = tune.Tuner.restore(
                    exp_path,
                    trainable=MRPO,
                    param_space=_param_space(exp),
                    resume_unfinished=True,
                    resume_errored=True,
                )
            except ValueError as e:
                if "param_space" not in str(e):
                    raise
                raise ValueError(
                    f"sweep {exp.name} at {exp_path} was started by a version of mrpo_rllib whose trial "
                    "configuration has other keys than this one's; resume it with the version that "
                    f"started it ({runs.CODE_FILE} there), or start it again under another name or storage. "
                    f"Tune: {e}"
                ) from None
        else:
            if resume:
                raise ValueError(f"--resume: nothing to resume at {exp_path}")
            if not remote_storage:
                runs.write_sweep_files(
                    exp_path,
                    dump_experiment(exp),
                    shlex.join(["mrpo", *(argv if argv is not None else sys.argv)[1:]]),
                    code_version(),
                )
            if not per_iteration:
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
                    callbacks=callbacks,
                    sync_config=SyncConfig(sync_artifacts=remote_storage),
                    progress_reporter=None if per_iteration else _reporter(),
                    verbose=verbosity,
                ),
            )
        results = tuner.fit()
    errors = [r for r in results if r.error is not None]
    echo(
        f"sweep {exp.name}: {len(results)} trials, {len(results) - len(errors)} finished, "
        f"{len(errors)} errored; results in {exp_path}"
    )
    return results
