"""`mrpo evaluate`: grids, checkpoint loading (train and Tune layouts), normalisation, determinism."""

import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from mrpo_rllib.cli import main
from mrpo_rllib.evaluate import evaluate, evaluate_points, grid_points, load_policy
from mrpo_rllib.runs import resolve_checkpoint

TRIAL = "mrpo__CartPole__kappa0.5-2__seed0"


@pytest.fixture(scope="module")
def run_dir(cartpole_sweep):
    """A real run (conftest's cartpole_sweep, seed 0): two iterations, a checkpoint after each
    (checkpoint_000000, _000001)."""
    return os.path.join(cartpole_sweep, TRIAL)


# -- grids (no Ray) ---------------------------------------------------------------------------
def test_cartpole_test_grid_is_length_by_mass_with_force_fixed():
    g = grid_points("CartPole", "test", 2)
    assert list(g.columns) == ["force_mag", "pole_length", "pole_mass"]
    assert len(g) == 4
    assert (g["force_mag"] == 10.0).all()
    assert sorted(zip(g["pole_length"], g["pole_mass"], strict=True)) == [(1, 1), (1, 6), (6, 1), (6, 6)]


def test_cartpole_train_grid_keeps_force_at_nominal():
    g = grid_points("CartPole", "train", 3)
    assert len(g) == 9
    assert (g["force_mag"] == 10.0).all()
    assert sorted(g["pole_length"].unique()) == pytest.approx([0.05, 0.525, 1.0])


def test_two_parameter_grid_and_single_point():
    g = grid_points("Hopper", "test", 3)
    assert len(g) == 9
    assert sorted(g["density"].unique()) == pytest.approx([1.0, 375.5, 750.0])
    one = grid_points("Hopper", "train", 1)
    assert one.to_dict("records") == [{"density": 1000.0, "friction": 0.8}]


def test_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="grid must be"):
        grid_points("CartPole", "val", 2)
    with pytest.raises(ValueError, match="points must be"):
        grid_points("CartPole", "test", 0)


# -- checkpoints ----------------------------------------------------------------------------------
def test_missing_checkpoint_names_the_path(tmp_path, capsys):
    missing = str(tmp_path / "no" / "such" / "checkpoint")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        evaluate(missing, "test", 2, 1)
    assert main(["evaluate", missing, "--points", "2"]) == 2
    assert missing in capsys.readouterr().err
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        resolve_checkpoint(empty)


def test_resolves_a_run_to_its_last_checkpoint(run_dir, tmp_path):
    first, last = (os.path.join(run_dir, f"checkpoint_{n:06d}") for n in (0, 1))
    assert resolve_checkpoint(run_dir) == last
    assert resolve_checkpoint(first) == first
    copy = tmp_path / TRIAL
    for n in (1, 2, 10):
        shutil.copytree(last, copy / f"checkpoint_{n:06d}")
    assert resolve_checkpoint(copy) == str(copy / "checkpoint_000010")  # by number, not by name order
    # Each checkpoint restores its own weights: the two iterations' policies act differently
    # on the same observations (a loader that ignored the checkpoint's learner state would not).
    import torch

    obs = {"obs": torch.tensor(np.random.default_rng(0).normal(size=(32, 4)), dtype=torch.float32)}
    logits = [load_policy(c).module.forward_inference(obs)["action_dist_inputs"] for c in (first, last)]
    assert not torch.allclose(logits[0], logits[1])


def test_observations_are_normalised_with_frozen_checkpoint_statistics(run_dir):
    import gymnasium as gym
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from mrpo_rllib.envs import register_envs

    policy = load_policy(run_dir)
    assert policy.task == "CartPole"
    filt = policy.env_to_module.connectors[0]._filters[None]
    n_before, mean_before = filt.running_stats.n, np.array(filt.running_stats.mean)
    # The statistics gathered in training were restored: the filter saw every observation of
    # every episode in the ledger, its reset observation and one per step (one runner, no
    # remote ones, so nothing else was sampled).
    ledger = pd.read_csv(os.path.join(run_dir, "episodes.csv"))
    assert n_before == int((ledger["length"] + 1).sum())

    register_envs()
    env = gym.make("mrpo/CartPole-v0")
    obs, info = env.reset(seed=0)
    ep = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
    ep.add_env_reset(observation=obs, infos=info)
    batch = policy.env_to_module(
        rl_module=policy.module, batch={}, episodes=[ep], explore=False, shared_data={}
    )
    rs = filt.running_stats
    expected = np.clip((obs - rs.mean) / (rs.std + 1e-8), -10, 10)
    fed = batch["obs"].numpy()[0]
    np.testing.assert_allclose(fed, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fed, obs)

    evaluate_points(policy, [(0, {"force_mag": 10.0, "pole_length": 1.0, "pole_mass": 1.0})], 2, seed=0)
    assert filt.running_stats.n == n_before
    np.testing.assert_array_equal(np.array(filt.running_stats.mean), mean_before)


# -- evaluation on Ray ------------------------------------------------------------------------------
def test_two_by_two_test_grid(run_dir):
    df = evaluate(os.path.join(run_dir, "checkpoint_000001"), "test", points=2, episodes=2, seed=3)
    assert len(df) == 4
    assert list(df.columns) == [
        "force_mag",
        "pole_length",
        "pole_mass",
        "return_mean",
        "return_std",
        "return_min",
        "length_mean",
        "episodes",
    ]
    pd.testing.assert_frame_equal(
        df[["force_mag", "pole_length", "pole_mass"]], grid_points("CartPole", "test", 2)
    )
    assert np.isfinite(df.drop(columns="episodes").to_numpy()).all()
    assert (df["episodes"] == 2).all()
    # CartPole pays 1 per step: an episode's return is its length.
    np.testing.assert_allclose(df["return_mean"], df["length_mean"])
    assert (df["return_min"] <= df["return_mean"]).all()


def test_grid_parameters_reach_the_environment(run_dir):
    """The rows report the parameters the environments ran with (their info["env_params"]),
    which must be the grid's, written out here; long heavy poles change the returns."""
    df = evaluate(run_dir, "test", points=2, episodes=3, seed=0)
    ran = list(zip(df["force_mag"], df["pole_length"], df["pole_mass"], strict=True))
    assert ran == [(10.0, 1.0, 1.0), (10.0, 1.0, 6.0), (10.0, 6.0, 1.0), (10.0, 6.0, 6.0)]
    assert df["return_mean"].nunique() > 1
    short_light = evaluate_points(
        load_policy(run_dir), [(0, {"force_mag": 10.0, "pole_length": 1.0, "pole_mass": 1.0})], 3, 0
    )
    long_heavy = evaluate_points(
        load_policy(run_dir), [(0, {"force_mag": 10.0, "pole_length": 6.0, "pole_mass": 6.0})], 3, 0
    )
    assert short_light[0]["return_mean"] != long_heavy[0]["return_mean"]


def test_same_seed_same_numbers(run_dir):
    a = evaluate(run_dir, "test", points=2, episodes=2, seed=5)
    b = evaluate(run_dir, "test", points=2, episodes=2, seed=5)
    pd.testing.assert_frame_equal(a, b)
    s1 = evaluate(run_dir, "train", points=2, episodes=2, seed=5, deterministic=False)
    s2 = evaluate(run_dir, "train", points=2, episodes=2, seed=5, deterministic=False)
    pd.testing.assert_frame_equal(s1, s2)


def test_cli_writes_csv(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.csv"
    assert (
        main(["evaluate", run_dir, "--grid", "train", "--points", "2", "--episodes", "1", "--out", str(out)])
        == 0
    )
    df = pd.read_csv(out)
    assert len(df) == 4 and (df["episodes"] == 1).all()
    assert "CartPole, train grid" in capsys.readouterr().out


def test_relative_checkpoint_path(run_dir, monkeypatch):
    # `make reproduce-small` passes paths relative to the repository (RLlib takes a relative
    # path for a URI without a scheme unless it is made absolute first)
    monkeypatch.chdir(os.path.dirname(run_dir))
    rel = os.path.join(os.path.basename(run_dir), "checkpoint_000001")
    df = evaluate(rel, "test", points=1, episodes=1)
    assert len(df) == 1 and df.attrs["checkpoint"] == rel


@pytest.mark.parametrize("deterministic", [True, False])
def test_batched_core_gives_the_pipelines_returns(run_dir, deterministic, monkeypatch):
    """Evaluation acts through the sampler's batched core (BatchActor) when it applies; its
    returns and lengths are those of the connector pipelines, bit for bit, deterministic
    and sampled."""
    from mrpo_rllib.algorithms import acting
    from mrpo_rllib.evaluate import rollout_point

    policy = load_policy(os.path.join(run_dir, "checkpoint_000001"))
    envs = [policy.make_env() for _ in range(4)]
    space, action_space = envs[0].observation_space, envs[0].action_space
    assert acting.BatchActor.applies(
        policy.module, policy.env_to_module, policy.module_to_env, space, action_space
    )
    params = {"force_mag": 10.0, "pole_length": 0.3, "pole_mass": 0.2}
    try:
        batched = rollout_point(policy, envs, params, 3, 7, deterministic)
        monkeypatch.setattr(acting.BatchActor, "applies", staticmethod(lambda *a: False))
        pipelines = rollout_point(policy, envs, params, 3, 7, deterministic)
    finally:
        for env in envs:
            env.close()
    assert np.array_equal(batched[0], pipelines[0]) and np.array_equal(batched[1], pipelines[1])
    assert batched[2] == pipelines[2]
    assert batched[1].min() > 1  # episodes ran
