"""The report's evaluations of checkpoints: Figure 2 (test-range grids) and the searched worst case.

Which checkpoints: for every complete run, its **final** checkpoint and its **best** one, the
checkpoint saved at the iteration with the highest training 10%-worst return (the paper
evaluates "best policies"; checkpoints exist every ``checkpoint_every`` iterations, so "best"
is the best of those). How: deterministically (the distribution's mode) and stochastically
(actions sampled, as the authors' evaluation did), on the task's test-range grid
(:mod:`mrpo_rllib.evaluate`), the same episode seeds for every policy.

Each (checkpoint, grid, points, episodes, seed, mode) evaluation is kept in its run
directory (``evaluations/checkpoint_000NNN__test_p5_e3_s0_stochastic.csv``) and read back by
the next report with the same settings, so that re-running a report (or ``make reproduce``)
after more runs finish evaluates only what is new. Delete ``evaluations/`` to redo them.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from mrpo_rllib import runs as runs_mod

INFO_COLUMNS = ["task", "algo", "kappa", "setting", "seed", "run_dir", "checkpoint", "checkpoint_kind"]
KINDS = ("best", "final")
MODES = ("stochastic", "deterministic")


def chosen_checkpoints(trials: pd.DataFrame, runs: pd.DataFrame, kinds=KINDS) -> pd.DataFrame:
    """One row per (complete run, kind): the checkpoint and the iteration it was saved at."""
    rows = []
    for t in trials[trials["complete"] & trials["checkpoint"].notna()].itertuples():
        found = runs_mod.checkpoints(t.run_dir)
        if not found:
            continue
        saved = {runs_mod.checkpoint_iteration(c): c for c in found}
        progress = runs[runs["run_dir"] == t.run_dir].set_index("iteration")["return_worst10"]
        at = progress.reindex(list(saved)).dropna()
        best_it = int(at.idxmax()) if len(at) else max(saved)
        for kind in kinds:
            it = max(saved) if kind == "final" else best_it
            rows.append(
                {
                    **{c: getattr(t, c) for c in ("task", "algo", "kappa", "setting", "seed", "run_dir")},
                    "checkpoint": saved[it],
                    "checkpoint_kind": kind,
                    "checkpoint_iteration": it,
                    "train_worst10_at_checkpoint": float(progress.get(it, np.nan)),
                }
            )
    return pd.DataFrame(rows)


def evaluate_runs(
    trials: pd.DataFrame,
    runs: pd.DataFrame,
    points: int,
    episodes: int,
    seed: int = 0,
    kinds=KINDS,
    modes=MODES,
) -> pd.DataFrame:
    """Every complete run's chosen checkpoints on its test-range grid, in every mode: one row
    per (run, kind, mode, grid point)."""
    from mrpo_rllib.evaluate import evaluate_many

    todo = chosen_checkpoints(trials, runs, kinds)
    if todo.empty:
        return pd.DataFrame()
    out = []
    for mode in modes:
        caches = [
            evaluation_cache(t.run_dir, t.checkpoint, points, episodes, seed, mode) for t in todo.itertuples()
        ]
        # cache -> checkpoint, once each (best and final may be the same checkpoint)
        missing = {c: ck for c, ck in zip(caches, todo["checkpoint"], strict=True) if not os.path.exists(c)}
        if missing:
            frames = evaluate_many(
                list(missing.values()), "test", points, episodes, seed, mode == "deterministic"
            )
            for cache, df in zip(missing, frames, strict=True):
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                df.to_csv(cache + ".tmp", index=False)
                os.replace(cache + ".tmp", cache)
        for (_, t), cache in zip(todo.iterrows(), caches, strict=True):
            df = pd.read_csv(cache)
            info = {c: [t[c]] * len(df) for c in [*INFO_COLUMNS, "checkpoint_iteration"]}
            out.append(pd.concat([pd.DataFrame(info).assign(mode=mode), df], axis=1))
    return pd.concat(out, ignore_index=True)


def evaluation_cache(run_dir: str, checkpoint: str, points: int, episodes: int, seed: int, mode: str) -> str:
    """Where one checkpoint's test-grid evaluation is kept (see the module's docstring)."""
    name = f"{os.path.basename(os.path.normpath(checkpoint))}__test_p{points}_e{episodes}_s{seed}_{mode}.csv"
    return os.path.join(run_dir, "evaluations", name)


def generalisation_summary(evals: pd.DataFrame, worst_fraction: float = 0.1) -> pd.DataFrame:
    """Per task, group, checkpoint kind and mode, over seeds: the mean of each run's grid mean
    return, and of its worst-decile grid points (the ⌈10%⌉ lowest grid points)."""
    from mrpo_rllib.selection import worst_count

    keys = ["task", "algo", "kappa", "setting", "checkpoint_kind", "mode"]
    per_run = []
    for (*key, run_dir), g in evals.groupby([*keys, "run_dir"]):
        r = np.sort(g["return_mean"].to_numpy())
        per_run.append(
            {
                **dict(zip(keys, key, strict=True)),
                "run_dir": run_dir,
                "grid_mean": float(r.mean()),
                "grid_worst10": float(r[: worst_count(r.size, worst_fraction)].mean()),
                "grid_min": float(r[0]),
            }
        )
    per_run = pd.DataFrame(per_run)
    return (
        per_run.groupby(keys, as_index=False)
        .agg(
            seeds=("run_dir", "size"),
            grid_mean=("grid_mean", "mean"),
            grid_mean_std=("grid_mean", "std"),
            grid_worst10=("grid_worst10", "mean"),
            grid_worst10_std=("grid_worst10", "std"),
            grid_min=("grid_min", "mean"),
        )
        .sort_values(keys)
        .reset_index(drop=True)
    )


def searched_worst_cases(
    checkpoints: pd.DataFrame, budget: int, episodes: int, seed: int = 0, echo=print
) -> pd.DataFrame:
    """``mrpo worst-case`` (test range, TPE, no grid) on every checkpoint of ``checkpoints``
    (rows of :func:`chosen_checkpoints`): one row per run with the worst point's re-evaluated
    return."""
    from mrpo_rllib.worst_case import search_worst_case

    rows = []
    for t in checkpoints.itertuples():
        r = search_worst_case(
            t.checkpoint, "test", budget, episodes, seed, grid_points=0, echo=lambda *a: None
        )
        echo(f"  searched worst case of {t.run_dir}: {r.worst_return:.1f} at {r.worst_point}")
        rows.append(
            {
                **{c: getattr(t, c) for c in ("task", "algo", "kappa", "setting", "seed", "run_dir")},
                "checkpoint": t.checkpoint,
                "worst_return": r.worst_return,
                "worst_ci_low": r.worst_return_ci[0],
                "worst_ci_high": r.worst_return_ci[1],
                **{f"worst_{k}": v for k, v in r.worst_point.items()},
            }
        )
    return pd.DataFrame(rows)
