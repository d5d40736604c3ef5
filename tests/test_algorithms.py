"""MRPO / EPOpt / DR on real RLlib (embedded Ray), CartPole, M = 20."""

import math

import numpy as np
import pandas as pd
import pytest

from mrpo_rllib.algorithms import MRPO, MRPOConfig

M = 20


def _config(selection, ledger_dir, seed=1, **training):
    return (
        MRPOConfig()
        .environment("CartPole")
        .env_runners(num_env_runners=2)
        .training(selection=selection, episodes_per_iteration=M, **training)
        .debugging(seed=seed)
        .reporting(episode_ledger_dir=str(ledger_dir))
    )


def _run(config, iterations):
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(iterations)]
    finally:
        algo.stop()
    return results


@pytest.fixture(scope="module")
def runs(ray_local, tmp_path_factory):
    """Two iterations of each rule; minibatch_size=None makes RLlib's trained-steps
    counter exact: num_epochs x (kept timesteps + one bootstrap step per kept episode)."""
    out = {}
    for selection in ("dr", "epopt", "mrpo"):
        ledger = tmp_path_factory.mktemp(selection)
        cfg = _config(selection, ledger, minibatch_size=None, num_epochs=2, kappa_start=1.0, kappa_end=1.0)
        out[selection] = (_run(cfg, 2), pd.read_csv(ledger / "episodes.csv"))
    return out


@pytest.mark.parametrize("selection", ["dr", "epopt", "mrpo"])
def test_ledger_has_m_distinct_parameter_vectors_per_iteration(runs, selection):
    results, ledger = runs[selection]
    assert len(ledger) == 2 * M
    assert ledger["iteration"].tolist() == [1] * M + [2] * M
    params = ledger[["force_mag", "pole_length", "pole_mass"]].to_numpy()
    assert len({tuple(p) for p in params}) == 2 * M  # every episode its own environment
    for r, (_, rows) in zip(results, ledger.groupby("iteration"), strict=True):
        m = r["mrpo"]
        assert m["episodes"] == M
        assert m["kept_episodes"] == rows["kept"].sum()
        assert m["kept_timesteps"] == rows.loc[rows["kept"] == 1, "length"].sum()
        assert m["sampled_timesteps"] == rows["length"].sum() == r["env_runners"]["num_env_steps_sampled"]
        assert m["return_mean"] == pytest.approx(rows["return"].mean())
        assert m["return_min"] == rows["return"].min()
        assert m["return_worst10"] == pytest.approx(rows["return"].nsmallest(2).mean())


@pytest.mark.parametrize("selection", ["dr", "epopt", "mrpo"])
def test_learner_trained_on_exactly_the_kept_timesteps(runs, selection):
    results, _ = runs[selection]
    for r in results:
        m = r["mrpo"]
        trained = r["learners"]["default_policy"]["num_module_steps_trained"]
        assert trained == 2 * (m["kept_timesteps"] + m["kept_episodes"])


def test_dr_keeps_all(runs):
    for r in runs["dr"][0]:
        assert r["mrpo"]["kept_episodes"] == M and r["mrpo"]["kept_fraction"] == 1.0


def test_epopt_keeps_the_alpha_percentile(runs):
    _, ledger = runs["epopt"]
    for _, rows in ledger.groupby("iteration"):
        threshold = np.percentile(rows["return"], 10)
        assert (rows["kept"] == (rows["return"] <= threshold)).all()
        assert 1 <= rows["kept"].sum() <= 0.25 * M  # ~10%, more only for ties


def test_mrpo_keeps_at_least_the_worst_set(runs):
    results, ledger = runs["mrpo"]
    for r, (_, rows) in zip(results, ledger.groupby("iteration"), strict=True):
        worst = rows["return"].to_numpy().argsort(kind="stable")[: math.ceil(0.1 * M)]
        assert rows["kept"].to_numpy()[worst].all()
        assert r["mrpo"]["kept_episodes"] >= 2
        assert r["mrpo"]["kappa"] == 1.0


def test_same_seed_same_parameter_sequence(ray_local, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(_config("dr", a, seed=7), 2)
    _run(_config("dr", b, seed=7), 2)
    la, lb = pd.read_csv(a / "episodes.csv"), pd.read_csv(b / "episodes.csv")
    cols = ["force_mag", "pole_length", "pole_mass"]
    np.testing.assert_array_equal(la[cols].to_numpy(), lb[cols].to_numpy())
    _run(_config("dr", tmp_path / "c", seed=8), 2)
    lc = pd.read_csv(tmp_path / "c" / "episodes.csv")
    assert not np.array_equal(lc[cols].to_numpy(), la[cols].to_numpy())


def test_kappa_schedule_rises_and_is_capped():
    cfg = MRPOConfig().training(kappa_start=0.5, kappa_end=2.5, kappa_ramp_iters=4)
    assert [cfg.kappa_at(i) for i in range(7)] == [0.5, 1.0, 1.5, 2.0, 2.5, 2.5, 2.5]
    assert MRPOConfig().training(kappa_start=3.0, kappa_end=3.0).kappa_at(1000) == 3.0


def test_kappa_restored_from_checkpoint(ray_local, tmp_path):
    cfg = _config("mrpo", tmp_path, kappa_start=0.0, kappa_end=1.0, kappa_ramp_iters=4)
    algo = cfg.build_algo()
    try:
        first = [algo.train()["mrpo"]["kappa"] for _ in range(2)]
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = MRPO.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        nxt = restored.train()["mrpo"]["kappa"]
    finally:
        restored.stop()
    assert first == [0.0, 0.25] and nxt == 0.5


@pytest.mark.parametrize(
    "training, match",
    [
        ({"selection": "ppo"}, "selection must be one of"),
        ({"kappa_start": -1.0}, "kappa_start must be a finite number >= 0, got -1.0"),
        ({"kappa_start": 2.0, "kappa_end": 1.0}, r"kappa_end \(1.0\) must be >= kappa_start \(2.0\)"),
        ({"worst_fraction": 1.5}, r"worst_fraction must be in \(0, 1\], got 1.5"),
        ({"epopt_alpha": 0.0}, r"epopt_alpha must be in \(0, 1\], got 0.0"),
        ({"episodes_per_iteration": 0}, "episodes_per_iteration must be an integer >= 1, got 0"),
        ({"kappa_ramp_iters": -3}, "kappa_ramp_iters must be an integer >= 0, got -3"),
    ],
)
def test_config_validation(training, match):
    with pytest.raises(ValueError, match=match):
        MRPOConfig().training(**training).validate()


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task 'Humanoid'"):
        MRPOConfig().environment(env_config={"task": "Humanoid"}).validate()
