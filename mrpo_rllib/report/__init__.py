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
from mrpo_rllib.report.collect import RUN_COLUMNS, Collected, RunInfo, collect, group_label
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
    VACUOUS_KEPT_FRACTION,
    Window,
    as_window,
    bootstrap_ci,
    missing_seeds,
    monotonicity,
    monotonicity_summary,
    performance_profile,
    rliable_table,
    table2,
    vacuous_comparisons,
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


class _Out:
    """The report's output directory: what was written, by name, and the figures' panels."""

    def __init__(self, out: str):
        os.makedirs(out, exist_ok=True)
        self.out = out
        self.written: dict[str, Any] = {"panels": {}}

    def path(self, name: str) -> str:
        p = os.path.join(self.out, name)
        self.written[name] = p
        return p

    def csv(self, df: pd.DataFrame, name: str) -> None:
        df.to_csv(self.path(name), index=False)

    def figure(self, fig, panels, name: str) -> str:
        fig.savefig(self.path(name))
        plt.close(fig)
        self.written["panels"][name] = len(panels)
        return name


def report(
    runs_dir: str,
    out: str,
    eval_points: int | None = None,
    eval_episodes: int | None = None,
    evaluate: bool = True,
    last: int | Window = LAST_ITERATIONS,
    seed: int = 0,
    worst_case_budget: int = 0,
    worst_case_episodes: int = WORST_CASE_EPISODES,
    videos: bool = False,
    echo=print,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Collect ``runs_dir`` and write every output into ``out``. Returns what was written:
    paths by name, plus the figures' panel counts under ``"panels"``.

    ``worst_case_budget`` > 0 also searches each run's worst test-range environment (on the
    best checkpoint, the one Figure 2 shows) with that many points of ``worst_case_episodes``
    episodes, for Table 2's "searched worst case" column.

    ``last``: Table 2's window, the last N iterations of each run or a
    :class:`~mrpo_rllib.report.stats.Window` (the last env steps, or the last fraction of
    each run's env steps). ``videos``: film a worst-case clip per algorithm group
    (:func:`~mrpo_rllib.video.report_worst_clips`, needs the evaluation).

    The sections, in order: the collected tables, Table 2, the vacuous-comparison check, the
    window, the robust statistics (rliable), Figures 1 and 3, the monotonicity audit, Figure 2
    (the evaluation), the worst-case clips, report.md.
    """
    col: Collected = collect(runs_dir)
    if not col.infos:
        raise ValueError(f"no run directories ({{algo}}__{{task}}__kappa{{k}}__seed{{s}}) under {runs_dir!r}")
    o = _Out(out)
    _collected_tables(col, o)
    n_complete = int(col.trials["complete"].sum())
    echo(f"collected {len(col.infos)} run directories under {runs_dir}: {n_complete} complete")

    runs = col.runs
    worst = (worst_case_budget, worst_case_episodes)
    t2_md = _table2(col, o, last, seed, worst, echo)
    sections: list[str] = _vacuous_section(runs, last, echo)
    if runs.loc[runs["complete"], "task"].nunique():
        sections += _window_section(runs, o, last)
        sections += _rliable_section(runs, o, last, seed)
    else:
        o.csv(window_sensitivity(runs, _windows(last)), "window.csv")
    figures, notes = _figures_1_and_3(runs, o)
    mono = monotonicity(runs) if not runs.empty else pd.DataFrame()
    o.csv(mono, "monotonicity.csv")

    from mrpo_rllib.evaluate import DEFAULT_EPISODES, DEFAULT_POINTS

    points, episodes = _experiment_eval_defaults(col.infos) or (DEFAULT_POINTS, DEFAULT_EPISODES)
    points, episodes = eval_points or points, eval_episodes or episodes
    if evaluate:
        echo(
            f"evaluating the best and final checkpoints of {n_complete} runs on the test grids "
            f"({points} points/axis, {episodes} episodes, stochastic and deterministic)"
        )
        figures["fig2"], notes["fig2"], gen, evals = _figure_2(col, o, runs_dir, points, episodes, seed)
        sections += gen
        if videos:
            sections += _clips_section(evals, o, seed, echo)
    else:
        notes["fig2"] = "Skipped (`--no-eval`)."
        if videos:
            raise ValueError("videos need the evaluation: drop --no-eval to film the worst cases")

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
    with open(o.path("report.md"), "w") as f:
        f.write(md)
    echo(f"report: {o.written['report.md']}")
    return o.written


def _collected_tables(col: Collected, o: _Out) -> None:
    """Step 1's tables: every run and iteration, the incomplete runs, one row per trial."""
    col.runs.to_parquet(o.path("runs.parquet"), index=False)
    o.csv(col.runs, "runs.csv")
    o.csv(col.incomplete, "incomplete.csv")
    o.csv(col.trials, "trials.csv")


def _table2(col: Collected, o: _Out, last: int | Window, seed: int, worst: tuple[int, int], echo) -> str:
    """Table 2 (``table2.csv``, ``table2.md``), with the searched worst case when asked for;
    returns its markdown."""
    budget, episodes = worst
    t2 = table2(col.runs, last=last, seed=seed)
    if budget:
        chosen = chosen_checkpoints(col.trials, col.runs, kinds=("best",))
        echo(f"searching the worst case of {len(chosen)} checkpoints ({budget} points each)")
        wc = searched_worst_cases(chosen, budget, episodes, seed, echo)
        o.csv(wc, "worst_case.csv")
        if not wc.empty:
            agg = wc.groupby(["task", "algo", "kappa", "setting"], as_index=False).agg(
                searched_worst_mean=("worst_return", "mean"), searched_worst_std=("worst_return", "std")
            )
            t2 = t2.merge(agg, on=["task", "algo", "kappa", "setting"], how="left")
    o.csv(t2, "table2.csv")
    t2_md = md_table(table2_frame(t2))
    with open(o.path("table2.md"), "w") as f:
        f.write(t2_md)
    return t2_md


def _windows(last: int | Window) -> list[int]:
    """The iteration windows of the window table (Table 2's own among them if in iterations)."""
    extra = {as_window(last).iterations} - {None}
    return sorted({5, 10, 20, 30, 50} | extra)


def _vacuous_section(runs: pd.DataFrame, last: int | Window, echo) -> list[str]:
    """A warning when a compared algorithm kept > 90% of its episodes in Table 2's window:
    there it *is* PPO-DR, and parity with PPO-DR is expected, not found."""
    v = vacuous_comparisons(runs, last)
    if v.empty:
        return []
    groups = ", ".join(
        f"{r.task} {group_label(r.algo, r.kappa, r.setting)} ({r.kept_fraction:.0%})" for r in v.itertuples()
    )
    echo(
        f"WARNING: vacuous comparison: kept > {VACUOUS_KEPT_FRACTION:.0%} of episodes in the window: {groups}"
    )
    return [
        "## Warning: vacuous comparisons",
        "",
        f"In Table 2's window ({as_window(last)}) these groups kept more than "
        f"{VACUOUS_KEPT_FRACTION:.0%} of their episodes (mean over seeds): their selection rule "
        f"barely acted, so they trained as PPO-DR did there and a tie with PPO-DR says nothing "
        f"about the rule: {groups}.",
        "",
    ]


def _clips_section(evals: pd.DataFrame, o: _Out, seed: int, echo) -> list[str]:
    """## Worst-case clips: one per algorithm group, linked (``videos/``), from Figure 2's
    evaluation table."""
    from mrpo_rllib.video import report_worst_clips

    if evals.empty:
        return ["## Worst-case clips", "", "No evaluated checkpoint: nothing to film.", ""]
    echo("filming a worst-case clip per algorithm group")
    clips = report_worst_clips(evals, o.path("videos"), seed=seed)
    o.csv(clips, "worst_clips.csv")
    lines = [
        "## Worst-case clips",
        "",
        "Per algorithm group: the test-grid point of its lowest mean return over seeds (final "
        "checkpoints, deterministic actions), played by the seed whose return there is nearest that "
        "mean, from that point's first evaluation episode. [worst_clips.csv](worst_clips.csv).",
        "",
    ]
    for r in clips.itertuples():
        name = os.path.relpath(r.file, o.path("."))
        lines.append(
            f"- {r.task}, {group_label(r.algo, r.kappa, r.setting)}: [{os.path.basename(r.file)}]({name}) "
            f"(seed {r.seed}, return {r.clip_return:.1f}; mean over seeds {r.mean_return:.1f})"
        )
    return [*lines, ""]


def _window_section(runs: pd.DataFrame, o: _Out, last: int | Window) -> list[str]:
    """## The window: Table 2's 10%-worst return over other windows (``window.csv``)."""
    ws = window_sensitivity(runs, _windows(last))
    o.csv(ws, "window.csv")
    return [
        "## The window",
        "",
        f"Table 2's 10%-worst return (mean ± std over seeds) had each seed been averaged over "
        f"its last N iterations instead of Table 2's window ({as_window(last)}): a difference that "
        "holds for one window only is the window's, not the algorithm's. [window.csv](window.csv).",
        "",
        md_table(window_frame(ws)),
    ]


def _rliable_section(runs: pd.DataFrame, o: _Out, last: int | Window, seed: int) -> list[str]:
    """## Robust statistics: IQM, probability of improvement, performance profiles."""
    iqm, poi = rliable_table(runs, last=last, seed=seed)
    o.csv(iqm, "iqm.csv")
    o.csv(poi, "improvement.csv")
    profiles = {
        task: performance_profile(runs, task, get_task(task).return_scale, last)
        for task in sorted(runs.loc[runs["complete"], "task"].unique())
    }
    o.figure(*plot_profiles(profiles), "profiles.png")
    return [
        "## Robust statistics (rliable)",
        "",
        f"Over the same per-seed means as Table 2 ({as_window(last)}): the interquartile mean "
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


def _figures_1_and_3(runs: pd.DataFrame, o: _Out) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Figure 1 (the curves of every group) and Figure 3 (MRPO's κ settings) per task;
    returns the figures by kind and task, and Figure 3's note on the tasks it skipped."""
    figures: dict[str, dict[str, str]] = {"fig1": {}, "fig2": {}, "fig3": {}}
    fig3_notes = []
    for task in sorted(runs.loc[runs["complete"], "task"].unique()):
        figures["fig1"][task] = o.figure(*plot_curves(runs, task), f"fig1_{task}.png")
        mrpo = runs[runs["complete"] & (runs["task"] == task) & (runs["algo"] == "mrpo")]
        kappas = sorted(mrpo["kappa"].unique())
        if len(kappas) > 1:
            figures["fig3"][task] = o.figure(*plot_curves(runs, task, by_kappa_only=True), f"fig3_{task}.png")
        else:
            what = f"one κ setting ({kappas[0]})" if kappas else "no complete run"
            fig3_notes.append(f"- {task}: skipped, MRPO runs have {what}.")
    return figures, {"fig3": "\n".join(fig3_notes)}


def _figure_2(
    col: Collected, o: _Out, runs_dir: str, points: int, episodes: int, seed: int
) -> tuple[dict[str, str], str, list[str], pd.DataFrame]:
    """Figure 2: the runs' best and final checkpoints evaluated on the test-range grid,
    stochastic and deterministic (``eval_test.csv``, ``generalisation.csv``). Returns the
    main figure per task, its note, the generalisation section and the evaluation table."""
    runs = col.runs
    fig2: dict[str, str] = {}
    section: list[str] = []
    evals = evaluate_runs(col.trials, runs, points, episodes, seed)
    if not evals.empty:
        o.csv(evals, "eval_test.csv")
        gen = generalisation_summary(evals)
        o.csv(gen, "generalisation.csv")
        for task in sorted(evals["task"].unique()):
            for kind in KINDS:
                for mode in MODES:
                    e = evals[(evals["checkpoint_kind"] == kind) & (evals["mode"] == mode)]
                    main_fig = (kind, mode) == (KINDS[0], MODES[0])
                    name = f"fig2_{task}.png" if main_fig else f"fig2_{task}_{kind}_{mode}.png"
                    title = f"{task}: test range, {kind} checkpoint, {mode} actions, mean over seeds"
                    fig_name = o.figure(*plot_heatmaps(e, task, title=title), name)
                    if main_fig:
                        fig2[task] = fig_name
        section = [
            "## Generalisation to the test range, in numbers",
            "",
            "Per run: the mean return over the test-range grid and over its worst 10% of grid points; "
            "then mean (± std) over seeds. [generalisation.csv](generalisation.csv), "
            "[eval_test.csv](eval_test.csv).",
            "",
            md_table(gen),
        ]
    note = (
        f"The best checkpoint (by training 10%-worst return) of each run, evaluated with sampled "
        f"actions on the test-range grid: {points} points per axis, {episodes} episodes per point, "
        f"evaluation seed {seed} (the same initial states for every policy). The final checkpoints and "
        "deterministic actions: `fig2_<task>_<kind>_<mode>.png` next to this report."
    )
    no_ckpt = col.trials[col.trials["complete"] & col.trials["checkpoint"].isna()]
    if len(no_ckpt):
        missing = ", ".join(rel(d, runs_dir) for d in no_ckpt["run_dir"])
        note += f" No checkpoint found for: {missing}."
    return fig2, note, section, evals


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
