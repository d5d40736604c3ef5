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

from mrpo_rllib import runs as runs_mod
from mrpo_rllib.envs import get_task
from mrpo_rllib.report.collect import RUN_COLUMNS, Collected, RunInfo, collect
from mrpo_rllib.report.evaluation import (
    KINDS,
    MODES,
    chosen_checkpoints,
    evaluate_runs,
    generalisation_summary,
    searched_worst_cases,
)
from mrpo_rllib.report.figures import plot_curves, plot_heatmaps, plot_profiles, plot_run_curves
from mrpo_rllib.report.markdown import md_table, rel, report_markdown, run_summary, table2_frame
from mrpo_rllib.report.stats import (
    LAST_ITERATIONS,
    bootstrap_ci,
    missing_seeds,
    monotonicity,
    monotonicity_summary,
    performance_profile,
    rliable_table,
    table2,
    window_frame,
    window_sensitivity,
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
    "window_sensitivity",
    "write_run_summary",
]


WORST_CASE_EPISODES = 3  # episodes per point of the report's worst-case searches (`--worst-case-budget`)


def _experiment_eval_defaults(infos: list[RunInfo]) -> tuple[int, int] | None:
    """The evaluation grid of the first experiment found next to the runs (its keys not
    given: :mod:`mrpo_rllib.evaluate`'s defaults), or None when none is found."""
    from mrpo_rllib.evaluate import DEFAULT_EPISODES, DEFAULT_POINTS
    from mrpo_rllib.experiments import saved_experiment

    for sweep in sorted({i.sweep_dir for i in infos if i.sweep_dir}):
        exp = saved_experiment(sweep)
        if exp is not None:
            ev = exp.evaluation
            return ev.points or DEFAULT_POINTS, ev.episodes or DEFAULT_EPISODES
    return None


def report(
    runs_dir: str,
    out: str,
    eval_points: int | None = None,
    eval_episodes: int | None = None,
    evaluate: bool = True,
    last: int = LAST_ITERATIONS,
    seed: int = 0,
    worst_case_budget: int = 0,
    worst_case_episodes: int = WORST_CASE_EPISODES,
    echo=print,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Collect ``runs_dir`` and write every output into ``out``. Returns what was written:
    paths by name, plus the figures' panel counts under ``"panels"``.

    ``worst_case_budget`` > 0 also searches each run's worst test-range environment (on the
    best checkpoint, the one Figure 2 shows) with that many points of ``worst_case_episodes``
    episodes, for Table 2's "searched worst case" column.
    """
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
    sections: list[str] = []
    if worst_case_budget:
        chosen = chosen_checkpoints(col.trials, runs, kinds=("best",))
        echo(f"searching the worst case of {len(chosen)} checkpoints ({worst_case_budget} points each)")
        wc = searched_worst_cases(chosen, worst_case_budget, worst_case_episodes, seed, echo)
        wc.to_csv(path("worst_case.csv"), index=False)
        if not wc.empty:
            agg = wc.groupby(["task", "algo", "kappa", "setting"], as_index=False).agg(
                searched_worst_mean=("worst_return", "mean"), searched_worst_std=("worst_return", "std")
            )
            t2 = t2.merge(agg, on=["task", "algo", "kappa", "setting"], how="left")
    t2.to_csv(path("table2.csv"), index=False)
    t2_md = md_table(table2_frame(t2))
    with open(path("table2.md"), "w") as f:
        f.write(t2_md)

    n_tasks = runs.loc[runs["complete"], "task"].nunique()
    ws = window_sensitivity(runs, sorted({5, 10, 20, 30, 50, last}))
    ws.to_csv(path("window.csv"), index=False)
    if n_tasks:
        sections += [
            "## The window",
            "",
            f"Table 2's 10%-worst return (mean ± std over seeds) had each seed been averaged over "
            f"its last N iterations instead of {last}: a difference that holds for one window only "
            "is the window's, not the algorithm's. [window.csv](window.csv).",
            "",
            md_table(window_frame(ws)),
        ]
        iqm, poi = rliable_table(runs, last=last, seed=seed)
        iqm.to_csv(path("iqm.csv"), index=False)
        poi.to_csv(path("improvement.csv"), index=False)
        profiles = {
            task: performance_profile(runs, task, get_task(task).return_scale, last)
            for task in sorted(runs.loc[runs["complete"], "task"].unique())
        }
        save(*plot_profiles(profiles), "profiles.png")
        sections += [
            "## Robust statistics (rliable)",
            "",
            f"Over the same per-seed means as Table 2 (last {last} iterations): the interquartile mean "
            "(IQM) with 95% stratified-bootstrap CIs, the probability of improvement of MRPO over each "
            "baseline on the 10%-worst return (P(X > Y): the chance that a random seed of X beats a random "
            "seed of Y; 0.5 = no difference) with its CI, and performance profiles (the fraction of seeds "
            "above each score τ). [iqm.csv](iqm.csv), [improvement.csv](improvement.csv).",
            "",
            md_table(iqm),
            md_table(poi),
            "![profiles](profiles.png)",
            "",
        ]

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

    from mrpo_rllib.evaluate import DEFAULT_EPISODES, DEFAULT_POINTS

    points, episodes = _experiment_eval_defaults(col.infos) or (DEFAULT_POINTS, DEFAULT_EPISODES)
    points, episodes = eval_points or points, eval_episodes or episodes
    if evaluate:
        echo(
            f"evaluating the best and final checkpoints of {n_complete} runs on the test grids "
            f"({points} points/axis, {episodes} episodes, stochastic and deterministic)"
        )
        evals = evaluate_runs(col.trials, runs, points, episodes, seed)
        if not evals.empty:
            evals.to_csv(path("eval_test.csv"), index=False)
            gen = generalisation_summary(evals)
            gen.to_csv(path("generalisation.csv"), index=False)
            for task in sorted(evals["task"].unique()):
                for kind in KINDS:
                    for mode in MODES:
                        e = evals[(evals["checkpoint_kind"] == kind) & (evals["mode"] == mode)]
                        main_fig = (kind, mode) == (KINDS[0], MODES[0])
                        name = f"fig2_{task}.png" if main_fig else f"fig2_{task}_{kind}_{mode}.png"
                        title = f"{task}: test range, {kind} checkpoint, {mode} actions, mean over seeds"
                        fig_name = save(*plot_heatmaps(e, task, title=title), name)
                        if main_fig:
                            figures["fig2"][task] = fig_name
            sections += [
                "## Generalisation to the test range, in numbers",
                "",
                "Per run: the mean return over the test-range grid and over its worst 10% of grid points; "
                "then mean (± std) over seeds. [generalisation.csv](generalisation.csv), "
                "[eval_test.csv](eval_test.csv).",
                "",
                md_table(gen),
            ]
        notes["fig2"] = (
            f"The best checkpoint (by training 10%-worst return) of each run, evaluated with sampled "
            f"actions on the test-range grid: {points} points per axis, {episodes} episodes per point, "
            f"evaluation seed {seed} (the same initial states for every policy). The final checkpoints and "
            "deterministic actions: `fig2_<task>_<kind>_<mode>.png` next to this report."
        )
        no_ckpt = col.trials[col.trials["complete"] & col.trials["checkpoint"].isna()]
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
        extra_sections=sections,
    )
    with open(path("report.md"), "w") as f:
        f.write(md)
    echo(f"report: {written['report.md']}")
    return written


def write_run_summary(run_dir: str) -> str:
    """``report.md`` and ``curves.png`` of one run directory (what ``mrpo train`` leaves)."""
    from mrpo_rllib.runs import parse_run_name

    name = os.path.basename(os.path.normpath(run_dir))
    progress = runs_mod.read_progress(run_dir)
    if progress is None:
        raise ValueError(f"{run_dir}: no {runs_mod.PROGRESS_FILE} to summarise")
    fig, _ = plot_run_curves(progress, parse_run_name(run_dir).task, name)
    fig.savefig(os.path.join(run_dir, runs_mod.CURVES_FILE))
    plt.close(fig)
    command = runs_mod.read_command(os.path.dirname(os.path.normpath(run_dir))) or ""
    path = os.path.join(run_dir, runs_mod.SUMMARY_FILE)
    with open(path, "w") as f:
        f.write(run_summary(progress, name, command))
    return path
