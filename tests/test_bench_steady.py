"""The steady-state benchmark (benchmarks/steady.py) end to end, in its smallest form: a
cached CartPole policy (trained a few hundred steps only), this checkout against itself as
"old" and against SB3, one timed round. No timed assertions: the figures must be complete
and positive, the optimiser work equal, and two runs of the same code from the same
checkpoint and seed give the same numbers."""

import json
import math

from benchmarks import steady


def test_steady_benchmark_reports_every_figure(tmp_path):
    out = tmp_path / "steady.json"
    rc = steady.main(
        [
            "--tasks", "CartPole",
            "--rounds", "1",
            "--ref", "HEAD",
            "--cache", str(tmp_path / "cache"),
            "--train-steps", "300",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    task = report["tasks"]["CartPole"]
    assert task["policy"]["env_steps"] >= 300  # trained and cached in this run
    assert set(task["figures"]) == {"new", "old", "sb3"}
    for name, f in task["figures"].items():
        for key in ("us_per_step", "sample_us_per_step", "learn_us_per_step"):
            assert math.isfinite(f[key]) and f[key] > 0, (name, key)
        assert f["gradient_steps_per_iteration"] == [320], name  # 10 epochs x 32 minibatches each
    assert 0 < task["figures"]["new"]["env_us_per_step"] < task["figures"]["new"]["sample_us_per_step"]
    assert task["same_numbers_as_old"] is True
    assert set(task["ratios"]) == {"new_over_old", "new_over_sb3"}
    assert report["ref"] and len(report["ref"]) == 40
