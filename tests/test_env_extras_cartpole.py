"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``: CartPole's cart mass and gymnasium's cached quantities.

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import gymnasium as gym
import numpy as np
import pytest

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import get_task
from mrpo_rllib.envs.cartpole import CartPoleEnv

# -- CartPole --------------------------------------------------------------------------------


def test_cartpole_cart_mass_and_cached_quantities():
    assert (
        gym.make("CartPole-v1").unwrapped.masscart == 1.0 == get_task("CartPole").nominal_values["cart_mass"]
    )
    env = CartPoleEnv(randomize={"cart_mass": (0.5, 3.0), "pole_mass": (0.1, 1.0), "pole_length": (0.1, 1.0)})
    for cart, pole, length in [(1.7, 0.3, 0.6), (0.5, 0.9, 0.2), (3.0, 0.1, 1.0)]:
        env.reset(
            seed=0, options={"env_params": {"cart_mass": cart, "pole_mass": pole, "pole_length": length}}
        )
        cp = env._cp
        assert (cp.masscart, cp.masspole, cp.length, cp.force_mag) == (cart, pole, length, 10.0)
        assert cp.total_mass == pytest.approx(cart + pole, rel=1e-15)
        assert cp.polemass_length == pytest.approx(pole * length, rel=1e-15)
    env = CartPoleEnv(randomize={"pole_mass": (0.1, 1.0)})  # cart_mass not randomized: nominal
    p = env.reset(seed=0)[1]["env_params"]["pole_mass"]
    assert env._cp.masscart == 1.0 and env._cp.total_mass == pytest.approx(1.0 + p)


def test_cartpole_cart_mass_changes_the_trajectory():
    env = CartPoleEnv(randomize={"cart_mass": (0.5, 1.5)})
    actions = [1, 0, 1, 1, 0, 0, 1, 0]
    runs = []
    for value in (0.5, 1.5):
        out = [env.reset(seed=3, options={"env_params": {"cart_mass": value}})[0]]
        out += [env.step(a)[0] for a in actions]
        runs.append(np.array(out))
    assert np.array_equal(runs[0][0], runs[1][0]) and not np.allclose(*runs)
    # gymnasium's own CartPole with that cart mass gives the same first step
    ref = gym.make("CartPole-v1").unwrapped
    ref.reset(seed=0)
    ref.masscart = 0.5
    ref.total_mass = ref.masspole + ref.masscart
    ref.state = runs[0][0].astype(np.float64)
    np.testing.assert_allclose(ref.step(actions[0])[0], runs[0][1], rtol=1e-6)
