"""``mrpo report``: Table 2, Figures 1–3 and a monotonicity audit from a tree of runs.

Step 1, :func:`collect`: every run directory under ``RUNS_DIR`` (``mrpo train`` runs and
Tune trials alike, found recursively by their name ``{algo}__{task}__kappa{k}__seed{s}``)
becomes rows of one tidy table, one row per (run, iteration), written as ``runs.parquet``
and ``runs.csv``. A run is **complete** when it reached its budget: the ``iterations`` of
its ``config.json`` (``mrpo train``) or the ``budget`` of the ``experiment.yaml`` that
``mrpo tune`` copies next to its trials. When neither is found, a run is complete unless
Tune left an ``error.txt``/``error.pkl`` or it has fewer iterations than the longest run
of the same task, algorithm and κ. Runs with no or an empty ``progress.csv`` are never
complete. A run that failed and was retried by Tune up to its budget is complete (its
failures are noted). Of two complete runs with the same (task, algorithm, κ, seed), the
longer one is kept. Incomplete runs stay in the table (``complete`` = False), are listed in
``incomplete.csv`` and in ``report.md``, and are left out of everything below.

Step 2 uses only that table (plus, for Figure 2, the runs' final checkpoints):

- ``table2.md``/``table2.csv``: per task, algorithm and κ label, the average and the
  10%-worst return, each seed's mean over its last 50 iterations (fewer for shorter runs:
  the ``last iterations`` column says how many), then mean ± sample std (ddof=1) over
  seeds and a percentile bootstrap 95% CI of the mean over seeds (2000 resamples, seeded);
- ``fig1_<task>.png``: training curves (A: average, W: 10%-worst return) per algorithm,
  mean over seeds with ± one standard error bands, iterations aligned across seeds and
  plotted at the seeds' mean env steps, up to the shortest seed's last iteration;
- ``fig2_<task>.png``: the final checkpoints evaluated on the test-range grid
  (:mod:`mrpo_rllib.evaluate`), return averaged over seeds, one panel per algorithm on one
  colour scale; the per-run numbers are in ``eval_test.csv``;
- ``fig3_<task>.png``: MRPO's κ study (curves as Figure 1, one line per κ label) when
  several κ labels exist for a task;
- ``monotonicity.csv``: per run, how often the 10%-worst return fell from one iteration to
  the next, and whether by more than noise (see :func:`monotonicity`);
- ``report.md`` linking all of it with the runs' configurations and commands.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mrpo_rllib import runs as runs_mod  # noqa: E402

RUN_RE = re.compile(
    r"^(?P<algo>[a-z]+)__(?P<task>[A-Za-z0-9]+)__kappa(?P<kappa>.+?)__seed(?P<seed>\d+)(?:__(?P<setting>[A-Za-z0-9.-]+))?$"
)
ALGO_NAMES = {"mrpo": "MRPO", "epopt": "PW-DR (EPOpt)", "dr": "PPO-DR"}
ALGO_ORDER = {a: i for i, a in enumerate(runs_mod.ALGOS)}
PROGRESS_COLUMNS = {
    "training_iteration": "iteration",
    "num_env_steps_sampled_lifetime": "env_steps",
    "mrpo/return_mean": "return_mean",
    "mrpo/return_worst10": "return_worst10",
    "mrpo/return_min": "return_min",
    "mrpo/kept_fraction": "kept_fraction",
}
RUN_COLUMNS = [
    "algo",
    "task",
    "seed",
    "kappa",
    "iteration",
    "env_steps",
    "return_mean",
    "return_worst10",
    "return_min",
    "kept_fraction",
    "worst10_se",
    "complete",
    "run_dir",
]
LAST_ITERATIONS = 50
N_BOOT = 2000
SE_BOOT = 200
WORST_FRACTION = 0.1  # as mrpo/return_worst10 (mrpo_rllib.selection.worst_set(returns, 0.1))


# -- step 1: collect --------------------------------------------------------------------------
@dataclass
class RunInfo:
    """One run/trial directory and what is known about it."""

    run_dir: str
    algo: str
    task: str
    kappa: str
    seed: int
    source: str = "unknown"  # "mrpo train", "tune" or "unknown"
    command: str | None = None
    sweep_dir: str | None = None
    settings: str = ""
    target: tuple[str, int] | None = None  # ("iterations", N) or ("env_steps", N)
    iterations: int = 0
    env_steps: float = float("nan")
    errors: int = 0
    error: str | None = None
    complete: bool = False
    reason: str = ""
    checkpoint: str | None = None
    progress: pd.DataFrame | None = field(default=None, repr=False)


def find_run_dirs(root: str) -> list[str]:
    """Every directory under ``root`` (itself included) named like a run, sorted."""
    if not os.path.isdir(root):
        raise ValueError(f"runs directory {root!r} does not exist or is not a directory")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if RUN_RE.match(os.path.basename(os.path.normpath(dirpath))):
            found.append(dirpath)
            dirnames[:] = []  # a run's checkpoints hold no further runs
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "checkpoint")))
    return sorted(found)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    msg = lines[-1] if lines else "error"
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _kappa_text(start, end, ramp) -> str:
    if start is None:
        return ""
    if start == end:
        return f"κ {start:g}"
    return f"κ {start:g}→{end:g} over {ramp} it"


def _describe_run(info: RunInfo) -> None:
    """Fill source, command, settings and budget target from the files next to the run."""
    d = info.run_dir
    cfg_text = _read(os.path.join(d, "config.json"))
    if cfg_text:
        info.source = "mrpo train"
        try:
            s = json.loads(cfg_text).get("settings", {})
        except json.JSONDecodeError:
            s = {}
        if s.get("iterations"):
            info.target = ("iterations", int(s["iterations"]))
        kappa = _kappa_text(s.get("kappa_start"), s.get("kappa_end"), s.get("kappa_ramp_iters"))
        parts = [
            f"{s.get('iterations')} iterations" if s.get("iterations") else "",
            f"M={s.get('episodes_per_iteration')}" if s.get("episodes_per_iteration") else "",
            kappa if info.algo == "mrpo" else "",
            f"env runners {s.get('num_env_runners')}" if "num_env_runners" in s else "",
            f"epochs {s.get('num_epochs')}, minibatch {s.get('minibatch_size')}, lr {s.get('lr')}"
            if "num_epochs" in s
            else "",
            f"params {s.get('params')}" if s.get("params") else "",
        ]
        info.settings = ", ".join(p for p in parts if p)
        cmd = _read(os.path.join(d, "command.txt"))
        info.command = cmd.strip() if cmd else None
    parent = os.path.dirname(os.path.normpath(d))
    exp_file = os.path.join(parent, "experiment.yaml")
    params_text = _read(os.path.join(d, "params.json"))
    if os.path.isfile(exp_file) or params_text is not None:
        info.source = "tune"
        info.sweep_dir = parent
        cmd = _read(os.path.join(parent, "command.txt"))
        info.command = cmd.strip() if cmd else None
        if os.path.isfile(exp_file):
            try:
                from mrpo_rllib.experiments import load_experiment

                stop = load_experiment(exp_file).budget.stop()
                key, value = next(iter(stop.items()))
                info.target = ("iterations" if key == "training_iteration" else "env_steps", int(value))
            except (ValueError, StopIteration):
                pass
        if params_text:
            try:
                p = json.loads(params_text)
            except json.JSONDecodeError:
                p = {}
            v = p.get("variant") or {}
            parts = [
                f"M={p.get('episodes_per_iteration')}" if p.get("episodes_per_iteration") else "",
                _kappa_text(v.get("kappa_start"), v.get("kappa_end"), v.get("kappa_ramp_iters"))
                if info.algo == "mrpo"
                else "",
                f"env runners {p.get('num_env_runners')}" if "num_env_runners" in p else "",
                f"epochs {p.get('num_epochs')}, minibatch {p.get('minibatch_size')}, lr {p.get('lr')}"
                if "num_epochs" in p
                else "",
            ]
            if info.target:
                parts.insert(0, f"budget {info.target[1]} {info.target[0].replace('_', ' ')}")
            info.settings = ", ".join(x for x in parts if x)


def _read_progress(path: str) -> pd.DataFrame | None:
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    if df.empty or "training_iteration" not in df or "mrpo/return_mean" not in df:
        return None
    out = pd.DataFrame({new: df[old] if old in df else np.nan for old, new in PROGRESS_COLUMNS.items()})
    # A trial restored from a checkpoint repeats the iterations it redid: keep the last.
    out = out.drop_duplicates("iteration", keep="last").sort_values("iteration").reset_index(drop=True)
    return out


def worst10_standard_errors(episodes_csv: str, n_boot: int = SE_BOOT, seed: int = 0) -> dict[int, float]:
    """Iteration → bootstrap standard error of that iteration's 10%-worst mean return.

    The 10%-worst mean is the mean of the ⌈0.1·M⌉ lowest of the M episode returns in
    ``episodes.csv``; its standard error is the std (ddof=1) of that statistic over
    ``n_boot`` resamples (with replacement) of the iteration's M returns.
    """
    if not os.path.isfile(episodes_csv) or os.path.getsize(episodes_csv) == 0:
        return {}
    try:
        ep = pd.read_csv(episodes_csv, usecols=["iteration", "return"])
    except (pd.errors.EmptyDataError, ValueError):
        return {}
    rng = np.random.default_rng(seed)
    out = {}
    for it, r in ep.groupby("iteration")["return"]:
        r = r.to_numpy(dtype=np.float64)
        k = max(1, math.ceil(WORST_FRACTION * r.size - 1e-9))
        if r.size < 2:
            out[int(it)] = float("nan")
            continue
        samples = np.sort(r[rng.integers(0, r.size, size=(n_boot, r.size))], axis=1)[:, :k].mean(axis=1)
        out[int(it)] = float(samples.std(ddof=1))
    return out


@dataclass
class Collected:
    runs: pd.DataFrame  # one row per (run, iteration), RUN_COLUMNS
    trials: pd.DataFrame  # one row per run directory found, with status
    infos: list[RunInfo]

    @property
    def incomplete(self) -> pd.DataFrame:
        cols = ["run_dir", "algo", "task", "kappa", "seed", "iterations", "reason"]
        return self.trials.loc[~self.trials["complete"], cols].reset_index(drop=True)


def collect(root: str) -> Collected:
    """Step 1: the tidy per-iteration table of every run under ``root`` (see module docstring)."""
    from mrpo_rllib.evaluate import resolve_checkpoint

    infos: list[RunInfo] = []
    for d in find_run_dirs(root):
        m = RUN_RE.match(os.path.basename(os.path.normpath(d)))
        info = RunInfo(d, m["algo"], m["task"], m["kappa"], int(m["seed"]))
        _describe_run(info)
        err_txt = _read(os.path.join(d, "error.txt"))
        if err_txt is not None or os.path.isfile(os.path.join(d, "error.pkl")):
            info.errors = max(1, (err_txt or "").count("Failure # "))
            info.error = _last_error_line(err_txt or "error.pkl present")
        prog_path = os.path.join(d, "progress.csv")
        info.progress = _read_progress(prog_path)
        try:
            info.checkpoint = resolve_checkpoint(d)
        except FileNotFoundError:
            info.checkpoint = None
        if info.progress is None:
            what = "no progress.csv" if not os.path.exists(prog_path) else "empty progress.csv"
            info.reason = what + (f"; failed: {info.error}" if info.error else "")
        else:
            info.iterations = int(info.progress["iteration"].iloc[-1])
            info.env_steps = float(info.progress["env_steps"].iloc[-1])
            if info.algo not in runs_mod.ALGOS:
                info.reason = f"unknown algorithm {info.algo!r}"
            elif info.target is not None:
                kind, n = info.target
                have = info.iterations if kind == "iterations" else info.env_steps
                if have >= n:
                    info.complete = True
                    if info.error:
                        info.reason = f"complete after {info.errors} failure(s) retried by Tune"
                else:
                    info.reason = f"{have:g} of {n} {kind.replace('_', ' ')}" + (
                        f"; failed: {info.error}" if info.error else ""
                    )
            elif info.error:
                info.reason = f"failed: {info.error}"
            else:
                info.complete = True  # provisional: compared with its peers below
        infos.append(info)

    # Unknown budget: fewer iterations than the longest run of the same task/algo/κ.
    longest: dict[tuple, int] = {}
    for i in infos:
        if i.progress is not None:
            key = (i.task, i.algo, i.kappa)
            longest[key] = max(longest.get(key, 0), i.iterations)
    for i in infos:
        if i.complete and i.target is None and i.iterations < longest[(i.task, i.algo, i.kappa)]:
            i.complete = False
            i.reason = (
                f"{i.iterations} iterations; other {i.algo} runs of {i.task} (κ {i.kappa}) have "
                f"{longest[(i.task, i.algo, i.kappa)]}"
            )
    # Duplicates of one (task, algo, κ, seed): keep the longest complete run.
    by_key: dict[tuple, list[RunInfo]] = {}
    for i in infos:
        if i.complete:
            by_key.setdefault((i.task, i.algo, i.kappa, i.seed), []).append(i)
    for group in by_key.values():
        group.sort(
            key=lambda r: (-r.iterations, -(r.env_steps if r.env_steps == r.env_steps else 0), r.run_dir)
        )
        for dup in group[1:]:
            dup.complete = False
            dup.reason = f"duplicate of {group[0].run_dir} (kept the longer run)"

    frames = []
    for i in infos:
        if i.progress is None:
            continue
        df = i.progress.copy()
        se = worst10_standard_errors(os.path.join(i.run_dir, "episodes.csv"))
        df["worst10_se"] = df["iteration"].map(se).astype(float)
        df["algo"], df["task"], df["kappa"], df["seed"] = i.algo, i.task, i.kappa, i.seed
        df["complete"], df["run_dir"] = i.complete, i.run_dir
        frames.append(df[RUN_COLUMNS])
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    )
    table = table.astype({"seed": "int64", "iteration": "int64", "complete": bool, "kappa": str})
    trials = pd.DataFrame(
        [
            {
                "run_dir": i.run_dir,
                "algo": i.algo,
                "task": i.task,
                "kappa": i.kappa,
                "seed": i.seed,
                "iterations": i.iterations,
                "env_steps": i.env_steps,
                "complete": i.complete,
                "reason": i.reason,
                "source": i.source,
                "settings": i.settings,
                "checkpoint": i.checkpoint,
            }
            for i in infos
        ],
        columns=[
            "run_dir",
            "algo",
            "task",
            "kappa",
            "seed",
            "iterations",
            "env_steps",
            "complete",
            "reason",
            "source",
            "settings",
            "checkpoint",
        ],
    )
    return Collected(table, trials, infos)


# -- step 2: from the table ----------------------------------------------------------------------
def _group_label(algo: str, kappa: str, with_kappa: bool = True) -> str:
    name = ALGO_NAMES.get(algo, algo)
    return f"{name} κ={kappa}" if with_kappa and kappa != "none" else name


def _sorted_groups(keys):
    return sorted(keys, key=lambda k: (ALGO_ORDER.get(k[0], 99), str(k[1])))


def last_window(runs: pd.DataFrame, last: int = LAST_ITERATIONS) -> pd.DataFrame:
    """The last ``last`` iterations of every complete run (all of a shorter run)."""
    c = runs[runs["complete"]].sort_values(["run_dir", "iteration"])
    return c.groupby("run_dir", sort=False).tail(last)


def bootstrap_ci(values, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampled with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def table2(
    runs: pd.DataFrame, last: int = LAST_ITERATIONS, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Table 2: one row per (task, algo, κ label) over the complete runs of ``runs``.

    ``avg_*`` is about ``return_mean``, ``worst_*`` about ``return_worst10``: per seed the
    mean over its last ``last`` iterations, then ``mean``/``std`` (ddof=1) over seeds and
    a bootstrap CI (``n_boot`` resamples of the seeds, RNG seeded with ``seed``).
    """
    w = last_window(runs, last)
    per_seed = w.groupby(["task", "algo", "kappa", "seed"], as_index=False).agg(
        avg=("return_mean", "mean"),
        worst=("return_worst10", "mean"),
        window=("iteration", "size"),
        env_steps=("env_steps", "max"),
    )
    rows = []
    for (task, algo, kappa), g in per_seed.groupby(["task", "algo", "kappa"]):
        row: dict[str, Any] = {
            "task": task,
            "algo": algo,
            "kappa": kappa,
            "n_seeds": len(g),
            "seeds": " ".join(str(s) for s in sorted(g["seed"])),
            "window_min": int(g["window"].min()),
            "window_max": int(g["window"].max()),
            "env_steps_mean": float(g["env_steps"].mean()),
        }
        for col in ("avg", "worst"):
            v = g[col].to_numpy()
            lo, hi = bootstrap_ci(v, n_boot, seed)
            row.update(
                {
                    f"{col}_mean": float(v.mean()),
                    f"{col}_std": float(np.std(v, ddof=1)) if v.size > 1 else float("nan"),
                    f"{col}_ci_low": lo,
                    f"{col}_ci_high": hi,
                }
            )
        rows.append(row)
    cols = [
        "task",
        "algo",
        "kappa",
        "n_seeds",
        "seeds",
        "window_min",
        "window_max",
        "env_steps_mean",
        *(f"{c}_{s}" for c in ("avg", "worst") for s in ("mean", "std", "ci_low", "ci_high")),
    ]
    out = pd.DataFrame(rows, columns=cols)
    if not out.empty:
        out["_o"] = out["algo"].map(lambda a: ALGO_ORDER.get(a, 99))
        out = out.sort_values(["task", "_o", "kappa"]).drop(columns="_o").reset_index(drop=True)
    return out


def table2_markdown(t2: pd.DataFrame) -> str:
    """Table 2 as a markdown table."""
    fmt = runs_mod.fmt_number
    head = (
        "| task | algorithm | κ | seeds | last iterations | average return (mean ± std) | 95% CI | "
        "10%-worst return (mean ± std) | 95% CI |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in t2.itertuples():
        window = str(r.window_min) if r.window_min == r.window_max else f"{r.window_min}–{r.window_max}"
        lines.append(
            f"| {r.task} | {ALGO_NAMES.get(r.algo, r.algo)} | {r.kappa} | {r.n_seeds} ({r.seeds}) | {window} | "
            f"{fmt(r.avg_mean)} ± {fmt(r.avg_std)} | [{fmt(r.avg_ci_low)}, {fmt(r.avg_ci_high)}] | "
            f"{fmt(r.worst_mean)} ± {fmt(r.worst_std)} | [{fmt(r.worst_ci_low)}, {fmt(r.worst_ci_high)}] |"
        )
    return head + "\n".join(lines) + "\n"


def curve_stats(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per iteration over the seeds of one group: mean, standard error and mean env steps,
    up to the shortest seed's last iteration."""
    n_last = runs.groupby("run_dir")["iteration"].max().min()
    r = runs[runs["iteration"] <= n_last]
    g = r.groupby("iteration")
    out = pd.DataFrame(
        {
            "mean": g[column].mean(),
            "se": g[column].std(ddof=1) / np.sqrt(g[column].count()),
            "env_steps": g["env_steps"].mean(),
            "n": g[column].count(),
        }
    ).reset_index()
    return out


def plot_curves(runs: pd.DataFrame, task: str, by_kappa_only: bool = False, title: str = ""):
    """Figure 1 (or 3 with ``by_kappa_only``): panels A (average) and W (10%-worst return).

    One line per (algo, κ) group of complete runs of ``task`` (Figure 3: MRPO runs, one line
    per κ label), mean over seeds with ± 1 standard-error bands. Returns (figure, panels).
    """
    r = runs[(runs["task"] == task) & runs["complete"]]
    if by_kappa_only:
        r = r[r["algo"] == "mrpo"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    use_steps = r["env_steps"].notna().all() and not r.empty
    groups = _sorted_groups(r.groupby(["algo", "kappa"]).groups.keys())
    for gi, (algo, kappa) in enumerate(groups):
        g = r[(r["algo"] == algo) & (r["kappa"] == kappa)]
        n_seeds = g["run_dir"].nunique()
        label = f"κ={kappa}" if by_kappa_only else _group_label(algo, kappa)
        label += f" ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
        color = f"C{gi}"
        for ax, column in zip(axes, ("return_mean", "return_worst10"), strict=True):
            s = curve_stats(g, column)
            x = s["env_steps"] if use_steps else s["iteration"]
            ax.plot(x, s["mean"], color=color, label=label)
            if n_seeds > 1:
                ax.fill_between(x, s["mean"] - s["se"], s["mean"] + s["se"], color=color, alpha=0.2, lw=0)
    for ax, name in zip(axes, ("A: average return", "W: 10%-worst return"), strict=True):
        ax.set_title(name)
        ax.set_xlabel("env steps (mean over seeds)" if use_steps else "iteration")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
    if groups:
        axes[0].legend(fontsize=8)
    fig.suptitle(title or (f"{task}: κ study (MRPO)" if by_kappa_only else f"{task}: training curves"))
    fig.tight_layout()
    return fig, list(axes)


def plot_heatmaps(evals: pd.DataFrame, task: str, title: str = ""):
    """Figure 2: test-grid return of each (algo, κ) group averaged over seeds, one panel
    per group, one colour scale. A grid with one varying axis is drawn as lines.
    Returns (figure, panels)."""
    from mrpo_rllib.envs import get_task
    from mrpo_rllib.evaluate import grid_axes

    e = evals[evals["task"] == task]
    spec = get_task(task)
    axes_names = [a for a in grid_axes(spec) if e[a].nunique() > 1]
    groups = _sorted_groups(e.groupby(["algo", "kappa"]).groups.keys())
    mean = e.groupby(["algo", "kappa", *spec.param_names], as_index=False).agg(
        return_mean=("return_mean", "mean"), n_seeds=("run_dir", "nunique")
    )
    n = max(1, len(groups))
    fig, panels = plt.subplots(
        1, n, figsize=(4.2 * n + 1.2, 3.8), dpi=100, squeeze=False, layout="constrained"
    )
    panels = list(panels[0])
    vmin, vmax = mean["return_mean"].min(), mean["return_mean"].max()
    if not np.isfinite(vmin) or vmin == vmax:
        vmin, vmax = (vmin - 1, vmax + 1) if np.isfinite(vmin) else (0, 1)
    mappable = None
    for ax, (algo, kappa) in zip(panels, groups, strict=False):
        g = mean[(mean["algo"] == algo) & (mean["kappa"] == kappa)]
        seeds = int(e[(e["algo"] == algo) & (e["kappa"] == kappa)]["run_dir"].nunique())
        if len(axes_names) >= 2:
            xa, ya = axes_names[:2]
            piv = g.pivot_table(index=ya, columns=xa, values="return_mean", aggfunc="mean")
            mappable = ax.imshow(
                piv.to_numpy(), origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis"
            )
            for setter, ticks, values in (
                (ax.set_xticks, range(piv.shape[1]), piv.columns),
                (ax.set_yticks, range(piv.shape[0]), piv.index),
            ):
                step = max(1, math.ceil(len(values) / 6))
                setter(list(ticks)[::step], [f"{v:.3g}" for v in list(values)[::step]])
            ax.set_xlabel(xa)
            ax.set_ylabel(ya)
        else:
            xa = axes_names[0] if axes_names else spec.param_names[0]
            g = g.sort_values(xa)
            ax.plot(g[xa], g["return_mean"], marker="o")
            ax.set_ylim(vmin, vmax)
            ax.set_xlabel(xa)
            ax.set_ylabel("return")
        ax.set_title(f"{_group_label(algo, kappa)} ({seeds} seed{'s' if seeds != 1 else ''})", fontsize=9)
    fixed = [f"{p}={e[p].iloc[0]:g}" for p in spec.param_names if p not in axes_names and not e.empty]
    fig.suptitle(
        title
        or f"{task}: return on the test range, mean over seeds" + (f" ({', '.join(fixed)})" if fixed else "")
    )
    if mappable is not None:
        fig.colorbar(mappable, ax=panels, label="return (mean over seeds and episodes)")
    return fig, panels


def monotonicity(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, falls of the 10%-worst return W between consecutive iterations.

    - ``falls``: transitions t−1 → t with W_t < W_{t−1};
    - ``significant_falls``: falls larger than noise, i.e. W_{t−1} − W_t > 2·sqrt(se_{t−1}² +
      se_t²), where se is the bootstrap standard error of that iteration's 10%-worst mean
      (``worst10_se``, from the run's episodes.csv; NaN when unknown);
    - ``significant_fall_rate``: significant falls per transition with a known se;
    - ``largest_fall``: the largest W_{t−1} − W_t (0 if W never fell);
    - ``longest_fall``: the most consecutive iterations of decrease, its first iteration
      (the one before the first decrease) and its total drop.
    """
    rows = []
    for run_dir, r in runs.sort_values(["run_dir", "iteration"]).groupby("run_dir", sort=False):
        w = r["return_worst10"].to_numpy(dtype=np.float64)
        se = r["worst10_se"].to_numpy(dtype=np.float64)
        it = r["iteration"].to_numpy()
        drop = w[:-1] - w[1:]  # > 0: a fall
        noise = 2.0 * np.sqrt(se[:-1] ** 2 + se[1:] ** 2)
        known = np.isfinite(noise)
        sig = (drop > noise) & known
        longest, start, total, run_len, run_start = 0, None, 0.0, 0, 0
        for t, d in enumerate(drop):
            if d > 0:
                if run_len == 0:
                    run_start = t
                run_len += 1
                if run_len > longest:
                    longest, start = run_len, run_start
                    total = float(w[run_start] - w[t + 1])
            else:
                run_len = 0
        first = r.iloc[0]
        rows.append(
            {
                "run_dir": run_dir,
                "algo": first["algo"],
                "task": first["task"],
                "kappa": first["kappa"],
                "seed": int(first["seed"]),
                "complete": bool(first["complete"]),
                "iterations": len(w),
                "transitions": len(drop),
                "falls": int((drop > 0).sum()),
                "significant_falls": int(sig.sum()) if known.any() else np.nan,
                "significant_fall_rate": float(sig.sum() / known.sum()) if known.any() else np.nan,
                "largest_fall": float(max(0.0, drop.max())) if drop.size else 0.0,
                "longest_fall": int(longest),
                "longest_fall_start": int(it[start]) if start is not None else np.nan,
                "longest_fall_drop": total,
            }
        )
    return pd.DataFrame(rows)


def missing_seeds(trials: pd.DataFrame) -> list[str]:
    """One line per task: which (algo, κ) groups lack seeds that others of the task have."""
    lines = []
    c = trials[trials["complete"]]
    for task, t in trials.groupby("task"):
        ct = c[c["task"] == task]
        present = {k: set(g["seed"]) for k, g in ct.groupby(["algo", "kappa"])}
        expected = set(t["seed"])  # every seed a run directory exists for
        for s in present.values():
            expected |= s
        groups = _sorted_groups({(a, k) for a, k in zip(t["algo"], t["kappa"], strict=True)})
        gaps = []
        for key in groups:
            miss = sorted(expected - present.get(key, set()))
            if miss:
                gaps.append(f"{_group_label(*key)} misses seed(s) {', '.join(map(str, miss))}")
        seeds = ", ".join(map(str, sorted(expected)))
        if gaps:
            lines.append(f"**{task}: partial sweep** (seeds {seeds}): " + "; ".join(gaps) + ".")
        else:
            lines.append(f"{task}: every algorithm has seeds {seeds}.")
    return lines


# -- evaluation (Figure 2) ------------------------------------------------------------------------
def evaluate_runs(trials: pd.DataFrame, points: int, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Evaluate the final checkpoint of every complete run on its task's test grid."""
    from mrpo_rllib.evaluate import evaluate_many

    todo = trials[trials["complete"] & trials["checkpoint"].notna()]
    if todo.empty:
        return pd.DataFrame()
    frames = evaluate_many(list(todo["checkpoint"]), "test", points, episodes, seed, True)
    info_cols = ["task", "algo", "kappa", "seed", "run_dir", "checkpoint"]
    out = []
    for (_, t), df in zip(todo.iterrows(), frames, strict=True):
        out.append(pd.concat([pd.DataFrame({c: [t[c]] * len(df) for c in info_cols}), df], axis=1))
    return pd.concat(out, ignore_index=True)


# -- the whole report ---------------------------------------------------------------------------
def _rel(path: str, start: str) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return path


def _experiment_eval_defaults(infos: list[RunInfo]) -> tuple[int, int] | None:
    from mrpo_rllib.experiments import load_experiment

    for sweep in sorted({i.sweep_dir for i in infos if i.sweep_dir}):
        f = os.path.join(sweep, "experiment.yaml")
        if os.path.isfile(f):
            try:
                ev = load_experiment(f).evaluation
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
    os.makedirs(out, exist_ok=True)
    col = collect(runs_dir)
    if not col.infos:
        raise ValueError(f"no run directories ({{algo}}__{{task}}__kappa{{k}}__seed{{s}}) under {runs_dir!r}")
    written: dict[str, Any] = {"panels": {}}

    def path(name):
        p = os.path.join(out, name)
        written[name] = p
        return p

    col.runs.to_parquet(path("runs.parquet"), index=False)
    col.runs.to_csv(path("runs.csv"), index=False)
    col.incomplete.to_csv(path("incomplete.csv"), index=False)
    col.trials.to_csv(path("trials.csv"), index=False)
    n_complete = int(col.trials["complete"].sum())
    echo(f"collected {len(col.infos)} run directories under {runs_dir}: {n_complete} complete")

    runs = col.runs
    t2 = table2(runs, last=last, seed=seed)
    t2.to_csv(path("table2.csv"), index=False)
    t2_md = table2_markdown(t2)
    with open(path("table2.md"), "w") as f:
        f.write(t2_md)

    tasks = sorted(runs.loc[runs["complete"], "task"].unique())
    fig1, fig3, fig3_notes = {}, {}, []
    for task in tasks:
        fig, panels = plot_curves(runs, task)
        fig.savefig(path(f"fig1_{task}.png"))
        plt.close(fig)
        fig1[task] = f"fig1_{task}.png"
        written["panels"][f"fig1_{task}.png"] = len(panels)
        kappas = sorted(
            runs.loc[runs["complete"] & (runs["task"] == task) & (runs["algo"] == "mrpo"), "kappa"].unique()
        )
        if len(kappas) > 1:
            fig, panels = plot_curves(runs, task, by_kappa_only=True)
            fig.savefig(path(f"fig3_{task}.png"))
            plt.close(fig)
            fig3[task] = f"fig3_{task}.png"
            written["panels"][f"fig3_{task}.png"] = len(panels)
        else:
            fig3_notes.append(
                f"{task}: skipped, MRPO runs have {'one κ setting (' + kappas[0] + ')' if kappas else 'no complete run'}."
            )

    mono = monotonicity(runs) if not runs.empty else pd.DataFrame()
    mono.to_csv(path("monotonicity.csv"), index=False)

    # Figure 2
    fig2, fig2_note = {}, ""
    defaults = _experiment_eval_defaults(col.infos) or (5, 3)
    points = eval_points or defaults[0]
    episodes = eval_episodes or defaults[1]
    if evaluate:
        no_ckpt = col.trials[col.trials["complete"] & col.trials["checkpoint"].isna()]
        echo(
            f"evaluating {n_complete - len(no_ckpt)} final checkpoints on the test grids ({points} points/axis, {episodes} episodes)"
        )
        evals = evaluate_runs(col.trials, points, episodes, seed)
        if not evals.empty:
            evals.to_csv(path("eval_test.csv"), index=False)
            for task in sorted(evals["task"].unique()):
                fig, panels = plot_heatmaps(evals, task)
                fig.savefig(path(f"fig2_{task}.png"))
                plt.close(fig)
                fig2[task] = f"fig2_{task}.png"
                written["panels"][f"fig2_{task}.png"] = len(panels)
        fig2_note = (
            f"Final checkpoints evaluated on the test-range grid: {points} points per axis, {episodes} "
            f"deterministic episodes per point, evaluation seed {seed}; per-run numbers in "
            f"[eval_test.csv](eval_test.csv)."
        )
        if len(no_ckpt):
            fig2_note += (
                f" No checkpoint found for: {', '.join(_rel(d, runs_dir) for d in no_ckpt['run_dir'])}."
            )
    else:
        fig2_note = "Skipped (`--no-eval`)."

    md = _report_markdown(
        col, runs_dir, out, t2_md, fig1, fig2, fig2_note, fig3, fig3_notes, mono, last, argv
    )
    with open(path("report.md"), "w") as f:
        f.write(md)
    echo(f"report: {written['report.md']}")
    return written


def _report_markdown(col, runs_dir, out, t2_md, fig1, fig2, fig2_note, fig3, fig3_notes, mono, last, argv):
    argv = sys.argv if argv is None else argv
    cmd = shlex.join(["mrpo", *argv[1:]]) if argv else ""
    L = [
        "# MRPO report",
        "",
        f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} from `{os.path.abspath(runs_dir)}`"
        + (f" by `{cmd}`." if cmd else "."),
        "",
        "Data: [runs.parquet](runs.parquet) / [runs.csv](runs.csv) (one row per run and iteration), "
        "[trials.csv](trials.csv) (one row per run directory, with status and settings), "
        "[incomplete.csv](incomplete.csv).",
        "",
        "## Runs",
        "",
        f"{len(col.infos)} run directories, {int(col.trials['complete'].sum())} complete.",
        "",
        *[f"- {line}" for line in missing_seeds(col.trials)],
        "",
    ]
    inc = col.incomplete
    if len(inc):
        shown = inc.assign(run_dir=[_rel(d, runs_dir) for d in inc["run_dir"]])
        L += [
            f"**{len(inc)} incomplete or failed run(s), left out of the tables and figures:**",
            "",
            runs_mod.md_table(shown),
        ]
    else:
        L += ["No incomplete or failed runs.", ""]
    L += [
        "## Table 2",
        "",
        f"Per seed, the mean over its last {last} iterations (fewer when a run is shorter: see "
        "*last iterations*); then mean ± sample std (ddof=1) over seeds and a 95% percentile "
        "bootstrap CI of the mean over seeds (2000 resamples, seeded). "
        "[table2.csv](table2.csv), [table2.md](table2.md).",
        "",
        t2_md,
        "## Figure 1: training curves",
        "",
        "A: average return, W: 10%-worst return over the M episodes of each iteration; mean over "
        "seeds ± one standard error, iterations aligned across seeds and plotted at the seeds' "
        "mean env steps, up to the shortest seed's last iteration.",
        "",
        *[f"![{t}]({p})" for t, p in fig1.items()],
        "",
        "## Figure 2: generalisation to the test range",
        "",
        fig2_note,
        "",
        *[f"![{t}]({p})" for t, p in fig2.items()],
        "",
        "## Figure 3: κ study",
        "",
        *[f"![{t}]({p})" for t, p in fig3.items()],
        *[f"- {n}" for n in fig3_notes],
        "",
        "## Monotonicity audit",
        "",
        "Per run, a *fall* is a decrease of the 10%-worst return W from one iteration to the next; "
        "it is *significant* when W_{t-1} − W_t > 2·sqrt(se_{t-1}² + se_t²), se being the bootstrap "
        "standard error (200 resamples of that iteration's M episode returns in episodes.csv) of "
        "the 10%-worst mean. The longest fall is the most consecutive iterations of decrease. "
        "Per run: [monotonicity.csv](monotonicity.csv). Mean over the complete runs:",
        "",
    ]
    if not mono.empty and mono["complete"].any():
        s = (
            mono[mono["complete"]]
            .groupby(["task", "algo", "kappa"], as_index=False)
            .agg(
                runs=("run_dir", "size"),
                falls_per_transition=("falls", "sum"),
                transitions=("transitions", "sum"),
                significant_fall_rate=("significant_fall_rate", "mean"),
                longest_fall=("longest_fall", "mean"),
                largest_fall=("largest_fall", "mean"),
            )
        )
        s["falls_per_transition"] = s["falls_per_transition"] / s["transitions"].where(s["transitions"] > 0)
        L += [runs_mod.md_table(s.drop(columns="transitions")), ""]
    else:
        L += ["(no complete runs)", ""]
    L += ["## Configuration", ""]
    sweeps = sorted({i.sweep_dir for i in col.infos if i.sweep_dir})
    for sw in sweeps:
        L += [f"### Tune sweep `{_rel(sw, runs_dir)}`", ""]
        cmd_text = _read(os.path.join(sw, "command.txt"))
        if cmd_text:
            L += [f"Command: `{cmd_text.strip()}`", ""]
        exp = _read(os.path.join(sw, "experiment.yaml"))
        if exp:
            L += ["```yaml", exp.rstrip(), "```", ""]
    L += ["| run | status | source | settings | command |", "|---|---|---|---|---|"]
    for i in col.infos:
        status = "complete" if i.complete else "incomplete"
        if i.reason:
            status += f": {i.reason}"
        command = "" if i.source == "tune" else (i.command or "")
        L.append(
            f"| {_rel(i.run_dir, runs_dir)} | {status.replace('|', '/')} | {i.source} | {i.settings} | "
            f"{'`' + command + '`' if command else ''} |"
        )
    L.append("")
    return "\n".join(L)
