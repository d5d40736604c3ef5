"""Each task ends exactly where pybullet_envs (and gymnasium, for CartPole) end it — not a
little sooner, not a little later.

The state is put just inside and just outside each limit (pybullet's joint states set
directly, the robot in the air or with its floor contacts switched off), one control step
is taken, the quantity is read back from pybullet (or gymnasium's state), and
``terminated`` must equal the limit written here, from pybullet_envs' and gymnasium's code.
Each test also checks that it saw values within 5% of the limit on both sides, so a limit
moved by 5% either way changes at least one expected outcome. Mutants: tools/mutants.py
``limit-*`` (docs/testing_mutants.md).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from test_locomotion import _Observer

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs.cartpole import CartPoleEnv
from mrpo_rllib.envs.locomotion import LocomotionEnv
from mrpo_rllib.envs.pendulum import PendulumEnv

# pybullet_envs / gymnasium, written out
IP_THETA = 0.2  # InvertedPendulumBulletEnv: done when |θ| > 0.2
IDP_END = 1.0  # InvertedDoublePendulumBulletEnv: done when y2 + l2/2 <= 1 (0.6 m poles)
PITCH = 1.0  # WalkerBase alive bonus: |pitch| < 1
MIN_Z = 0.8  # Hopper, Walker2d: torso z > 0.8
CART_X = 2.4  # gymnasium CartPole: |x| > 2.4
CART_THETA = 12 * 2 * math.pi / 360  # |θ| > 12°
EPISODE_STEPS = 1000  # docs: every task's episode limit


def _lift_and_pitch(obs_, lift, pitch):
    """The root's z slide and y hinge (joints ``ignore*``, found by type and axis) moved: the
    robot ``lift`` m higher and pitched by ``pitch``, at rest."""
    cid, body = obs_.cid, obs_.body
    for j in range(pb.getNumJoints(body, physicsClientId=cid)):
        info = pb.getJointInfo(body, j, physicsClientId=cid)
        if not info[1].decode().startswith("ignore"):
            continue
        axis = tuple(round(abs(a)) for a in info[13])
        if info[2] == pb.JOINT_PRISMATIC and axis == (0, 0, 1):
            pb.resetJointState(body, j, lift, 0.0, physicsClientId=cid)
        elif info[2] == pb.JOINT_REVOLUTE and axis == (0, 1, 0):
            pb.resetJointState(body, j, pitch, 0.0, physicsClientId=cid)


def _both_sides(values, limit, closed_above: bool):
    """Values seen within 5% of ``limit`` on each side, the limit itself on the side where it ends."""
    v = np.abs(np.asarray(values))
    if closed_above:  # ends at >= limit
        return ((v > 0.95 * limit) & (v < limit)).any() and ((v >= limit) & (v < 1.05 * limit)).any()
    return ((v > 0.95 * limit) & (v <= limit)).any() and ((v > limit) & (v < 1.05 * limit)).any()


def test_inverted_pendulum_ends_beyond_0_2_rad_on_both_sides():
    env = PendulumEnv("InvertedPendulum", "nominal")
    seen = []
    for start in np.linspace(0.185, 0.215, 31):
        for sign in (1.0, -1.0):
            env.reset(seed=0)
            pb.resetJointState(env._body, env._slider, 0.0, 0.0, physicsClientId=env._cid)
            pb.resetJointState(env._body, env._hinges[0], sign * start, 0.0, physicsClientId=env._cid)
            _, _, term, trunc, _ = env.step(np.zeros(1, np.float32))
            theta = pb.getJointState(env._body, env._hinges[0], physicsClientId=env._cid)[0]
            assert term == (abs(theta) > IP_THETA), theta
            assert not trunc
            seen.append(theta)
    assert _both_sides(seen, IP_THETA, closed_above=False)
    env.close()


def test_inverted_double_pendulum_ends_at_height_1_on_both_sides():
    """Upper pole bent by γ over an upright lower pole: h = y2 + l2/2 = 0.9 + 0.3 cos γ."""
    env = PendulumEnv("InvertedDoublePendulum", "nominal")
    seen = []
    for gamma in np.linspace(1.0, 1.45, 46):
        env.reset(seed=0)
        pb.resetJointState(env._body, env._slider, 0.0, 0.0, physicsClientId=env._cid)
        for j, q in zip(env._hinges, (0.0, gamma), strict=True):
            pb.resetJointState(env._body, j, q, 0.0, physicsClientId=env._cid)
        _, _, term, _, _ = env.step(np.zeros(1, np.float32))
        y2 = pb.getLinkState(env._body, env._pole2, physicsClientId=env._cid)[0][2]
        h = y2 + 0.6 / 2
        assert term == (h <= IDP_END), h
        seen.append(h)
    # ends at h <= 1: the mirror of "beyond": heights just below and just above 1
    h = np.asarray(seen)
    assert ((h > 0.95) & (h <= IDP_END)).any() and ((h > IDP_END) & (h < 1.05)).any()
    env.close()


@pytest.mark.parametrize("task", ["Hopper", "Walker2d", "HalfCheetah"])
def test_robots_end_at_pitch_1_on_both_sides(task):
    """In the air (nothing touches the floor): only the pitch can end the step."""
    env = LocomotionEnv(task, params="nominal")
    obs_ = _Observer(env)
    seen = []
    for pitch in np.linspace(0.935, 1.065, 27):
        for sign in (1.0, -1.0):
            env.reset(seed=0)
            _lift_and_pitch(obs_, 1.5, sign * pitch)
            _, _, term, _, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            z, read = obs_.torso()
            assert obs_.contacts() == set() and z > 1.0
            assert term == (abs(read) >= PITCH), (pitch, read)
            seen.append(read)
    assert _both_sides(seen, PITCH, closed_above=True)
    env.close()


def _no_floor(obs_):
    """The robot no longer collides with the floor: it falls freely, nothing touches."""
    n = pb.getNumJoints(obs_.body, physicsClientId=obs_.cid)
    for link in range(-1, n):
        pb.setCollisionFilterPair(obs_.body, obs_.floor, link, -1, 0, physicsClientId=obs_.cid)


@pytest.mark.parametrize("task", ["Hopper", "Walker2d", "HalfCheetah"])
def test_robots_end_at_torso_height_0_8_on_both_sides(task):
    """Upright, at rest, the torso put at heights around 0.8 m: Hopper and Walker2d end when it
    is not above 0.8; HalfCheetah has no height limit (its knees end it)."""
    env = LocomotionEnv(task, params="nominal")
    obs_ = _Observer(env)
    env.reset(seed=0)
    z_standing = obs_.torso()[0]
    seen = []
    for target in np.linspace(0.74, 0.86, 49):
        env.reset(seed=0)
        _no_floor(obs_)
        _lift_and_pitch(obs_, target - z_standing, 0.0)
        _, _, term, _, _ = env.step(np.zeros(env.action_space.shape, np.float32))
        z, pitch = obs_.torso()
        assert abs(pitch) < 0.5 and obs_.contacts() == set()
        assert term == (task != "HalfCheetah" and z <= MIN_Z), (target, z)
        seen.append(z)
    z = np.asarray(seen)
    assert ((z > 0.95 * MIN_Z) & (z <= MIN_Z)).any() and ((z > MIN_Z) & (z < 1.05 * MIN_Z)).any()
    env.close()


def test_cartpole_ends_beyond_2_4_m_and_12_degrees_on_both_sides():
    env = CartPoleEnv("CartPole", "nominal")
    xs, thetas = [], []
    for x0 in np.linspace(2.25, 2.55, 31):
        for which in ("x", "theta"):
            env.reset(seed=0)
            state = [x0, 0.0, 0.0, 0.0] if which == "x" else [0.0, 0.0, x0 * CART_THETA / CART_X, 0.0]
            env._cp.state = np.array(state)
            obs, _, term, _, _ = env.step(0 if which == "x" else 1)
            x, _, theta, _ = obs
            assert term == (abs(x) > CART_X or abs(theta) > CART_THETA), (which, x, theta)
            (xs if which == "x" else thetas).append(x if which == "x" else theta)
    assert _both_sides(xs, CART_X, closed_above=False)
    assert _both_sides(thetas, CART_THETA, closed_above=False)
    env.close()


@pytest.mark.parametrize("task", ["CartPole", "InvertedPendulum", "Hopper"])
def test_episodes_are_cut_at_exactly_1000_steps(task, monkeypatch):
    """The registered environment truncates at step 1000, neither 999 nor 1001 (the physics
    are replaced by a step that never ends, so only the limit can end the episode)."""
    env = gym.make(f"mrpo/{task}-v0")
    obs, _ = env.reset(seed=0)
    monkeypatch.setattr(env.unwrapped, "_step_model", lambda action: (obs, 1.0, False))
    steps, trunc = 0, False
    while not trunc and steps < 2 * EPISODE_STEPS:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        assert not term
        steps += 1
    assert steps == EPISODE_STEPS
    env.close()
