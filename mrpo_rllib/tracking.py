"""Experiment tracking for ``mrpo tune --logger mlflow|wandb``: Tune's logger callbacks with MRPO's
metrics and the experiment file.

Each trial is one tracking run, named after the trial (``mrpo__CartPole__kappa0.5-2__seed0``),
in a tracking experiment (MLflow) / group (W&B) named after the sweep. What it holds:

- **config**: the experiment definition as ``mrpo tune`` resolved it (the file with its
  ``--set`` overrides, :func:`~mrpo_rllib.experiments.dump_experiment`), flattened to
  ``experiment/<key>/...``, plus the trial's own ``trial/name``, ``trial/algo``, ``trial/seed``
  and κ settings; MLflow also keeps the YAML itself as the artifact ``experiment.yaml``. Not
  RLlib's full algorithm config (hundreds of keys; ``params.json`` in the trial directory has it);
- **metrics**, per training iteration (the step): ``mrpo/*`` (``return_mean``,
  ``return_worst10``, ``kept_fraction``, ``kappa``, ``gradient_steps``, … — everything the
  selection step reports; κ is NaN for PPO-DR and PW-DR) and :data:`EXTRA_METRICS`.

Offline by default:

- MLflow writes a local file store, ``<storage>/mlruns`` (``mlflow ui --backend-store-uri
  <storage>/mlruns`` shows it), unless ``MLFLOW_TRACKING_URI`` names a server or a database;
  with remote storage (``s3://...``) and no ``MLFLOW_TRACKING_URI``, ``./mlruns``. MLflow 3
  keeps its file store in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE``
  is true, which we set (unless set already): plain files need no server and no database,
  are readable with any tool, and are what a laptop run wants; ``mlflow migrate-filestore``
  moves them to a database later;
- W&B runs with ``WANDB_MODE=offline`` unless ``WANDB_MODE`` is set (``wandb sync`` uploads
  later), its files in ``<storage>/<sweep>/wandb/`` (local storage); project ``WANDB_PROJECT``
  or ``mrpo``, group the sweep's name.

``mlflow`` (``mlflow-skinny`` is enough) and ``wandb`` are optional; a missing one is a
``ModuleNotFoundError`` naming what to install, before the sweep starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import yaml

from mrpo_rllib.runs import EXPERIMENT_FILE

LOGGERS = ("mlflow", "wandb")
EXTRA_METRICS = ("training_iteration", "num_env_steps_sampled_lifetime", "time_this_iter_s")
INSTALL_HINT = {
    "mlflow": "--logger mlflow needs mlflow, of the optional extra [tracking]: pip install -r "
    "requirements-extras.txt (mlflow-skinny), or pip install 'mrpo_rllib[tracking]'",
    "wandb": "--logger wandb needs wandb, of the optional extra [tracking]: pip install -r "
    "requirements-extras.txt, or pip install 'mrpo_rllib[tracking]'",
}


def flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a/b": 1}``; lists become their YAML text."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, (list, tuple)):
            out[key] = yaml.safe_dump(list(v), default_flow_style=True).strip()
        else:
            out[key] = v
    return out


def mrpo_metrics(result: Mapping) -> dict[str, float | int]:
    """The metrics tracked from a Tune result: ``mrpo/*`` and :data:`EXTRA_METRICS`, the
    numbers only (a κ of None becomes NaN; integers stay integers), keyed ``mrpo/<name>``."""
    out: dict[str, float] = {}
    nested = result.get("mrpo")
    items = (
        {f"mrpo/{k}": v for k, v in nested.items()}
        if isinstance(nested, Mapping)
        else {k: v for k, v in result.items() if k.startswith("mrpo/")}
    )
    for k in EXTRA_METRICS:
        if k in result:
            items[k] = result[k]
    for k, v in items.items():
        if v is None:
            v = math.nan
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        out[k] = v if isinstance(v, int) else float(v)  # W&B takes the step as an int
    return out


def trial_config(experiment: Mapping, trial) -> dict[str, Any]:
    """The tracked config of ``trial``: the flattened experiment and the trial's variant."""
    variant = dict(trial.config.get("variant", {})) if hasattr(trial, "config") else {}
    return {**flatten(experiment, "experiment/"), **flatten(variant, "trial/")}


def _require(name: str):
    try:
        if name == "mlflow":
            import mlflow  # noqa: F401
        else:
            import wandb  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError(INSTALL_HINT[name]) from None


def check_loggers(loggers) -> list[str]:
    """The logger names, each one of :data:`LOGGERS` and installed; else ``ValueError`` naming
    the bad one or ``ModuleNotFoundError`` naming what to install."""
    names = list(dict.fromkeys(loggers or []))
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"--logger {name!r}: expected one of {list(LOGGERS)}")
        _require(name)
    return names


def mlflow_tracking_uri(storage: str) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the file store ``<storage>/mlruns`` (``./mlruns`` for
    remote storage)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    base = os.getcwd() if "://" in storage else os.path.abspath(storage)
    # MLflow 3 keeps the file store in maintenance mode and refuses it unless this is set
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return "file://" + os.path.join(base, "mlruns")


def _mlflow_class():
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class MRPOMLflowLoggerCallback(MLflowLoggerCallback):
        """Tune's MLflow callback with the experiment as the run's params and MRPO's metrics."""

        def __init__(self, experiment: Mapping, experiment_yaml: str, **kwargs):
            super().__init__(**kwargs)
            self.experiment = dict(experiment)
            self.experiment_yaml = experiment_yaml

        def log_trial_start(self, trial):
            new = trial not in self._trial_runs
            if new:
                tags = {**(self.tags or {}), "trial_name": str(trial)}
                run = self.mlflow_util.start_run(tags=tags, run_name=str(trial))
                self._trial_runs[trial] = run.info.run_id
                run_id = self._trial_runs[trial]
                self.mlflow_util.log_params(run_id=run_id, params_to_log=trial_config(self.experiment, trial))
                self.mlflow_util._get_client().log_text(run_id, self.experiment_yaml, EXPERIMENT_FILE)

        def log_trial_result(self, iteration, trial, result):
            metrics = mrpo_metrics(result)
            step = int(result.get("training_iteration", iteration))
            self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=metrics, step=step)

        def log_trial_end(self, trial, failed=False):
            if trial in self._trial_runs:
                status = "FAILED" if failed else "FINISHED"
                self.mlflow_util.end_run(run_id=self._trial_runs[trial], status=status)

    return MRPOMLflowLoggerCallback


def _wandb_class():
    from ray.air.integrations.wandb import WandbLoggerCallback

    class MRPOWandbLoggerCallback(WandbLoggerCallback):
        """Tune's W&B callback with the experiment as the run's config and MRPO's metrics."""

        def __init__(self, experiment: Mapping, **kwargs):
            super().__init__(**kwargs)
            self.experiment = dict(experiment)

        def log_trial_start(self, trial):
            init = dict(
                id=trial.trial_id,
                name=str(trial),
                resume=False,
                reinit=True,
                allow_val_change=True,
                group=self.group,
                project=self.project,
                config=trial_config(self.experiment, trial),
            )
            init.update(self.kwargs)
            self._start_logging_actor(trial, [*self._exclude_results, "config"], **init)

        def log_trial_result(self, iteration, trial, result):
            super().log_trial_result(iteration, trial, mrpo_metrics(result))

    return MRPOWandbLoggerCallback


def tracking_callbacks(loggers, exp, storage: str) -> list:
    """Tune callbacks for ``loggers`` (names from :data:`LOGGERS`) of the experiment ``exp``
    (an :class:`~mrpo_rllib.experiments.Experiment`) stored at ``storage``."""
    from mrpo_rllib.experiments import dump_experiment

    text = dump_experiment(exp)
    experiment = yaml.safe_load(text)
    out = []
    for name in check_loggers(loggers):
        if name == "mlflow":
            out.append(
                _mlflow_class()(
                    experiment,
                    text,
                    tracking_uri=mlflow_tracking_uri(storage),
                    experiment_name=exp.name,
                )
            )
        else:
            os.environ.setdefault("WANDB_MODE", "offline")
            where = {}
            if "://" not in storage:  # beside the sweep's trials, not in Ray's session directory
                where["dir"] = os.path.join(os.path.abspath(storage), exp.name)
                os.makedirs(where["dir"], exist_ok=True)
            out.append(
                _wandb_class()(
                    experiment,
                    project=os.environ.get("WANDB_PROJECT", "mrpo"),
                    group=exp.name,
                    mode=os.environ["WANDB_MODE"],
                    **where,
                )
            )
    return out
