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


# The smoke sweep, long enough to be caught mid-run (its 3 iterations of 10 episodes take
# well under a second: M = 50 and 16 iterations take several seconds per trial), and
# checkpointing every 4 iterations, so that the killed trial redoes the iterations it
# reported after its last checkpoint.
ITERATIONS, CHECKPOINT_EVERY, EPISODES = 16, 4, 50


def test_sweep_survives_losing_a_worker_node(cluster, tmp_path):
    nodes = cluster.node_ids()
    assert set(nodes) == {"head", "worker"}
    spec = yaml.safe_load(open(SMOKE))
    spec.update(
        budget={"iterations": ITERATIONS}, checkpoint_every=CHECKPOINT_EVERY, episodes_per_iteration=EPISODES
    )
    config = tmp_path / "smoke.yaml"
    config.write_text(yaml.safe_dump(spec))
    exp = load_experiment(config)
    iterations = exp.budget.iterations
    storage = tmp_path / "storage"
    env = {**cluster.env(), "RAY_ADDRESS": cluster.address}
    log = open(tmp_path / "tune.log", "w")
    proc = subprocess.Popen(
        [MRPO, "tune", str(config), "--storage", str(storage)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        killed_during = None
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            # the driver's live copy: the storage copy is only refreshed every ~10 s
            live = {}
            for staging in cluster.driver_staging(exp.name):
                live.update(_progress(staging))
            for name, df in live.items():
                on_worker = "node_id" in df and (df["node_id"] == nodes["worker"]).any()
                # past its first checkpoint but not at the next one: the rows up to that
                # checkpoint stay the worker's, the ones after it will be redone on the head
                if on_worker and CHECKPOINT_EVERY < len(df) < iterations and len(df) % CHECKPOINT_EVERY:
                    killed_during, rows_at_kill = name, len(df)
                    break
            if killed_during:
                assert cluster.kill("worker") > 0
                break
            time.sleep(0.2)
        assert killed_during, (
            f"no trial was seen running on the worker node; staging: {cluster.driver_staging(exp.name)}"
        )
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
        assert df["training_iteration"].tolist() == list(range(1, iterations + 1)), name
        seen_nodes |= set(df["node_id"])
        ledger = pd.read_csv(storage / exp.name / name / "episodes.csv")
        assert ledger.groupby("iteration").size().tolist() == [exp.episodes_per_iteration] * iterations
    assert {nodes["head"], nodes["worker"]} <= seen_nodes  # trials ran on both nodes
    killed = progress[killed_during]
    assert killed["node_id"].iloc[-1] == nodes["head"]  # finished after the retry on the head
    # the retry really redid iterations: the rows after its last checkpoint come from the head
    redone = killed[killed["training_iteration"] > rows_at_kill // CHECKPOINT_EVERY * CHECKPOINT_EVERY]
    assert set(redone["node_id"]) == {nodes["head"]}, killed[["training_iteration", "node_id"]]


def test_mrpo_metrics_exported_to_prometheus(cluster, tmp_path):
    env = {**cluster.env(), "RAY_ADDRESS": cluster.address}
    proc = subprocess.Popen(
        [
            MRPO,
            "train",
            "--iterations",
            "30",
            "--episodes-per-iteration",
            "10",
            "--num-env-runners",
            "0",
            "--out",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{cluster.nodes['head']['metrics_port']}/metrics"
    found = ""
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
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
