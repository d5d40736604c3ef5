"""A real multi-node Ray cluster on loopback: separate `ray start` processes.

Every process a node starts inherits a marker in its environment
(``MRPO_TEST_NODE=<cluster-id>-<node>``), so that the test can kill exactly one
node, or everything it started, by PID — never other Ray instances on the machine.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked_pids(prefix: str) -> list[int]:
    pids = []
    needle = f"MRPO_TEST_NODE={prefix}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if any(item.startswith(needle) for item in env.split(b"\0")):
            pids.append(int(entry))
    return pids


def kill_marked(prefix: str, rounds: int = 3) -> int:
    """SIGKILL the processes whose MRPO_TEST_NODE starts with ``prefix``, repeating up to
    ``rounds`` times until none is left (children may appear meanwhile). Returns how many."""
    killed = 0
    for _ in range(rounds):
        pids = _marked_pids(prefix)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        if not pids:
            break
        time.sleep(0.5)
    return killed


class LocalCluster:
    """Nodes with token authentication on (``RAY_AUTH_MODE=token``) and this cluster's own
    token (``RAY_AUTH_TOKEN``): a client without it is refused."""

    def __init__(self, metrics_interval_ms: int = 1000):
        self.id = uuid.uuid4().hex[:8]
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.token = uuid.uuid4().hex + uuid.uuid4().hex
        self.dashboard_port: int | None = None
        # the head's own Ray temp dir: drivers on this cluster stage their files under it
        self.temp_dir = f"/tmp/ray_mrpo_{self.id}"
        self.nodes: dict[str, dict] = {}
        self.base_env = {
            **os.environ,
            # `python` in a Ray job's entrypoint is this environment's (the job runs on the head)
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_metrics_report_interval_ms": str(metrics_interval_ms),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def env(self, node: str | None = None) -> dict:
        env = dict(self.base_env)
        if node is not None:
            env["MRPO_TEST_NODE"] = f"{self.id}-{node}"
        return env

    def _start(self, node: str, args: list[str]) -> None:
        metrics_port = free_port()
        manager_port = free_port()
        agent_port = free_port()  # every node's dashboard agent (the Jobs API's) needs its own
        cmd = [
            RAY,
            "start",
            *args,
            "--num-cpus=1",
            "--node-ip-address=127.0.0.1",
            f"--metrics-export-port={metrics_port}",
            f"--node-manager-port={manager_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            "--disable-usage-stats",
        ]
        out = subprocess.run(cmd, env=self.env(node), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ray start {node} failed:\n{out.stdout}\n{out.stderr}")
        self.nodes[node] = {"metrics_port": metrics_port, "manager_port": manager_port}

    def start_head(self, dashboard: bool = False) -> None:
        """The head node; with ``dashboard`` also Ray's dashboard (and Jobs API) on a free
        port of 127.0.0.1 (``dashboard_url``)."""
        args = ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}"]
        if dashboard:
            self.dashboard_port = free_port()
            args += [
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
            ]
        else:
            args.append("--include-dashboard=false")
        self._start("head", args)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def add_worker(self, name: str = "worker") -> None:
        self._start(name, [f"--address={self.address}"])

    def node_ids(self) -> dict[str, str]:
        """node name -> Ray node id (asked from a short-lived driver)."""
        code = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
            "print(json.dumps([(n['NodeID'], n['NodeManagerPort'], n['Alive']) for n in ray.nodes()]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=self.env(), capture_output=True, text=True, timeout=120
        )
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        by_port = {port: nid for nid, port, alive in rows if alive}
        return {
            name: by_port[n["manager_port"]] for name, n in self.nodes.items() if n["manager_port"] in by_port
        }

    def driver_staging(self, experiment: str) -> list[str]:
        """Tune's live copies of an experiment's trial directories on the driver (a driver
        on the head node). Tune writes ``progress.csv`` there at every result and copies the
        directory to the storage path only every ~10 s and at checkpoints."""
        pattern = os.path.join(self.temp_dir, "session_*", "artifacts", "*", experiment, "driver_artifacts")
        return sorted(glob.glob(pattern))

    def kill(self, node: str) -> int:
        """SIGKILL every process of one node; returns how many."""
        return kill_marked(f"{self.id}-{node}", rounds=1)

    def stop(self) -> None:
        """Kill everything this cluster started (all nodes), and wait until gone."""
        kill_marked(self.id)
        # `ray start --head` records the cluster for auto-connect; forget it as `ray stop` would.
        current = "/tmp/ray/ray_current_cluster"
        try:
            with open(current) as f:
                if f":{self.port}" in f.read():
                    os.remove(current)
        except OSError:
            pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)
