"""CartPole: gymnasium's dynamics with force, pole length and pole mass set coherently."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401
from mrpo_rllib.envs import get_task
from task_ranges import range_corners


def _rollout(env, seed, n=100, actions=None, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    out, rewards = [obs], []
    rng = np.random.default_rng(0)
    for t in range(n):
        a = int(rng.integers(2)) if actions is None else actions[t]
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.array(out), np.array(rewards)


def test_check_env():
    check_env(gym.make("mrpo/CartPole-v0").unwrapped, skip_render_check=True)


def test_same_seed_bit_identical():
    env = gym.make("mrpo/CartPole-v0")
    a, ra = _rollout(env, 5)
    b, rb = _rollout(env, 5)
    assert a.tobytes() == b.tobytes() and ra.tobytes() == rb.tobytes()


def test_parameters_set_coherently():
    env = gym.make("mrpo/CartPole-v0", params={"force_mag": 3.0, "pole_length": 0.8, "pole_mass": 0.4})
    env.reset(seed=0)
    cp = env.unwrapped._cp
    assert (cp.force_mag, cp.length, cp.masspole) == (3.0, 0.8, 0.4)
    assert cp.total_mass == pytest.approx(0.4 + cp.masscart)
    assert cp.polemass_length == pytest.approx(0.4 * 0.8)


@pytest.mark.parametrize(
    "name, a, b", [("force_mag", 2.0, 18.0), ("pole_length", 0.1, 0.9), ("pole_mass", 0.02, 0.9)]
)
def test_every_parameter_changes_the_trajectory(name, a, b):
    env = gym.make("mrpo/CartPole-v0")
    actions = [1, 0, 1, 1, 0, 0, 1, 0] * 3
    ta, _ = _rollout(env, 3, len(actions), actions, {"env_params": {**_nominal(), name: a}})
    tb, _ = _rollout(env, 3, len(actions), actions, {"env_params": {**_nominal(), name: b}})
    n = min(len(ta), len(tb))
    assert np.array_equal(ta[0], tb[0])  # same initial state ...
    assert not np.allclose(ta[:n], tb[:n])  # ... different dynamics


def _nominal():
    return {p.name: p.nominal for p in get_task("CartPole").params}


@pytest.mark.parametrize("which", ["train", "test"])
def test_corners_are_finite(which):
    env = gym.make(get_task("CartPole").env_id)
    rng = np.random.default_rng(1)
    for params in range_corners("CartPole", which):
        env.reset(seed=0, options={"env_params": params})
        for _ in range(1000):
            obs, r, term, trunc, info = env.step(int(rng.integers(2)))
            assert np.isfinite(obs).all() and np.isfinite(r)
            assert info["env_params"] == pytest.approx(params)
            if term or trunc:
                env.reset(options={"env_params": params})
