"""``mrpo bench``: the tiny mode produces a complete report. No timed assertions: speed
figures are only checked to be finite and positive."""

import json
import math

import pytest

from mrpo_rllib import bench, cli


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_common(r: dict, s: bench.BenchSettings) -> None:
    for key in ("date", "settings", "machine", "versions", "goals", "summary", "memory"):
        assert r[key], key
    assert _positive(r["machine"]["cores"]) and r["machine"]["cpu_model"]
    for dist in ("python", "ray", "torch", "gymnasium", "pybullet"):
        assert r["versions"][dist], dist
    assert r["settings"]["mode"] == "tiny"

    assert set(r["env_vs_raw"]) == set(s.env_tasks)
    for task, m in r["env_vs_raw"].items():
        for key in ("ours_steps_per_s", "raw_steps_per_s", "ratio"):
            assert _positive(m[key]), (task, key, m)

    assert set(r["selection_share"]) == set(s.train_tasks)
    assert set(r["mrpo_vs_dr_iteration"]) == set(s.train_tasks)
    for task in s.train_tasks:
        share = r["selection_share"][task]["share"]
        assert _positive(share) and share < 1, share
        assert _positive(r["mrpo_vs_dr_iteration"][task]["ratio"])
        mem = r["memory"][task]
        assert _positive(mem["driver_peak_mb"])
        for n in s.env_runners:
            run = r["runs"][task]["ours"][str(n)]
            assert _positive(run["env_steps_per_s"]) and _positive(run["mean_steps_per_iteration"])
            peaks = mem["env_runner_peak_mb"][f"dr/{n}_env_runners"]
            assert len(peaks) == n and all(map(_positive, peaks))


def test_tiny_bench_report_is_complete(ray_local, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--tiny", "--out", str(out)]) == 0
    r = json.loads(out.read_text())  # strict JSON: no NaN
    s = bench.MODES["tiny"]
    _check_common(r, s)
    tv = r["train_vs_sb3"]
    if not bench.sb3_available():
        assert tv == {"skipped": bench.SB3_MISSING}
        return
    assert set(tv) == set(s.train_tasks)
    for v in tv.values():
        assert set(v["ratio"]) == {f"{n}_env_runners" for n in s.env_runners}
        assert all(map(_positive, v["ratio"].values()))
        assert _positive(v["sb3_reference_steps_per_s"]) and v["sb3_reference"] in v["sb3_steps_per_s"]
        # SB3 did the same work per iteration as ours (mean over our DR runs, per round).
        ours = v["ours_mean_steps_per_iteration"]
        assert v["sb3_mean_steps_per_iteration"] == pytest.approx(ours, abs=max(s.sb3_variants)[1] + 1)
    assert "env_vs_raw" in r["summary"] and "train_vs_sb3" in r["summary"]


def test_tiny_bench_without_sb3_records_skip(ray_local, monkeypatch):
    monkeypatch.setattr(bench, "sb3_available", lambda: False)
    r = bench.bench("tiny", train_tasks=("CartPole",), env_tasks=("InvertedPendulum",), env_steps=50)
    s = bench.BenchSettings(**r["settings"])
    _check_common(r, s)
    assert r["train_vs_sb3"] == {"skipped": bench.SB3_MISSING}


def test_bench_without_sb3_fails_clearly(monkeypatch, capsys):
    monkeypatch.setattr(bench, "sb3_available", lambda: False)
    assert cli.main(["bench", "--quick", "--out", "unused.json"]) == 2
    err = capsys.readouterr().err
    assert "stable-baselines3 not installed" in err and "requirements-bench.txt" in err
