"""render_mode="rgb_array" on the six tasks (mrpo_rllib/envs/base.py and the three families)."""

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import TASKS, get_task
from mrpo_rllib.envs.base import RENDER_HEIGHT, RENDER_WIDTH
from mrpo_rllib.envs.cartpole import CartPoleEnv
from mrpo_rllib.envs.locomotion import LocomotionEnv
from mrpo_rllib.envs.pendulum import PendulumEnv

ALL = list(TASKS)
WALKERS = ["Hopper", "Walker2d", "HalfCheetah"]
FPS = {"CartPole": 50.0, **{t: 1 / 0.0165 for t in ALL if t != "CartPole"}}


def _make(task, **kwargs):
    return gym.make(get_task(task).env_id, render_mode="rgb_array", **kwargs)


def _drawn(img):
    """Pixels that are not the background (pure white for the pendula and CartPole)."""
    return np.any(img < 250, axis=2)


@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # (-inf, inf) by design
@pytest.mark.parametrize("task", ALL)
def test_gymnasium_render_checks_and_frame_shape(task):
    env = _make(task)
    assert env.unwrapped.metadata["render_modes"] == ["rgb_array"]
    assert env.unwrapped.metadata["render_fps"] == pytest.approx(FPS[task])
    check_env(env.unwrapped)  # render checks included: gym.make(id, render_mode=...) and render()
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.shape == (RENDER_HEIGHT, RENDER_WIDTH, 3)
    assert _drawn(frame).any() and not _drawn(frame).all()  # something drawn on a background
    env.close()


def _pole_extent(task, params):
    """Rows spanned by what is drawn, with the poles upright, at the given geometry."""
    env = _make(task)
    env.reset(seed=0, options={"env_params": params})
    raw = env.unwrapped
    if task == "CartPole":
        raw._cp.state = np.zeros(4)
    else:
        for j in raw._hinges:
            pb.resetJointState(raw._body, j, 0.0, 0.0, physicsClientId=raw._cid)
    rows = np.flatnonzero(_drawn(env.render()).any(axis=1))
    env.close()
    return rows.max() - rows.min()


@pytest.mark.parametrize(
    "task, short, long, min_pixels",
    [
        # at 3.2 m with a 60° field of view, 240 rows are 3.7 m: ~65 pixels per metre
        (
            "InvertedPendulum",
            {"cart_size": 0.1, "pole_length": 0.5},
            {"cart_size": 0.1, "pole_length": 2.0},
            80,
        ),
        (
            "InvertedDoublePendulum",
            {"pole1_length": 0.6, "pole2_length": 0.5},
            {"pole1_length": 0.6, "pole2_length": 1.1},
            30,
        ),
        # the half-length 0.5 -> 1.0 m is 1 m more pole; 320 columns are 4.8 m: 67 pixels per metre
        (
            "CartPole",
            {"force_mag": 10.0, "pole_length": 0.5, "pole_mass": 0.1},
            {"force_mag": 10.0, "pole_length": 1.0, "pole_mass": 0.1},
            55,
        ),
    ],
)
def test_a_longer_pole_is_drawn_longer(task, short, long, min_pixels):
    assert _pole_extent(task, long) - _pole_extent(task, short) >= min_pixels


def test_cart_size_changes_the_cart_drawn():
    frames = []
    for size in (0.05, 0.25):
        env = _make("InvertedPendulum")
        env.reset(seed=0, options={"env_params": {"cart_size": size, "pole_length": 0.6}})
        frames.append(_drawn(env.render()).sum())
        env.close()
    assert frames[1] > frames[0] + 500  # a radius 5 times larger: ~5x the cart's pixels


def _robot_columns(img):
    """Mean column of the robot's (orange) pixels."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    cols = np.flatnonzero(((r > 150) & (r - b > 80)).any(axis=0))
    assert cols.size, "no robot in the image"
    return cols.mean()


@pytest.mark.parametrize("task", WALKERS)
def test_walker_camera_follows_the_torso_and_shows_the_pose(task):
    env = _make(task)
    raw = env.unwrapped
    env.reset(seed=0)
    start = env.render()
    rootx = next(
        j
        for j in range(pb.getNumJoints(raw._body, physicsClientId=raw._cid))
        if pb.getJointInfo(raw._body, j, physicsClientId=raw._cid)[13] == (1.0, 0.0, 0.0)
        and pb.getJointInfo(raw._body, j, physicsClientId=raw._cid)[2] == pb.JOINT_PRISMATIC
    )
    pb.resetJointState(raw._body, rootx, 5.0, 0.0, physicsClientId=raw._cid)  # 5 m ahead: beyond the view
    moved = env.render()
    assert abs(_robot_columns(moved) - RENDER_WIDTH / 2) < RENDER_WIDTH / 6  # still in the middle
    assert abs(_robot_columns(start) - RENDER_WIDTH / 2) < RENDER_WIDTH / 6
    assert not np.array_equal(start, moved)  # the floor moved under it
    pb.resetJointState(raw._body, rootx, 0.0, 0.0, physicsClientId=raw._cid)
    assert np.array_equal(env.render(), start)  # the same state draws the same image
    for j in raw._joints:  # another pose
        pb.resetJointState(raw._body, j, 0.5, 0.0, physicsClientId=raw._cid)
    assert np.count_nonzero(np.any(env.render() != start, axis=2)) > 100
    env.close()


@pytest.mark.parametrize("task", ["Hopper", "InvertedPendulum", "CartPole"])
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_steps_never_render(task, render_mode, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("rendered during reset or step")

    monkeypatch.setattr(pb, "getCameraImage", fail)
    monkeypatch.setattr("mrpo_rllib.envs.cartpole.draw_cartpole", fail)
    env = gym.make(get_task(task).env_id, render_mode=render_mode)
    env.reset(seed=0)
    for _ in range(20):
        if env.step(env.action_space.sample())[2]:
            env.reset()
    env.close()


def test_render_without_a_mode_returns_none_and_bad_modes_are_refused():
    env = gym.make("mrpo/InvertedPendulum-v0")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode='rgb_array'"):
        assert env.unwrapped.render() is None
    env.close()
    for cls, task in (
        (LocomotionEnv, "Hopper"),
        (PendulumEnv, "InvertedPendulum"),
        (CartPoleEnv, "CartPole"),
    ):
        with pytest.raises(ValueError, match=r"render_mode='human'.*expected None or one of \['rgb_array'\]"):
            cls(task, render_mode="human")
