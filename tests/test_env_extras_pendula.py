"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``: the pendula: cart and pole masses, through geometry rebuilds, set only when a scale differs, each changes the trajectory.

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import math

import numpy as np
import pybullet as pb
import pytest

import mrpo_rllib  # noqa: F401  (registers the environments)
from env_extras import PENDULA, PENDULUM_XML, mjcf_links
from mrpo_rllib.envs import get_task
from mrpo_rllib.envs.pendulum import PendulumEnv

# -- pendula ---------------------------------------------------------------------------------


def _capsule_mass(radius, length):
    """Mass of a capsule (cylinder of ``length`` plus two half spheres) at 1000 kg/m³."""
    return 1000.0 * math.pi * radius**2 * (length + 4.0 / 3.0 * radius)


def _pendulum_masses(task, geometry):
    """link → mass Bullet builds for the geometry (pybullet_data's MJCF, radii kept)."""
    if task == "InvertedPendulum":
        c, length = geometry["cart_size"], geometry["pole_length"]
        # cart: capsule radius c, half-length c; pole: fromto (0,0,0)-(0.001,0,L), radius 0.049
        return {"cart": _capsule_mass(c, 2 * c), "pole": _capsule_mass(0.049, math.hypot(length, 0.001))}
    return {
        "cart": _capsule_mass(0.1, 0.2),
        "pole": _capsule_mass(0.045, geometry["pole1_length"]),
        "pole2": _capsule_mass(0.045, geometry["pole2_length"]),
    }


def _pendulum_sim(env):
    cid, body = env._cid, env._body
    out = {}
    for j in range(pb.getNumJoints(body, physicsClientId=cid)):
        dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
        out[pb.getJointInfo(body, j, physicsClientId=cid)[12].decode()] = (dyn[0], np.array(dyn[2]))
    return out


def _check_pendulum(env, task, geometry, cart, pole, inertia0=None):
    sim = _pendulum_sim(env)
    for link, m0 in _pendulum_masses(task, geometry).items():
        scale = cart if link == "cart" else pole
        assert sim[link][0] == pytest.approx(m0 * scale, rel=1e-4), (link, geometry, cart, pole)
        if inertia0 is not None:
            np.testing.assert_allclose(sim[link][1], inertia0[link] * scale, rtol=1e-12)


@pytest.mark.parametrize("task", PENDULA)
def test_pendulum_masses_follow_cart_and_pole_mass(task):
    nominal = {p.name: p.nominal for p in get_task(task).params}
    mjcf = mjcf_links(PENDULUM_XML[task])
    # the capsule formula reproduces pybullet_data's masses at the nominal geometry
    for link, m0 in _pendulum_masses(task, nominal).items():
        assert mjcf[link][0] == pytest.approx(m0, rel=1e-4)
    inertia0 = {link: i0 for link, (_, i0) in mjcf.items()}
    env = PendulumEnv(task, randomize={"cart_mass": (0.5, 2.0), "pole_mass": (0.5, 2.0)})
    for cart, pole in [(1.5, 0.7), (0.6, 1.9), (1.0, 1.0), (1.0, 0.5)]:
        env.reset(seed=0, options={"env_params": {"cart_mass": cart, "pole_mass": pole}})
        _check_pendulum(env, task, nominal, cart, pole, inertia0)
        massive = {link for link, (m, _) in _pendulum_sim(env).items() if m > 0}
        assert massive == set(_pendulum_masses(task, nominal))  # no other link has mass
    env.close()


@pytest.mark.parametrize("task", PENDULA)
def test_pendulum_masses_survive_geometry_rebuilds(task):
    spec = get_task(task)
    geometry = list(spec.param_names)
    env = PendulumEnv(
        task,
        randomize={
            **{p.name: p.train for p in spec.params},
            "cart_mass": (0.5, 2.0),
            "pole_mass": (0.5, 2.0),
        },
    )
    rng = np.random.default_rng(0)
    for i in range(12):
        low, high = get_task(task).range_array("train")
        g = dict(zip(geometry, rng.uniform(low, high).tolist(), strict=True))
        # the scales change only every third reset: rebuilds with unchanged scales too
        cart, pole = [(1.5, 0.7), (0.6, 1.9), (1.0, 1.0), (1.3, 1.0)][i // 3]
        env.reset(seed=i, options={"env_params": {**g, "cart_mass": cart, "pole_mass": pole}})
        loaded = env.loaded_geometry()
        assert all(loaded[n] == pytest.approx(v, abs=1e-5) for n, v in g.items())  # rebuilt
        _check_pendulum(env, task, g, cart, pole)
    env.close()
    # not randomized: masses as Bullet builds them from the geometry
    env = PendulumEnv(task)
    for s in range(3):
        p = env.reset(seed=s)[1]["env_params"]
        _check_pendulum(env, task, p, 1.0, 1.0)
    env.close()


@pytest.mark.parametrize("task", PENDULA)
def test_pendulum_masses_set_only_when_a_scale_differs(task, monkeypatch):
    calls = []
    real = pb.changeDynamics
    monkeypatch.setattr(pb, "changeDynamics", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    env = PendulumEnv(task)  # default: geometry rebuilt every reset, masses as built
    for s in range(5):
        env.reset(seed=s)
    assert calls == []
    env.close()
    env = PendulumEnv(task, randomize={"cart_mass": (0.5, 2.0)})  # geometry nominal: never rebuilt
    for s in range(5):
        env.reset(seed=s)
    assert len(calls) == 5  # the cart link, once per reset (a new scale each time)
    calls.clear()
    for _ in range(3):
        env.reset(seed=0, options={"env_params": {"cart_mass": 1.2}})
    assert len(calls) == 1  # the same scale again: nothing to do
    env.close()


@pytest.mark.parametrize("task, name", [(t, n) for t in PENDULA for n in ("cart_mass", "pole_mass")])
def test_pendulum_mass_changes_the_trajectory(task, name):
    env = PendulumEnv(task, randomize={name: (0.5, 2.0)})
    actions = np.random.default_rng(1).uniform(-0.3, 0.3, (30, 1)).astype(np.float32)
    runs = []
    for value in (0.5, 2.0):
        out = [env.reset(seed=3, options={"env_params": {name: value}})[0]]
        out += [env.step(a)[0] for a in actions]
        runs.append(np.array(out))
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    assert not np.allclose(*runs, atol=1e-4), f"{name} did not change the trajectory"
    env.close()
