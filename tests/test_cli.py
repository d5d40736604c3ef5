"""The command line's error paths: bad input is refused before anything is written, a resume
needs something to resume, and a failed run is a failing exit code."""

import os
import signal
import subprocess
import sys
import time

import pytest

from local_cluster import kill_marked
from mrpo_rllib.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MRPO = os.path.join(os.path.dirname(sys.executable), "mrpo")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--task", "Hopper", "--set", "kappa=[{start: -1, end: 2}]"],
            "key 'kappa': kappa_start must be a finite number >= 0, got -1",
        ),
        (["--set", "training.lr=-0.1"], "key 'training.lr': lr must be a number > 0, got -0.1"),
        (["--set", "episodes_per_iteration"], "--set 'episodes_per_iteration': expected key=value"),
        (["--set", "kappa=[1, 2"], "value is not valid YAML"),
        (["--set", "colour=blue"], "key 'colour': Extra inputs are not permitted"),
        (["--task", "Humanoid"], "unknown task 'Humanoid'"),
    ],
)
def test_bad_train_input_is_refused_and_nothing_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["train", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # not even an empty run directory


def test_resume_needs_something_to_resume(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert (
        "--resume: no earlier `mrpo train` run of mrpo__CartPole__kappa0.5-2__seed0"
        in capsys.readouterr().err
    )
    assert (
        main(
            ["tune", os.path.join(ROOT, "tune_configs", "smoke.yaml"), "--storage", str(tmp_path), "--resume"]
        )
        == 2
    )
    assert "--resume: nothing to resume at" in capsys.readouterr().err
    assert not (tmp_path / "smoke").exists()


def test_bad_sweep_file_and_override(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ntask: CartPole\nalgorithms: [dr]\nseeds: [0]\nbudget: {iterations: 0}\n")
    assert main(["tune", str(bad), "--storage", str(tmp_path / "s")]) == 2
    assert "key 'budget.iterations'" in capsys.readouterr().err
    smoke = os.path.join(ROOT, "tune_configs", "smoke.yaml")
    assert main(["tune", smoke, "--storage", str(tmp_path / "s"), "--set", "training.num_epochs=0"]) == 2
    assert "key 'training.num_epochs': num_epochs must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _trial_actor_pids(marker: str) -> list[int]:
    """PIDs of the processes running the MRPO trial started under ``marker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::MRPO") and f"MRPO_TEST_NODE={marker}".encode() in env:
            pids.append(int(entry))
    return pids


def test_a_failed_run_exits_with_1(tmp_path):
    """The trial's process is killed mid-run with no retries left: `mrpo train` says so and
    exits 1 (the summary of a run that did not finish is not written)."""
    marker = f"cli-fail-{os.getpid()}"
    env = {**os.environ, "MRPO_TEST_NODE": marker}
    env.pop("RAY_ADDRESS", None)
    cmd = [MRPO, "train", "--iterations", "500", "--out", str(tmp_path), "--set", "max_failures=0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(tmp_path.glob("train-*/*/progress.csv")):
            time.sleep(0.5)
        pids = _trial_actor_pids(marker)
        assert pids, "the trial never started"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_marked(marker)
    assert proc.returncode == 1, out[-2000:] + err[-2000:]
    assert "mrpo train: the run failed" in err
    (run,) = tmp_path.glob("train-*/mrpo__CartPole__kappa0.5-2__seed0")
    assert not (run / "report.md").exists()
