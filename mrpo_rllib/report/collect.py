"""Step 1 of the report: every run under a directory becomes rows of one tidy table.

Every run directory (a Tune trial, ``mrpo train`` runs included: :mod:`mrpo_rllib.runs`),
found recursively by its name, becomes one row per iteration of ``runs`` (``RUN_COLUMNS``)
and one row of ``trials``. A run is **complete** when it reached its budget: the ``budget``
of the ``experiment.yaml`` stored next to its trials. When that is not found, a run is
complete unless Tune left an ``error.txt``/``error.pkl`` or it has fewer iterations than the
longest run of the same group. Runs with no or an empty ``progress.csv`` are never complete.
A run that failed and was retried by Tune up to its budget is complete (its failures are
noted). Of two complete runs with the same (task, algorithm, κ, setting, seed), the longer one
is kept (``deduplicate=False`` keeps both: the learner study, whose experiments differ in
what the run name does not show, such as M). Incomplete runs stay in the table
(``complete`` = False) and are left out of every statistic and figure.

A *group* is (algo, kappa, setting): one line of Figure 1, one row of Table 2 per task.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mrpo_rllib import runs as runs_mod
from mrpo_rllib.selection import SELECTIONS, worst_count

ALGO_NAMES = {"mrpo": "MRPO", "epopt": "PW-DR (EPOpt)", "dr": "PPO-DR"}
ALGO_ORDER = {a: i for i, a in enumerate(SELECTIONS)}
GROUP = ["algo", "kappa", "setting"]
PROGRESS_COLUMNS = {
    "training_iteration": "iteration",
    "num_env_steps_sampled_lifetime": "env_steps",
    "mrpo/return_mean": "return_mean",
    "mrpo/return_worst10": "return_worst10",
    "mrpo/return_min": "return_min",
    "mrpo/kept_fraction": "kept_fraction",
    "mrpo/gradient_steps": "gradient_steps",
    "time_total_s": "time_s",
}
RUN_COLUMNS = [
    "algo",
    "task",
    "seed",
    "kappa",
    "setting",
    "iteration",
    "env_steps",
    "return_mean",
    "return_worst10",
    "return_min",
    "kept_fraction",
    "gradient_steps",
    "time_s",
    "worst10_se",
    "complete",
    "run_dir",
]
TRIAL_COLUMNS = [
    "run_dir",
    "algo",
    "task",
    "kappa",
    "setting",
    "seed",
    "iterations",
    "env_steps",
    "complete",
    "reason",
    "settings",
    "checkpoint",
]
SE_BOOT = 200
WORST_FRACTION = 0.1  # as mrpo/return_worst10


@dataclass
class RunInfo:
    """One run directory and what is known about it."""

    run_dir: str
    algo: str
    task: str
    kappa: str
    seed: int
    setting: str = ""
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


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    msg = lines[-1] if lines else "error"
    return msg if len(msg) <= 200 else msg[:197] + "..."


def kappa_text(start, end, ramp) -> str:
    if start is None:
        return ""
    if start == end:
        return f"κ {start:g}"
    return f"κ {start:g}→{end:g} over {ramp} it"


def _describe_run(info: RunInfo) -> None:
    """Budget, command and a one-line description from the files next to the run."""
    parent = os.path.dirname(os.path.normpath(info.run_dir))
    info.sweep_dir = parent
    info.command = runs_mod.read_command(parent)
    from mrpo_rllib.experiments import saved_experiment

    exp = saved_experiment(parent)
    if exp is not None:
        key, value = next(iter(exp.budget.stop().items()))
        info.target = ("iterations" if key == "training_iteration" else "env_steps", int(value))
    try:
        p = runs_mod.read_params(info.run_dir)
    except (OSError, json.JSONDecodeError):
        p = {}
    v = p.get("variant") or {}
    mb = (
        f"{p['num_minibatches']} minibatches"
        if p.get("num_minibatches")
        else f"minibatch {p.get('minibatch_size')}"
    )
    training = v.get("training") or {}
    parts = [
        f"budget {info.target[1]} {info.target[0].replace('_', ' ')}" if info.target else "",
        f"M={p.get('episodes_per_iteration')}" if p.get("episodes_per_iteration") else "",
        kappa_text(v.get("kappa_start"), v.get("kappa_end"), v.get("kappa_ramp_iters"))
        if info.algo == "mrpo"
        else "",
        f"env runners {p.get('num_env_runners')}" if "num_env_runners" in p else "",
        f"epochs {p.get('num_epochs')}, {mb}, lr {p.get('lr')}" if "num_epochs" in p else "",
        f"setting {info.setting}: {training}" if info.setting else "",
    ]
    info.settings = ", ".join(x for x in parts if x)


def _read_progress(run_dir: str) -> pd.DataFrame | None:
    df = runs_mod.read_progress(run_dir)
    if df is None or df.empty or "training_iteration" not in df or "mrpo/return_mean" not in df:
        return None
    out = pd.DataFrame({new: df[old] if old in df else np.nan for old, new in PROGRESS_COLUMNS.items()})
    # A trial restored from a checkpoint repeats the iterations it redid: keep the last.
    return out.drop_duplicates("iteration", keep="last").sort_values("iteration").reset_index(drop=True)


def worst10_standard_errors(run_dir: str, n_boot: int = SE_BOOT, seed: int = 0) -> dict[int, float]:
    """Iteration → bootstrap standard error of that iteration's 10%-worst mean return.

    The 10%-worst mean is the mean of the ⌈0.1·M⌉ lowest of the M episode returns in
    ``episodes.csv``; its standard error is the std (ddof=1) of that statistic over
    ``n_boot`` resamples (with replacement) of the iteration's M returns.
    """
    try:
        ep = runs_mod.read_ledger(run_dir, ["iteration", "return"])
    except ValueError:  # a ledger without those columns
        return {}
    if ep is None:
        return {}
    rng = np.random.default_rng(seed)
    out = {}
    for it, r in ep.groupby("iteration")["return"]:
        r = r.to_numpy(dtype=np.float64)
        if r.size < 2:
            out[int(it)] = float("nan")
            continue
        k = worst_count(r.size, WORST_FRACTION)
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
        cols = ["run_dir", "algo", "task", "kappa", "setting", "seed", "iterations", "reason"]
        return self.trials.loc[~self.trials["complete"], cols].reset_index(drop=True)


def _judge(info: RunInfo) -> None:
    """complete/reason of a run from its progress, budget and errors (peers: see collect)."""
    if info.progress is None:
        return
    info.iterations = int(info.progress["iteration"].iloc[-1])
    info.env_steps = float(info.progress["env_steps"].iloc[-1])
    if info.algo not in SELECTIONS:
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
        info.complete = True  # provisional: compared with its peers in collect()


def collect(root: str, deduplicate: bool = True) -> Collected:
    """Step 1: the tidy per-iteration table of every run under ``root`` (module docstring)."""
    infos: list[RunInfo] = []
    for d in runs_mod.find_run_dirs(root):
        name = runs_mod.parse_run_name(d)
        info = RunInfo(d, name.algo, name.task, name.kappa, name.seed, name.setting)
        _describe_run(info)
        err_txt = runs_mod.read_text(os.path.join(d, runs_mod.ERROR_FILE))
        if err_txt is not None or os.path.isfile(os.path.join(d, runs_mod.ERROR_PICKLE)):
            info.errors = max(1, (err_txt or "").count("Failure # "))
            info.error = _last_error_line(err_txt or f"{runs_mod.ERROR_PICKLE} present")
        prog_path = os.path.join(d, runs_mod.PROGRESS_FILE)
        info.progress = _read_progress(d)
        try:
            info.checkpoint = runs_mod.resolve_checkpoint(d)
        except FileNotFoundError:
            info.checkpoint = None
        if info.progress is None:
            what = ("no " if not os.path.exists(prog_path) else "empty ") + runs_mod.PROGRESS_FILE
            info.reason = what + (f"; failed: {info.error}" if info.error else "")
        _judge(info)
        infos.append(info)

    # Unknown budget: fewer iterations than the longest run of the same task and group.
    def key(i):
        return (i.task, i.algo, i.kappa, i.setting)

    longest: dict[tuple, int] = {}
    for i in infos:
        if i.progress is not None:
            longest[key(i)] = max(longest.get(key(i), 0), i.iterations)
    for i in infos:
        if i.complete and i.target is None and i.iterations < longest[key(i)]:
            i.complete = False
            i.reason = (
                f"{i.iterations} iterations; other {i.algo} runs of {i.task} (κ {i.kappa}) have "
                f"{longest[key(i)]}"
            )
    # Duplicates of one (task, group, seed): keep the longest complete run.
    by_key: dict[tuple, list[RunInfo]] = {}
    for i in infos:
        if i.complete and deduplicate:
            by_key.setdefault((*key(i), i.seed), []).append(i)
    for group in by_key.values():
        group.sort(key=lambda r: (-r.iterations, -(0 if math.isnan(r.env_steps) else r.env_steps), r.run_dir))
        for dup in group[1:]:
            dup.complete = False
            dup.reason = f"duplicate of {group[0].run_dir} (kept the longer run)"

    frames = []
    for i in infos:
        if i.progress is None:
            continue
        df = i.progress.copy()
        se = worst10_standard_errors(i.run_dir)
        df["worst10_se"] = df["iteration"].map(se).astype(float)
        df["algo"], df["task"], df["kappa"], df["seed"] = i.algo, i.task, i.kappa, i.seed
        df["setting"], df["complete"], df["run_dir"] = i.setting, i.complete, i.run_dir
        frames.append(df[RUN_COLUMNS])
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    )
    table = table.astype(
        {"seed": "int64", "iteration": "int64", "complete": bool, "kappa": str, "setting": str}
    )
    trials = pd.DataFrame([{c: getattr(i, c) for c in TRIAL_COLUMNS} for i in infos], columns=TRIAL_COLUMNS)
    return Collected(table, trials, infos)


def with_groups(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its group columns as strings, as collect() writes them (a table read back
    from CSV has NaN for an empty setting and numbers for κ labels such as 5)."""
    out = df.copy()
    out["kappa"] = out["kappa"].astype(str)
    if "setting" in out:
        out["setting"] = ["" if pd.isna(v) else str(v) for v in out["setting"]]
    else:
        out["setting"] = ""
    return out


def group_label(algo: str, kappa: str, setting: str = "", with_kappa: bool = True) -> str:
    """``MRPO κ=0.25-2`` (plus `` [setting]``): the name of a group in tables and legends."""
    name = ALGO_NAMES.get(algo, algo)
    label = f"{name} κ={kappa}" if with_kappa and kappa != "none" else name
    return f"{label} [{setting}]" if setting else label


def sorted_groups(keys) -> list[tuple]:
    """Groups (algo, kappa, setting) in the order MRPO, EPOpt, DR, then κ and setting."""
    return sorted(keys, key=lambda k: (ALGO_ORDER.get(k[0], 99), *map(str, k[1:])))
