"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``.

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import dataclasses
import math
import os

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import TASKS, get_task
from mrpo_rllib.envs.cartpole import CartPoleEnv
from mrpo_rllib.envs.locomotion import LocomotionEnv
from mrpo_rllib.envs.pendulum import PendulumEnv
from task_ranges import range_corners

LOCOMOTION = ["Hopper", "Walker2d", "HalfCheetah"]
PENDULA = ["InvertedPendulum", "InvertedDoublePendulum"]
XML = {"Hopper": "hopper.xml", "Walker2d": "walker2d.xml", "HalfCheetah": "half_cheetah.xml"}
FEET = {"Hopper": {"foot"}, "Walker2d": {"foot", "foot_left"}, "HalfCheetah": {"bfoot", "ffoot"}}
N_JOINTS = {"Hopper": 3, "Walker2d": 6, "HalfCheetah": 6}
PENDULUM_XML = {
    "InvertedPendulum": "inverted_pendulum.xml",
    "InvertedDoublePendulum": "inverted_double_pendulum.xml",
}

# name: (unit, nominal, train, test) — the extra parameters as documented
EXTRAS = {
    "Walker2d": {
        "power": ("", 1.0, (0.75, 1.25), (0.5, 0.75)),
        "torso_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
        "foot_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
    },
    "InvertedPendulum": {
        "cart_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
        "pole_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
    },
    "CartPole": {"cart_mass": ("kg", 1.0, (0.5, 1.5), (1.5, 2.0))},
}
EXTRAS["Hopper"] = EXTRAS["HalfCheetah"] = EXTRAS["Walker2d"]
EXTRAS["InvertedDoublePendulum"] = EXTRAS["InvertedPendulum"]


# -- the table and TaskSpec.randomizing -----------------------------------------------------


def test_extra_parameters_in_the_table():
    assert set(EXTRAS) == set(TASKS)
    for task, extras in EXTRAS.items():
        spec = get_task(task)
        assert [p.name for p in spec.extra_params] == list(extras)
        for p in spec.extra_params:
            unit, nominal, train, test = extras[p.name]
            assert (p.unit, p.nominal, p.train, p.test) == (unit, nominal, train, test), (task, p.name)
            assert p.min_value == 0.0 and not p.min_inclusive  # > 0: a zero mass is a static link
            assert p.doc
        # the extra parameters do not enter the randomized set or the reports by default
        assert not set(spec.param_names) & set(extras)
        assert spec.all_params == spec.params + spec.extra_params


def test_randomizing_derives_a_frozen_spec():
    hopper = get_task("Hopper")
    spec = hopper.randomizing(
        {"power": (0.6, 1.0), "friction": [0.5, 1.1], "torso_mass": {"train": (0.5, 1.5), "test": (2.0, 3.0)}}
    )
    assert spec.param_names == ("power", "friction", "torso_mass")  # the order given
    assert [(p.train, p.test) for p in spec.params] == [
        ((0.6, 1.0), (0.5, 0.75)),  # testing range: the table's
        ((0.5, 1.1), (0.2, 0.5)),  # a list is a range too
        ((0.5, 1.5), (2.0, 3.0)),
    ]
    assert all(type(v) is float for p in spec.params for v in (*p.train, *p.test))
    assert [p.name for p in spec.extra_params] == ["density", "foot_mass"]  # fixed at nominal
    assert spec.nominal_values == {
        "power": 1.0,
        "friction": 0.8,
        "torso_mass": 1.0,
        "density": 1000.0,
        "foot_mass": 1.0,
    }
    assert (spec.name, spec.env_id, spec.entry_point) == ("Hopper", "mrpo/Hopper-v0", hopper.entry_point)
    assert spec.continuous_actions and spec != hopper
    assert {spec: 1}[spec] == 1 and hash(spec) == hash(hopper.randomizing({**spec_ranges(spec)}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.params = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.params[0].train = (0.1, 0.2)
    # only a testing range: the training range is the table's
    only_test = hopper.randomizing({"foot_mass": {"test": (2.0, 2.5)}}).params[0]
    assert (only_test.train, only_test.test) == ((0.5, 1.5), (2.0, 2.5))
    # Table 1 with its own ranges is the table's task itself
    for task in TASKS.values():
        assert task.randomizing({p.name: p.train for p in task.params}) == task
    # the derived spec's normalisation uses its own training widths
    np.testing.assert_allclose(spec.train_widths(), [0.4, 0.6, 1.0])


def spec_ranges(spec):
    return {p.name: {"train": p.train, "test": p.test} for p in spec.params}


NAN = float("nan")


@pytest.mark.parametrize(
    "task, ranges, match",
    [
        (
            "Hopper",
            {"mass": (1.0, 2.0)},
            r"Hopper randomize: unknown parameter 'mass' \(value \(1.0, 2.0\)\)",
        ),
        (
            "Hopper",
            {"power": (1.0, 0.5)},
            r"Hopper randomize\['power'\]: train range \(1.0, 0.5\) is inverted",
        ),
        (
            "Hopper",
            {"power": (NAN, 1.0)},
            r"Hopper randomize\['power'\]: train range \(nan, 1.0\): value nan is not",
        ),
        (
            "Walker2d",
            {"torso_mass": (-0.5, 1.0)},
            r"Walker2d randomize\['torso_mass'\]: train range \(-0.5, 1.0\): value -0.5 is outside physical",
        ),
        (
            "HalfCheetah",
            {"foot_mass": (0.0, 1.0)},
            r"randomize\['foot_mass'\]: train range \(0.0, 1.0\): value 0.0",
        ),
        ("HalfCheetah", {"friction": (-0.1, 1.0)}, r"randomize\['friction'\].*value -0.1 is outside"),
        ("HalfCheetah", {"friction": (0.0, 1.0)}, None),  # friction 0 is allowed
        (
            "CartPole",
            {"cart_mass": {"test": (3.0, 2.0)}},
            r"CartPole randomize\['cart_mass'\]: test range \(3.0, 2.0\)",
        ),
        (
            "CartPole",
            {"cart_mass": 1.5},
            r"CartPole randomize\['cart_mass'\]: train range 1.5 must be \(low, high\)",
        ),
        ("CartPole", {"cart_mass": (1.0, 2.0, 3.0)}, r"train range \(1.0, 2.0, 3.0\) must be \(low, high\)"),
        ("CartPole", {"cart_mass": {"tarin": (1.0, 2.0)}}, r"randomize\['cart_mass'\]: value .*'tarin'"),
        (
            "InvertedPendulum",
            {"pole_mass": (1.0, float("inf"))},
            r"randomize\['pole_mass'\].*inf is not finite",
        ),
        ("InvertedDoublePendulum", {"cart_mass": ("heavy", 2.0)}, r"'cart_mass'.*'heavy' is not a number"),
        ("InvertedDoublePendulum", {}, "InvertedDoublePendulum randomize is empty"),
        ("Hopper", [("power", (0.5, 1.0))], "Hopper randomize must be a dict"),
    ],
)
def test_randomizing_rejects_bad_ranges(task, ranges, match):
    if match is None:
        get_task(task).randomizing(ranges)
        return
    with pytest.raises(ValueError, match=match):
        get_task(task).randomizing(ranges)
    with pytest.raises(ValueError, match=match):  # the same at gym.make
        gym.make(f"mrpo/{task}-v0", randomize=ranges)


# One Table-1 parameter and the extra ones, with ranges of our own.
RANDOMIZE = {
    "Hopper": {
        "friction": (0.5, 1.1),
        "power": (0.6, 1.0),
        "torso_mass": (0.5, 1.5),
        "foot_mass": (1.2, 1.4),
    },
    "Walker2d": {"foot_mass": (0.7, 0.9), "density": (800.0, 900.0), "power": (1.1, 1.2)},
    "HalfCheetah": {"torso_mass": (1.5, 2.5), "power": (0.5, 0.6)},
    "InvertedPendulum": {"pole_mass": (0.6, 0.8), "pole_length": (0.5, 1.0), "cart_mass": (1.2, 1.3)},
    "InvertedDoublePendulum": {"pole_mass": (1.1, 1.3), "cart_mass": (0.6, 0.9)},
    "CartPole": {"cart_mass": (0.5, 1.5), "pole_mass": (0.2, 0.3)},
}


@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # the pendula's (-inf, inf)
@pytest.mark.parametrize("task", list(TASKS))
def test_randomize_env_reports_and_samples_exactly_the_named_parameters(task):
    ranges = RANDOMIZE[task]
    env = gym.make(f"mrpo/{task}-v0", randomize=ranges)
    check_env(env.unwrapped, skip_render_check=True)
    spec = env.unwrapped.task
    assert spec.name == task and spec.param_names == tuple(ranges)
    seen = []
    _, info = env.reset(seed=0)
    for _ in range(30):
        p = info["env_params"]
        assert list(p) == list(ranges)
        for name, (lo, hi) in ranges.items():
            assert lo <= p[name] <= hi
        seen.append(tuple(p.values()))
        *_, step_info = env.step(env.action_space.sample())
        assert step_info["env_params"] == p
        _, info = env.reset()
    assert len(set(seen)) == 30
    # params keep their meaning relative to the derived spec
    env = gym.make(f"mrpo/{task}-v0", randomize=ranges, params="nominal")
    nominal = {n: get_task(task).nominal_values[n] for n in ranges}
    assert env.reset(seed=1)[1]["env_params"] == nominal
    first, *others = ranges
    env = gym.make(f"mrpo/{task}-v0", randomize=ranges, params={first: ranges[first][1]})
    p = env.reset(seed=2)[1]["env_params"]
    assert p[first] == ranges[first][1] and all(ranges[n][0] <= p[n] <= ranges[n][1] for n in others)
    env = gym.make(f"mrpo/{task}-v0", randomize=ranges, params="test")
    table = {q.name: q.test for q in get_task(task).all_params}
    for s in range(5):
        p = env.reset(seed=s)[1]["env_params"]
        assert all(table[n][0] <= v <= table[n][1] for n, v in p.items())
    # a parameter that is not randomized cannot be set per episode: it is not in the spec
    fixed = next(q.name for q in get_task(task).all_params if q.name not in ranges)
    with pytest.raises(ValueError, match=f"parameter '{fixed}' of task {task} is not randomized"):
        env.reset(options={"env_params": {fixed: 1.0}})
    env.close()


def test_cli_lists_the_extra_parameters(capsys):
    from mrpo_rllib.cli import main

    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    hopper = out[out.index("mrpo/Hopper-v0") : out.index("mrpo/HalfCheetah-v0")]
    assert "    density        train [750.0, 1250.0]  test [1.0, 750.0]" in hopper
    assert "  + power          train [0.75, 1.25]  test [0.5, 0.75]  nominal 1.0" in hopper
    assert "  + cart_mass      train [0.5, 1.5]  test [1.5, 2.0]  nominal 1.0 kg" in out


def test_gym_make_hopper_example_passes_check_env():
    env = gym.make(
        "mrpo/Hopper-v0", randomize={"friction": (0.5, 1.1), "power": (0.6, 1.0), "torso_mass": (0.5, 1.5)}
    )
    check_env(env.unwrapped, skip_render_check=True)
    _, info = env.reset(seed=0)
    assert list(info["env_params"]) == ["friction", "power", "torso_mass"]
    env.close()


# -- locomotion ------------------------------------------------------------------------------


def _mjcf_links(xml):
    """link name → (mass, inertia diagonal) of pybullet_data's MJCF, loaded untouched."""
    cid = pb.connect(pb.DIRECT)
    try:
        out = {}
        for body in pb.loadMJCF(os.path.join(pybullet_data.getDataPath(), "mjcf", xml), physicsClientId=cid):
            for j in range(pb.getNumJoints(body, physicsClientId=cid)):
                dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
                out[pb.getJointInfo(body, j, physicsClientId=cid)[12].decode()] = (dyn[0], np.array(dyn[2]))
        return out
    finally:
        pb.disconnect(cid)


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
    mjcf = _mjcf_links(XML[task])
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
    massive = {n for n, (m, _) in _mjcf_links(XML[task]).items() if m > 0}
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
    mjcf = _mjcf_links(PENDULUM_XML[task])
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


# -- the default behaviour is unchanged ------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_table_one_with_its_ranges_runs_exactly_as_the_default(task):
    spec = get_task(task)
    ranges = {p.name: {"train": p.train, "test": p.test} for p in spec.params}
    for params in (None, "test"):
        kwargs = {} if params is None else {"params": params}
        a = gym.make(spec.env_id, **kwargs)
        b = gym.make(spec.env_id, randomize=ranges, **kwargs)
        rng = np.random.default_rng(0)
        for seed in (0, 1):
            oa, ia = a.reset(seed=seed)
            ob, ib = b.reset(seed=seed)
            assert oa.tobytes() == ob.tobytes() and ia == ib
            for _ in range(60):
                act = (
                    a.action_space.sample()
                    if task == "CartPole"
                    else rng.uniform(-1, 1, a.action_space.shape).astype(np.float32)
                )
                ra, rb = a.step(act), b.step(act)
                assert ra[0].tobytes() == rb[0].tobytes() and ra[1:] == rb[1:]
                if ra[2]:
                    break
        a.close()
        b.close()


@pytest.mark.parametrize("task", list(TASKS))
def test_default_trajectory_as_recorded_before_the_extra_parameters(task):
    """``gym.make(id)``, reset(seed=2024), 8 steps of actions from default_rng(1): the numbers
    the code before the extra parameters produced (recorded with main's code at 0baa122)."""
    rec = MAIN_TRAJECTORIES[task]
    env = gym.make(f"mrpo/{task}-v0")
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=2024)
    assert info["env_params"] == rec["env_params"]  # exactly: the same RNG stream and names
    observed, rewards = [obs], []
    for t in range(8):
        if task == "CartPole":
            a = int(rng.integers(2))
        else:
            a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, r, term, trunc, step_info = env.step(a)
        assert not term and not trunc and step_info["env_params"] == rec["env_params"]
        rewards.append(r)
        if t in (3, 7):
            observed.append(obs)
    np.testing.assert_allclose(np.array(observed), np.array(rec["obs"], np.float32), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rewards, rec["rewards"], rtol=1e-9, atol=1e-6)
    env.close()


# -- corners of the extra parameters' ranges ------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_corners_of_the_extra_ranges_are_finite(task):
    spec = get_task(task)
    derived = spec.randomizing({p.name: {"train": p.train, "test": p.test} for p in spec.extra_params})
    env = gym.make(
        spec.env_id, randomize={p.name: {"train": p.train, "test": p.test} for p in spec.extra_params}
    )
    rng = np.random.default_rng(0)
    for which in ("train", "test"):
        for params in range_corners(derived, which):
            obs, info = env.reset(seed=1, options={"env_params": params})
            assert info["env_params"] == params and np.isfinite(obs).all()
            for _ in range(300):
                a = (
                    int(rng.integers(2))
                    if task == "CartPole"
                    else rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                )
                obs, r, term, trunc, _ = env.step(a)
                assert np.isfinite(obs).all() and np.isfinite(r), (which, params)
                if term or trunc:
                    env.reset(options={"env_params": params})
    env.close()


MAIN_TRAJECTORIES = {
    "Walker2d": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6929433628479926},
        "obs": [  # after reset, step 4, step 8 (float32)
            [
                0.0,
                0.0,
                1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                -0.0,
                0.9708864,
                0.0,
                1.045755,
                0.0,
                0.12625496,
                0.0,
                0.94533706,
                0.0,
                0.935634,
                0.0,
                -0.08127755,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.019631425,
                0.0,
                1.0,
                -0.16527717,
                0.0,
                -0.28021455,
                0.0,
                -0.06977389,
                0.893749,
                -0.7328003,
                1.0380408,
                -0.006775556,
                0.01781828,
                -0.013105599,
                0.8589936,
                -0.8197901,
                0.9290559,
                0.1239707,
                0.065537386,
                0.4617885,
                0.0,
                1.0,
            ],
            [
                -0.062119808,
                0.0,
                1.0,
                -0.21576129,
                0.0,
                -0.28922758,
                0.0,
                -0.44799775,
                0.6213955,
                -0.7297591,
                0.94053143,
                -0.34918743,
                0.15674174,
                0.40201426,
                0.5325955,
                -1.011489,
                0.9013327,
                0.16097099,
                0.57746994,
                0.564319,
                1.0,
                0.0,
            ],
        ],
        "rewards": [
            -0.02715155868999558,
            0.48686948352635034,
            1.2392673541801609,
            1.3664733478155455,
            1.5935878949805735,
            1.3465752290818087,
            1.2183948405368281,
            2.738987653696068,
        ],
    },
    "Hopper": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6285939207429546},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.0, 0.9708864, 0.0, 1.045755, 0.0, 0.12625496, 0.0, 0.0],
            [
                -0.016079994,
                0.0,
                1.0,
                -0.20748799,
                0.0,
                -0.3156514,
                0.0,
                -0.10368651,
                0.87308794,
                -1.1904384,
                1.0030417,
                -0.02413012,
                -0.096170865,
                0.38597438,
                0.0,
            ],
            [
                -0.13772589,
                0.0,
                1.0,
                -0.07684426,
                0.0,
                -1.1508993,
                0.0,
                -0.9392688,
                0.277515,
                -1.3036846,
                0.7211109,
                -1.0694962,
                0.4471465,
                0.9912494,
                1.0,
            ],
        ],
        "rewards": [
            0.5004445320733697,
            -0.16701160629895,
            1.5793716437149958,
            2.3681756189477587,
            4.458043046010423,
            4.602021898880512,
            3.799609153864281,
            4.321934757183984,
        ],
    },
    "HalfCheetah": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6393625625384282},
        "obs": [  # after reset, step 4, step 8 (float32)
            [
                0.0,
                0.0,
                1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                -0.0,
                -0.38612688,
                0.0,
                0.07629709,
                0.0,
                -0.15753517,
                0.0,
                0.24212727,
                0.0,
                -0.029786853,
                0.0,
                1.1686891,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.041725222,
                0.0,
                1.0,
                -0.10886915,
                0.0,
                -0.25639606,
                0.0,
                -0.036852594,
                -0.42121926,
                -0.25400808,
                0.41814223,
                0.29471985,
                -1.0226772,
                0.3510788,
                0.3197031,
                -0.10256211,
                -0.10793187,
                -0.07454102,
                1.1133966,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.11196718,
                0.0,
                1.0,
                -0.14951734,
                0.0,
                -0.32786554,
                0.0,
                -0.030631598,
                -0.549638,
                -0.22721605,
                0.49643362,
                -0.17715138,
                -0.25622386,
                1.5199193,
                0.22596714,
                -0.3792858,
                -0.14718221,
                0.16110082,
                1.1133966,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        ],
        "rewards": [
            0.2769566475641607,
            0.8160640207082932,
            0.5906282732902802,
            0.5694095315666918,
            0.6325635409242832,
            0.7200123280697821,
            0.560671977697757,
            0.34771510187467713,
        ],
    },
    "InvertedPendulum": {
        "env_params": {"cart_size": 0.18516626759625637, "pole_length": 0.8214848018573865},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, 0.9992739, -0.03810037, 0.0],
            [0.0009630378, 0.02819403, 0.9991486, -0.041256174, -0.084688604],
            [0.0025612956, 0.028547075, 0.99883795, -0.048194733, -0.12920287],
        ],
        "rewards": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    },
    "InvertedDoublePendulum": {
        "env_params": {"pole1_length": 0.8379156689906408, "pole2_length": 0.6071616006191288},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, -0.025312329, 0.9992739, -0.03810037, 0.0, 0.9982069, 0.059857417, 0.0],
            [
                0.010657839,
                0.31231782,
                -0.02600821,
                0.99841577,
                -0.0562672,
                -0.5205381,
                0.9960497,
                0.088797644,
                0.8107505,
            ],
            [
                0.028741486,
                0.3261748,
                -0.028595096,
                0.9957974,
                -0.09158338,
                -0.65997386,
                0.9883774,
                0.15202016,
                1.216399,
            ],
        ],
        "rewards": [
            9.358904423719196,
            9.35886957412168,
            9.358469129291045,
            9.358278551372665,
            9.357608362046681,
            9.35697489393137,
            9.35627940271307,
            9.354956048025148,
        ],
    },
    "CartPole": {
        "env_params": {
            "force_mag": 13.840795421644355,
            "pole_length": 0.25360704117634475,
            "pole_mass": 0.3163575105728748,
        },
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.02994661, 0.04958021, -0.03577682, -0.042127445],
            [0.034087803, 0.5676754, -0.042025637, -1.6433213],
            [0.05929119, 0.5798175, -0.11805356, -1.8530518],
        ],
        "rewards": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    },
}
