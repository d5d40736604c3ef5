"""Machine probes: the CPU, versions, memory (``VmHWM``/``VmRSS`` of a process and of an
env runner actor) and the load average, recorded beside every figure.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform


# -- machine, versions, memory -------------------------------------------------------------
def machine_info() -> dict:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("ray", "torch", "gymnasium", "pybullet", "numpy", "stable-baselines3", "mrpo_rllib"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def proc_memory(pid: int | str = "self") -> dict:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MB."""
    out = {"pid": os.getpid() if pid == "self" else int(pid)}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmHWM", "VmRSS"):
                    out[f"{key}_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError as e:
        out["error"] = str(e)
    return out


def reset_peak_memory() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def runner_memory(runner) -> dict:
    """Run inside an env runner actor: its PID, peak memory and torch threads."""
    import torch

    return {
        "worker_index": getattr(runner, "worker_index", None),
        "torch_threads": torch.get_num_threads(),
        **proc_memory("self"),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
