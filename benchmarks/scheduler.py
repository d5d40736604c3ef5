"""The benchmark's schedule: ``env_vs_raw`` task by task, then per training task every
contender built first and stepped round-robin (:func:`bench_training`), one Ray session for
all of it (:func:`mrpo_rllib.ray_session.ray_session`); :func:`bench` writes the report.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import time
import warnings
from dataclasses import asdict

from benchmarks.contenders import OursRun, SB3Run, sb3_available
from benchmarks.machine import load_average, machine_info, proc_memory, reset_peak_memory, versions
from benchmarks.settings import GOALS, MODES, SB3_MISSING, BenchSettings, MissingBenchDependency
from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.ray_session import ray_session


# -- env_vs_raw ----------------------------------------------------------------------------
def bench_env_vs_raw(s: BenchSettings, echo=print) -> dict:
    try:
        from benchmarks.bench_envs import measure_env
    except ImportError as e:
        return {"error": f"bench_envs.measure_env unavailable: {e}"}
    out = {}
    for task in s.env_tasks:
        try:
            m = measure_env(task, s.env_steps, seed=s.seed)
        except Exception as e:  # one broken task must not hide the others
            out[task] = {"error": f"{type(e).__name__}: {e}"}
            echo(f"  env {task:<24} error: {e}")
            continue
        out[task] = m
        echo(
            f"  env {task:<24} ours {m['ours_steps_per_s']:8.0f}/s  raw {m['raw_steps_per_s']:8.0f}/s  "
            f"ratio {m['ratio']:.2f}"
        )
    return out


# -- the whole benchmark ---------------------------------------------------------------------
def _ray_cpus_needed(s: BenchSettings) -> int:
    runners = set(s.env_runners) | {s.mrpo_env_runners}
    return sum(runners) + s.mrpo_env_runners  # every DR run and the MRPO run alive at once


def _ours_line(r: dict) -> str:
    return (
        f"{r['env_steps_per_s']:7.0f} steps/s  ({r['mean_steps_per_iteration']:.0f} steps/it, "
        f"{r['mean_iteration_s']:.2f} s/it: sample {r['mean_sample_s']:.2f}, learn {r['mean_learn_s']:.2f}, "
        f"select {r['mean_selection_ms']:.1f} ms)"
    )


def bench_training(task: str, s: BenchSettings, with_sb3: bool, echo=print) -> dict:
    """Every contender on ``task``, alive at once, stepped round-robin one iteration at a time,
    so that a burst of other work on the machine hits all of them alike. Round r: our PPO-DR
    at each runner count, MRPO, then each SB3 variant with as many env steps as our DR runs
    sampled on average in round r (same work per iteration); every contender must have taken
    ``num_epochs × num_minibatches`` gradient steps in the round (same optimiser work)."""
    reset_peak_memory()
    ours: dict[int, OursRun] = {}
    sb3: list[SB3Run] = []
    mrpo = None
    try:
        for n in sorted(set(s.env_runners) | {s.mrpo_env_runners}):
            ours[n] = OursRun(task, "dr", n, s)
        mrpo = OursRun(task, "mrpo", s.mrpo_env_runners, s)
        if with_sb3:
            for v, n in s.sb3_variants:
                sb3.append(SB3Run(task, v, n, s))
        want = s.num_epochs * s.num_minibatches  # gradient steps per iteration, every contender
        for r in range(s.warmup_iterations + s.iterations):
            its = [ours[n].step() for n in ours]
            its.append(mrpo.step())
            steps = [it["env_steps"] for it in its[:-1]]  # DR runs only
            budget = round(sum(steps) / len(steps))
            for c in sb3:
                its.append(c.step(budget))
            if any(it["gradient_steps"] != want for it in its):
                raise RuntimeError(
                    f"unequal optimiser work in round {r + 1}: gradient steps "
                    f"{[it['gradient_steps'] for it in its]}, expected {want} = {s.num_epochs} epochs × "
                    f"{s.num_minibatches} minibatches for every contender"
                )
            echo(
                f"  {task} round {r + 1}/{s.warmup_iterations + s.iterations} ({budget} steps/it) load {load_average()}"
            )
        driver_peak = proc_memory("self")
        out_ours = {str(n): c.finish() for n, c in ours.items()}
        out_mrpo = mrpo.finish()
        out_sb3 = {c.name: c.finish() for c in sb3}
    finally:
        for c in [*ours.values(), mrpo, *sb3]:
            if c is not None:
                c.close()
    for n, r in out_ours.items():
        echo(f"  ours {task:<9} dr   {n} env runners: {_ours_line(r)}")
    echo(f"  ours {task:<9} mrpo {s.mrpo_env_runners} env runners: {_ours_line(out_mrpo)}")
    for name, r in out_sb3.items():
        echo(
            f"  sb3  {task:<9} {name:<15}: {r['env_steps_per_s']:7.0f} steps/s  "
            f"({r['mean_steps_per_iteration']:.0f} steps/it, {r['mean_iteration_s']:.2f} s/it: "
            f"learn {r['mean_learn_s']:.2f})"
        )
    return {"ours": out_ours, "mrpo": out_mrpo, "sb3": out_sb3, "driver": driver_peak}


def run_bench(s: BenchSettings, echo=print) -> dict:
    """Run every section of the benchmark; returns the report (JSON-ready after :func:`clean`)."""
    if s.require_sb3 and not sb3_available():
        raise MissingBenchDependency(f"{SB3_MISSING}; `python -m benchmarks.bench --tiny` runs without it")
    with_sb3 = sb3_available()
    t_start = time.perf_counter()
    report: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": asdict(s),
        "machine": machine_info(),
        "versions": versions(),
        "goals": dict(GOALS),
        "load_avg_start": load_average(),
    }
    echo(f"benchmarks.bench ({s.mode}): env_vs_raw, {s.env_steps} steps per task")
    report["env_vs_raw"] = bench_env_vs_raw(s, echo)

    runs: dict[str, dict] = {}
    need = _ray_cpus_needed(s)
    # embedded, never a cluster; logical CPUs: idle runners wait while others run
    with ray_session(num_cpus=max(os.cpu_count() or 1, need), embedded=True) as ray:
        have = ray.cluster_resources().get("CPU", 0)
        if have < need:  # a Ray started before (a test's) may be smaller
            raise ValueError(
                f"the running Ray has {have:g} CPUs; this benchmark keeps {need} env runners alive"
            )
        for task in s.train_tasks:
            runs[task] = bench_training(task, s, with_sb3, echo)

    if not with_sb3:
        report["train_vs_sb3"] = {"skipped": SB3_MISSING}
    else:
        tv: dict = {}
        for task, run in runs.items():
            sb3 = run["sb3"]
            ref_name = max(sb3, key=lambda k: sb3[k]["env_steps_per_s"])
            ref, ref_median = sb3[ref_name]["env_steps_per_s"], sb3[ref_name]["median_iteration_steps_per_s"]
            ours = {n: run["ours"][str(n)] for n in s.env_runners}
            ours_named = {f"{n}_env_runners": r for n, r in run["ours"].items()}
            ratios = {f"{n}_env_runners": r["env_steps_per_s"] / ref for n, r in ours.items()}
            tv[task] = {
                "ratio": ratios,
                "best_ratio": max(ratios.values()),
                "ratio_of_medians": {
                    f"{n}_env_runners": r["median_iteration_steps_per_s"] / ref_median
                    for n, r in ours.items()
                },
                "ours_steps_per_s": {f"{n}_env_runners": r["env_steps_per_s"] for n, r in ours.items()},
                "sb3_reference": ref_name,
                "sb3_reference_steps_per_s": ref,
                "sb3_steps_per_s": {k: v["env_steps_per_s"] for k, v in sb3.items()},
                "ours_mean_steps_per_iteration": sum(r["mean_steps_per_iteration"] for r in ours.values())
                / len(ours),
                "sb3_mean_steps_per_iteration": sb3[ref_name]["mean_steps_per_iteration"],
                # Same optimiser work: num_epochs × num_minibatches gradient steps per iteration.
                "num_epochs": s.num_epochs,
                "num_minibatches": s.num_minibatches,
                "gradient_steps_per_iteration": {
                    **{f"dr/{n}": r["gradient_steps_per_iteration"] for n, r in ours_named.items()},
                    f"mrpo/{s.mrpo_env_runners}_env_runners": run["mrpo"]["gradient_steps_per_iteration"],
                    **{f"sb3/{k}": v["gradient_steps_per_iteration"] for k, v in sb3.items()},
                },
                "sb3_reference_batch_size": sb3[ref_name]["batch_size"],
            }
        report["train_vs_sb3"] = tv

    report["selection_share"] = {
        task: {
            "share": run["mrpo"]["selection_share"],
            "mean_selection_ms": run["mrpo"]["mean_selection_ms"],
            "mean_iteration_s": run["mrpo"]["mean_iteration_s"],
            "num_env_runners": s.mrpo_env_runners,
        }
        for task, run in runs.items()
    }
    report["mrpo_vs_dr_iteration"] = {}
    for task, run in runs.items():
        m, d = run["mrpo"], run["ours"][str(s.mrpo_env_runners)]
        report["mrpo_vs_dr_iteration"][task] = {
            "ratio": m["mean_iteration_s"] / d["mean_iteration_s"],
            # Per sampled step: corrects for the two runs' different episode lengths.
            "per_step_ratio": (m["wall_s"] / m["env_steps"]) / (d["wall_s"] / d["env_steps"]),
            "mrpo_mean_iteration_s": m["mean_iteration_s"],
            "dr_mean_iteration_s": d["mean_iteration_s"],
            "mrpo_mean_kept_fraction": m["mean_kept_fraction"],
            "num_env_runners": s.mrpo_env_runners,
        }

    memory: dict = {}
    for task, run in runs.items():
        # One driver process holds every contender's learner (and SB3's model) at once.
        memory[task] = {
            "driver_peak_mb": run["driver"].get("VmHWM_mb"),
            "driver_rss_added_by_build_mb": {
                **{f"dr/{n}_env_runners": r["driver_rss_added_mb"] for n, r in run["ours"].items()},
                f"mrpo/{s.mrpo_env_runners}_env_runners": run["mrpo"]["driver_rss_added_mb"],
            },
            "env_runner_peak_mb": {
                **{
                    f"dr/{n}_env_runners": [w.get("VmHWM_mb") for w in r["env_runners"]]
                    for n, r in run["ours"].items()
                },
                f"mrpo/{s.mrpo_env_runners}_env_runners": [
                    w.get("VmHWM_mb") for w in run["mrpo"]["env_runners"]
                ],
            },
            "sb3_env_worker_peak_mb": {
                k: [w.get("VmHWM_mb") for w in v["env_workers"]] for k, v in run["sb3"].items()
            },
        }
    report["memory"] = memory
    report["runs"] = runs
    report["summary"] = summarize(report)
    report["load_avg_end"] = load_average()
    report["duration_s"] = time.perf_counter() - t_start
    return report


def summarize(report: dict) -> dict:
    """The headline figures and whether each meets its goal."""
    out: dict = {}
    env = report.get("env_vs_raw", {})
    if "error" not in env:
        ratios = {t: v["ratio"] for t, v in env.items() if "ratio" in v}
        out["env_vs_raw"] = {**ratios, "min": min(ratios.values(), default=None)}
        out["env_vs_raw"]["met"] = bool(ratios) and min(ratios.values()) >= 0.8
    tv = report.get("train_vs_sb3", {})
    if "skipped" not in tv:
        out["train_vs_sb3"] = {t: v["ratio"] for t, v in tv.items()}
        out["train_vs_sb3"]["met"] = all(v["best_ratio"] >= 1.0 for v in tv.values())
    sh = report.get("selection_share", {})
    out["selection_share"] = {t: v["share"] for t, v in sh.items()}
    out["selection_share"]["met"] = all(v["share"] <= 0.01 for v in sh.values())
    md = report.get("mrpo_vs_dr_iteration", {})
    out["mrpo_vs_dr_iteration"] = {t: v["ratio"] for t, v in md.items()}
    out["mrpo_vs_dr_iteration"]["met"] = all(v["ratio"] <= 1.0 for v in md.values())
    return out


def clean(x):
    """JSON-safe: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def bench(mode: str = "full", out: str | None = None, echo=print, **overrides) -> dict:
    """Run the benchmark in ``mode`` (``tiny``/``quick``/``full``), write ``out`` (JSON)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    s = BenchSettings(**{**asdict(MODES[mode]), **overrides})
    s.env_tasks, s.train_tasks, s.env_runners = tuple(s.env_tasks), tuple(s.train_tasks), tuple(s.env_runners)
    s.sb3_variants = tuple(tuple(v) for v in s.sb3_variants)
    defaults = MRPOConfig()  # M and our learner's optimiser work unless given
    if s.episodes_per_iteration is None:
        s.episodes_per_iteration = defaults.episodes_per_iteration
    if s.num_minibatches is None:
        s.num_minibatches = defaults.num_minibatches
    if s.num_epochs is None:
        s.num_epochs = defaults.num_epochs
    with warnings.catch_warnings():
        # RLlib's "new API stack" notice, gymnasium's re-registration notes, SB3's note on a
        # rollout that is not a multiple of the minibatch (the last, shorter slice is counted).
        warnings.filterwarnings("ignore", category=UserWarning)
        logging.getLogger("ray.rllib").setLevel(logging.ERROR)
        report = clean(run_bench(s, echo))
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(report, f, indent=2, allow_nan=False)
        echo(f"wrote {out} ({report['duration_s']:.0f} s)")
    for key, value in report["summary"].items():
        echo(f"  {key}: {json.dumps(value)}")
    return report
