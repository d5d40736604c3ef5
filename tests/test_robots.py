"""The five pybullet tasks: checker, seeding, every parameter acts, corners, geometry rebuild."""

import itertools

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401
from mrpo_rllib.envs import get_task

ROBOTS = ["Walker2d", "Hopper", "HalfCheetah", "InvertedPendulum", "InvertedDoublePendulum"]


def _rollout(env, seed, actions, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    out, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.array(out), np.array(rewards)


def _actions(env, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(n, *env.action_space.shape)).astype(np.float32)


@pytest.mark.parametrize("task", ROBOTS)
def test_check_env(task):
    env = gym.make(f"mrpo/{task}-v0")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("task", ROBOTS)
def test_same_seed_bit_identical_trajectory(task):
    env = gym.make(f"mrpo/{task}-v0")
    actions = _actions(env, 200)
    a, ra = _rollout(env, 42, actions)
    env.reset(seed=7)  # something else in between
    env.step(actions[0])
    b, rb = _rollout(env, 42, actions)
    assert a.tobytes() == b.tobytes() and ra.tobytes() == rb.tobytes()
    fresh = gym.make(f"mrpo/{task}-v0")  # and in another instance
    c, rc = _rollout(fresh, 42, actions)
    assert a.tobytes() == c.tobytes() and ra.tobytes() == rc.tobytes()
    env.close()
    fresh.close()


# Two values per parameter whose effect is certain within 40 steps.
EFFECTS = {
    "Walker2d": {"density": (400.0, 1250.0), "friction": (0.05, 2.5)},
    "Hopper": {"density": (400.0, 1250.0), "friction": (0.05, 2.5)},
    "HalfCheetah": {"density": (400.0, 1250.0), "friction": (0.05, 2.5)},
    "InvertedPendulum": {"cart_size": (0.05, 0.25), "pole_length": (0.5, 2.0)},
    "InvertedDoublePendulum": {"pole1_length": (0.5, 1.0), "pole2_length": (0.5, 1.0)},
}


@pytest.mark.parametrize("task, name", [(t, n) for t, d in EFFECTS.items() for n in d])
def test_every_parameter_changes_the_trajectory(task, name):
    spec = get_task(task)
    env = gym.make(spec.env_id)
    nominal = {p.name: p.nominal for p in spec.params}
    lo, hi = EFFECTS[task][name]
    actions = np.tile(np.linspace(-0.2, 0.2, env.action_space.shape[0], dtype=np.float32), (40, 1))
    ta, _ = _rollout(env, 3, actions, {"env_params": {**nominal, name: lo}})
    tb, _ = _rollout(env, 3, actions, {"env_params": {**nominal, name: hi}})
    n = min(len(ta), len(tb))
    assert n > 5
    assert not np.allclose(ta[:n], tb[:n], atol=1e-6), f"{name} did not change the trajectory"
    env.close()


@pytest.mark.parametrize("task", ["Walker2d", "Hopper", "HalfCheetah"])
def test_density_scales_mass_and_inertia_friction_is_set(task):
    env = gym.make(f"mrpo/{task}-v0").unwrapped
    env.reset(seed=0, options={"env_params": {"density": 1000.0, "friction": 0.8}})
    link, m0, i0 = env._massive[0]
    env.reset(seed=0, options={"env_params": {"density": 500.0, "friction": 1.7}})
    info = pb.getDynamicsInfo(env._body, link, physicsClientId=env._cid)
    assert info[0] == pytest.approx(m0 / 2)
    np.testing.assert_allclose(info[2], np.asarray(i0) / 2, rtol=1e-6)
    assert info[1] == pytest.approx(1.7)
    assert len(env._massive) == {"Walker2d": 7, "Hopper": 4, "HalfCheetah": 7}[task]
    env.close()


@pytest.mark.parametrize("task", ROBOTS)
def test_corners_of_training_and_testing_ranges_are_finite(task):
    spec = get_task(task)
    env = gym.make(spec.env_id)
    rng = np.random.default_rng(0)
    for which in ("train", "test"):
        low, high = spec.range_array(which)
        for corner in itertools.product(*zip(low, high, strict=True)):
            params = dict(zip(spec.param_names, corner, strict=True))
            env.reset(seed=1, options={"env_params": params})
            for _ in range(1000):
                obs, r, term, trunc, info = env.step(
                    rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                )
                assert np.isfinite(obs).all() and np.isfinite(r), (which, params)
                assert info["env_params"] == pytest.approx(params)
                if term or trunc:
                    env.reset(options={"env_params": params})
    env.close()


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("task", ["InvertedPendulum", "InvertedDoublePendulum"])
def test_geometry_rebuilt_every_reset_without_stale_cache_or_leak(task):
    env = gym.make(f"mrpo/{task}-v0")
    raw = env.unwrapped
    for _ in range(20):  # warm-up
        env.reset()
    before = _rss_mb()
    seen = set()
    for i in range(200):
        _, info = env.reset(seed=i)
        sampled = info["env_params"]
        loaded = raw.loaded_geometry()
        for name, value in sampled.items():
            assert loaded[name] == pytest.approx(value, abs=1e-5), (i, name)
        seen.add(tuple(sampled.values()))
        env.step(env.action_space.sample())
    growth = _rss_mb() - before
    assert len(seen) == 200
    assert growth < 50, f"resident memory grew {growth:.1f} MB over 200 rebuilds"
    env.close()


def test_idp_thresholds_scale_with_pole_length():
    env = gym.make("mrpo/InvertedDoublePendulum-v0")
    # Upright start: short poles must not end at once, and the alive reward is ~10 minus penalties.
    for lengths in [(0.5, 0.5), (1.0, 1.0), (0.6, 0.6)]:
        env.reset(
            seed=0, options={"env_params": dict(zip(("pole1_length", "pole2_length"), lengths, strict=True))}
        )
        _, r, term, _, _ = env.step(np.zeros(1, dtype=np.float32))
        assert not term, lengths
        assert 9.0 < r <= 10.0, (lengths, r)
    env.close()
