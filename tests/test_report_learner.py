"""`mrpo report --study learner` on real runs: learning runs with another M drawn and tabled
beside the main run, never mixed into it; κ's calibration from the main runs only."""

import os

import pandas as pd
import pytest

from mrpo_rllib.report.learner import KAPPA_GRID, learner_study
from sweeps import run_experiment

CARTPOLE = {"task": "CartPole", "algorithms": ["dr"], "seeds": [0], "budget": {"iterations": 4}}


@pytest.fixture(scope="module")
def study(ray_local, tmp_path_factory):
    """Three real sweeps named as the learner study names them: the main run (M = 8), the
    same at M = 4 (``_m4``), and the nominal system at M = 4."""
    root = tmp_path_factory.mktemp("learner")
    run_experiment(root, "learner_learning_cartpole", **CARTPOLE)
    run_experiment(root, "learner_learning_cartpole_m4", **CARTPOLE, training={"episodes_per_iteration": 4})
    run_experiment(
        root,
        "learner_learning_nominal_cartpole_m4",
        **CARTPOLE,
        training={"episodes_per_iteration": 4},
        randomize={"pole_length": [0.5, 0.5]},
    )
    out = tmp_path_factory.mktemp("learner_report")
    path = learner_study(str(root), str(out), echo=lambda *a: None)
    return root, out, open(path).read()


def _tables(md: str) -> list[pd.DataFrame]:
    """Every markdown table of ``md``, in order, as strings."""
    tables, rows = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            tables.append(pd.DataFrame(rows[2:], columns=rows[0]))
            rows = []
    return tables


def _progress(root, experiment: str) -> pd.DataFrame:
    return pd.read_csv(os.path.join(root, experiment, "dr__CartPole__kappanone__seed0", "progress.csv"))


def test_each_m_has_its_own_row_from_its_own_run(study):
    root, out, md = study
    learning = _tables(md)[0]
    assert list(learning["task"]) == ["CartPole", "CartPole"] and list(learning["M"]) == ["8", "4"]
    for m, experiment in (("8", "learner_learning_cartpole"), ("4", "learner_learning_cartpole_m4")):
        row = learning[learning["M"] == m].iloc[0]
        progress = _progress(root, experiment)
        assert int(row["iterations"]) == len(progress) == 4
        assert row["10%-worst at the end"] == f"{progress['mrpo/return_worst10'].tail(3).mean():.1f}"
    assert os.path.getsize(out / "learning.png") > 0


def test_nominal_runs_are_their_own_table_with_their_m(study):
    root, _, md = study
    nominal = _tables(md)[1]
    assert list(nominal["task (nominal parameters)"]) == ["CartPole"] and list(nominal["M"]) == ["4"]
    ledger = pd.read_csv(
        os.path.join(
            root, "learner_learning_nominal_cartpole_m4", "dr__CartPole__kappanone__seed0", "episodes.csv"
        )
    )
    assert (ledger["pole_length"] == 0.5).all() and ledger.groupby("iteration").size().eq(4).all()


def test_kappa_calibration_reads_only_the_main_run(study):
    _, _, md = study
    kept = _tables(md)[2]
    assert list(kept["task"]) == ["CartPole"] * len(KAPPA_GRID)
    assert [float(k) for k in kept["κ"]] == list(KAPPA_GRID)
