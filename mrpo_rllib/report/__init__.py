"""``mrpo report``: Table 2, Figures 1–3 and a monotonicity audit from a tree of runs.

The report is built in layers, each a module of this package:

1. :mod:`~mrpo_rllib.report.collect` — every run under ``RUNS_DIR`` becomes rows of one tidy
   table (``runs.parquet``/``runs.csv``, one row per run and iteration; ``trials.csv``);
2. :mod:`~mrpo_rllib.report.stats` — Table 2, curve statistics, the monotonicity audit;
3. :mod:`~mrpo_rllib.report.figures` — Figures 1–3 (and one run's ``curves.png``);
4. :mod:`~mrpo_rllib.report.markdown` — ``report.md``;

and :func:`report` runs them in order (plus, for Figure 2, the evaluation of the runs'
checkpoints on the test-range grid with :mod:`mrpo_rllib.evaluate`).
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from mrpo_rllib.report.collect import RUN_COLUMNS, Collected, RunInfo, collect, read_text
from mrpo_rllib.report.figures import plot_curves, plot_heatmaps, plot_run_curves
from mrpo_rllib.report.markdown import md_table, rel, report_markdown, run_summary, table2_frame
from mrpo_rllib.report.stats import (
    LAST_ITERATIONS,
    bootstrap_ci,
    missing_seeds,
    monotonicity,
    monotonicity_summary,
    table2,
)

__all__ = [
    "RUN_COLUMNS",
    "bootstrap_ci",
    "collect",
    "evaluate_runs",
    "monotonicity",
    "plot_curves",
    "plot_heatmaps",
    "report",
    "table2",
    "write_run_summary",
]

EVAL_DEFAULTS = (5, 3)  # grid points per axis, episodes per point, when no experiment says


def evaluate_runs(trials: pd.DataFrame, points: int, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Evaluate the final checkpoint of every complete run on its task's test grid."""
    from mrpo_rllib.evaluate import evaluate_many

    todo = trials[trials["complete"] & trials["checkpoint"].notna()]
    if todo.empty:
        return pd.DataFrame()
    frames = evaluate_many(list(todo["checkpoint"]), "test", points, episodes, seed, True)
    info_cols = ["task", "algo", "kappa", "setting", "seed", "run_dir", "checkpoint"]
    out = []
    for (_, t), df in zip(todo.iterrows(), frames, strict=True):
        out.append(pd.concat([pd.DataFrame({c: [t[c]] * len(df) for c in info_cols}), df], axis=1))
    return pd.concat(out, ignore_index=True)


def _experiment_eval_defaults(infos: list[RunInfo]) -> tuple[int, int] | None:
    from mrpo_rllib.experiments import load_experiment

    for sweep in sorted({i.sweep_dir for i in infos if i.sweep_dir}):
        f = os.path.join(sweep, "experiment.yaml")
        if os.path.isfile(f):
            try:
                ev = load_experiment(f, check=False).evaluation
                return ev.points, ev.episodes
            except ValueError:
                continue
    return None


def report(
    runs_dir: str,
    out: str,
    eval_points: int | None = None,
    eval_episodes: int | None = None,
    evaluate: bool = True,
    last: int = LAST_ITERATIONS,
    seed: int = 0,
    echo=print,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Collect ``runs_dir`` and write every output into ``out``. Returns what was written:
    paths by name, plus the figures' panel counts under ``"panels"``."""
    col: Collected = collect(runs_dir)
    if not col.infos:
        raise ValueError(f"no run directories ({{algo}}__{{task}}__kappa{{k}}__seed{{s}}) under {runs_dir!r}")
    os.makedirs(out, exist_ok=True)
    written: dict[str, Any] = {"panels": {}}

    def path(name):
        p = os.path.join(out, name)
        written[name] = p
        return p

    def save(fig, panels, name):
        fig.savefig(path(name))
        plt.close(fig)
        written["panels"][name] = len(panels)
        return name

    col.runs.to_parquet(path("runs.parquet"), index=False)
    col.runs.to_csv(path("runs.csv"), index=False)
    col.incomplete.to_csv(path("incomplete.csv"), index=False)
    col.trials.to_csv(path("trials.csv"), index=False)
    n_complete = int(col.trials["complete"].sum())
    echo(f"collected {len(col.infos)} run directories under {runs_dir}: {n_complete} complete")

    runs = col.runs
    t2 = table2(runs, last=last, seed=seed)
    t2.to_csv(path("table2.csv"), index=False)
    t2_md = md_table(table2_frame(t2))
    with open(path("table2.md"), "w") as f:
        f.write(t2_md)

    figures: dict[str, dict[str, str]] = {"fig1": {}, "fig2": {}, "fig3": {}}
    notes: dict[str, str] = {}
    fig3_notes = []
    for task in sorted(runs.loc[runs["complete"], "task"].unique()):
        figures["fig1"][task] = save(*plot_curves(runs, task), f"fig1_{task}.png")
        mrpo = runs[runs["complete"] & (runs["task"] == task) & (runs["algo"] == "mrpo")]
        kappas = sorted(mrpo["kappa"].unique())
        if len(kappas) > 1:
            figures["fig3"][task] = save(*plot_curves(runs, task, by_kappa_only=True), f"fig3_{task}.png")
        else:
            what = f"one κ setting ({kappas[0]})" if kappas else "no complete run"
            fig3_notes.append(f"- {task}: skipped, MRPO runs have {what}.")
    notes["fig3"] = "\n".join(fig3_notes)

    mono = monotonicity(runs) if not runs.empty else pd.DataFrame()
    mono.to_csv(path("monotonicity.csv"), index=False)

    points, episodes = _experiment_eval_defaults(col.infos) or EVAL_DEFAULTS
    points, episodes = eval_points or points, eval_episodes or episodes
    if evaluate:
        no_ckpt = col.trials[col.trials["complete"] & col.trials["checkpoint"].isna()]
        echo(
            f"evaluating {n_complete - len(no_ckpt)} final checkpoints on the test grids "
            f"({points} points/axis, {episodes} episodes)"
        )
        evals = evaluate_runs(col.trials, points, episodes, seed)
        if not evals.empty:
            evals.to_csv(path("eval_test.csv"), index=False)
            for task in sorted(evals["task"].unique()):
                figures["fig2"][task] = save(*plot_heatmaps(evals, task), f"fig2_{task}.png")
        notes["fig2"] = (
            f"Final checkpoints evaluated on the test-range grid: {points} points per axis, {episodes} "
            f"deterministic episodes per point, evaluation seed {seed}; per-run numbers in "
            "[eval_test.csv](eval_test.csv)."
        )
        if len(no_ckpt):
            missing = ", ".join(rel(d, runs_dir) for d in no_ckpt["run_dir"])
            notes["fig2"] += f" No checkpoint found for: {missing}."
    else:
        notes["fig2"] = "Skipped (`--no-eval`)."

    argv = sys.argv if argv is None else argv
    md = report_markdown(
        col,
        runs_dir,
        command=shlex.join(["mrpo", *argv[1:]]) if argv else "",
        table2_md=t2_md,
        figures=figures,
        notes=notes,
        monotonicity=monotonicity_summary(mono),
        missing=missing_seeds(col.trials),
        last=last,
    )
    with open(path("report.md"), "w") as f:
        f.write(md)
    echo(f"report: {written['report.md']}")
    return written


def write_run_summary(run_dir: str) -> str:
    """``report.md`` and ``curves.png`` of one run directory (what ``mrpo train`` leaves)."""
    from mrpo_rllib.runs import parse_run_name

    name = os.path.basename(os.path.normpath(run_dir))
    progress = pd.read_csv(os.path.join(run_dir, "progress.csv"))
    fig, _ = plot_run_curves(progress, parse_run_name(run_dir).task, name)
    fig.savefig(os.path.join(run_dir, "curves.png"))
    plt.close(fig)
    command = (
        read_text(os.path.join(os.path.dirname(os.path.normpath(run_dir)), "command.txt")) or ""
    ).strip()
    path = os.path.join(run_dir, "report.md")
    with open(path, "w") as f:
        f.write(run_summary(progress, name, command))
    return path
