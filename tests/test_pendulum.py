"""InvertedPendulum and InvertedDoublePendulum (mrpo_rllib/envs/pendulum.py)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data
import pytest
from gymnasium.utils.env_checker import check_env

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import get_task
from mrpo_rllib.envs.pendulum import PendulumEnv
from task_ranges import range_corners

TASKS = ["InvertedPendulum", "InvertedDoublePendulum"]


def _rollout(env, seed, actions, options=None, stop=True):
    obs, _ = env.reset(seed=seed, options=options)
    out, rewards, ends = [obs], [], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append(obs)
        rewards.append(r)
        ends.append(term)
        if stop and (term or trunc):
            break
    return np.array(out), np.array(rewards), np.array(ends)


def _actions(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 1)).astype(np.float32)


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # (-inf, inf) by design
@pytest.mark.parametrize("task", TASKS)
def test_check_env_and_spaces(task):
    env = gym.make(f"mrpo/{task}-v0")
    check_env(env.unwrapped, skip_render_check=True)
    dim = {"InvertedPendulum": 5, "InvertedDoublePendulum": 9}[task]
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (dim,)
    assert set(info["env_params"]) == set(get_task(task).param_names)
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert type(r) is float and type(term) is bool and trunc is False
    assert info["env_params"] == env.unwrapped.env_params
    env.close()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("params", [None, "nominal"])  # geometry reloaded / state restored
def test_same_seed_bit_identical_trajectory(task, params):
    kwargs = {} if params is None else {"params": params}
    env = gym.make(f"mrpo/{task}-v0", **kwargs)
    actions = _actions(300)
    a = _rollout(env, 42, actions)
    # Something else in between, long enough to hit the slider's limits.
    env.reset(seed=7)
    for act in np.ones((150, 1), np.float32):
        if env.step(act)[2]:
            env.reset()
    b = _rollout(env, 42, actions)
    fresh = gym.make(f"mrpo/{task}-v0", **kwargs)  # and in another instance
    c = _rollout(fresh, 42, actions)
    for x, y in zip(a, b, strict=True):
        assert x.tobytes() == y.tobytes()
    for x, y in zip(a, c, strict=True):
        assert x.tobytes() == y.tobytes()
    env.close()
    fresh.close()


@pytest.mark.parametrize("task", TASKS)
def test_different_seeds_sample_different_parameters_and_starts(task):
    env = gym.make(f"mrpo/{task}-v0")
    seen = [tuple(env.reset(seed=s)[1]["env_params"].values()) for s in range(5)]
    assert len(set(seen)) == 5
    low, high = get_task(task).range_array("train")
    assert all(np.all((low <= p) & (p <= high)) for p in np.array(seen))
    starts = [env.reset(seed=s, options={"env_params": "nominal"})[0].tobytes() for s in range(5)]
    assert len(set(starts)) == 5  # the initial noise depends on the seed
    env.close()


# Two values per parameter, the others nominal; the trajectories must differ.
EFFECTS = {
    "InvertedPendulum": {"cart_size": (0.05, 0.25), "pole_length": (0.5, 2.0)},
    "InvertedDoublePendulum": {"pole1_length": (0.5, 1.0), "pole2_length": (0.5, 1.0)},
}


@pytest.mark.parametrize("task, name", [(t, n) for t, d in EFFECTS.items() for n in d])
def test_every_parameter_changes_the_trajectory(task, name):
    spec = get_task(task)
    env = gym.make(spec.env_id)
    nominal = {p.name: p.nominal for p in spec.params}
    actions = _actions(30, seed=1) * 0.3
    trajectories = [
        _rollout(env, 3, actions, {"env_params": {**nominal, name: v}}, stop=False)[0]
        for v in EFFECTS[task][name]
    ]
    assert not np.allclose(*trajectories, atol=1e-4), f"{name} did not change the trajectory"
    env.close()


def test_nominal_geometry_is_pybullet_data_file():
    """At the nominal values the MJCF is pybullet_data's file minus the static geoms."""
    for task in TASKS:
        env = PendulumEnv(task)
        with open(os.path.join(pybullet_data.getDataPath(), "mjcf", env.pendulum.xml)) as f:
            original = f.read()
        assert "<default>" in original and '<geom contype="0"' in original  # nothing collides
        for geom in env.pendulum.static_geoms:
            assert original.count(geom) == 1 and "contype" not in geom
            original = original.replace(geom, "")
        assert env._xml(tuple(p.nominal for p in env.task.params)) == original
        env.close()


@pytest.mark.parametrize("task", TASKS)
def test_geometry_rebuilt_every_reset_without_stale_cache_or_leak(task):
    env = gym.make(f"mrpo/{task}-v0")
    raw = env.unwrapped
    for _ in range(20):  # warm-up
        env.reset()
    before = _rss_mb()
    seen = set()
    for i in range(200):
        # Alternate the training and testing ranges: every reset changes the geometry.
        which = "train" if i % 2 else "test"
        low, high = get_task(task).range_array(which)
        params = dict(zip(raw.param_names, np.random.default_rng(i).uniform(low, high), strict=True))
        _, info = env.reset(seed=i, options={"env_params": params})
        assert info["env_params"] == pytest.approx(params)
        loaded = raw.loaded_geometry()
        for name, value in params.items():
            assert loaded[name] == pytest.approx(value, abs=1e-5), (i, name)
        if task == "InvertedDoublePendulum":  # the upper hinge sits on the lower pole
            assert loaded["hinge2_height"] == pytest.approx(params["pole1_length"], abs=1e-5)
        seen.add(tuple(params.values()))
        env.step(env.action_space.sample())
    growth = _rss_mb() - before
    assert len(seen) == 200
    assert growth < 50, f"resident memory grew {growth:.1f} MB over 200 rebuilds"
    env.close()


def test_unchanged_geometry_restores_instead_of_reloading(monkeypatch):
    env = PendulumEnv("InvertedDoublePendulum", "nominal")
    env.reset(seed=0)
    loads = []
    monkeypatch.setattr(env, "_load", lambda g: loads.append(g))
    for s in range(5):
        env.reset(seed=s)
    assert loads == []
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_corners_of_training_and_testing_ranges_are_finite(task):
    spec = get_task(task)
    env = gym.make(spec.env_id)
    rng = np.random.default_rng(0)
    for which in ("train", "test"):
        for params in range_corners(task, which):
            obs, info = env.reset(seed=1, options={"env_params": params})
            assert np.isfinite(obs).all()
            assert info["env_params"] == pytest.approx(params)
            for _ in range(1000):
                obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, (1,)).astype(np.float32))
                assert np.isfinite(obs).all() and np.isfinite(r), (which, params)
                assert info["env_params"] == pytest.approx(params)
                if term or trunc:
                    obs, info = env.reset(options={"env_params": params})
                    assert np.isfinite(obs).all()
    env.close()


def test_idp_thresholds_scale_with_pole_lengths():
    env = PendulumEnv("InvertedDoublePendulum")
    for l1, l2 in [(0.5, 0.5), (0.6, 0.6), (1.0, 1.0), (1.1, 1.1), (0.5, 1.1)]:
        env.reset(seed=0, options={"env_params": {"pole1_length": l1, "pole2_length": l2}})
        assert env._end == pytest.approx((l1 + l2) / 1.2) and env._target == pytest.approx(l1 + l2 + 0.8)
        # Upright, still: not ended, and the reward is the same 10 - 0.8² for every geometry.
        for j in env._hinges:
            pb.resetJointState(env._body, j, 0.0, 0.0, physicsClientId=env._cid)
        _, r, term, _, _ = env.step(np.zeros(1, np.float32))
        assert not term
        assert r == pytest.approx(10 - 0.8**2, abs=1e-3)
    # Roboschool's constants exactly at the nominal 0.6 m poles.
    env.reset(seed=0, options={"env_params": "nominal"})
    assert (env._end, env._target, env._half_l2) == (1.0, 2.0, 0.3)
    env.close()


def test_ip_ends_beyond_0_2_rad():
    env = PendulumEnv("InvertedPendulum", "nominal")
    env.reset(seed=0)
    steps = 0
    while True:
        _, r, term, _, _ = env.step(np.ones(1, np.float32))
        steps += 1
        assert r == 1.0
        theta = pb.getJointState(env._body, env._hinges[0], physicsClientId=env._cid)[0]
        assert term == (abs(theta) > 0.2)
        if term:
            break
    assert 1 < steps < 100
    env.close()


def test_non_finite_action_is_rejected_and_actions_are_clipped():
    env = PendulumEnv("InvertedPendulum", "nominal")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], np.float32))
    a = _rollout(env, 4, np.full((5, 1), 1.0, np.float32))[0]
    b = _rollout(env, 4, np.full((5, 1), 7.0, np.float32))[0]
    assert a.tobytes() == b.tobytes()
    env.close()


def test_close_removes_the_temporary_directory_and_disconnects():
    env = PendulumEnv("InvertedPendulum")
    env.reset(seed=0)
    tmpdir, cid = Path(env._tmpdir), env._cid
    assert tmpdir.is_dir()
    env.close()
    env.close()  # idempotent
    assert not tmpdir.exists() and not pb.isConnected(cid)


# pybullet_envs cannot be imported as such (it needs the old gym and pkg_resources);
# with small stand-ins for those two, its pendulum envs run, and ours must match them.
REFERENCE = textwrap.dedent(
    """
    import os, sys, types
    import numpy as np
    import gymnasium, gymnasium.spaces, gymnasium.utils.seeding
    import pybullet_data
    gym = types.ModuleType("gym")
    gym.__version__ = "0.21.0"
    gym.Env, gym.spaces = gymnasium.Env, gymnasium.spaces
    gym.utils = types.ModuleType("gym.utils")
    gym.utils.seeding = gymnasium.utils.seeding
    pkg = types.ModuleType("pkg_resources")
    pkg.parse_version = lambda v: tuple(int(x) for x in v.split("."))
    d = os.path.join(os.path.dirname(os.path.dirname(pybullet_data.__file__)), "pybullet_envs")
    envs = types.ModuleType("pybullet_envs")
    envs.__path__ = [d]
    sys.modules.update({"gym": gym, "gym.spaces": gymnasium.spaces, "gym.utils": gym.utils,
                        "gym.utils.seeding": gymnasium.utils.seeding, "pkg_resources": pkg,
                        "pybullet_envs": envs})
    sys.path.insert(0, d)
    from pybullet_envs.gym_pendulum_envs import (
        InvertedDoublePendulumBulletEnv, InvertedPendulumBulletEnv)
    from mrpo_rllib.envs.pendulum import PendulumEnv
    for cls, task in ((InvertedPendulumBulletEnv, "InvertedPendulum"),
                      (InvertedDoublePendulumBulletEnv, "InvertedDoublePendulum")):
        ref, ours = cls(), PendulumEnv(task, "nominal")
        rng = np.random.default_rng(5)
        steps = 0
        for ep in range(8):
            ref.np_random, _ = gymnasium.utils.seeding.np_random(ep)
            ref.robot.np_random = ref.np_random
            ref.np_random.random(2)  # ours draws the two parameters first
            r, (o, _) = ref.reset(), ours.reset(seed=ep)
            assert r.astype(np.float32).tobytes() == o.tobytes(), (task, ep)
            for t in range(1000):
                a = rng.uniform(-1.5, 1.5, 1).astype(np.float32)
                rs, rr, rd, _ = ref.step(a.copy())
                os_, orr, od, _, _ = ours.step(a)
                steps += 1
                assert rs.astype(np.float32).tobytes() == os_.tobytes(), (task, ep, t)
                assert (rr, bool(rd)) == (orr, od), (task, ep, t, rr, orr)
                if od:
                    break
        print(task, steps)
    """
)


def test_nominal_reproduces_pybullet_envs_bit_for_bit():
    out = subprocess.run(
        [sys.executable, "-c", REFERENCE], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(line.split() for line in out.stdout.splitlines() if line.startswith("Inverted"))
    assert set(counts) == set(TASKS) and all(int(n) > 50 for n in counts.values())
