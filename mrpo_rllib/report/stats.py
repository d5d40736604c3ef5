"""Step 2 of the report, numbers: Table 2, curve statistics, the monotonicity audit.

Everything here is a function of the tidy tables of :mod:`~mrpo_rllib.report.collect`
(only complete runs count) and returns a DataFrame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mrpo_rllib.report.collect import ALGO_ORDER, GROUP, group_label, sorted_groups, with_groups
from mrpo_rllib.statistics import N_BOOT, bootstrap_ci

LAST_ITERATIONS = 50
# A compared algorithm that keeps more than this share of its episodes in the window is
# PPO-DR there: comparing it with PPO-DR is then vacuous (parity is expected, not found).
VACUOUS_KEPT_FRACTION = 0.9


@dataclass(frozen=True)
class Window:
    """The part of each run Table 2 averages over: its last ``iterations``, the
    iterations that end in its last ``env_steps`` env steps, or those ending in the last
    ``fraction`` (in (0, 1]) of its env steps. Exactly one is given. Runs of different
    iteration sizes cover different env-step spans over the same number of iterations;
    ``env_steps`` and ``fraction`` compare them over the same span."""

    iterations: int | None = None
    env_steps: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        given = {k: v for k, v in vars(self).items() if v is not None}
        if len(given) != 1:
            raise ValueError(f"a window is one of iterations, env_steps or fraction; got {given or 'none'}")
        ((name, value),) = given.items()
        if name == "fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"window fraction must be in (0, 1], got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"window {name} must be an integer >= 1, got {value!r}")

    def __str__(self) -> str:
        if self.iterations is not None:
            return f"last {self.iterations} iterations"
        if self.env_steps is not None:
            return f"last {self.env_steps:,} env steps"
        return f"last {self.fraction:.0%} of its env steps"

    def select(self, run: pd.DataFrame) -> pd.DataFrame:
        """This window of one run's rows (sorted by iteration)."""
        if self.iterations is not None:
            return run.tail(self.iterations)
        end = run["env_steps"].max()
        span = self.env_steps if self.env_steps is not None else self.fraction * end
        return run[run["env_steps"] > end - span]


def as_window(last: int | Window) -> Window:
    """``last`` N iterations as a :class:`Window`; a Window as it is."""
    return last if isinstance(last, Window) else Window(iterations=last)


def last_window(runs: pd.DataFrame, last: int | Window = LAST_ITERATIONS) -> pd.DataFrame:
    """The window (default: the last ``last`` iterations) of every complete run (all of a
    shorter run)."""
    window = as_window(last)
    c = runs[runs["complete"]].sort_values(["run_dir", "iteration"])
    parts = [window.select(g) for _, g in c.groupby("run_dir", sort=False)]
    return pd.concat(parts) if parts else c


def vacuous_comparisons(runs: pd.DataFrame, last: int | Window = LAST_ITERATIONS) -> pd.DataFrame:
    """Groups other than PPO-DR that kept more than ``VACUOUS_KEPT_FRACTION`` of their
    episodes in the window (mean over seeds of each seed's mean kept fraction): one row
    per (task, group) with that fraction. Such a group *is* PPO-DR in the window."""
    w = last_window(runs, last)
    w = w[w["algo"] != "dr"]
    cols = ["task", *GROUP, "kept_fraction", "n_seeds"]
    if w.empty or "kept_fraction" not in w:
        return pd.DataFrame(columns=cols)
    seeds = w.groupby(["task", *GROUP, "seed"], as_index=False)["kept_fraction"].mean()
    agg = seeds.groupby(["task", *GROUP], as_index=False).agg(
        kept_fraction=("kept_fraction", "mean"), n_seeds=("seed", "size")
    )
    return agg[agg["kept_fraction"] > VACUOUS_KEPT_FRACTION][cols].reset_index(drop=True)


def per_seed(runs: pd.DataFrame, last: int | Window = LAST_ITERATIONS) -> pd.DataFrame:
    """One row per complete run: its mean average and 10%-worst return over its last window."""
    return (
        last_window(runs, last)
        .groupby(["task", *GROUP, "seed"], as_index=False)
        .agg(
            avg=("return_mean", "mean"),
            worst=("return_worst10", "mean"),
            window=("iteration", "size"),
            env_steps=("env_steps", "max"),
        )
    )


def table2(
    runs: pd.DataFrame, last: int | Window = LAST_ITERATIONS, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Table 2: one row per (task, algo, κ label, setting) over the complete runs of ``runs``.

    ``avg_*`` is about ``return_mean``, ``worst_*`` about ``return_worst10``: per seed the
    mean over its window (the last ``last`` iterations, or a :class:`Window`), then ``mean``/``std`` (ddof=1) over seeds and
    a bootstrap CI (``n_boot`` resamples of the seeds, RNG seeded with ``seed``).
    """
    rows = []
    for (task, algo, kappa, setting), g in per_seed(runs, last).groupby(["task", *GROUP]):
        row: dict[str, Any] = {
            "task": task,
            "algo": algo,
            "kappa": kappa,
            "setting": setting,
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
        *GROUP,
        "n_seeds",
        "seeds",
        "window_min",
        "window_max",
        "env_steps_mean",
        *(f"{c}_{s}" for c in ("avg", "worst") for s in ("mean", "std", "ci_low", "ci_high")),
    ]
    return _in_algo_order(pd.DataFrame(rows, columns=cols))


def _in_algo_order(df: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Rows sorted by task, algorithm (MRPO, EPOpt, DR), κ, setting, then ``then``."""
    if df.empty:
        return df
    order = df["algo"].map(lambda a: ALGO_ORDER.get(a, 99)).rename("_o")
    out = df.assign(_o=order).sort_values(["task", "_o", "kappa", "setting", *then])
    return out.drop(columns="_o").reset_index(drop=True)


def window_sensitivity(runs: pd.DataFrame, windows=(5, 10, 20, 30, 50)) -> pd.DataFrame:
    """Table 2's 10%-worst column for other windows: per (task, group) and window N, the
    mean and std (ddof=1) over seeds of each seed's mean ``return_worst10`` over its last N
    iterations. A result that holds for one N only is the window's, not the algorithm's."""
    frames = []
    for n in windows:
        ps = per_seed(runs, n)
        agg = ps.groupby(["task", *GROUP], as_index=False).agg(
            worst_mean=("worst", "mean"), worst_std=("worst", "std"), n_seeds=("seed", "size")
        )
        frames.append(agg.assign(last=n))
    if not frames:
        return pd.DataFrame(columns=["task", *GROUP, "last", "worst_mean", "worst_std", "n_seeds"])
    out = _in_algo_order(pd.concat(frames, ignore_index=True), "last")
    return out[["task", *GROUP, "last", "worst_mean", "worst_std", "n_seeds"]]


def window_frame(ws: pd.DataFrame) -> pd.DataFrame:
    """:func:`window_sensitivity` for reading: one row per (task, group), a column per window."""
    if ws.empty:
        return ws
    cell = [
        f"{m:.1f} ± {s:.1f}" if np.isfinite(s) else f"{m:.1f}"
        for m, s in zip(ws["worst_mean"], ws["worst_std"], strict=True)
    ]
    wide = ws.assign(
        cell=cell,
        group=[
            group_label(a, k, st) for a, k, st in zip(ws["algo"], ws["kappa"], ws["setting"], strict=True)
        ],
    )
    order = list(dict.fromkeys(zip(wide["task"], wide["group"], strict=True)))
    table = wide.pivot(index=["task", "group"], columns="last", values="cell").loc[order]
    table.columns = [f"last {n}" for n in table.columns]
    return table.reset_index().rename(columns={"group": "algorithm"})


def curve_stats(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per iteration over the seeds of one group: mean, standard error and mean env steps,
    up to the shortest seed's last iteration."""
    n_last = runs.groupby("run_dir")["iteration"].max().min()
    r = runs[runs["iteration"] <= n_last]
    g = r.groupby("iteration")
    return pd.DataFrame(
        {
            "mean": g[column].mean(),
            "se": g[column].std(ddof=1) / np.sqrt(g[column].count()),
            "env_steps": g["env_steps"].mean(),
            "n": g[column].count(),
        }
    ).reset_index()


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
                "setting": first.get("setting", ""),
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


def monotonicity_summary(mono: pd.DataFrame) -> pd.DataFrame:
    """Mean over the complete runs of each (task, group) of the audit's per-run figures."""
    if mono.empty or not mono["complete"].any():
        return pd.DataFrame()
    s = (
        mono[mono["complete"]]
        .groupby(["task", *GROUP], as_index=False)
        .agg(
            runs=("run_dir", "size"),
            falls=("falls", "sum"),
            transitions=("transitions", "sum"),
            significant_fall_rate=("significant_fall_rate", "mean"),
            longest_fall=("longest_fall", "mean"),
            largest_fall=("largest_fall", "mean"),
        )
    )
    s.insert(5, "falls_per_transition", s["falls"] / s["transitions"].where(s["transitions"] > 0))
    return s.drop(columns=["falls", "transitions"])


def missing_seeds(trials: pd.DataFrame) -> list[str]:
    """One line per task: which groups lack seeds that others of the task have."""
    lines = []
    trials = with_groups(trials)
    c = trials[trials["complete"]]
    for task, t in trials.groupby("task"):
        ct = c[c["task"] == task]
        present = {k: set(g["seed"]) for k, g in ct.groupby(GROUP)}
        expected = set(t["seed"])  # every seed a run directory exists for
        for s in present.values():
            expected |= s
        groups = sorted_groups(set(zip(t["algo"], t["kappa"], t["setting"], strict=True)))
        gaps = []
        for key in groups:
            miss = sorted(expected - present.get(key, set()))
            if miss:
                gaps.append(f"{group_label(*key)} misses seed(s) {', '.join(map(str, miss))}")
        seeds = ", ".join(map(str, sorted(expected)))
        if gaps:
            lines.append(f"**{task}: partial sweep** (seeds {seeds}): " + "; ".join(gaps) + ".")
        else:
            lines.append(f"{task}: every algorithm has seeds {seeds}.")
    return lines


# -- rliable (Agarwal et al. 2021): IQM, stratified bootstrap CIs, probability of improvement --
RLIABLE_REPS = 50_000


def _score_matrix(ps: pd.DataFrame, task: str, group: tuple, column: str) -> np.ndarray:
    g = ps[
        (ps["task"] == task)
        & (ps["algo"] == group[0])
        & (ps["kappa"] == group[1])
        & (ps["setting"] == group[2])
    ]
    return g[column].to_numpy(dtype=np.float64)[:, None]  # (runs, 1 task)


def rliable_table(
    runs: pd.DataFrame, last: int | Window = LAST_ITERATIONS, seed: int = 0, reps: int = RLIABLE_REPS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per task, with rliable: (1) each group's IQM of the per-seed average and 10%-worst
    returns (the means over each seed's last ``last`` iterations, as Table 2) with 95%
    stratified-bootstrap CIs; (2) the probability of improvement P(MRPO > other) on the
    10%-worst return for each MRPO group against each PW-DR and PPO-DR group, with CIs."""
    from rliable import library as rly
    from rliable import metrics

    warnings.filterwarnings(
        "ignore", message="random_state is deprecated", category=FutureWarning
    )  # arch 7.2
    ps = per_seed(runs, last)
    iqm_rows, poi_rows = [], []

    def iqm(x):
        return np.array([metrics.aggregate_iqm(x)])

    for task, t in ps.groupby("task"):
        groups = sorted_groups(set(zip(t["algo"], t["kappa"], t["setting"], strict=True)))
        for col, name in (("avg", "average"), ("worst", "10%-worst")):
            scores = {group_label(*g): _score_matrix(t, task, g, col) for g in groups}
            est, ci = rly.get_interval_estimates(
                scores, iqm, reps=reps, random_state=np.random.RandomState(seed)
            )
            for g in groups:
                label = group_label(*g)
                iqm_rows.append(
                    {
                        "task": task,
                        "algo": g[0],
                        "kappa": g[1],
                        "setting": g[2],
                        "return": name,
                        "seeds": len(scores[label]),
                        "iqm": float(est[label][0]),
                        "ci_low": float(ci[label][0][0]),
                        "ci_high": float(ci[label][1][0]),
                    }
                )
        mrpo = [g for g in groups if g[0] == "mrpo"]
        others = [g for g in groups if g[0] != "mrpo"]
        pairs = {
            f"{group_label(*a)} > {group_label(*b)}": (
                _score_matrix(t, task, a, "worst"),
                _score_matrix(t, task, b, "worst"),
            )
            for a in mrpo
            for b in others
        }
        if pairs:
            est, ci = rly.get_interval_estimates(
                pairs, metrics.probability_of_improvement, reps=reps, random_state=np.random.RandomState(seed)
            )
            for name in pairs:
                poi_rows.append(
                    {
                        "task": task,
                        "comparison": f"P({name}), 10%-worst return",
                        "probability": float(est[name]),
                        "ci_low": float(ci[name][0][0]),
                        "ci_high": float(ci[name][1][0]),
                    }
                )
    return pd.DataFrame(iqm_rows), pd.DataFrame(poi_rows)


def performance_profile(
    runs: pd.DataFrame,
    task: str,
    scale: float,
    last: int | Window = LAST_ITERATIONS,
    column: str = "worst",
    reps: int = 2000,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's run-score performance profile of each group on ``task``: the fraction of
    seeds whose score (the per-seed ``column`` mean over the last ``last`` iterations, divided
    by ``scale``) exceeds τ, with 95% stratified-bootstrap CIs. Returns (taus, profiles, CIs)
    keyed by group label."""
    from rliable import library as rly

    ps = per_seed(runs, last)
    t = ps[ps["task"] == task]
    groups = sorted_groups(set(zip(t["algo"], t["kappa"], t["setting"], strict=True)))
    scores = {group_label(*g): _score_matrix(t, task, g, column) / scale for g in groups}
    top = max([1.0, *(float(v.max()) for v in scores.values())])
    taus = np.linspace(0.0, top, 51)
    profiles, cis = rly.create_performance_profile(scores, taus, reps=reps)
    return taus, profiles, cis
