"""Run directories: naming, saved config and command, progress table, curves.

Used by ``mrpo train`` and by Tune trials alike, so a run directory always
looks the same: ``{algo}__{task}__kappa{k}__seed{s}/`` with ``config.json``,
``command.txt``, ``progress.csv``, ``episodes.csv``, ``curves.png``, ``checkpoint/``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

ALGOS = ("mrpo", "epopt", "dr")


def _num(x: float) -> str:
    return f"{x:g}"


def kappa_label(algo: str, kappa_start: float, kappa_end: float) -> str:
    """``"0.25-2"`` for a rising schedule, ``"5"`` for a fixed κ, ``"none"`` for EPOpt/DR."""
    if algo != "mrpo":
        return "none"
    if kappa_start == kappa_end:
        return _num(kappa_start)
    return f"{_num(kappa_start)}-{_num(kappa_end)}"


def run_name(algo: str, task: str, kappa: str, seed: int, setting: str = "") -> str:
    """``{algo}__{task}__kappa{k}__seed{s}``, plus ``__{setting}`` for a named setting of a sweep."""
    name = f"{algo}__{task}__kappa{kappa}__seed{seed}"
    return f"{name}__{setting}" if setting else name


def flatten(result: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested result dict → flat dict with ``sep``-joined keys; non-scalars dropped."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            out[name] = value.item()
    return out


def save_config(run_dir: str, config: Mapping[str, Any]) -> None:
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True, default=str)


def save_command(run_dir: str, argv: list[str] | None = None) -> str:
    """Write ``command.txt``; returns the command."""
    argv = sys.argv if argv is None else argv
    command = shlex.join(["mrpo", *argv[1:]] if argv and argv[0].endswith("mrpo") else argv)
    with open(os.path.join(run_dir, "command.txt"), "w") as f:
        f.write(command + "\n")
    return command


def plot_curves(progress_csv: str, out_png: str, title: str = "") -> None:
    """Average and worst-10% return per iteration, from a ``progress.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(progress_csv)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    x = df["training_iteration"]
    ax.plot(x, df["mrpo/return_mean"], label="average return")
    ax.plot(x, df["mrpo/return_worst10"], label="10%-worst return")
    ax.set_xlabel("iteration")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def fmt_number(x: float | None, digits: int = 1) -> str:
    """A float with ``digits`` decimals; "–" for None, NaN or inf."""
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def md_table(df, floatfmt: int = 2) -> str:
    """A DataFrame as a markdown table (floats with ``floatfmt`` decimals)."""
    if df.empty:
        return "(none)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in zip(*(df[c].tolist() for c in cols), strict=True):  # per column: ints stay ints
        cells = [fmt_number(v, floatfmt) if isinstance(v, float) else str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(run_dir: str, progress, title: str, command: str = "") -> str:
    """``report.md`` of one run: its command, ``curves.png`` and a table of every iteration
    of ``progress`` (the run's progress.csv as a DataFrame)."""
    cols = {
        "training_iteration": "iteration",
        "num_env_steps_sampled_lifetime": "env steps",
        "mrpo/return_mean": "average",
        "mrpo/return_worst10": "10%-worst",
        "mrpo/return_min": "min",
        "mrpo/kept_fraction": "kept",
        "mrpo/kappa": "κ",
        "time_this_iter_s": "seconds",
    }
    t = progress[[c for c in cols if c in progress]].rename(columns=cols)
    t = t.astype({c: "int64" for c in ("iteration", "env steps") if c in t})  # RLlib logs steps as floats
    last = t.tail(min(5, len(t)))
    text = "\n".join(
        [
            f"# {title}",
            "",
            f"Command: `{command}`" if command else "",
            "",
            f"Last {len(last)} iterations: average return {last['average'].mean():.1f}, "
            f"10%-worst {last['10%-worst'].mean():.1f}.",
            "",
            "![curves](curves.png)",
            "",
            md_table(t),
        ]
    )
    path = os.path.join(run_dir, "report.md")
    with open(path, "w") as f:
        f.write(text)
    return path


def fmt_iteration(result: Mapping[str, Any], seconds: float) -> str:
    """One readable line per iteration."""
    m = result["mrpo"]
    kappa = m["kappa"]
    k = "  -  " if kappa is None or (isinstance(kappa, float) and math.isnan(kappa)) else f"{kappa:5.2f}"
    steps = result.get("num_env_steps_sampled_lifetime", 0)
    return (
        f"iter {result['training_iteration']:4d} | steps {int(steps):>9,d} | "
        f"avg {m['return_mean']:9.2f} | worst10 {m['return_worst10']:9.2f} | "
        f"kept {int(m['kept_episodes']):4d}/{int(m['episodes']):<4d} | κ {k} | {seconds:6.1f} s"
    )
