"""Real runs for the tests: an experiment (a dict in the schema of tune_configs/) run by Tune."""

from __future__ import annotations

import os

from mrpo_rllib.experiments import parse_experiment
from mrpo_rllib.sweep import run_sweep

SMALL = {
    "env_runners_per_trial": 0,
    "training": {"episodes_per_iteration": 8, "num_epochs": 2, "num_minibatches": 2},
}


def run_experiment(storage, name: str, **keys) -> str:
    """Run the experiment ``{name, **SMALL, **keys}`` into ``storage`` (a ``training`` given
    updates SMALL's); returns its directory."""
    data = {"name": name, **SMALL, **keys}
    data["training"] = {**SMALL["training"], **keys.get("training", {})}
    run_sweep(
        parse_experiment(data, name),
        str(storage),
        echo=lambda *a: None,
        argv=["mrpo", "tune", f"{name}.yaml"],
    )
    return os.path.join(str(storage), name)
