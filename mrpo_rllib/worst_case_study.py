"""``mrpo worst-case --compare-samplers``: the study that chose the search's sampler.

Every sampler of :data:`~mrpo_rllib.worst_case.SAMPLERS` searches the same box of one
checkpoint with the same episode seeds, once per search seed; the table and figure of
docs/worst_case.md come from here. The search itself: :mod:`mrpo_rllib.worst_case`.
"""

from __future__ import annotations

import os

import pandas as pd

from mrpo_rllib.plotting import finish_axes, save_figure
from mrpo_rllib.ray_session import ray_session
from mrpo_rllib.worst_case import (
    DEFAULT_EPISODES,
    DEFAULT_RANGE,
    SAMPLERS,
    _policy_objective,
    search_box,
    tune_search,
)

STUDY_BUDGET = 40  # points per search when called from Python (the command line: the search's)


def compare_samplers(
    checkpoint: str,
    which: str = DEFAULT_RANGE,
    budget: int = STUDY_BUDGET,
    episodes: int = DEFAULT_EPISODES,
    seeds: tuple[int, ...] = (0, 1, 2),
    samplers: tuple[str, ...] = SAMPLERS,
    out: str | None = None,
    echo=print,
) -> pd.DataFrame:
    """Each sampler searches the same box with the same episode seeds (common random numbers:
    the search seed changes only the optimiser), once per search seed. Returns one row per
    (sampler, search seed, evaluated point) with ``best_so_far``; with ``out``, also
    ``samplers.csv``, a summary ``samplers_summary.csv`` and ``samplers.png``."""
    from mrpo_rllib.evaluate import load_policy

    policy = load_policy(checkpoint)
    searched, fixed = search_box(policy.spec, which)
    frames = []
    with ray_session() as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        objective = _policy_objective(policy, episodes, 0, fixed)  # the same episodes for all
        for sampler in samplers:
            for s in seeds:
                t = tune_search(objective, searched, budget, sampler, s, concurrency=cpus)
                echo(f"{policy.spec.name} {sampler} seed {s}: lowest {t['return_mean'].min():.1f}")
                frames.append(t.assign(sampler=sampler, search_seed=s))
    df = pd.concat(frames, ignore_index=True)
    if out:
        os.makedirs(out, exist_ok=True)
        df.to_csv(os.path.join(out, "samplers.csv"), index=False)
        summary = (
            df.groupby(["sampler", "search_seed"])["return_mean"]
            .min()
            .groupby("sampler")
            .agg(["mean", "min", "max"])
            .rename(
                columns={"mean": "lowest found, mean over seeds", "min": "best seed", "max": "worst seed"}
            )
        )
        half = df[df["order"] <= budget // 2].groupby(["sampler", "search_seed"])["return_mean"].min()
        summary[f"lowest after {budget // 2} points, mean"] = half.groupby("sampler").mean()
        summary.to_csv(os.path.join(out, "samplers_summary.csv"))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        for i, (sampler, g) in enumerate(df.groupby("sampler")):
            curves = g.pivot_table(index="order", columns="search_seed", values="best_so_far")
            ax.plot(
                curves.index, curves.mean(axis=1), color=f"C{i}", label=f"{sampler} (mean of {len(seeds)})"
            )
            ax.fill_between(
                curves.index, curves.min(axis=1), curves.max(axis=1), color=f"C{i}", alpha=0.15, lw=0
            )
        finish_axes(
            ax,
            "points evaluated",
            f"lowest mean return so far ({episodes} episodes)",
            f"{policy.spec.name}, {which} range: samplers compared",
            title_size=9,
        )
        save_figure(fig, os.path.join(out, "samplers.png"))
    return df
