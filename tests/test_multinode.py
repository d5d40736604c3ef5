"""Multi-node for real on one machine: head + worker as separate `ray start` processes.

The smoke sweep runs against the cluster; trials run on both nodes; the worker node
is killed mid-sweep and every trial still finishes, with continuous progress rows.
"""

import os
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
import yaml

from local_cluster import LocalCluster
from mrpo_rllib.experiments import load_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MRPO = os.path.join(os.path.dirname(sys.executable), "mrpo")
SMOKE = os.path.join(ROOT, "tune_configs", "smoke.yaml")


@pytest.fixture
def dashboard_cluster():
    """Head (with the dashboard and Jobs API) and worker, token authentication on."""
    c = LocalCluster()
    try:
        c.start_head(dashboard=True)
        c.add_worker()
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster():
    c = LocalCluster()
    try:
        c.start_head()
        c.add_worker()
        yield c
    finally:
        c.stop()


def _progress(exp_dir):
    out = {}
    if not os.path.isdir(exp_dir):
        return out
    for name in os.listdir(exp_dir):
        path = os.path.join(exp_dir, name, "progress.csv")
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            try:
                out[name] = pd.read_csv(path)
            except (pd.errors.EmptyDataError, pd.errors.ParserError):
                pass
    return out


# The smoke sweep, longer (8 iterations of 20 episodes) and checkpointing every 4
# iterations, so that the trial frozen at iteration 6 on the worker is retried from its
# checkpoint at iteration 4 and redoes iterations 5 and 6 on the head.
ITERATIONS, CHECKPOINT_EVERY, EPISODES, PAUSE_AT = 8, 4, 20, 6
DRIVER = os.path.join(ROOT, "tests", "pausing_driver.py")


def _smoke_copy(tmp_path, **changes):
    spec = yaml.safe_load(open(SMOKE))
    spec.update(changes)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_survives_losing_a_worker_node(cluster, tmp_path):
    """A trial on the worker is frozen at iteration 6 by the driver (tests/pausing_driver.py),
    the worker node is killed, and the sweep still finishes every trial; the killed trial
    resumed from its checkpoint at iteration 4 (its rows 1-4 are the worker's), not from
    scratch, and redid 5-8 on the head."""
    nodes = cluster.node_ids()
    assert set(nodes) == {"head", "worker"}
    config = _smoke_copy(
        tmp_path,
        budget={"iterations": ITERATIONS},
        checkpoint_every=CHECKPOINT_EVERY,
        training={**yaml.safe_load(open(SMOKE))["training"], "episodes_per_iteration": EPISODES},
    )
    exp = load_experiment(config)
    storage = tmp_path / "storage"
    paused, go = tmp_path / "paused", tmp_path / "go"
    env = {**cluster.env(), "RAY_ADDRESS": cluster.address}
    log = open(tmp_path / "tune.log", "w")
    argv = [
        sys.executable,
        DRIVER,
        str(config),
        str(storage),
        nodes["worker"],
        str(PAUSE_AT),
        str(paused),
        str(go),
    ]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None and not paused.exists():
            time.sleep(0.2)
        assert paused.exists(), (
            "no trial reached iteration 6 on the worker node: " + (tmp_path / "tune.log").read_text()[-3000:]
        )
        killed = paused.read_text()
        assert cluster.kill("worker") > 0
        go.write_text("")
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "tune.log").read_text()
    assert proc.returncode == 0, output[-3000:]
    progress = _progress(storage / exp.name)
    assert sorted(progress) == sorted(t.name for t in exp.trials())
    seen_nodes = set()
    for name, df in progress.items():
        # every trial complete; rows continuous: no lost or duplicated iteration after the retry
        assert df["training_iteration"].tolist() == list(range(1, ITERATIONS + 1)), name
        seen_nodes |= set(df["node_id"])
        ledger = pd.read_csv(storage / exp.name / name / "episodes.csv")
        assert ledger.groupby("iteration").size().tolist() == [EPISODES] * ITERATIONS
    assert {nodes["head"], nodes["worker"]} <= seen_nodes  # trials ran on both nodes
    rows = progress[killed].set_index("training_iteration")["node_id"]
    # resumed from its checkpoint at iteration 4: those rows are still the lost worker's ...
    assert set(rows.loc[1:CHECKPOINT_EVERY]) == {nodes["worker"]}, rows
    # ... and everything after it was redone on the head
    assert set(rows.loc[CHECKPOINT_EVERY + 1 :]) == {nodes["head"]}, rows


def test_mrpo_metrics_exported_to_prometheus(cluster, tmp_path):
    env = {**cluster.env(), "RAY_ADDRESS": cluster.address}
    proc = subprocess.Popen(
        [
            MRPO,
            "train",
            "--iterations",
            "30",
            "--set",
            "training.episodes_per_iteration=10",
            "--out",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    # the trial runs on either node; each node exports its own processes' metrics
    urls = [f"http://127.0.0.1:{n['metrics_port']}/metrics" for n in cluster.nodes.values()]
    found = ""
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not found:
            for url in urls:
                try:
                    text = urllib.request.urlopen(url, timeout=5).read().decode()
                except OSError:
                    text = ""
                lines = [ln for ln in text.splitlines() if ln.startswith("ray_mrpo_return_worst10")]
                if lines and any("mrpo__CartPole" in ln for ln in lines):
                    found = "\n".join(lines)
                    break
            time.sleep(1)
    finally:
        proc.kill()
        proc.wait()
    assert found, "ray_mrpo_return_worst10 never appeared on the metrics endpoint"
    assert 'algo="mrpo"' in found and 'task="CartPole"' in found


def _wait_for_dashboard(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/version", timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers (401 without a token): up
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the dashboard at {url} never came up")


def test_sweep_submitted_as_a_ray_job_with_the_token_only(dashboard_cluster, tmp_path):
    """``mrpo tune FILE`` with RAY_ADDRESS=http://<dashboard> submits the sweep as a Ray job:
    refused without the cluster's token, run to the end with it, every trial complete."""
    c = dashboard_cluster
    _wait_for_dashboard(c.dashboard_url)
    storage = tmp_path / "storage"
    config = os.path.relpath(SMOKE, ROOT)  # the job runs from the uploaded repository
    command = [MRPO, "tune", config, "--storage", str(storage), "--set", "budget={iterations: 2}"]
    home = tmp_path / "home"  # no ~/.ray/auth_token to fall back on
    home.mkdir()
    without = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    without.update(RAY_ADDRESS=c.dashboard_url, HOME=str(home))
    refused = subprocess.run(command, env=without, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "submitting to" in refused.stderr and ("401" in refused.stderr or "Unauthorized" in refused.stderr)
    assert not storage.exists()

    with_token = {**without, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": c.token}
    done = subprocess.run(command, env=with_token, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCEEDED" in done.stdout and "sweep smoke: 6 trials, 6 finished" in done.stdout
    exp = load_experiment(SMOKE)
    progress = _progress(storage / exp.name)
    assert sorted(progress) == sorted(t.name for t in exp.trials())
    assert all(df["training_iteration"].tolist() == [1, 2] for df in progress.values())
