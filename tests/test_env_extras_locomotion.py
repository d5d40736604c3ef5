"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``: the locomotion tasks: link masses, power as a gain on the clipped torque, each parameter changes the trajectory, dynamics set only when a value changed, same seed bit-identical.

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import numpy as np
import pybullet as pb
import pytest

import mrpo_rllib  # noqa: F401  (registers the environments)
from env_extras import FEET, LOCOMOTION, N_JOINTS, XML, mjcf_links
from mrpo_rllib.envs.locomotion import LocomotionEnv

# -- locomotion ------------------------------------------------------------------------------


def _sim_links(env):
    """link name → (mass, inertia diagonal, lateral friction) the env's simulation holds."""
    cid, body = env._cid, env._body
    out = {}
    for j in range(pb.getNumJoints(body, physicsClientId=cid)):
        dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
        out[pb.getJointInfo(body, j, physicsClientId=cid)[12].decode()] = (dyn[0], np.array(dyn[2]), dyn[1])
    return out


def _check_masses(env, mjcf, density, torso, foot, friction, feet):
    for name, (mass, inertia, fric) in _sim_links(env).items():
        m0, i0 = mjcf[name]
        if m0 == 0:
            assert mass == 0.0  # massless joint links stay massless
            continue
        scale = density / 1000 * (torso if name == "torso" else foot if name in feet else 1.0)
        assert mass == pytest.approx(m0 * scale, rel=1e-12), name
        np.testing.assert_allclose(inertia, i0 * scale, rtol=1e-12, err_msg=name)
        assert fric == pytest.approx(friction), name


@pytest.mark.parametrize("task", LOCOMOTION)
def test_link_masses_follow_density_torso_and_foot_mass(task):
    mjcf = mjcf_links(XML[task])
    assert FEET[task] <= set(mjcf) and mjcf["torso"][0] > 0
    env = LocomotionEnv(
        task, randomize={"density": (500, 1500), "torso_mass": (0.5, 2), "foot_mass": (0.5, 2)}
    )
    values = {"density": 800.0, "torso_mass": 1.7, "foot_mass": 0.6}
    env.reset(seed=0, options={"env_params": values})
    _check_masses(env, mjcf, 800.0, 1.7, 0.6, 0.8, FEET[task])  # friction: not randomized, nominal 0.8
    env.reset(seed=0, options={"env_params": {**values, "foot_mass": 1.9}})
    _check_masses(env, mjcf, 800.0, 1.7, 1.9, 0.8, FEET[task])
    env.reset(seed=0, options={"env_params": "nominal"})  # back: scales from the loaded masses
    _check_masses(env, mjcf, 1000.0, 1.0, 1.0, 0.8, FEET[task])
    env.close()
    # not randomized: every mass and friction at nominal, in the simulation
    env = LocomotionEnv(task, randomize={"power": (0.5, 1.0)})
    for s in range(3):
        env.reset(seed=s)
        _check_masses(env, mjcf, 1000.0, 1.0, 1.0, 0.8, FEET[task])
    env.close()
    # only friction randomized: set at every reset although no mass changes
    env = LocomotionEnv(task, randomize={"friction": (0.2, 2.0)})
    for s in range(3):
        p = env.reset(seed=s)[1]["env_params"]
        _check_masses(env, mjcf, 1000.0, 1.0, 1.0, p["friction"], FEET[task])
    env.close()
    # default env: the extra parameters at nominal under Table 1's density and friction
    env = LocomotionEnv(task)
    p = env.reset(seed=4)[1]["env_params"]
    _check_masses(env, mjcf, p["density"], 1.0, 1.0, p["friction"], FEET[task])
    env.close()


def _joint_states(env):
    cid, body = env._cid, env._body
    joints = range(pb.getNumJoints(body, physicsClientId=cid))
    return np.array([s[:2] for s in pb.getJointStates(body, joints, physicsClientId=cid)])


@pytest.mark.parametrize("task", LOCOMOTION)
def test_power_is_a_gain_on_the_clipped_torque(task):
    """torque = power × gain × clip(a): power p with action a moves the robot as power 1 with
    action p·clip(a, −1, 1) — and not as with clip(p·a), nor as with a."""
    n = N_JOINTS[task]
    actions = np.random.default_rng(0).uniform(-1.6, 1.6, (40, n))  # float64: no rounding of p·a
    p = 0.6
    runs = {}
    for label, power, acts in [
        ("p·a", p, actions),
        ("1·p·clip(a)", 1.0, p * np.clip(actions, -1, 1)),
        ("1·a", 1.0, actions),
        ("1·clip(p·a)", 1.0, np.clip(p * actions, -1, 1)),
    ]:
        env = LocomotionEnv(task, randomize={"power": (0.5, 1.0)})
        env.reset(seed=3, options={"env_params": {"power": power}})
        states = [_joint_states(env)]
        for a in acts:
            env.step(a)
            states.append(_joint_states(env))
        runs[label] = np.array(states)
        env.close()
    assert runs["p·a"][0].tobytes() == runs["1·a"][0].tobytes()  # same start
    np.testing.assert_allclose(runs["p·a"], runs["1·p·clip(a)"], atol=1e-6)
    assert np.abs(runs["p·a"] - runs["1·a"]).max() > 1e-2
    assert np.abs(runs["p·a"] - runs["1·clip(p·a)"]).max() > 1e-3


# Two values per extra parameter whose effect is certain (contact needed for the masses).
EFFECTS = {"power": (0.5, 1.0), "torso_mass": (0.5, 2.0), "foot_mass": (0.5, 2.0)}


@pytest.mark.parametrize("task, name", [(t, n) for t in LOCOMOTION for n in EFFECTS])
def test_every_extra_parameter_changes_the_trajectory(task, name):
    env = LocomotionEnv(task, randomize={name: (0.5, 2.0)})
    actions = np.tile(np.linspace(-0.5, 0.5, N_JOINTS[task], dtype=np.float32), (50, 1))
    runs = []
    for value in EFFECTS[name]:
        obs, _ = env.reset(seed=3, options={"env_params": {name: value}})
        out = [obs]
        for a in actions:
            out.append(env.step(a)[0])
        runs.append(np.array(out))
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    assert np.abs(runs[0][-1] - runs[1][-1]).max() > 1e-3, f"{name} did not change the trajectory"
    env.close()


@pytest.mark.parametrize("task", LOCOMOTION)
def test_dynamics_set_only_when_a_value_changed(task, monkeypatch):
    calls = []
    real = pb.changeDynamics
    monkeypatch.setattr(pb, "changeDynamics", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    massive = {n for n, (m, _) in mjcf_links(XML[task]).items() if m > 0}
    env = LocomotionEnv(task, randomize={"power": (0.5, 1.0)})
    calls.clear()
    env.reset(seed=0)
    assert len(calls) == len(massive)  # the first reset sets every link
    calls.clear()
    for s in range(5):
        env.reset(seed=s)
    assert calls == []  # power changes no dynamics; masses and friction are unchanged
    env.close()
    env = LocomotionEnv(task)  # Table 1 randomized: one call per link per reset, as before
    calls.clear()
    for s in range(5):
        env.reset(seed=s)
    assert len(calls) == 5 * len(massive)
    env.close()


@pytest.mark.parametrize("task", LOCOMOTION)
def test_same_seed_bit_identical_with_randomize(task):
    ranges = {"power": (0.5, 1.5), "torso_mass": (0.5, 1.5)}
    actions = np.random.default_rng(1).uniform(-1, 1, (100, N_JOINTS[task])).astype(np.float32)

    def run(env):
        out = [env.reset(seed=9)[0]]
        for a in actions:
            obs, r, term, _, _ = env.step(a)
            out.append(np.append(obs, [r, term]))
            if term:
                break
        return np.concatenate(out).tobytes()

    env = LocomotionEnv(task, randomize=ranges)
    first = run(env)
    env.reset(seed=2)  # other values in between
    env.step(actions[0])
    assert run(env) == first
    assert run(LocomotionEnv(task, randomize=ranges)) == first
