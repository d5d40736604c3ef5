"""Step 2 of the report, text: ``report.md`` of a tree of runs and of one run.

Tables are DataFrames rendered by pandas (``DataFrame.to_markdown``); numbers are rounded
here, once, and missing values print as "–".
"""

from __future__ import annotations

import datetime as _dt
import math
import os

import pandas as pd

from mrpo_rllib import runs as runs_mod
from mrpo_rllib.report.collect import ALGO_NAMES, Collected
from mrpo_rllib.report.stats import as_window

MISSING = "–"


def fmt(x, digits: int = 1) -> str:
    """A number with ``digits`` decimals; "–" for None, NaN or inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return MISSING
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def md_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A DataFrame as a markdown table: floats with ``digits`` decimals, ints as ints."""
    if df.empty:
        return "(none)\n"
    shown = df.copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = [fmt(v, digits) for v in shown[c]]
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


def rel(path: str, start: str) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return path


def table2_frame(t2: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for reading: one row per (task, group), mean ± std and the 95% CIs."""
    rows = []
    for r in t2.itertuples():
        window = str(r.window_min) if r.window_min == r.window_max else f"{r.window_min}–{r.window_max}"
        rows.append(
            {
                "task": r.task,
                "algorithm": ALGO_NAMES.get(r.algo, r.algo) + (f" [{r.setting}]" if r.setting else ""),
                "κ": r.kappa,
                "seeds": f"{r.n_seeds} ({r.seeds})",
                "last iterations": window,
                "average return (mean ± std)": f"{fmt(r.avg_mean)} ± {fmt(r.avg_std)}",
                "95% CI": f"[{fmt(r.avg_ci_low)}, {fmt(r.avg_ci_high)}]",
                "10%-worst return (mean ± std)": f"{fmt(r.worst_mean)} ± {fmt(r.worst_std)}",
                "95% CI ": f"[{fmt(r.worst_ci_low)}, {fmt(r.worst_ci_high)}]",
            }
        )
        if "searched_worst_mean" in t2:
            rows[-1]["searched worst case, test range (mean ± std)"] = (
                f"{fmt(r.searched_worst_mean)} ± {fmt(r.searched_worst_std)}"
            )
    return pd.DataFrame(rows)


def report_markdown(
    col: Collected,
    runs_dir: str,
    *,
    command: str,
    table2_md: str,
    figures: dict[str, dict[str, str]],
    notes: dict[str, str],
    monotonicity: pd.DataFrame,
    missing: list[str],
    last,
    extra_sections: list[str] = (),
) -> str:
    """The whole ``report.md``. ``figures``: {"fig1"|"fig2"|"fig3": {task: file}};
    ``notes``: {"fig2"|"fig3": text}."""
    L = [
        "# MRPO report",
        "",
        f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} from `{os.path.abspath(runs_dir)}`"
        + (f" by `{command}`." if command else "."),
        "",
        "Data: [runs.parquet](runs.parquet) / [runs.csv](runs.csv) (one row per run and iteration), "
        "[trials.csv](trials.csv) (one row per run directory, with status and settings), "
        "[incomplete.csv](incomplete.csv).",
        "",
        "## Runs",
        "",
        f"{len(col.infos)} run directories, {int(col.trials['complete'].sum())} complete.",
        "",
        *[f"- {line}" for line in missing],
        "",
    ]
    inc = col.incomplete
    if len(inc):
        shown = inc.assign(run_dir=[rel(d, runs_dir) for d in inc["run_dir"]])
        L += [
            f"**{len(inc)} incomplete or failed run(s), left out of the tables and figures:**",
            "",
            md_table(shown),
        ]
    else:
        L += ["No incomplete or failed runs.", ""]
    L += [
        "## Table 2",
        "",
        f"Per seed, the mean over its window, the {as_window(last)} (fewer iterations when a run is "
        "shorter: see *last iterations*); then mean ± sample std (ddof=1) over seeds and a 95% percentile "
        "bootstrap CI of the mean over seeds (2000 resamples, seeded). "
        "[table2.csv](table2.csv), [table2.md](table2.md).",
        "",
        table2_md,
        *extra_sections,
        "## Figure 1: training curves",
        "",
        "A: average return, W: 10%-worst return over the M episodes of each iteration; mean over "
        "seeds ± one standard error, iterations aligned across seeds and plotted at the seeds' "
        "mean env steps, up to the shortest seed's last iteration.",
        "",
        *[f"![{t}]({p})" for t, p in figures.get("fig1", {}).items()],
        "",
        "## Figure 2: generalisation to the test range",
        "",
        notes.get("fig2", ""),
        "",
        *[f"![{t}]({p})" for t, p in figures.get("fig2", {}).items()],
        "",
        "## Figure 3: κ study",
        "",
        *[f"![{t}]({p})" for t, p in figures.get("fig3", {}).items()],
        notes.get("fig3", ""),
        "",
        "## Monotonicity audit",
        "",
        "Per run, a *fall* is a decrease of the 10%-worst return W from one iteration to the next; "
        "it is *significant* when W_{t-1} − W_t > 2·sqrt(se_{t-1}² + se_t²), se being the bootstrap "
        f"standard error (200 resamples of that iteration's M episode returns in {runs_mod.LEDGER_FILE}) of "
        "the 10%-worst mean. The longest fall is the most consecutive iterations of decrease. "
        "Per run: [monotonicity.csv](monotonicity.csv). Mean over the complete runs:",
        "",
        md_table(monotonicity) if not monotonicity.empty else "(no complete runs)\n",
        "## Configuration",
        "",
    ]
    for sw in sorted({i.sweep_dir for i in col.infos if i.sweep_dir}):
        text = runs_mod.read_text(os.path.join(sw, runs_mod.EXPERIMENT_FILE))
        cmd = runs_mod.read_command(sw)
        if text is None and cmd is None:
            continue
        L += [f"### Experiment `{rel(sw, runs_dir)}`", ""]
        if cmd:
            L += [f"Command: `{cmd.strip()}`", ""]
        if text:
            L += ["```yaml", text.rstrip(), "```", ""]
    status = pd.DataFrame(
        {
            "run": [rel(i.run_dir, runs_dir) for i in col.infos],
            "status": [
                ("complete" if i.complete else "incomplete") + (f": {i.reason}" if i.reason else "")
                for i in col.infos
            ],
            "settings": [i.settings for i in col.infos],
        }
    )
    L += [md_table(status), ""]
    return "\n".join(L)


def run_summary(progress: pd.DataFrame, title: str, command: str = "") -> str:
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
        "mrpo/gradient_steps": "gradient steps",
        "time_this_iter_s": "seconds",
    }
    t = progress[[c for c in cols if c in progress]].rename(columns=cols)
    ints = ("iteration", "env steps", "gradient steps")
    t = t.astype({c: "int64" for c in ints if c in t})  # RLlib logs counts as floats
    last = t.tail(min(5, len(t)))
    return "\n".join(
        [
            f"# {title}",
            "",
            f"Command: `{command}`" if command else "",
            "",
            f"Last {len(last)} iterations: average return {last['average'].mean():.1f}, "
            f"10%-worst {last['10%-worst'].mean():.1f}.",
            "",
            f"![curves]({runs_mod.CURVES_FILE})",
            "",
            md_table(t),
        ]
    )
