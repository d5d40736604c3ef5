"""Hopper, Walker2d, HalfCheetah on pybullet: API, seeding, parameters, finiteness, kinematics."""

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import get_task
from mrpo_rllib.envs.locomotion import ROBOTS, LocomotionEnv
from task_ranges import range_corners

TASKS = ["Hopper", "Walker2d", "HalfCheetah"]
N_JOINTS = {"Hopper": 3, "Walker2d": 6, "HalfCheetah": 6}
SCALED_LINKS = {
    "Hopper": {"torso", "thigh", "leg", "foot"},
    "Walker2d": {"torso", "thigh", "leg", "foot", "thigh_left", "leg_left", "foot_left"},
    "HalfCheetah": {"torso", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"},
}


def _actions(n_steps, n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n_steps, n)).astype(np.float32)


def _run(env, seed, actions, options=None):
    """Observations and rewards over ``len(actions)`` steps, resetting (unseeded) when an episode ends."""
    obs, _ = env.reset(seed=seed, options=options)
    out, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset(options=options)
            out.append(obs)
    return np.array(out), np.array(rewards)


def _link_names(env):
    u = env.unwrapped
    return {
        j: pb.getJointInfo(u._body, j, physicsClientId=u._cid)[12].decode()
        for j in range(pb.getNumJoints(u._body, physicsClientId=u._cid))
    }


@pytest.mark.parametrize("task", TASKS)
def test_check_env_and_spaces(task):
    env = gym.make(f"mrpo/{task}-v0")
    check_env(env.unwrapped, skip_render_check=True)
    n = N_JOINTS[task]
    n_feet = len(ROBOTS[task].feet)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
    assert env.observation_space == gym.spaces.Box(-5.0, 5.0, (8 + 2 * n + n_feet,), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    obs, r, term, trunc, _ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32 and type(r) is float and type(term) is bool and trunc is False
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_bit_identical_different_seed_different_params(task):
    env = gym.make(f"mrpo/{task}-v0")
    actions = _actions(200, N_JOINTS[task])
    a, ra = _run(env, 42, actions)
    env.reset(seed=7)  # something else in between
    env.step(actions[0])
    b, rb = _run(env, 42, actions)
    assert a.tobytes() == b.tobytes() and ra.tobytes() == rb.tobytes()
    other = gym.make(f"mrpo/{task}-v0")  # another instance, another pybullet client
    c, rc = _run(other, 42, actions)
    assert a.tobytes() == c.tobytes() and ra.tobytes() == rc.tobytes()

    params = {tuple(env.reset(seed=s)[1]["env_params"].values()) for s in range(10)}
    assert len(params) == 10
    d, _ = _run(env, 43, actions)
    assert a.tobytes() != d.tobytes()
    env.close()
    other.close()


# Two values per parameter whose effect is certain; friction needs ground contact.
EFFECTS = {"density": (750.0, 1250.0), "friction": (0.05, 2.5)}


@pytest.mark.parametrize("task, name", [(t, n) for t in TASKS for n in EFFECTS])
def test_every_parameter_changes_the_trajectory(task, name):
    env = LocomotionEnv(task)
    n = N_JOINTS[task]
    actions = np.tile(np.linspace(-0.5, 0.5, n, dtype=np.float32), (50, 1))
    trajectories = []
    for value in EFFECTS[name]:
        params = {"density": 1000.0, "friction": 0.8, name: value}
        obs, _ = env.reset(seed=3, options={"env_params": params})
        out, contact = [obs], False
        for a in actions:  # through termination: the robot keeps moving on the floor
            obs, *_ = env.step(a)
            out.append(obs)
            contact |= bool(obs[8 + 2 * n :].any())
        assert contact, "the robot never touched the floor"
        trajectories.append(np.array(out))
    ta, tb = trajectories
    assert ta[0].tobytes() == tb[0].tobytes()  # same seed, same start
    assert np.abs(ta[-1] - tb[-1]).max() > 1e-3, f"{name} did not change the trajectory"
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_density_scales_mass_and_inertia_friction_is_set_every_reset(task):
    env = LocomotionEnv(task)
    cid, body = env._cid, env._body
    names = _link_names(env)
    nominal = {}
    for link in [-1, *names]:
        info = pb.getDynamicsInfo(body, link, physicsClientId=cid)
        nominal[link] = (info[0], np.array(info[2]))
    massive = {link for link, (m, _) in nominal.items() if m > 0}
    assert {names[link] for link in massive} == SCALED_LINKS[task]

    env.reset(seed=0, options={"env_params": {"density": 500.0, "friction": 1.7}})
    for link, (m0, i0) in nominal.items():
        info = pb.getDynamicsInfo(body, link, physicsClientId=cid)
        assert info[0] == pytest.approx(m0 / 2, rel=1e-12)
        np.testing.assert_allclose(info[2], i0 / 2, rtol=1e-12)
        if link in massive:  # the links with a collision shape
            assert info[1] == pytest.approx(1.7)
        else:  # static root and joint links stay massless, without inertia
            assert info[0] == 0.0 and not np.any(info[2])

    # changeDynamics is not part of Bullet's saved state: every reset sets the values again
    env.reset(seed=0, options={"env_params": {"density": 1000.0, "friction": 0.3}})
    for link in massive:
        info = pb.getDynamicsInfo(body, link, physicsClientId=cid)
        assert info[0] == pytest.approx(nominal[link][0], rel=1e-12)
        assert info[1] == pytest.approx(0.3)
    pb.changeDynamics(body, min(massive), mass=123.0, physicsClientId=cid)
    pb.restoreState(env._state_id, physicsClientId=cid)
    assert pb.getDynamicsInfo(body, min(massive), physicsClientId=cid)[0] == 123.0
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_corners_of_training_and_testing_ranges_are_finite(task):
    spec = get_task(task)
    env = gym.make(spec.env_id)
    rng = np.random.default_rng(0)
    n = N_JOINTS[task]
    for which in ("train", "test"):
        for params in range_corners(task, which):
            obs, info = env.reset(seed=1, options={"env_params": params})
            assert info["env_params"] == params and np.isfinite(obs).all()
            actions = rng.uniform(-1, 1, (1000, n)).astype(np.float32)
            for a in actions:
                obs, r, term, trunc, info = env.step(a)
                assert np.isfinite(obs).all() and np.isfinite(r), (which, params)
                assert np.abs(obs).max() <= 5.0
                if term or trunc:
                    env.reset(options={"env_params": params})
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_env_params_in_reset_and_step_infos(task):
    env = gym.make(f"mrpo/{task}-v0")
    low, high = get_task(task).range_array("train")
    for seed in range(3):
        _, info = env.reset(seed=seed)
        sampled = info["env_params"]
        values = np.array(list(sampled.values()))
        assert list(sampled) == ["density", "friction"]
        assert np.all(values >= low) and np.all(values <= high)
        assert env.unwrapped.env_params == sampled
        for _ in range(5):
            *_, term, trunc, step_info = env.step(env.action_space.sample())
            assert step_info["env_params"] == sampled
            if term or trunc:
                break
    _, info = env.reset(options={"env_params": {"density": 321.0, "friction": 0.4}})
    assert info["env_params"] == {"density": 321.0, "friction": 0.4}
    assert env.step(env.action_space.sample())[-1]["env_params"] == {"density": 321.0, "friction": 0.4}
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_closed_form_kinematics_equals_bullets_link_states(task):
    """The fast path (Σx in closed form) gives bit-identical observations and rewards to reading
    every link with getLinkStates, as Roboschool does, including Bullet's one-substep lag."""
    fast, slow = LocomotionEnv(task), LocomotionEnv(task)
    assert fast._fk is not None
    slow._fk, slow._read = None, slow._joints
    rng = np.random.default_rng(5)
    n = N_JOINTS[task]
    steps = 0
    for seed in range(4):
        a, _ = fast.reset(seed=seed)
        b, _ = slow.reset(seed=seed)
        assert a.tobytes() == b.tobytes()
        scale = (0.3, 1.0, 2.0, 1.0)[seed]  # long and short episodes, beyond the action bounds
        for _ in range(150):  # on through termination: falls, flips, lying on the floor
            act = (scale * rng.uniform(-1, 1, n)).astype(np.float32)
            a, ra, ta, _, _ = fast.step(act)
            b, rb, tb, _, _ = slow.step(act)
            assert a.tobytes() == b.tobytes() and ra == pytest.approx(rb, abs=1e-9) and ta == tb
            steps += 1
    assert steps == 600
    fast.close()
    slow.close()


def test_roboschool_observation_and_reward_terms():
    env = LocomotionEnv("Hopper", params="nominal")
    obs, _ = env.reset(seed=0)
    assert obs[0] == 0.0 and obs[1] == 0.0 and obs[2] == 1.0  # height change, sin/cos to target
    q = obs[8:14:2] * np.array(env._half) + np.array(env._mid)
    assert np.all(np.abs(q) <= 0.1 + 1e-6) and np.any(q != 0.0)  # initial joint noise ±0.1 rad
    assert np.all(obs[9:14:2] == 0.0) and np.all(obs[14:] == 0.0)  # no speed, no contact yet
    # zero action: no electricity cost; alive +1; progress is a potential difference
    x0 = env._x
    obs, r, term, _, _ = env.step(np.zeros(3, np.float32))
    progress = (abs(1000.0 - x0) - abs(1000.0 - env._x)) / 0.0165
    assert not term and r == pytest.approx(1.0 + progress - 0.1 * env._joints_at_limit, abs=1e-6)
    # the episode ends once the torso is below 0.8 m or pitched beyond 1 rad
    for _ in range(200):
        obs, r, term, _, _ = env.step(np.zeros(3, np.float32))
        if term:
            break
    assert term and (env._z <= 0.8 or abs(env._pitch) >= 1.0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="3 entries"):
        env.step(np.zeros(4, np.float32))
    env.close()
    assert env._cid is None
    env.close()  # twice is fine
