"""The benchmark harness (``benchmarks/``, a package beside ``mrpo_rllib``: pyproject's
``pythonpath``): the tiny mode produces a complete report, with the same optimiser work for
every contender. No timed assertions: speed figures are only checked to be finite and
positive."""

import json
import math

import pytest

from benchmarks import bench, scheduler
from mrpo_rllib.algorithms import MRPOConfig


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_common(r: dict, s: bench.BenchSettings) -> None:
    for key in ("date", "settings", "machine", "versions", "goals", "summary", "memory"):
        assert r[key], key
    assert _positive(r["machine"]["cores"]) and r["machine"]["cpu_model"]
    for dist in ("python", "ray", "torch", "gymnasium", "pybullet"):
        assert r["versions"][dist], dist
    assert r["settings"]["mode"] == "tiny"
    # Our side runs MRPOConfig's default number of minibatches per epoch.
    assert r["settings"]["num_minibatches"] == MRPOConfig().num_minibatches
    assert "minibatch_size" not in r["settings"]

    assert set(r["env_vs_raw"]) == set(s.env_tasks)
    for task, m in r["env_vs_raw"].items():
        for key in ("ours_steps_per_s", "raw_steps_per_s", "ratio"):
            assert _positive(m[key]), (task, key, m)

    assert set(r["selection_share"]) == set(s.train_tasks)
    assert set(r["mrpo_vs_dr_iteration"]) == set(s.train_tasks)
    want = r["settings"]["num_epochs"] * r["settings"]["num_minibatches"]
    for task in s.train_tasks:
        share = r["selection_share"][task]["share"]
        assert _positive(share) and share < 1, share
        assert _positive(r["mrpo_vs_dr_iteration"][task]["ratio"])
        mem = r["memory"][task]
        assert _positive(mem["driver_peak_mb"])
        for n in s.env_runners:
            run = r["runs"][task]["ours"][str(n)]
            assert _positive(run["env_steps_per_s"]) and _positive(run["mean_steps_per_iteration"])
            assert run["gradient_steps_per_iteration"] == want
            peaks = mem["env_runner_peak_mb"][f"dr/{n}_env_runners"]
            assert len(peaks) == n and all(map(_positive, peaks))
        assert r["runs"][task]["mrpo"]["gradient_steps_per_iteration"] == want


def test_tiny_bench_report_is_complete(ray_local, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--tiny", "--out", str(out)]) == 0
    r = json.loads(out.read_text())  # strict JSON: no NaN
    s = bench.BenchSettings(**r["settings"])
    _check_common(r, s)
    tv = r["train_vs_sb3"]
    if not bench.sb3_available():
        assert tv == {"skipped": bench.SB3_MISSING}
        return
    assert set(tv) == set(s.train_tasks)
    k, want = s.num_minibatches, s.num_epochs * s.num_minibatches
    for task, v in tv.items():
        assert set(v["ratio"]) == {f"{n}_env_runners" for n in s.env_runners}
        assert all(map(_positive, v["ratio"].values()))
        assert _positive(v["sb3_reference_steps_per_s"]) and v["sb3_reference"] in v["sb3_steps_per_s"]
        # Same optimiser work: every contender took num_epochs × num_minibatches gradient steps.
        steps = v["gradient_steps_per_iteration"]
        assert set(steps) == {
            *(f"dr/{n}_env_runners" for n in s.env_runners),
            f"mrpo/{s.mrpo_env_runners}_env_runners",
            *(f"sb3/{name}" for name in v["sb3_steps_per_s"]),
        }
        assert set(steps.values()) == {want}, steps
        assert (v["num_epochs"], v["num_minibatches"]) == (s.num_epochs, k)
        # SB3 did the same env work per iteration as ours: its budget is the mean over our DR
        # runs in each round, and it stepped that many env steps, up to the few that give it
        # exactly k minibatches of >= 2 rows (bench.sb3_rollout; at least 2k - 1 rows).
        for name, run in r["runs"][task]["sb3"].items():
            assert run["n_epochs"] == s.num_epochs
            bound = math.lcm(run["n_envs"], k) + run["n_envs"]
            for it in run["iterations"]:
                assert it["gradient_steps"] == want
                assert math.ceil(it["env_steps"] / it["batch_size"]) == k
                assert abs(it["env_steps"] - it["budget_env_steps"]) <= bound or it["env_steps"] <= 2 * k
            timed = run["iterations"][s.warmup_iterations :]
            budget = sum(it["budget_env_steps"] for it in timed) / len(timed)
            assert budget == pytest.approx(v["ours_mean_steps_per_iteration"], abs=0.5), name
    assert "env_vs_raw" in r["summary"] and "train_vs_sb3" in r["summary"]


def test_tiny_bench_without_sb3_records_skip(ray_local, monkeypatch):
    monkeypatch.setattr(scheduler, "sb3_available", lambda: False)
    r = bench.bench("tiny", train_tasks=("CartPole",), env_tasks=("InvertedPendulum",), env_steps=50)
    s = bench.BenchSettings(**r["settings"])
    _check_common(r, s)
    assert r["train_vs_sb3"] == {"skipped": bench.SB3_MISSING}


def test_bench_without_sb3_fails_clearly(monkeypatch, capsys):
    monkeypatch.setattr(scheduler, "sb3_available", lambda: False)
    assert bench.main(["--quick", "--out", "unused.json"]) == 2  # python -m benchmarks.bench
    err = capsys.readouterr().err
    assert "stable-baselines3 not installed" in err and "requirements-bench.txt" in err


@pytest.mark.parametrize("k", [1, 4, 32])
@pytest.mark.parametrize("n_envs", [1, 2, 3, 16])
def test_sb3_rollout_gives_exactly_k_minibatches(k, n_envs):
    """SB3's own RolloutBuffer yields exactly k minibatches per epoch for the rollout chosen,
    and no rollout nearer the budget would."""
    buffers = pytest.importorskip("stable_baselines3.common.buffers")
    gym = pytest.importorskip("gymnasium")
    obs, act = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,))
    for budget in (2 * k, 50, 95, 100, 257, 1000, 4321):
        n_steps, batch_size = bench.sb3_rollout(budget, n_envs, k)
        assert batch_size == math.ceil(n_steps * n_envs / k) >= 2
        buf = buffers.RolloutBuffer(n_steps, obs, act, n_envs=n_envs)
        buf.full = True  # filled (zeros): only the slicing is under test
        assert sum(1 for _ in buf.get(batch_size)) == bench.sb3_minibatches(n_steps, n_envs, batch_size) == k
        center = max(1, round(budget / n_envs))
        d = abs(n_steps - center)
        for other in range(max(1, center - d), center + d + 1):
            if abs(other - center) < d or (abs(other - center) == d and other < n_steps):  # nearer
                b = math.ceil(other * n_envs / k)
                assert b < 2 or math.ceil(other * n_envs / b) != k, (budget, other, n_steps)
        if budget >= 2 * k:
            assert abs(n_steps * n_envs - budget) <= math.lcm(n_envs, k) + n_envs
