"""Hopper, Walker2d, HalfCheetah on pybullet: API, seeding, parameters, finiteness, kinematics."""

import math

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


# -- Roboschool's reward and termination, recomputed from what pybullet shows ---------------
#
# Constants of pybullet_envs (gym_locomotion_envs.WalkerBaseBulletEnv, robot_locomotors),
# written out here rather than imported from the code under test.
ELECTRICITY_COST = -2.0  # × mean |a · joint_speed|, joint_speed = 0.1 × dq
STALL_TORQUE_COST = -0.1  # × mean a²
JOINTS_AT_LIMIT_COST = -0.1  # × number of joints beyond 0.99 of their half range
DT = 0.0165  # 4 substeps of 0.0165/4
WALK_TARGET = (1000.0, 0.0)
KNEES = {"fshin", "fthigh", "bshin", "bthigh"}  # HalfCheetah.alive_bonus: feet_contact[1, 2, 4, 5]


class _Observer:
    """Roboschool's quantities read from the env's pybullet client with pybullet calls only
    (poses as Bullet caches them, which is what Roboschool's ``getLinkState`` reads)."""

    def __init__(self, env):
        u = env.unwrapped
        self.cid, self.body = cid, body = u._cid, u._body
        infos = [
            pb.getJointInfo(body, j, physicsClientId=cid)
            for j in range(pb.getNumJoints(body, physicsClientId=cid))
        ]
        self.links = {i[12].decode(): i[0] for i in infos}
        assert len(self.links) == len(infos)  # one part per link
        actuated = [i for i in infos if i[2] != pb.JOINT_FIXED and not i[1].decode().startswith("ignore")]
        self.joints = [i[0] for i in actuated]
        self.limits = [(i[8], i[9]) for i in actuated]
        bodies = [
            pb.getBodyUniqueId(k, physicsClientId=cid) for k in range(pb.getNumBodies(physicsClientId=cid))
        ]
        (self.floor,) = [b for b in bodies if b != body]

    def potential(self):
        states = pb.getLinkStates(self.body, list(self.links.values()), physicsClientId=self.cid)
        x = sum(s[0][0] for s in states) / len(states)
        y = sum(s[0][1] for s in states) / len(states)
        return -math.hypot(WALK_TARGET[1] - y, WALK_TARGET[0] - x) / DT

    def torso(self):
        pos, orn = pb.getLinkState(self.body, self.links["torso"], physicsClientId=self.cid)[:2]
        return pos[2], pb.getEulerFromQuaternion(orn)[1]

    def contacts(self):
        points = pb.getContactPoints(bodyA=self.body, bodyB=self.floor, physicsClientId=self.cid)
        names = {v: k for k, v in self.links.items()}
        return {names[c[3]] for c in points}

    def joints_rel_speed(self):
        states = pb.getJointStates(self.body, self.joints, physicsClientId=self.cid)
        rel = [
            (s[0] - 0.5 * (lo + hi)) / (0.5 * (hi - lo))
            for s, (lo, hi) in zip(states, self.limits, strict=True)
        ]
        return rel, [0.1 * s[1] for s in states]

    def alive(self, task, previous_contacts):
        z, pitch = self.torso()
        if task == "HalfCheetah":
            return 1.0 if abs(pitch) < 1.0 and not previous_contacts & KNEES else -1.0
        return 1.0 if z > 0.8 and abs(pitch) < 1.0 else -1.0


@pytest.mark.parametrize("task", TASKS)
def test_reward_terms_for_non_zero_actions(task):
    """alive + progress + electricity + stall torque + joints at limit, recomputed from pybullet
    reads for random actions beyond ±1 (the costs use the action as given)."""
    env = LocomotionEnv(task)
    obs_ = _Observer(env)
    rng = np.random.default_rng(11)
    totals = {"electricity": 0.0, "stall": 0.0, "at_limit": 0, "dead": 0}
    steps = 0
    for seed in range(3):
        env.reset(seed=seed)
        potential, contacts = obs_.potential(), set()
        for _ in range(80):
            a = rng.uniform(-1.5, 1.5, N_JOINTS[task]).astype(np.float32)
            _, reward, term, _, _ = env.step(a)
            steps += 1
            af = a.astype(np.float64)
            rel, speed = obs_.joints_rel_speed()
            alive = obs_.alive(task, contacts)
            old, potential = potential, obs_.potential()
            electricity = ELECTRICITY_COST * np.mean(np.abs(af * np.array(speed)))
            stall = STALL_TORQUE_COST * np.mean(af**2)
            at_limit = sum(abs(r) > 0.99 for r in rel)
            expected = alive + (potential - old) + electricity + stall + JOINTS_AT_LIMIT_COST * at_limit
            assert reward == pytest.approx(expected, rel=1e-7, abs=1e-6), (seed, steps)
            assert term == (alive < 0)
            contacts = obs_.contacts()
            totals["electricity"] += abs(electricity)
            totals["stall"] += abs(stall)
            totals["at_limit"] += at_limit
            totals["dead"] += alive < 0
            if term:
                break
    # every term was exercised
    assert totals["electricity"] > 1.0 and totals["stall"] > 1.0 and totals["at_limit"] > 0, totals
    assert totals["dead"] > 0, totals
    env.close()


def _lift_and_pitch(env, obs_, lift, pitch):
    """Move the root joints (slide z, hinge y): the robot ``lift`` m higher, pitched by ``pitch``."""
    cid, body = obs_.cid, obs_.body
    names = {
        pb.getJointInfo(body, j, physicsClientId=cid)[1].decode(): j
        for j in range(pb.getNumJoints(body, physicsClientId=cid))
    }
    pb.resetJointState(body, names["ignorez"], lift, 0.0, physicsClientId=cid)
    pb.resetJointState(body, names["ignorey"], pitch, 0.0, physicsClientId=cid)


def _episode(env, obs_, task, actions, until_end=True):
    """Step through ``actions``; per step (env's terminated, terminated by the condition read
    from pybullet, torso z, torso pitch, knee contacts of the previous step)."""
    rows, contacts = [], set()
    for a in actions:
        _, _, term, _, _ = env.step(a)
        z, pitch = obs_.torso()
        if task == "HalfCheetah":
            expected = not (abs(pitch) < 1.0 and not contacts & KNEES)
        else:
            expected = not (z > 0.8 and abs(pitch) < 1.0)
        rows.append((term, expected, z, pitch, contacts & KNEES))
        contacts = obs_.contacts()
        if until_end and (term or expected):
            break
    return rows


@pytest.mark.parametrize(
    "label, action",
    [
        ("height", [0.5, 0.5, 0.0, 0.5, 0.5, 0.0]),  # knees give way: torso sinks, stays upright
        ("pitch", [-1.0, -1.0, 0.0, -1.0, -1.0, 0.0]),  # thrown backwards, torso still high
        ("random", None),
    ],
)
def test_walker2d_ends_when_torso_low_or_pitched(label, action):
    """Roboschool's Walker2D.alive_bonus: alive while torso z > 0.8 and |pitch| < 1; the episode
    ends at the first step where that fails, not before and not after."""
    env = LocomotionEnv("Walker2d", params="nominal")
    obs_ = _Observer(env)
    env.reset(seed=1)
    rng = np.random.default_rng(2)
    actions = [
        np.array(action, np.float32) if action else rng.uniform(-1, 1, 6).astype(np.float32)
        for _ in range(300)
    ]
    rows = _episode(env, obs_, "Walker2d", actions)
    terms = [r[0] for r in rows]
    expected = [r[1] for r in rows]
    assert expected[-1], "the walker never met the end condition"
    assert terms == expected  # all False until the last step, which ends the episode
    _, _, z, pitch, _ = rows[-1]
    if label == "height":
        assert z <= 0.8 and abs(pitch) < 1.0, (z, pitch)
    if label == "pitch":
        assert z > 0.8 and abs(pitch) >= 1.0, (z, pitch)
    env.close()


@pytest.mark.parametrize("task", ["Walker2d", "HalfCheetah"])
def test_ends_at_first_step_when_pitched_beyond_one_radian(task):
    """Lifted clear of the floor and pitched: |pitch| ≥ 1 ends the very first step; below 1 not."""
    env = LocomotionEnv(task, params="nominal")
    obs_ = _Observer(env)
    for pitch, ends in [(1.15, True), (-1.15, True), (0.85, False), (-0.85, False)]:
        env.reset(seed=0)
        _lift_and_pitch(env, obs_, 1.0, pitch)
        rows = _episode(env, obs_, task, [np.zeros(6, np.float32)], until_end=False)
        term, expected, z, read_pitch, _ = rows[0]
        assert obs_.contacts() == set()  # in the air: only the pitch can end it
        assert (abs(read_pitch) >= 1.0) == ends and expected == ends
        assert term == ends, (pitch, read_pitch)
    env.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_halfcheetah_ends_one_step_after_a_knee_touches_the_floor(seed):
    """Roboschool's HalfCheetah.alive_bonus: |pitch| < 1 and no floor contact of fshin, fthigh,
    bshin, bthigh — contacts of the previous step. Feet may touch. (pybullet_envs never ends
    a HalfCheetah episode; Roboschool, and this env, do.)"""
    env = LocomotionEnv("HalfCheetah", params="nominal")
    obs_ = _Observer(env)
    env.reset(seed=seed)
    rows, contacts, feet_touched = [], set(), False
    for _ in range(300):  # no action: the cheetah sinks onto its knees
        _, _, term, _, _ = env.step(np.zeros(6, np.float32))
        _, pitch = obs_.torso()
        rows.append((term, abs(pitch) >= 1.0 or bool(contacts & KNEES), set(contacts)))
        feet_touched |= bool(contacts & {"bfoot", "ffoot"}) and not term
        contacts = obs_.contacts()
        if term:
            break
    assert [r[0] for r in rows] == [r[1] for r in rows]
    assert rows[-1][0] and rows[-1][2] & KNEES, "ended without a knee on the floor"
    assert feet_touched  # a foot on the floor did not end it
    # the first knee contact was seen after the previous step: it ends this one, not that one
    first_knee = next(i for i, (_, _, c) in enumerate(rows) if c & KNEES)
    assert first_knee == len(rows) - 1 and not rows[-2][0]
    env.close()


def test_halfcheetah_ends_one_step_after_its_back_thigh_touches_the_floor():
    """A pose with the back thigh alone on the floor (legs folded, torso level): the first step
    is not the end (no contact before it), the second is, whatever the pitch."""
    env = LocomotionEnv("HalfCheetah", params="nominal")
    obs_ = _Observer(env)
    cid, body = obs_.cid, obs_.body
    joints = {
        pb.getJointInfo(body, j, physicsClientId=cid)[1].decode(): j
        for j in range(pb.getNumJoints(body, physicsClientId=cid))
    }
    env.reset(seed=0)
    pose = {"bthigh": 1.03, "bshin": 0.54, "bfoot": 0.04, "fthigh": -1.09, "fshin": -0.81, "ffoot": -2.54}
    for name, q in pose.items():
        pb.resetJointState(body, joints[name], q, 0.0, physicsClientId=cid)

    def distance(link):  # signed distance of a link to the floor
        points = pb.getClosestPoints(body, obs_.floor, 5.0, linkIndexA=obs_.links[link], physicsClientId=cid)
        return min(p[8] for p in points)

    pb.resetJointState(body, joints["ignorez"], -distance("bthigh") - 0.001, 0.0, physicsClientId=cid)
    others = {link: distance(link) for link in ("torso", "bshin", "bfoot", "fthigh", "fshin", "ffoot")}
    assert min(others.values()) > 0.02, others  # the back thigh is the only part down
    rows = _episode(env, obs_, "HalfCheetah", [np.zeros(6, np.float32)] * 3, until_end=False)
    assert obs_.contacts() == {"bthigh"}
    assert [(term, expected) for term, expected, *_ in rows] == [(False, False), (True, True), (True, True)]
    assert all(abs(pitch) < 0.1 for _, _, _, pitch, _ in rows)  # ended by the contact alone
    env.close()


@pytest.mark.parametrize("link", ["ffoot", "fshin", "fthigh", "bfoot", "bshin", "bthigh", "torso"])
def test_halfcheetah_floor_contact_of_each_part(link, monkeypatch):
    """Which part's floor contact ends the episode: the shins and thighs ("a lot of strange walks
    using knees"), not the feet. Lifted in the air; pybullet reports a contact of ``link`` once."""
    env = LocomotionEnv("HalfCheetah", params="nominal")
    obs_ = _Observer(env)
    env.reset(seed=0)
    _lift_and_pitch(env, obs_, 1.0, 0.0)
    real = pb.getContactPoints
    fake = [None]

    def contact_points(*args, **kwargs):
        points = real(*args, **kwargs)
        assert points == ()  # in the air
        return fake[0] or points

    monkeypatch.setattr(pb, "getContactPoints", contact_points)
    a = np.zeros(6, np.float32)
    fake[0] = [(0, obs_.body, obs_.floor, obs_.links[link], -1)]  # seen after the first step
    assert env.step(a)[2] is False
    fake[0] = None
    assert env.step(a)[2] is (link in KNEES)
    assert env.step(a)[2] is False  # no contact after the second step: alive again
    env.close()
