"""The learner study (docs/learner.md) from its runs: ``mrpo report RUNS --study learner``.

Step 1 is the report's :func:`~mrpo_rllib.report.collect.collect` on the tree the study's
experiments (``tune_configs/learner/*.yaml``) wrote; step 2, here, reads that table (and the
PPO-DR episode ledgers, for κ's kept fraction) and writes figures and ``learner.md`` tables:

- ``minibatches.png``: PPO-DR's average return against env steps per ``num_minibatches``;
- ``learning.png``: PPO-DR on every task (average and 10%-worst return against env steps);
- ``value_clamp.png``: Hopper with and without RLlib's clamp of the squared value error;
- ``kappa.png``: MRPO at fixed κ against PW-DR and PPO-DR, and κ → kept fraction.

Experiments are recognised by their names (``learner_minibatches_<task>``,
``learner_learning_<task>``, ``learner_kappa_<task>``); what is missing is skipped. Variants
of a learning run (``learner_learning_<task>_m20``: another M, read from the run's
``params.json``; ``learner_learning_nominal_<task>``: no randomization) are drawn beside it;
κ's calibration uses only the main runs ``learner_learning_<task>`` (the paper's M).
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mrpo_rllib import runs as runs_mod
from mrpo_rllib import selection as sel
from mrpo_rllib.envs import get_task, normalize_params
from mrpo_rllib.plotting import finish_axes, save_figure
from mrpo_rllib.report.collect import collect, with_groups
from mrpo_rllib.report.markdown import md_table

KAPPA_GRID = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# Public PPO anchors for the same pybullet robots at 2M env steps (rl-baselines3-zoo,
# benchmark.md) and pybullet_envs' reward thresholds.
ANCHORS = {
    "Hopper": ("rl-zoo PPO 2575 at 2M; threshold 2500", 2575.0),
    "Walker2d": ("rl-zoo PPO 2110 at 2M; threshold 2500", 2110.0),
    "HalfCheetah": ("rl-zoo PPO 2925 at 2M; threshold 3000", 2925.0),
    "InvertedDoublePendulum": ("threshold 9100", 9100.0),
    "InvertedPendulum": ("maximum 1000", 1000.0),
    "CartPole": ("maximum 1000", 1000.0),
}


def _experiment(run_dir: str) -> str:
    return os.path.basename(os.path.dirname(os.path.normpath(run_dir)))


def episodes_per_iteration(run_dir: str) -> int:
    """M of a run, from the trial config Tune saved (``params.json``)."""
    return int(runs_mod.read_params(run_dir)["episodes_per_iteration"])


def _main_learning_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """PPO-DR's main learning runs: experiment ``learner_learning_<task>``, default settings."""
    main = runs["experiment"] == "learner_learning_" + runs["task"].str.lower()
    return runs[main & (runs["algo"] == "dr") & runs["setting"].isin(["", "default"])]


def value_at(run: pd.DataFrame, steps: float, column: str = "return_mean", window: int = 3) -> float:
    """Mean of ``column`` over the last ``window`` iterations at or before ``steps`` env
    steps (NaN when the run never got there)."""
    r = run[run["env_steps"] <= steps * 1.02]
    if r.empty or r["env_steps"].iloc[-1] < steps * 0.8:
        return float("nan")
    return float(r[column].tail(window).mean())


def first_reaching(run: pd.DataFrame, level: float, column: str = "return_mean") -> float:
    """Env steps at the first iteration whose ``column`` is >= ``level`` (NaN if never)."""
    hit = run[run[column] >= level]
    return float(hit["env_steps"].iloc[0]) if len(hit) else float("nan")


def _curves(ax, runs: pd.DataFrame, label_of, column: str = "return_mean") -> None:
    for i, (key, g) in enumerate(runs.groupby(label_of(runs))):
        g = g.sort_values("iteration")
        ax.plot(g["env_steps"] / 1e6, g[column], label=key, color=f"C{i}")
    ax.set_xlabel("env steps (millions)")
    ax.grid(alpha=0.3)


def minibatch_study(runs: pd.DataFrame, out: str) -> str:
    r = runs[runs["experiment"].str.startswith("learner_minibatches_")]
    if r.empty:
        return ""
    tasks = sorted(r["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    rows = []
    for ax, task in zip(axes[0], tasks, strict=True):
        t = r[r["task"] == task]
        order = sorted(t["setting"].unique(), key=lambda s: int(s.removeprefix("nmb")))
        for i, setting in enumerate(order):
            g = t[t["setting"] == setting].sort_values("iteration")
            ax.plot(g["env_steps"] / 1e6, g["return_mean"], color=f"C{i}", label=f"{setting[3:]} minibatches")
            budget = g["env_steps"].max()
            rows.append(
                {
                    "task": task,
                    "minibatches per epoch": int(setting[3:]),
                    "gradient steps per iteration": int(g["gradient_steps"].median()),
                    "env steps": int(budget),
                    "average return, last 3 iterations": value_at(g, budget),
                    "10%-worst, last 3": value_at(g, budget, "return_worst10"),
                    "best average": float(g["return_mean"].max()),
                    "wall time (min)": float(g["time_s"].max() / 60),
                }
            )
        finish_axes(ax, "env steps (millions)", "average return", f"{task}: PPO-DR, seed 0")
    save_figure(fig, os.path.join(out, "minibatches.png"))
    return "### Minibatches per epoch\n\n![minibatches](minibatches.png)\n\n" + md_table(
        pd.DataFrame(rows), 1
    )


def learning_study(runs: pd.DataFrame, out: str) -> str:
    r = runs[runs["experiment"].str.startswith("learner_learning_") & (runs["setting"].isin(["", "default"]))]
    if r.empty:
        return ""
    r = r.assign(M=r["run_dir"].map({d: episodes_per_iteration(d) for d in r["run_dir"].unique()}))
    nominal = r[r["experiment"].str.startswith("learner_learning_nominal_")]
    r = r[~r["experiment"].str.startswith("learner_learning_nominal_")]
    if r.empty:
        return ""
    order = ["CartPole", "InvertedPendulum", "InvertedDoublePendulum", "Hopper", "Walker2d", "HalfCheetah"]
    tasks = [t for t in order if t in set(r["task"])]
    nrows = 1 if len(tasks) <= 3 else 2
    ncols = -(-len(tasks) // nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    rows = []
    for ax, task in zip(axes.flat, tasks, strict=False):
        t = r[r["task"] == task]
        for i, (m, g) in enumerate(sorted(t.groupby("M"), key=lambda x: -x[0])):
            g = g.sort_values("iteration")
            ax.plot(g["env_steps"] / 1e6, g["return_mean"], color=f"C{2 * i}", label=f"M={m}: average")
            ax.plot(
                g["env_steps"] / 1e6,
                g["return_worst10"],
                color=f"C{2 * i + 1}",
                lw=0.8,
                label=f"M={m}: 10%-worst",
            )
            rows.append(
                {
                    "task": task,
                    "M": m,
                    "average at 0.5M": value_at(g, 5e5),
                    "at 1M": value_at(g, 1e6),
                    "at 2M": value_at(g, 2e6),
                    "10%-worst at the end": value_at(g, g["env_steps"].max(), "return_worst10"),
                    "first average >= 950 at (M steps)": first_reaching(g, 950.0) / 1e6,
                    "iterations": int(g["iteration"].max()),
                    "wall time (min)": float(g["time_s"].max() / 60),
                    "anchor": ANCHORS[task][0],
                }
            )
        ax.axhline(ANCHORS[task][1], color="grey", ls=":", lw=1, label=ANCHORS[task][0])
        ax.set_title(f"{task}: PPO-DR, training range", fontsize=9)
        ax.set_xlabel("env steps (millions)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel("episode return")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "learning.png"))
    plt.close(fig)
    text = "### PPO-DR on every task\n\n![learning](learning.png)\n\n" + md_table(pd.DataFrame(rows), 1)
    if len(nominal):
        nom = [
            {
                "task (nominal parameters)": task,
                "M": m,
                "average at 0.25M": value_at(g, 2.5e5),
                "at 0.5M": value_at(g, 5e5),
                "first average >= 950 at (M steps)": first_reaching(g.sort_values("iteration"), 950.0) / 1e6,
                "iterations": int(g["iteration"].max()),
                "wall time (min)": float(g["time_s"].max() / 60),
            }
            for (task, m), g in sorted(nominal.groupby(["task", "M"]), key=lambda x: (x[0][0], -x[0][1]))
        ]
        text += "\n#### At the nominal parameters (no randomization)\n\n" + md_table(pd.DataFrame(nom), 1)
    return text


def value_clamp_study(runs: pd.DataFrame, out: str) -> str:
    r = runs[
        (runs["experiment"] == "learner_learning_hopper") & runs["setting"].isin(["default", "vfclip10"])
    ]
    if r["setting"].nunique() < 2:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = {"default": "no clamp (ours)", "vfclip10": "RLlib's clamp at 10"}
    rows = []
    for i, (setting, g) in enumerate(r.groupby("setting")):
        g = g.sort_values("iteration")
        for ax, col in zip(axes, ("return_mean", "return_worst10"), strict=True):
            ax.plot(g["env_steps"] / 1e6, g[col], color=f"C{i}", label=names[setting])
        rows.append(
            {
                "value loss": names[setting],
                **{f"average at {m}M": value_at(g, m * 1e6) for m in (0.5, 1, 1.5, 2)},
                "10%-worst at 2M": value_at(g, 2e6, "return_worst10"),
            }
        )
    for ax, title in zip(axes, ("A: average return", "W: 10%-worst return"), strict=True):
        finish_axes(ax, "env steps (millions)", title=f"Hopper, PPO-DR, seed 0 — {title}", title_size=9)
    save_figure(fig, os.path.join(out, "value_clamp.png"))
    return "### The value-loss clamp\n\n![value clamp](value_clamp.png)\n\n" + md_table(pd.DataFrame(rows), 1)


def kept_fraction_table(runs: pd.DataFrame, kappas=KAPPA_GRID) -> pd.DataFrame:
    """κ → MRPO's kept fraction, recomputed with the selection rule on PPO-DR's episode
    ledgers (the main learning runs), per task and third of the run (early, middle, late)."""
    dr = _main_learning_runs(runs)
    rows = []
    for run_dir, g in dr.groupby("run_dir"):
        task = g["task"].iloc[0]
        ledger = runs_mod.read_ledger(run_dir)
        if ledger is None:
            raise ValueError(f"{run_dir}: no episode ledger ({runs_mod.LEDGER_FILE})")
        names = list(get_task(task).param_names)
        per_it = []
        for _, e in ledger.groupby("iteration"):
            r, p = e["return"].to_numpy(), normalize_params(task, e[names].to_numpy())
            per_it.append([sel.select("mrpo", r, p, kappa=k).mean() for k in kappas])
        per_it = np.array(per_it)
        thirds = np.array_split(np.arange(len(per_it)), 3)
        for k_i, k in enumerate(kappas):
            rows.append(
                {
                    "task": task,
                    "κ": k,
                    **{
                        f"kept, {name} third": float(per_it[idx, k_i].mean())
                        for name, idx in zip(("early", "middle", "late"), thirds, strict=True)
                    },
                }
            )
    return pd.DataFrame(rows)


def kappa_study(runs: pd.DataFrame, out: str) -> str:
    r = runs[runs["experiment"].str.startswith("learner_kappa_")]
    text = []
    kept = kept_fraction_table(runs)
    if not kept.empty:
        text += [
            "#### κ → kept fraction (PPO-DR's ledgers, the selection rule recomputed)",
            "",
            md_table(kept, 2),
        ]
    if r.empty:
        return "\n".join(text)
    dr = _main_learning_runs(runs)
    tasks = sorted(r["task"].unique())
    fig, axes = plt.subplots(2, len(tasks), figsize=(5 * len(tasks), 7), squeeze=False)
    rows = []
    for j, task in enumerate(tasks):
        t = r[r["task"] == task]
        budget = float(t["env_steps"].max())
        groups = [(f"MRPO κ={k}", g) for k, g in t[t["algo"] == "mrpo"].groupby("kappa")]
        groups.sort(key=lambda x: float(x[0].split("=")[1]))
        groups += [("PW-DR", g) for _, g in t[t["algo"] == "epopt"].groupby("kappa")]
        d = dr[dr["task"] == task]
        if len(d):
            groups.append(("PPO-DR", d[d["env_steps"] <= budget * 1.05]))
        for i, (label, g) in enumerate(groups):
            g = g.sort_values("iteration")
            for row, col in enumerate(("return_mean", "return_worst10")):
                axes[row][j].plot(g["env_steps"] / 1e6, g[col], color=f"C{i}", label=label)
            rows.append(
                {
                    "task": task,
                    "algorithm": label,
                    "kept fraction": float(g["kept_fraction"].mean()),
                    "average, last 3": value_at(g, budget),
                    "10%-worst, last 3": value_at(g, budget, "return_worst10"),
                    "env steps": int(g["env_steps"].max()),
                }
            )
        axes[0][j].set_title(f"{task}: average return", fontsize=9)
        axes[1][j].set_title(f"{task}: 10%-worst return", fontsize=9)
        for row in range(2):
            axes[row][j].set_xlabel("env steps (millions)")
            axes[row][j].grid(alpha=0.3)
        axes[0][j].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "kappa.png"))
    plt.close(fig)
    text += [
        "#### κ → average and 10%-worst return (one seed)",
        "",
        "![kappa](kappa.png)",
        "",
        md_table(pd.DataFrame(rows), 2),
    ]
    return "\n".join(text)


def learner_study(root: str, out: str, echo=print) -> str:
    """Every figure and table of the learner study from the runs under ``root``; returns the
    path of ``learner.md`` (the tables) in ``out``."""
    col = collect(root, deduplicate=False)  # each experiment is its own question
    runs = with_groups(col.runs[col.runs["complete"]])
    runs = runs.assign(experiment=[_experiment(d) for d in runs["run_dir"]])
    os.makedirs(out, exist_ok=True)
    sections = [
        minibatch_study(runs, out),
        learning_study(runs, out),
        value_clamp_study(runs, out),
        kappa_study(runs, out),
    ]
    path = os.path.join(out, "learner.md")
    with open(path, "w") as f:
        f.write("# Learner study: tables\n\n" + "\n\n".join(s for s in sections if s) + "\n")
    echo(f"learner study: {path}")
    return path
