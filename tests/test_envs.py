"""What every task shares: registration, parameter distributions, bad input, seeding.

Physics-specific checks live in test_cartpole.py, test_locomotion.py, test_pendulum.py.
"""

import math

import gymnasium as gym
import numpy as np
import pytest

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import TASKS, get_task, normalize_params, resolve_param_ranges

ALL = list(TASKS)

EXPECTED_PARAMS = {
    "Walker2d": ("density", "friction"),
    "Hopper": ("density", "friction"),
    "HalfCheetah": ("density", "friction"),
    "InvertedPendulum": ("cart_size", "pole_length"),
    "InvertedDoublePendulum": ("pole1_length", "pole2_length"),
    "CartPole": ("force_mag", "pole_length", "pole_mass"),
}


def test_six_tasks_registered_with_paper_parameters():
    assert set(TASKS) == set(EXPECTED_PARAMS)
    for name, params in EXPECTED_PARAMS.items():
        task = get_task(name)
        assert task.param_names == params
        spec = gym.spec(task.env_id)
        assert spec.id == f"mrpo/{name}-v0" and spec.max_episode_steps == 1000


@pytest.mark.parametrize("task", ALL)
def test_default_samples_training_range_and_reports_params(task):
    env = gym.make(f"mrpo/{task}-v0")
    low, high = get_task(task).range_array("train")
    seen = []
    _, info = env.reset(seed=3)
    for _ in range(5):
        p = info["env_params"]
        assert tuple(p) == get_task(task).param_names
        v = np.array(list(p.values()))
        assert np.all(v >= low) and np.all(v <= high)
        seen.append(tuple(v))
        _, _, _, _, step_info = env.step(env.action_space.sample())
        assert step_info["env_params"] == p
        _, info = env.reset()
    assert len(set(seen)) == 5  # resampled at every reset
    env.close()


@pytest.mark.parametrize("task", ALL)
def test_test_range_fixed_values_and_per_episode_options(task):
    spec = get_task(task)
    env = gym.make(spec.env_id, params="test")
    low, high = spec.range_array("test")
    for s in range(3):
        v = np.array(list(env.reset(seed=s)[1]["env_params"].values()))
        assert np.all(v >= low) and np.all(v <= high)
    first = spec.params[0]
    fixed = {first.name: first.nominal}
    _, info = env.reset(options={"env_params": fixed})
    assert info["env_params"][first.name] == first.nominal
    env.close()
    env = gym.make(spec.env_id, params=fixed)
    tr_low, tr_high = spec.range_array("train")
    for s in range(3):
        p = env.reset(seed=s)[1]["env_params"]
        assert p[first.name] == first.nominal  # fixed
        for i, other in enumerate(spec.params[1:], start=1):  # the rest keep the training range
            assert tr_low[i] <= p[other.name] <= tr_high[i]
    env.close()


@pytest.mark.parametrize("task", ALL)
def test_same_seed_same_params_different_seed_different(task):
    env = gym.make(f"mrpo/{task}-v0")
    a = env.reset(seed=11)[1]["env_params"]
    b = env.reset(seed=11)[1]["env_params"]
    c = env.reset(seed=12)[1]["env_params"]
    assert a == b and a != c
    env.close()


@pytest.mark.parametrize(
    "task, params, match",
    [
        (
            "Hopper",
            {"mass": 3.0},
            r"unknown parameter 'mass' for task Hopper; expected one of \['density', 'friction'\]",
        ),
        ("Hopper", {"density": float("nan")}, "'density': value nan is not finite"),
        ("Hopper", {"density": -5.0}, r"'density': value -5.0 is outside physical sense; expected > 0.0"),
        ("Hopper", {"friction": -0.1}, r"'friction': value -0.1 is outside physical sense; expected >= 0.0"),
        ("Hopper", {"friction": (1.0, 0.5)}, r"'friction': inverted range \(1.0, 0.5\)"),
        ("CartPole", {"pole_mass": 0.0}, "'pole_mass': value 0.0 is outside physical sense"),
        ("CartPole", {"pole_length": (0.1, 0.2, 0.3)}, "must be \\(low, high\\)"),
        ("CartPole", {"force_mag": "strong"}, "'force_mag': value 'strong' is not a number"),
        ("InvertedPendulum", {"pole_length": float("inf")}, "not finite"),
        (
            "CartPole",
            "extreme",
            "params='extreme' for CartPole: expected 'train', 'test', 'nominal' or a dict",
        ),
    ],
)
def test_bad_parameters_are_clear_errors(task, params, match):
    with pytest.raises(ValueError, match=match):
        resolve_param_ranges(task, params)


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown task 'Humanoid'"):
        get_task("Humanoid")


def test_bad_params_rejected_at_make_and_reset():
    with pytest.raises(ValueError, match="pole_mass"):
        gym.make("mrpo/CartPole-v0", params={"pole_mass": -1.0})
    env = gym.make("mrpo/CartPole-v0")
    with pytest.raises(ValueError, match="unknown parameter 'gravity'"):
        env.reset(options={"env_params": {"gravity": 3.0}})


def test_friction_zero_allowed_and_nominal():
    low, high = resolve_param_ranges("Hopper", {"friction": 0.0})
    assert low[1] == high[1] == 0.0
    low, high = resolve_param_ranges("CartPole", "nominal")
    assert low.tolist() == high.tolist() == [10.0, 0.5, 0.1]


def test_normalize_params_divides_by_training_width():
    p = np.array([[1000.0, 0.8], [750.0, 0.5]])
    np.testing.assert_allclose(normalize_params("Hopper", p), p / np.array([500.0, 0.6]))
    with pytest.raises(ValueError, match=r"shape \(M, 3\)"):
        normalize_params("CartPole", p)


# The paper's Table 1, written out: name → (training range, testing range); a point is (v, v).
TABLE_1 = {
    "Walker2d": {"density": ((750, 1250), (1, 750)), "friction": ((0.2, 2.5), (0.05, 0.2))},
    "Hopper": {"density": ((750, 1250), (1, 750)), "friction": ((0.5, 1.1), (0.2, 0.5))},
    "HalfCheetah": {"density": ((750, 1250), (1, 750)), "friction": ((0.2, 2.25), (0.05, 0.2))},
    "InvertedPendulum": {
        "cart_size": ((0.05, 0.25), (0.025, 0.05)),
        "pole_length": ((0.5, 2.0), (0.25, 0.5)),
    },
    "InvertedDoublePendulum": {
        "pole1_length": ((0.5, 1.0), (1.0, 1.1)),
        "pole2_length": ((0.5, 1.0), (1.0, 1.1)),
    },
    "CartPole": {
        "force_mag": ((1, 20), (10, 10)),
        "pole_length": ((0.05, 1.0), (1, 6)),
        "pole_mass": ((0.01, 1.0), (1, 6)),
    },
}


def test_task_table_is_the_papers_table_1():
    assert set(TASKS) == set(TABLE_1)
    for task, params in TABLE_1.items():
        spec = get_task(task)
        assert spec.param_names == tuple(params), task  # names and order
        for p in spec.params:
            train, test = params[p.name]
            assert p.train == train and p.test == test, (task, p.name, p.train, p.test)
            assert all(type(v) is float for v in (*p.train, *p.test))


KS_CRITICAL_1_PERCENT = math.sqrt(math.log(2 / 0.01) / 2)  # asymptotic, times 1/sqrt(n)


def _ks_uniform(x, low, high):
    """Kolmogorov–Smirnov statistic of the sample ``x`` against U(low, high)."""
    cdf = (np.sort(x) - low) / (high - low)
    i = np.arange(1, len(x) + 1)
    return max(np.max(i / len(x) - cdf), np.max(cdf - (i - 1) / len(x)))


def test_ks_statistic_detects_a_non_uniform_sample():
    rng = np.random.default_rng(0)
    n = 300
    assert _ks_uniform(rng.uniform(2, 5, n), 2, 5) < KS_CRITICAL_1_PERCENT / math.sqrt(n)
    assert _ks_uniform(2 + 3 * rng.uniform(0, 1, n) ** 1.5, 2, 5) > KS_CRITICAL_1_PERCENT / math.sqrt(n)
    assert _ks_uniform(rng.uniform(2, 4.7, n), 2, 5) > KS_CRITICAL_1_PERCENT / math.sqrt(n)


@pytest.mark.parametrize("task", ALL)
@pytest.mark.parametrize("which", ["train", "test"])
def test_sampled_parameters_are_uniform_over_table_1(task, which):
    """300 resets (fixed seed, so deterministic): each parameter passes a Kolmogorov–Smirnov
    test against U(low, high) of the literal Table 1, reaches near both bounds, and the
    parameters are drawn independently of each other."""
    n = 300
    env = gym.make(f"mrpo/{task}-v0", params=which)
    _, info = env.reset(seed=0)
    samples = [list(info["env_params"].values())]
    for _ in range(n - 1):
        samples.append(list(env.reset()[1]["env_params"].values()))
    env.close()
    samples = np.array(samples)
    ranges = [r[0 if which == "train" else 1] for r in TABLE_1[task].values()]
    varying = []
    for k, (low, high) in enumerate(ranges):
        x = samples[:, k]
        assert np.all((x >= low) & (x <= high))
        if low == high:
            assert np.all(x == low)
            continue
        width = high - low
        assert _ks_uniform(x, low, high) < KS_CRITICAL_1_PERCENT / math.sqrt(n), (task, which, k)
        assert x.min() - low < 0.03 * width and high - x.max() < 0.03 * width
        varying.append(x)
    if len(varying) > 1:
        corr = np.corrcoef(varying)
        assert np.abs(corr[np.triu_indices(len(varying), 1)]).max() < 0.2, corr
