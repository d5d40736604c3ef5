"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``: the table of extra parameters, ``TaskSpec.randomizing`` and ``randomize=`` (the env reports and samples exactly the named parameters).

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401  (registers the environments)
from env_extras import EXTRAS
from mrpo_rllib.envs import TASKS, get_task

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
