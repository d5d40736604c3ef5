"""Any set of physical parameters, chosen in the experiment: the run samples exactly those
over the given ranges, the ledger and MRPO's distance follow them, and evaluation grids
their testing ranges."""

import math
import os

import numpy as np
import pandas as pd
import pytest

from mrpo_rllib.evaluate import evaluate, load_policy
from sweeps import run_experiment

RANDOMIZE = {"pole_length": [0.1, 0.5], "cart_mass": {"train": [0.5, 1.5], "test": [2.0, 3.0]}}
KAPPA = 1.0


@pytest.fixture(scope="module")
def run(ray_local, tmp_path_factory):
    exp = run_experiment(
        tmp_path_factory.mktemp("rand"),
        "rand",
        task="CartPole",
        algorithms=["mrpo"],
        seeds=[0],
        kappa=[KAPPA],
        budget={"iterations": 2},
        training={"episodes_per_iteration": 20},
        randomize=RANDOMIZE,
    )
    return os.path.join(exp, "mrpo__CartPole__kappa1__seed0")


def test_the_run_samples_exactly_the_chosen_parameters(run):
    ledger = pd.read_csv(os.path.join(run, "episodes.csv"))
    assert list(ledger.columns) == ["iteration", "return", "length", "pole_length", "cart_mass", "kept"]
    assert ledger["pole_length"].between(0.1, 0.5).all() and ledger["cart_mass"].between(0.5, 1.5).all()
    assert ledger["cart_mass"].nunique() == len(ledger)  # really randomized, not the nominal 1 kg


def test_mrpo_distance_uses_the_chosen_ranges(run):
    """The kept column is MRPO's rule recomputed here with the widths 0.4 and 1.0 written out."""
    ledger = pd.read_csv(os.path.join(run, "episodes.csv"))
    for _, rows in ledger.groupby("iteration"):
        r = rows["return"].to_numpy()
        z = (r - r.mean()) / r.std()
        p = rows[["pole_length", "cart_mass"]].to_numpy() / np.array([0.4, 1.0])
        w = [k for k in range(len(r)) if r[k] <= sorted(r)[1]]
        expected = [
            i in w or all(z[i] - KAPPA * math.dist(p[i], p[k]) >= z[k] for k in w) for i in range(len(r))
        ]
        assert rows["kept"].astype(bool).tolist() == expected


def test_evaluation_grids_the_chosen_testing_ranges(run):
    policy = load_policy(run)
    assert policy.spec.param_names == ("pole_length", "cart_mass")
    df = evaluate(run, "test", points=2, episodes=1)
    ran = sorted(zip(df["pole_length"], df["cart_mass"], strict=True))
    # pole length's testing range is the table's (its training range was given alone)
    assert ran == [(1.0, 2.0), (1.0, 3.0), (6.0, 2.0), (6.0, 3.0)]
