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
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUN_RE = re.compile(
    r"^(?P<algo>[a-z]+)__(?P<task>[A-Za-z0-9]+)__kappa(?P<kappa>.+?)__seed(?P<seed>\d+)"
    r"(?:__(?P<setting>[A-Za-z0-9.-]+))?$"
)
CHECKPOINT_MARKER = "rllib_checkpoint.json"
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

    with open(os.path.join(checkpoint, "algorithm_state.pkl"), "rb") as f:
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
