"""Runs on disk: their names, their one layout, finding them and their checkpoints.

Every run is a Ray Tune trial (``mrpo train`` is a one-trial sweep), so every run directory
looks the same::

    <storage>/<experiment>/                      experiment.yaml, command.txt, code.txt (written by us)
        {algo}__{task}__kappa{k}__seed{s}[__{setting}]/
            params.json  progress.csv  result.json       Tune's files
            episodes.csv                                  the episode ledger (one row per episode)
            checkpoint_000NNN/                            RLlib checkpoints
            report.md  curves.png                         ``mrpo train``'s summary of the run

``k`` is ``0.25-2`` for a rising κ schedule, ``5`` for a fixed κ, ``none`` for EPOpt and DR;
``setting`` names one of an experiment's compared settings (see ``settings:`` in
:mod:`mrpo_rllib.experiments`).

This module owns the layout: every file name above is a constant here (``PARAMS_FILE``,
``PROGRESS_FILE``, ...), and the files are read and written through the functions of this
module (:func:`read_params`, :func:`read_progress`, :func:`read_ledger`,
:func:`read_experiment`, :func:`write_sweep_files`); no other module of the package spells a
file name of the layout (``tests/test_runs_layout.py`` checks).
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# -- the layout's file names ------------------------------------------------------------------------
# Next to a sweep's trials (written by mrpo_rllib.sweep):
EXPERIMENT_FILE = "experiment.yaml"  # the experiment, only the keys given
COMMAND_FILE = "command.txt"  # the command line that started the sweep
CODE_FILE = "code.txt"  # the code it ran (git commit)
# In a run directory, Tune's:
PARAMS_FILE = "params.json"  # the trial's full algorithm config
PROGRESS_FILE = "progress.csv"  # one row per iteration
RESULT_FILE = "result.json"  # one JSON line per iteration
ERROR_FILE = "error.txt"  # the trial's failures
ERROR_PICKLE = "error.pkl"
# ... ours:
LEDGER_FILE = "episodes.csv"  # the episode ledger (mrpo_rllib.algorithms.selection_step)
SUMMARY_FILE = "report.md"  # `mrpo train`'s summary of the run
CURVES_FILE = "curves.png"
# ... and RLlib's, in each checkpoint_000NNN/:
CHECKPOINT_MARKER = "rllib_checkpoint.json"
ALGORITHM_STATE_FILE = "algorithm_state.pkl"

RUN_RE = re.compile(
    r"^(?P<algo>[a-z]+)__(?P<task>[A-Za-z0-9]+)__kappa(?P<kappa>.+?)__seed(?P<seed>\d+)"
    r"(?:__(?P<setting>[A-Za-z0-9.-]+))?$"
)
_CHECKPOINT_RE = re.compile(r"checkpoint_(\d+)$")


def kappa_label(algo: str, kappa_start: float, kappa_end: float) -> str:
    """``"0.25-2"`` for a rising schedule, ``"5"`` for a fixed κ, ``"none"`` for EPOpt/DR."""
    if algo != "mrpo":
        return "none"
    if kappa_start == kappa_end:
        return f"{kappa_start:g}"
    return f"{kappa_start:g}-{kappa_end:g}"


def run_name(algo: str, task: str, kappa: str, seed: int, setting: str = "") -> str:
    """``{algo}__{task}__kappa{k}__seed{s}``, plus ``__{setting}`` for a named setting of a sweep."""
    name = f"{algo}__{task}__kappa{kappa}__seed{seed}"
    return f"{name}__{setting}" if setting else name


@dataclass(frozen=True)
class RunName:
    """What a run directory's name says."""

    algo: str
    task: str
    kappa: str
    seed: int
    setting: str = ""


def parse_run_name(path: str) -> RunName | None:
    """The parts of a run directory's name, or None when it is not named like a run."""
    m = RUN_RE.match(os.path.basename(os.path.normpath(path)))
    if not m:
        return None
    return RunName(m["algo"], m["task"], m["kappa"], int(m["seed"]), m["setting"] or "")


def find_run_dirs(root: str) -> list[str]:
    """Every directory under ``root`` (itself included) named like a run, sorted."""
    if not os.path.isdir(root):
        raise ValueError(f"runs directory {root!r} does not exist or is not a directory")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if parse_run_name(dirpath):
            found.append(dirpath)
            dirnames[:] = []  # a run's checkpoints hold no further runs
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "checkpoint")))
    return sorted(found)


# -- reading and writing the layout's files ---------------------------------------------------------
def read_text(path: str) -> str | None:
    """The text of ``path``, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_params(run_dir: str) -> dict[str, Any]:
    """The trial config Tune saved (``params.json``). Raises ``OSError`` when there is none
    and ``json.JSONDecodeError`` when it is not JSON."""
    with open(os.path.join(run_dir, PARAMS_FILE)) as f:
        return json.load(f)


def _read_csv(path: str, **kwargs):
    import pandas as pd

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return None


def read_progress(run_dir: str):
    """Tune's ``progress.csv`` of a run as a DataFrame, as written (one row per reported
    iteration), or None when it is missing or empty."""
    return _read_csv(os.path.join(run_dir, PROGRESS_FILE))


def read_ledger(run_dir: str, columns: list[str] | None = None):
    """The episode ledger ``episodes.csv`` of a run (``iteration``, ``return``, ``length``,
    one column per randomized parameter, ``kept``) as a DataFrame, only ``columns`` when
    given; None when it is missing or empty."""
    return _read_csv(os.path.join(run_dir, LEDGER_FILE), usecols=columns)


def read_experiment(sweep_dir: str) -> dict | None:
    """The experiment a sweep saved next to its trials (``experiment.yaml``) as the mapping it
    holds, or None when there is none or it is not a YAML mapping. Validated against the
    schema: :func:`mrpo_rllib.experiments.saved_experiment` (the schema is a layer above)."""
    import yaml

    text = read_text(os.path.join(sweep_dir, EXPERIMENT_FILE))
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def read_command(sweep_dir: str) -> str | None:
    """The command line that started a sweep (``command.txt``), stripped, or None."""
    text = read_text(os.path.join(sweep_dir, COMMAND_FILE))
    return text.strip() if text else None


def write_sweep_files(sweep_dir: str, experiment_yaml: str, command: str, code: str) -> None:
    """What a sweep stores next to its trials: the experiment, the command line, the code."""
    os.makedirs(sweep_dir, exist_ok=True)
    for name, text in ((EXPERIMENT_FILE, experiment_yaml), (COMMAND_FILE, command), (CODE_FILE, code)):
        with open(os.path.join(sweep_dir, name), "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")


# -- checkpoints ---------------------------------------------------------------------------------
def checkpoint_number(path: str) -> int:
    """N of a ``checkpoint_000NNN`` directory (-1 for any other name)."""
    m = _CHECKPOINT_RE.search(os.path.normpath(path))
    return int(m.group(1)) if m else -1


def checkpoints(run_dir: str) -> list[str]:
    """The run's RLlib checkpoints ``checkpoint_000NNN/``, in increasing order."""
    found = [
        d
        for d in glob.glob(os.path.join(run_dir, "checkpoint_*"))
        if checkpoint_number(d) >= 0 and os.path.isfile(os.path.join(d, CHECKPOINT_MARKER))
    ]
    return sorted(found, key=checkpoint_number)


def checkpoint_iteration(checkpoint: str) -> int:
    """The training iteration a checkpoint was saved at (RLlib's ``algorithm_state.pkl``;
    Tune numbers checkpoint directories by count, not by iteration)."""
    import pickle

    with open(os.path.join(checkpoint, ALGORITHM_STATE_FILE), "rb") as f:
        return int(pickle.load(f)["training_iteration"])


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """The RLlib checkpoint directory for ``path``: a checkpoint itself (holds
    ``rllib_checkpoint.json``) or a run directory, whose last ``checkpoint_000NNN/`` is taken.
    Raises ``FileNotFoundError`` naming the path when there is none."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint {path!r} is not a directory (expected an RLlib checkpoint dir)")
    if os.path.isfile(os.path.join(path, CHECKPOINT_MARKER)):
        return path
    found = checkpoints(path)
    if found:
        return found[-1]
    raise FileNotFoundError(
        f"no RLlib checkpoint in {path!r}: expected {CHECKPOINT_MARKER} there or in checkpoint_NNNNNN/"
    )


def flatten(result: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested result dict → flat dict with ``sep``-joined keys; non-scalars dropped."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            out[name] = value.item()
    return out
