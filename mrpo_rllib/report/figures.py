"""Step 2 of the report, figures: training curves (Figures 1 and 3), test-range heatmaps
(Figure 2) and one run's curves (``curves.png`` of ``mrpo train``).

Each function takes a tidy table and returns ``(figure, panels)``; callers save and close.
Value scales are anchored to the task's return range (``TaskSpec.return_scale``: 0 to the
return of a solved episode, or further when the data go beyond), so that a dip from 1000
to 986 on CartPole looks like the 1.4% it is.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mrpo_rllib.envs import get_task  # noqa: E402
from mrpo_rllib.report.collect import GROUP, group_label, sorted_groups, with_groups  # noqa: E402
from mrpo_rllib.report.stats import curve_stats  # noqa: E402

# Columns of an evaluation table that are not environment parameters.
NON_PARAM_COLUMNS = {
    "task",
    "algo",
    "kappa",
    "setting",
    "seed",
    "run_dir",
    "checkpoint",
    "checkpoint_kind",
    "checkpoint_iteration",
    "mode",
    "return_mean",
    "return_std",
    "return_min",
    "length_mean",
    "episodes",
}


def value_range(task: str, values) -> tuple[float, float]:
    """(low, high) of a value scale: 0 (or the data's minimum when negative) to the task's
    ``return_scale`` (or the data's maximum when higher)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    low = min(0.0, float(v.min())) if v.size else 0.0
    high = max(get_task(task).return_scale, float(v.max()) if v.size else 0.0)
    return low, high


def plot_curves(runs: pd.DataFrame, task: str, by_kappa_only: bool = False, title: str = ""):
    """Figure 1 (or 3 with ``by_kappa_only``): panels A (average) and W (10%-worst return).

    One line per group (algo, κ, setting) of complete runs of ``task`` (Figure 3: MRPO runs,
    one line per κ label), mean over seeds with ± 1 standard-error bands, against the seeds'
    mean env steps. Returns (figure, panels).
    """
    r = with_groups(runs[(runs["task"] == task) & runs["complete"]])
    if by_kappa_only:
        r = r[r["algo"] == "mrpo"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    use_steps = r["env_steps"].notna().all() and not r.empty
    groups = sorted_groups(r.groupby(GROUP).groups.keys())
    for gi, (algo, kappa, setting) in enumerate(groups):
        g = r[(r["algo"] == algo) & (r["kappa"] == kappa) & (r["setting"] == setting)]
        n_seeds = g["run_dir"].nunique()
        label = f"κ={kappa}" if by_kappa_only else group_label(algo, kappa, setting)
        label += f" ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
        color = f"C{gi}"
        for ax, column in zip(axes, ("return_mean", "return_worst10"), strict=True):
            s = curve_stats(g, column)
            x = s["env_steps"] if use_steps else s["iteration"]
            ax.plot(x, s["mean"], color=color, label=label)
            if n_seeds > 1:
                ax.fill_between(x, s["mean"] - s["se"], s["mean"] + s["se"], color=color, alpha=0.2, lw=0)
    low, high = value_range(task, r[["return_mean", "return_worst10"]].to_numpy().ravel())
    for ax, name in zip(axes, ("A: average return", "W: 10%-worst return"), strict=True):
        ax.set_title(name)
        ax.set_xlabel("env steps (mean over seeds)" if use_steps else "iteration")
        ax.set_ylabel("episode return")
        ax.set_ylim(low, high * 1.02)
        ax.grid(alpha=0.3)
    if groups:
        axes[0].legend(fontsize=8)
    fig.suptitle(title or (f"{task}: κ study (MRPO)" if by_kappa_only else f"{task}: training curves"))
    fig.tight_layout()
    return fig, list(axes)


def plot_heatmaps(evals: pd.DataFrame, task: str, title: str = ""):
    """Figure 2: grid return of each group averaged over seeds, one panel per group, one
    colour scale anchored to the task's return range (see :func:`value_range`). A grid with
    one varying axis is drawn as lines. Returns (figure, panels)."""
    e = with_groups(evals[evals["task"] == task])
    spec = get_task(task)
    # the parameters evaluated (a run's own randomized set, or the table's), table's order first
    params = [c for c in e.columns if c not in NON_PARAM_COLUMNS and e[c].notna().any()]
    params.sort(key=lambda c: (list(spec.grid_axes) + list(spec.param_names) + params).index(c))
    axes_names = [a for a in params if e[a].nunique() > 1]
    groups = sorted_groups(e.groupby(GROUP).groups.keys())
    mean = e.groupby([*GROUP, *params], as_index=False).agg(return_mean=("return_mean", "mean"))
    n = max(1, len(groups))
    fig, panels = plt.subplots(
        1, n, figsize=(4.2 * n + 1.6, 4.4), dpi=100, squeeze=False, layout="constrained"
    )
    panels = list(panels[0])
    vmin, vmax = value_range(task, mean["return_mean"])
    mappable = None
    for ax, (algo, kappa, setting) in zip(panels, groups, strict=False):
        sel = (mean["algo"] == algo) & (mean["kappa"] == kappa) & (mean["setting"] == setting)
        g = mean[sel]
        seeds = int(
            e[(e["algo"] == algo) & (e["kappa"] == kappa) & (e["setting"] == setting)]["run_dir"].nunique()
        )
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
            xa = axes_names[0] if axes_names else params[0]
            g = g.sort_values(xa)
            ax.plot(g[xa], g["return_mean"], marker="o")
            ax.set_ylim(vmin, vmax * 1.02)
            ax.set_xlabel(xa)
            ax.set_ylabel("return")
        label = group_label(algo, kappa, setting)
        ax.set_title(
            "\n".join(textwrap.wrap(f"{label} ({seeds} seed{'s' if seeds != 1 else ''})", 34)), fontsize=9
        )
    fixed = [f"{p}={e[p].iloc[0]:g}" for p in params if p not in axes_names and not e.empty]
    if len(axes_names) > 2:
        fixed.append(f"mean over {', '.join(axes_names[2:])}")
    head = title or f"{task}: return on the test range, mean over seeds"
    if fixed:
        head += f" ({', '.join(fixed)})"
    fig.suptitle("\n".join(textwrap.wrap(head, max(40, 30 * n))), fontsize=10)
    if mappable is not None:
        fig.colorbar(
            mappable,
            ax=panels,
            label=f"return, mean over seeds and episodes\n(scale {vmin:g} to {vmax:g}: the task's return range)",
        )
    return fig, panels


def plot_run_curves(progress: pd.DataFrame, task: str, title: str = ""):
    """One run's average and 10%-worst return per iteration (``curves.png`` of a run), from
    its ``progress.csv`` as a DataFrame. Returns (figure, [panel])."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    x = progress["training_iteration"]
    ax.plot(x, progress["mrpo/return_mean"], label="average return")
    ax.plot(x, progress["mrpo/return_worst10"], label="10%-worst return")
    low, high = value_range(task, progress[["mrpo/return_mean", "mrpo/return_worst10"]].to_numpy().ravel())
    ax.set_ylim(low, high * 1.02)
    ax.set_xlabel("iteration")
    ax.set_ylabel("episode return")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig, [ax]


def plot_profiles(profiles: dict[str, tuple], title: str = ""):
    """Performance profiles (rliable), one panel per task: ``profiles`` maps a task to
    (taus, {group: profile}, {group: CI}) from :func:`~mrpo_rllib.report.stats.performance_profile`.
    Returns (figure, panels)."""
    n = max(1, len(profiles))
    fig, panels = plt.subplots(1, n, figsize=(4.4 * n, 3.6), dpi=100, squeeze=False)
    panels = list(panels[0])
    for ax, (task, (taus, prof, cis)) in zip(panels, profiles.items(), strict=False):
        for i, (label, p) in enumerate(prof.items()):
            ax.plot(taus, p, color=f"C{i}", label=label)
            ax.fill_between(taus, cis[label][0], cis[label][1], color=f"C{i}", alpha=0.15, lw=0)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel(f"τ: 10%-worst return / {get_task(task).return_scale:g}")
        ax.set_ylabel("fraction of seeds with score > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        title or "Performance profiles of the 10%-worst training return (rliable, 95% CIs)", fontsize=10
    )
    fig.tight_layout()
    return fig, panels
