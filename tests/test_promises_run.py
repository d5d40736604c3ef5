"""A real two-seed sweep (conftest's cartpole_sweep), read back from its files: the seed axis and a ``training:`` key reach
each trial (its ``params.json`` and its ledger), and ``mrpo evaluate``'s deterministic mode
is the argmax rollout, computed here by hand from the checkpoint, while sampled actions give
other returns. Mutants: tools/mutants.py ``variant-seed``, ``variant-applied-seed``,
``key-seeds``, ``eval-default-sampled``, ``eval-rollout-explores`` (docs/testing_mutants.md).
"""

from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

SEEDS = (0, 3)  # conftest's cartpole_sweep, shared with test_evaluate.py
LR = 0.0007


@pytest.fixture(scope="module")
def sweep_dir(cartpole_sweep):
    return cartpole_sweep


def _trial(sweep_dir, seed):
    return os.path.join(sweep_dir, f"mrpo__CartPole__kappa0.5-2__seed{seed}")


def test_each_trial_runs_with_its_own_seed_and_the_files_training_keys(sweep_dir):
    from mrpo_rllib.algorithms import MRPOConfig

    ledgers = {}
    for seed in SEEDS:
        with open(os.path.join(_trial(sweep_dir, seed), "params.json")) as f:
            params = json.load(f)
        assert params["variant"]["seed"] == seed
        assert params["lr"] == LR and params["episodes_per_iteration"] == 8
        # the config RLlib builds from it (Algorithm: default config updated from Tune's dict;
        # params.json holds classes as their repr, which are left to their defaults here)
        plain = {k: v for k, v in params.items() if not (isinstance(v, str) and v.startswith("<"))}
        config = MRPOConfig().update_from_dict(plain)
        assert (config.seed, config.lr, config.num_epochs, config.selection) == (seed, LR, 2, "mrpo")
        ledgers[seed] = pd.read_csv(os.path.join(_trial(sweep_dir, seed), "episodes.csv"))
        assert len(ledgers[seed]) == 2 * 8
    # the seeds drew different environments
    columns = ["force_mag", "pole_length", "pole_mass"]
    a, b = (ledgers[s][columns].to_numpy() for s in SEEDS)
    assert not np.array_equal(a, b)


def _argmax_returns(checkpoint, params, seed, episodes):
    """Roll the policy out by hand: observations normalised with the checkpoint's filter
    statistics, the module's logits, their argmax; episode j reset with the seed documented
    in mrpo_rllib.evaluate (SeedSequence of (seed, point 0, j))."""
    import torch

    from mrpo_rllib.envs import register_envs
    from mrpo_rllib.evaluate import load_policy

    policy = load_policy(checkpoint)
    stats = policy.env_to_module.connectors[0]._filters[None].running_stats
    mean, std = np.array(stats.mean), np.array(stats.std)
    register_envs()
    env = gym.make("mrpo/CartPole-v0")
    returns = []
    for j in range(episodes):
        reset_seed = int(np.random.SeedSequence([seed, 0, j]).generate_state(1, dtype=np.uint32)[0])
        obs, info = env.reset(seed=reset_seed, options={"env_params": params})
        assert info["env_params"] == params
        total, done = 0.0, False
        while not done:
            x = np.clip((obs - mean) / (std + 1e-8), -10, 10).astype(np.float32)
            with torch.no_grad():
                logits = policy.module.forward_inference({"obs": torch.from_numpy(x)[None]})[
                    "action_dist_inputs"
                ]
            obs, reward, term, trunc, _ = env.step(int(torch.argmax(logits[0])))
            total += reward
            done = term or trunc
        returns.append(total)
    env.close()
    return np.array(returns)


def test_deterministic_evaluation_is_the_argmax_rollout_and_sampling_differs(sweep_dir):
    from mrpo_rllib.evaluate import evaluate

    run = _trial(sweep_dir, SEEDS[0])
    episodes = 5
    det = evaluate(run, "train", points=1, episodes=episodes, seed=0)  # the default mode
    params = {k: float(det.loc[0, k]) for k in ("force_mag", "pole_length", "pole_mass")}
    hand = _argmax_returns(run, params, 0, episodes)
    assert det.loc[0, "return_mean"] == pytest.approx(hand.mean())
    assert det.loc[0, "return_min"] == hand.min()
    assert det.loc[0, "return_std"] == pytest.approx(hand.std())
    sampled = evaluate(run, "train", points=1, episodes=episodes, seed=0, deterministic=False)
    got = tuple(sampled.loc[0, ["return_mean", "return_min", "return_std"]])
    assert got != pytest.approx((hand.mean(), hand.min(), hand.std()))
