"""`mrpo report`: collection of a real tree of runs, Table 2, figures, monotonicity audit."""

import os
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from mrpo_rllib.cli import main
from mrpo_rllib.report import (
    RUN_COLUMNS,
    bootstrap_ci,
    collect,
    monotonicity,
    plot_curves,
    plot_heatmaps,
    report,
    table2,
    window_sensitivity,
)
from sweeps import run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAILED = os.path.join("main", "dr__CartPole__kappanone__seed0")
SHORT = os.path.join("older", "mrpo__CartPole__kappa0.25-2__seed1")
TUNE_TRIAL = os.path.join("sweep", "epopt__CartPole__kappanone__seed2")


@pytest.fixture(scope="module")
def tree(ray_local, tmp_path_factory):
    """A real sweep (MRPO κ 0.25→2, MRPO κ=5 and EPOpt × seeds 0, 1; 3 iterations) with
    MRPO κ=5 seed 1 removed (a partial sweep), plus: a failed trial (error.txt, empty
    progress.csv), a shorter duplicate of a run in another experiment, and a trial retried
    after a failure (error.txt) in a third experiment."""
    root = tmp_path_factory.mktemp("runs")
    main_exp = run_experiment(
        root,
        "main",
        task="CartPole",
        algorithms=["mrpo", "epopt"],
        seeds=[0, 1],
        kappa=[{"start": 0.25, "end": 2.0}, 5.0],
        budget={"iterations": 3},
        checkpoint_every=2,
        evaluation={"points": 2, "episodes": 1},
    )
    shutil.rmtree(os.path.join(main_exp, "mrpo__CartPole__kappa5__seed1"))

    failed = root / FAILED
    failed.mkdir()
    (failed / "progress.csv").write_text("")
    (failed / "error.txt").write_text(
        "Failure # 1 (occurred at 2026-01-01)\nTraceback ...\nRuntimeError: node died\n"
    )

    short = root / SHORT
    shutil.copytree(os.path.join(main_exp, "mrpo__CartPole__kappa0.25-2__seed1"), short)
    shutil.copy(os.path.join(main_exp, "experiment.yaml"), short.parent / "experiment.yaml")
    pd.read_csv(short / "progress.csv").head(2).to_csv(short / "progress.csv", index=False)

    sweep = root / "sweep"
    trial = root / TUNE_TRIAL
    trial.mkdir(parents=True)
    (sweep / "experiment.yaml").write_text(
        "name: sweep\ntask: CartPole\nalgorithms: [epopt]\nseeds: [2]\nbudget: {iterations: 3}\n"
        "training: {episodes_per_iteration: 8}\nevaluation: {points: 2, episodes: 1}\n"
    )
    (sweep / "command.txt").write_text("mrpo tune sweep.yaml\n")
    src = os.path.join(main_exp, "epopt__CartPole__kappanone__seed0")
    for f in ("progress.csv", "episodes.csv", "params.json"):
        shutil.copy(os.path.join(src, f), trial / f)
    shutil.copytree(os.path.join(src, "checkpoint_000001"), trial / "checkpoint_000001")
    (trial / "error.txt").write_text("Failure # 1 (occurred at 2026-01-01)\nRuntimeError: worker lost\n")
    return root


@pytest.fixture(scope="module")
def reported(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    written = report(str(tree), str(out), eval_points=2, eval_episodes=1, echo=lambda *a: None, argv=["mrpo"])
    return out, written


# -- step 1 ------------------------------------------------------------------------------------------
def test_collect_lists_failed_short_and_duplicate_runs(tree):
    col = collect(str(tree))
    assert len(col.infos) == 8
    runs = col.runs
    assert list(runs.columns) == RUN_COLUMNS
    complete = runs[runs["complete"]]
    assert complete["run_dir"].nunique() == 6  # 5 of the main sweep + the retried trial
    assert len(complete) == 6 * 3
    # The shorter copy stays in the table, marked incomplete; the failed trial has no rows.
    assert set(runs.loc[~runs["complete"], "run_dir"]) == {str(tree / SHORT)}
    inc = col.incomplete.set_index("run_dir")
    assert set(inc.index) == {str(tree / FAILED), str(tree / SHORT)}
    assert "empty progress.csv" in inc.loc[str(tree / FAILED), "reason"]
    assert "node died" in inc.loc[str(tree / FAILED), "reason"]
    assert inc.loc[str(tree / SHORT), "reason"].startswith("2 of 3 iterations")
    trials = col.trials.set_index("run_dir")
    tune = trials.loc[str(tree / TUNE_TRIAL)]
    assert tune["complete"]
    assert "1 failure" in tune["reason"]
    assert tune["checkpoint"].endswith("checkpoint_000001")
    assert set(runs["kappa"]) == {"0.25-2", "5", "none"}
    assert runs["worst10_se"].notna().all() and (runs["worst10_se"] >= 0).all()


def test_unknown_budget_falls_back_to_peers(tmp_path):
    for seed, n in ((0, 3), (1, 2)):
        d = tmp_path / f"dr__CartPole__kappanone__seed{seed}"
        d.mkdir()
        pd.DataFrame(
            {
                "training_iteration": range(1, n + 1),
                "num_env_steps_sampled_lifetime": [100 * i for i in range(1, n + 1)],
                "mrpo/return_mean": [10.0 * i for i in range(1, n + 1)],
                "mrpo/return_worst10": [1.0] * n,
                "mrpo/return_min": [1.0] * n,
                "mrpo/kept_fraction": [1.0] * n,
            }
        ).to_csv(d / "progress.csv", index=False)
    col = collect(str(tmp_path))
    assert list(col.incomplete["seed"]) == [1]
    assert "other dr runs of CartPole" in col.incomplete["reason"][0]
    # A second complete copy of seed 0 elsewhere in the tree is a duplicate, not a new seed.
    shutil.copytree(
        tmp_path / "dr__CartPole__kappanone__seed0", tmp_path / "z" / "dr__CartPole__kappanone__seed0"
    )
    inc = collect(str(tmp_path)).incomplete
    dup = inc[inc["run_dir"] == str(tmp_path / "z" / "dr__CartPole__kappanone__seed0")]
    assert dup["reason"].iloc[0].startswith("duplicate of")


# -- step 2 --------------------------------------------------------------------------------------------
def _direct_table2(runs, last):
    c = runs[runs["complete"]].sort_values(["run_dir", "iteration"])
    w = c.groupby("run_dir").tail(last)
    per_seed = w.groupby(["task", "algo", "kappa", "seed"])[["return_mean", "return_worst10"]].mean()
    return per_seed, per_seed.groupby(level=["task", "algo", "kappa"]).agg(["mean", "std", "count"])


@pytest.mark.parametrize("last", [50, 2])
def test_table2_equals_direct_pandas(reported, last):
    out, _ = reported
    runs = pd.read_parquet(out / "runs.parquet")
    t2 = (
        pd.read_csv(out / "table2.csv", dtype={"kappa": str}) if last == 50 else table2(runs, last=last)
    ).set_index(["task", "algo", "kappa"])
    per_seed, direct = _direct_table2(runs, last)
    assert (
        set(t2.index)
        == set(direct.index)
        == {
            ("CartPole", "mrpo", "0.25-2"),
            ("CartPole", "mrpo", "5"),
            ("CartPole", "epopt", "none"),
        }
    )
    for key, row in t2.iterrows():
        d = direct.loc[key]
        assert row["n_seeds"] == d[("return_mean", "count")]
        assert row["avg_mean"] == pytest.approx(d[("return_mean", "mean")])
        assert row["worst_mean"] == pytest.approx(d[("return_worst10", "mean")])
        if row["n_seeds"] > 1:
            assert row["avg_std"] == pytest.approx(d[("return_mean", "std")])
            assert row["worst_std"] == pytest.approx(d[("return_worst10", "std")])
        else:
            assert np.isnan(row["avg_std"])
        assert row["window_min"] == row["window_max"] == min(last, 3)
        seeds = per_seed.loc[key]
        lo, hi = bootstrap_ci(seeds["return_mean"].to_numpy())
        assert (row["avg_ci_low"], row["avg_ci_high"]) == pytest.approx((lo, hi))
        # a percentile of resampled means against the mean: equal up to rounding when every
        # seed has the same value (lo == hi == the mean, summed in another order)
        assert _within(lo, row["avg_mean"], hi)
    assert t2.loc[("CartPole", "epopt", "none"), "seeds"] == "0 1 2"


def test_window_sensitivity_equals_direct_pandas(reported):
    """Each window's 10%-worst mean and std over seeds, against _direct_table2 per window."""
    out, _ = reported
    runs = pd.read_parquet(out / "runs.parquet")
    ws = window_sensitivity(runs, (1, 2, 3)).set_index(["task", "algo", "kappa", "last"])
    assert len(ws) == 3 * 3
    for last in (1, 2, 3):
        _, direct = _direct_table2(runs, last)
        for key, d in direct.iterrows():
            row = ws.loc[(*key, last)]
            assert row["worst_mean"] == pytest.approx(d[("return_worst10", "mean")])
            assert row["n_seeds"] == d[("return_worst10", "count")]
            if row["n_seeds"] > 1:
                assert row["worst_std"] == pytest.approx(d[("return_worst10", "std")])
    # the report's file: the standard windows and Table 2's own (50), whole runs here (3 iterations)
    written = pd.read_csv(out / "window.csv", dtype={"kappa": str})
    assert sorted(written["last"].unique()) == [5, 10, 20, 30, 50]
    _, whole = _direct_table2(runs, 3)
    for r in written.itertuples():
        assert r.worst_mean == pytest.approx(whole.loc[(r.task, r.algo, r.kappa), ("return_worst10", "mean")])
    assert "## The window" in (out / "report.md").read_text()


def test_outputs_and_report_md(reported):
    out, written = reported
    for name in (
        "runs.parquet",
        "runs.csv",
        "incomplete.csv",
        "trials.csv",
        "table2.md",
        "table2.csv",
        "monotonicity.csv",
        "eval_test.csv",
        "generalisation.csv",
        "iqm.csv",
        "improvement.csv",
        "report.md",
        "fig1_CartPole.png",
        "fig2_CartPole.png",
        "fig3_CartPole.png",
        "profiles.png",
    ):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "fig1_CartPole.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    fig2 = {
        f"fig2_CartPole_{k}_{m}.png": 3
        for k, m in [("best", "deterministic"), ("final", "stochastic"), ("final", "deterministic")]
    }
    assert written["panels"] == {
        "fig1_CartPole.png": 2,
        "fig2_CartPole.png": 3,  # the best checkpoints, sampled actions
        **fig2,
        "fig3_CartPole.png": 2,
        "profiles.png": 1,
    }
    md = (out / "report.md").read_text()
    for piece in (
        "table2.md",
        "fig1_CartPole.png",
        "fig2_CartPole.png",
        "fig3_CartPole.png",
        "monotonicity.csv",
        "**CartPole: partial sweep**",
        "MRPO κ=5 misses seed(s) 1, 2",
        "PPO-DR misses seed(s) 0, 1, 2",
        os.path.basename(FAILED),
        "node died",
        "mrpo tune main.yaml",
        "mrpo tune sweep.yaml",
        "budget: {iterations: 3}",
    ):
        assert piece in md, piece
    ev = pd.read_csv(out / "eval_test.csv")
    assert ev["run_dir"].nunique() == 6 and len(ev) == 6 * 4 * 2 * 2  # 2x2 grid, best/final, two modes
    assert ev.groupby(["checkpoint_kind", "mode"]).size().to_dict() == {
        (k, m): 24 for k in ("best", "final") for m in ("deterministic", "stochastic")
    }
    assert (ev["force_mag"] == 10).all() and set(ev["pole_length"]) == {1.0, 6.0}


def test_plot_functions_return_panels(reported):
    out, _ = reported
    runs = pd.read_parquet(out / "runs.parquet")
    fig, panels = plot_curves(runs, "CartPole")
    assert len(panels) == 2 and len(panels[0].get_lines()) == 3  # one line per (algo, κ)
    fig, panels = plot_curves(runs, "CartPole", by_kappa_only=True)
    assert len(panels) == 2 and len(panels[1].get_lines()) == 2
    ev = pd.read_csv(out / "eval_test.csv", dtype={"kappa": str})
    fig, panels = plot_heatmaps(ev, "CartPole")
    assert len(panels) == 3
    assert all(len(ax.images) == 1 for ax in panels)
    clims = {ax.images[0].get_clim() for ax in panels}
    assert len(clims) == 1  # one colour scale


def test_monotonicity_hand_computed():
    runs = pd.DataFrame(
        {
            "run_dir": "r",
            "algo": "mrpo",
            "task": "CartPole",
            "kappa": "1",
            "seed": 0,
            "complete": True,
            "iteration": [1, 2, 3, 4, 5],
            "return_worst10": [10.0, 8.0, 9.0, 5.0, 4.0],
            "worst10_se": [0.1, 0.1, 0.1, 0.1, 0.6],
        }
    )
    m = monotonicity(runs).iloc[0]
    assert m["transitions"] == 4 and m["falls"] == 3
    # Noise of the last fall (5 -> 4): 2*sqrt(0.1^2 + 0.6^2) = 1.22 > 1: not significant
    # (one standard error of the difference, 0.61, would call it significant).
    assert m["significant_falls"] == 2 and m["significant_fall_rate"] == pytest.approx(0.5)
    assert m["largest_fall"] == 4.0
    assert m["longest_fall"] == 2 and m["longest_fall_start"] == 3 and m["longest_fall_drop"] == 5.0
    runs["worst10_se"] = np.nan
    m = monotonicity(runs).iloc[0]
    assert np.isnan(m["significant_falls"]) and m["falls"] == 3


def test_cli_no_eval(tree, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(tree), "--out", str(out), "--no-eval"]) == 0
    assert not (out / "fig2_CartPole.png").exists()
    assert "Skipped (`--no-eval`)" in (out / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_cli_window_in_env_steps_and_the_vacuous_warning(tree, tmp_path, capsys):
    """`--window-fraction`: Table 2 averages each run over the iterations ending in the last
    half of its env steps (recomputed here from runs.csv); MRPO and EPOpt at M = 8 keep most
    of their episodes in this tiny sweep, which the report must flag when they keep > 90%."""
    out = tmp_path / "rep"
    assert main(["report", str(tree), "--out", str(out), "--no-eval", "--window-fraction", "0.5"]) == 0
    md = (out / "report.md").read_text()
    assert "last 50% of its env steps" in md
    runs = pd.read_csv(out / "runs.csv")
    runs = runs[runs["complete"]]
    t2 = pd.read_csv(out / "table2.csv")
    for (task, algo, kappa), g in runs.groupby(["task", "algo", "kappa"]):
        per_seed = [
            r.loc[r["env_steps"] > r["env_steps"].max() / 2, "return_worst10"].mean()
            for _, r in g.groupby("run_dir")
        ]
        row = t2[(t2.task == task) & (t2.algo == algo) & (t2.kappa == kappa)].iloc[0]
        assert row["worst_mean"] == pytest.approx(np.mean(per_seed))
    kept = runs[runs["env_steps"] > runs.groupby("run_dir")["env_steps"].transform("max") / 2]
    kept = kept[kept.algo != "dr"].groupby(["algo", "kappa", "seed"])["kept_fraction"].mean()
    flagged = kept.groupby(["algo", "kappa"]).mean()
    flagged = flagged[flagged > 0.9]
    assert ("## Warning: vacuous comparisons" in md) == (len(flagged) > 0)
    for _algo, kappa in flagged.index:
        assert f"{kappa}" in md.split("## Warning: vacuous comparisons")[1].split("##")[0]
    for bad, message in (
        (["--last", "2", "--window-steps", "9"], "not allowed with argument"),
        (["--window-fraction", "1.5"], "expected a number in (0, 1], got 1.5"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["report", str(tree), "--out", str(out), *bad])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_train_writes_the_run_directory(ray_local, tmp_path, capsys):
    """``mrpo train`` is a one-trial sweep: Tune's layout plus the run's report.md and curves;
    a second run of the same command gets a directory of its own."""
    args = ["train", "--iterations", "3", "--seed", "0", "--out", str(tmp_path)]
    args += ["--set", "training.episodes_per_iteration=8", "--set", "training.num_minibatches=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("iter ") == 3 and "run directory:" in out  # one line per iteration, then the summary
    (exp,) = tmp_path.glob("train-*")
    run = exp / "mrpo__CartPole__kappa0.5-2__seed0"
    for name in ("params.json", "progress.csv", "result.json", "episodes.csv", "curves.png", "report.md"):
        assert (run / name).stat().st_size > 0, name
    assert sorted(p.name for p in run.glob("checkpoint_*")) == ["checkpoint_000000"]  # at the end
    assert (exp / "command.txt").read_text().startswith("mrpo train --iterations 3")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the sweep names the commit it ran
        assert (exp / "code.txt").read_text().startswith(head.stdout.strip())
    assert "episodes_per_iteration: 8" in (exp / "experiment.yaml").read_text()
    progress = pd.read_csv(run / "progress.csv")
    assert progress["training_iteration"].tolist() == [1, 2, 3]
    assert {"mrpo/return_worst10", "mrpo/kept_fraction", "num_env_steps_sampled_lifetime"} <= set(progress)
    ledger = pd.read_csv(run / "episodes.csv")
    assert list(ledger.columns) == [
        "iteration",
        "return",
        "length",
        "force_mag",
        "pole_length",
        "pole_mass",
        "kept",
    ]
    assert ledger.groupby("iteration").size().tolist() == [8, 8, 8]
    summary = (run / "report.md").read_text()
    assert "![curves](curves.png)" in summary and summary.count("\n| ") == 1 + 3  # header + 3 iterations
    time.sleep(1.1)  # the experiment name has a one-second clock
    assert main(args) == 0
    assert len(list(tmp_path.glob("train-*/mrpo__CartPole__kappa0.5-2__seed0"))) == 2


@pytest.fixture(scope="module")
def smoke_sweep(ray_local, tmp_path_factory):
    """The smoke sweep run for real by Tune (6 trials), plus one trial that failed for good:
    a copy of a real trial cut after its first iteration, with Tune's error files."""
    from mrpo_rllib.experiments import load_experiment
    from mrpo_rllib.sweep import run_sweep

    storage = tmp_path_factory.mktemp("tune")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run_sweep(
        load_experiment(os.path.join(root, "tune_configs", "smoke.yaml")), str(storage), echo=lambda *a: None
    )
    sweep = storage / "smoke"
    src = sweep / "dr__CartPole__kappanone__seed0"
    failed = sweep / "dr__CartPole__kappanone__seed9"
    shutil.copytree(src, failed, ignore=shutil.ignore_patterns("checkpoint_*"))
    pd.read_csv(src / "progress.csv").head(1).to_csv(failed / "progress.csv", index=False)
    (failed / "error.txt").write_text("Failure # 1 (occurred at 2026-11-25)\nRuntimeError: env runner died\n")
    (failed / "error.pkl").write_bytes(b"")
    return sweep


def test_collect_reads_real_tune_trials_and_lists_the_failed_one(smoke_sweep):
    col = collect(str(smoke_sweep))
    trials = col.trials.set_index("run_dir")
    assert len(trials) == 7
    done = trials[trials["complete"]]
    assert len(done) == 6
    assert all(c.endswith("checkpoint_000002") for c in done["checkpoint"])  # the last of three
    assert (done["iterations"] == 3).all() and done["settings"].str.contains("budget 3 iterations").all()
    failed = trials.loc[str(smoke_sweep / "dr__CartPole__kappanone__seed9")]
    assert not failed["complete"]
    assert failed["reason"] == "1 of 3 iterations; failed: RuntimeError: env runner died"
    runs = col.runs
    assert len(runs[runs["complete"]]) == 6 * 3 and len(runs) == 6 * 3 + 1
    # the table holds what Tune wrote
    t = runs[runs["run_dir"] == str(smoke_sweep / "mrpo__CartPole__kappa0.5-2__seed1")]
    progress = pd.read_csv(smoke_sweep / "mrpo__CartPole__kappa0.5-2__seed1" / "progress.csv")
    assert t["return_worst10"].tolist() == progress["mrpo/return_worst10"].tolist()
    assert t["env_steps"].tolist() == progress["num_env_steps_sampled_lifetime"].tolist()


def test_report_on_a_real_sweep(smoke_sweep, tmp_path):
    out = tmp_path / "report"
    written = report(str(smoke_sweep), str(out), echo=lambda *a: None, argv=["mrpo", "report"])
    # evaluation settings from the sweep's experiment.yaml: 3 points per axis, 2 episodes
    ev = pd.read_csv(out / "eval_test.csv")
    assert ev["run_dir"].nunique() == 6 and len(ev) == 6 * 9 * 4 and (ev["episodes"] == 2).all()
    fig2 = {
        f"fig2_CartPole_{k}_{m}.png": 3
        for k, m in [("best", "deterministic"), ("final", "stochastic"), ("final", "deterministic")]
    }
    assert written["panels"] == {"fig1_CartPole.png": 2, "fig2_CartPole.png": 3, **fig2, "profiles.png": 1}
    md = (out / "report.md").read_text()
    assert "dr__CartPole__kappanone__seed9" in md and "env runner died" in md
    assert "**CartPole: partial sweep**" in md and "PPO-DR misses seed(s) 9" in md


def _checkpoint_iteration(path) -> int:
    """Read here from the checkpoint's own file, not through mrpo_rllib.runs."""
    import pickle

    with open(os.path.join(path, "algorithm_state.pkl"), "rb") as f:
        return pickle.load(f)["training_iteration"]


def test_best_checkpoint_is_the_best_saved_iteration(reported):
    out, _ = reported
    ev = pd.read_csv(out / "eval_test.csv")
    for run_dir, e in ev.groupby("run_dir"):
        progress = pd.read_csv(os.path.join(run_dir, "progress.csv")).set_index("training_iteration")
        saved = {
            _checkpoint_iteration(os.path.join(run_dir, d)): os.path.join(run_dir, d)
            for d in os.listdir(run_dir)
            if d.startswith("checkpoint_")
        }
        best = max(saved, key=lambda it: progress.loc[it, "mrpo/return_worst10"])
        assert set(e.loc[e["checkpoint_kind"] == "best", "checkpoint"]) == {saved[best]}, run_dir
        assert set(e.loc[e["checkpoint_kind"] == "final", "checkpoint"]) == {saved[max(saved)]}, run_dir


def test_evaluations_are_kept_in_the_run_and_reused(tree, reported):
    from mrpo_rllib.report.evaluation import chosen_checkpoints, evaluate_runs, evaluation_cache

    col = collect(str(tree))
    todo = chosen_checkpoints(col.trials, col.runs)
    caches = sorted(
        {evaluation_cache(t.run_dir, t.checkpoint, 2, 1, 0, "deterministic") for t in todo.itertuples()}
    )
    assert caches and all(os.path.exists(c) for c in caches)
    # a marked file comes back as it is: a second report evaluates nothing again
    marked = caches[0]
    original = open(marked).read()
    try:
        pd.read_csv(marked).assign(return_mean=-12345.0).to_csv(marked, index=False)
        evals = evaluate_runs(col.trials, col.runs, 2, 1, 0, modes=("deterministic",))
        read_from = evals.apply(
            lambda r: evaluation_cache(r["run_dir"], r["checkpoint"], 2, 1, 0, "deterministic"), axis=1
        )
        hit = read_from == marked
        assert hit.any() and (evals.loc[hit, "return_mean"] == -12345.0).all()
        assert (evals.loc[~hit, "return_mean"] != -12345.0).all()
    finally:
        with open(marked, "w") as f:
            f.write(original)


def test_rliable_statistics_against_a_direct_computation():
    """IQM and probability of improvement on a synthetic table, computed here by hand: the IQM
    of n seeds is the mean of the middle half (n = 6: drop the lowest and the highest);
    P(X > Y) is the share of seed pairs where X beats Y, ties counting one half."""
    from mrpo_rllib.report.stats import rliable_table

    worst = {"mrpo": [5.0, 9.0, 7.0, 1.0, 8.0, 6.0], "dr": [2.0, 6.0, 4.0, 3.0, 9.0, 0.0], "epopt": [3.0] * 6}
    rows = []
    for algo, values in worst.items():
        kappa = "0.5-2" if algo == "mrpo" else "none"
        for seed, w in enumerate(values):
            rows.append(
                {
                    "task": "CartPole",
                    "algo": algo,
                    "kappa": kappa,
                    "setting": "",
                    "seed": seed,
                    "iteration": 1,
                    "env_steps": 100,
                    "return_mean": 2 * w,
                    "return_worst10": w,
                    "complete": True,
                    "run_dir": f"{algo}{seed}",
                }
            )
    iqm, poi = rliable_table(pd.DataFrame(rows), last=1, reps=2000)
    w = iqm[iqm["return"] == "10%-worst"].set_index("algo")
    for algo, values in worst.items():
        middle = sorted(values)[1:5]
        assert w.loc[algo, "iqm"] == pytest.approx(sum(middle) / 4)
        assert _within(w.loc[algo, "ci_low"], w.loc[algo, "iqm"], w.loc[algo, "ci_high"])
    assert w.loc["epopt", "ci_low"] == w.loc["epopt", "ci_high"] == 3.0  # no spread, no width
    a = iqm[iqm["return"] == "average"].set_index("algo")
    assert a.loc["dr", "iqm"] == pytest.approx(2 * sum(sorted(worst["dr"])[1:5]) / 4)

    def direct(x, y):
        return sum((xi > yi) + 0.5 * (xi == yi) for xi in x for yi in y) / (len(x) * len(y))

    p = poi.set_index("comparison")["probability"]
    assert p["P(MRPO κ=0.5-2 > PPO-DR), 10%-worst return"] == pytest.approx(
        direct(worst["mrpo"], worst["dr"])
    )
    assert p["P(MRPO κ=0.5-2 > PW-DR (EPOpt)), 10%-worst return"] == pytest.approx(
        direct(worst["mrpo"], worst["epopt"])
    )
    assert (poi["ci_low"] <= poi["probability"]).all() and (poi["probability"] <= poi["ci_high"]).all()


# -- the statistics and figures against computations of their own ------------------------------
def _within(low, x, high) -> bool:
    """low <= x <= high, up to floating-point rounding (relative 1e-9)."""
    tol = 1e-9 * max(1.0, abs(low), abs(x), abs(high))
    return low - tol <= x <= high + tol


def test_within_tolerates_rounding_only():
    # every seed the same value: bootstrap bounds and the mean agree up to rounding
    x = 0.1 + 0.2
    assert _within(0.3, x, 0.3) and not 0.3 <= x <= 0.3
    assert not _within(0.3, 0.3001, 0.3) and not _within(0.3, 0.2999, 0.3)


def test_bootstrap_ci_exact_small_cases():
    # two values: the resampled means are 1, 2, 3 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles are the two values themselves
    assert bootstrap_ci([1.0, 3.0]) == (1.0, 3.0)
    assert bootstrap_ci([4.0, 4.0, 4.0]) == (4.0, 4.0)
    # a large normal sample: the CI is mean ± 1.96 σ/√n to within 15%
    x = np.random.default_rng(1).normal(10.0, 2.0, size=400)
    lo, hi = bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15) and lo < x.mean() < hi


def test_worst10_standard_error_against_the_exact_bootstrap(tmp_path):
    """M = 10, k = 1: the 10%-worst mean is the minimum. Over resamples of the 10 returns the
    minimum is >= the j-th smallest value with probability ((n - j + 1)/n)^n, which gives its
    exact bootstrap variance; 200 resamples must come within 25% of its square root."""
    from mrpo_rllib.report.collect import worst10_standard_errors

    returns = np.array([12.0, 3.0, 7.5, 20.0, 5.0, 9.0, 15.0, 4.0, 11.0, 6.0])
    pd.DataFrame({"iteration": 1, "return": returns}).to_csv(tmp_path / "episodes.csv", index=False)
    se = worst10_standard_errors(str(tmp_path), n_boot=200)[1]
    x, n = np.sort(returns), returns.size
    at_least = [((n - j) / n) ** n for j in range(n)] + [0.0]  # P(min >= x[j]), j = 0..n-1
    p = np.array([at_least[j] - at_least[j + 1] for j in range(n)])  # P(min == x[j])
    exact = np.sqrt((p * x**2).sum() - (p * x).sum() ** 2)
    assert se == pytest.approx(exact, rel=0.25)


def _synthetic_runs():
    rows = []
    for seed, shift in enumerate([0.0, 10.0, 50.0]):
        for it in (1, 2, 3):
            rows.append(
                {
                    "algo": "dr",
                    "task": "CartPole",
                    "seed": seed,
                    "kappa": "none",
                    "setting": "",
                    "iteration": it,
                    "env_steps": 100 * it + seed,
                    "return_mean": 100.0 * it + shift,
                    "return_worst10": 10.0 * it + shift / 2,
                    "complete": True,
                    "run_dir": f"r{seed}",
                }
            )
    return pd.DataFrame(rows)


def test_figure1_plots_the_mean_and_standard_error_over_seeds():
    runs = _synthetic_runs()
    fig, (a, w) = plot_curves(runs, "CartPole")
    for ax, column in ((a, "return_mean"), (w, "return_worst10")):
        (line,) = ax.get_lines()
        g = runs.groupby("iteration")[column]
        np.testing.assert_allclose(line.get_ydata(), g.mean().to_numpy())
        np.testing.assert_allclose(line.get_xdata(), runs.groupby("iteration")["env_steps"].mean().to_numpy())
        se = (g.std(ddof=1) / np.sqrt(3)).to_numpy()
        ys = ax.collections[0].get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx((g.mean() - se).min()) and ys.max() == pytest.approx(
            (g.mean() + se).max()
        )


def test_figure2_averages_seeds_per_grid_point():
    rows = []
    for seed in (0, 1):
        for length in (1.0, 6.0):
            for mass in (1.0, 6.0):
                rows.append(
                    {
                        "task": "CartPole",
                        "algo": "mrpo",
                        "kappa": "0.5-2",
                        "setting": "",
                        "seed": seed,
                        "run_dir": f"r{seed}",
                        "force_mag": 10.0,
                        "pole_length": length,
                        "pole_mass": mass,
                        "return_mean": 100.0 * length + mass + 1000.0 * seed,
                        "episodes": 1,
                    }
                )
    fig, (ax,) = plot_heatmaps(pd.DataFrame(rows), "CartPole")
    shown = ax.images[0].get_array()
    # rows: pole_mass (y), columns: pole_length (x); the mean over the two seeds adds 500
    expected = np.array([[100.0 + 1 + 500, 600.0 + 1 + 500], [100.0 + 6 + 500, 600.0 + 6 + 500]])
    np.testing.assert_allclose(np.asarray(shown), expected)
    assert ax.images[0].get_clim() == (0.0, 1106.0)  # 0 to the task's 1000, or the data's maximum
    # data below the task's scale: the colour scale still ends at CartPole's 1000, not the data's
    low = pd.DataFrame(rows).assign(return_mean=lambda d: d.return_mean / 4.0)
    fig, (ax,) = plot_heatmaps(low, "CartPole")
    assert ax.images[0].get_clim() == (0.0, 1000.0)


def test_worst_case_clip_per_algorithm(reported, tmp_path):
    """One clip per algorithm group: at the test-grid point of the group's lowest mean return
    (computed here with pandas), played by the seed nearest that mean; filmed from that
    point's first evaluation seed, so its return *is* the evaluation's (one episode each)."""
    from mrpo_rllib.video import report_worst_clips

    out, _ = reported
    evals = pd.read_csv(out / "eval_test.csv")
    evals["setting"] = evals["setting"].fillna("")
    clips = report_worst_clips(evals, str(tmp_path))
    e = evals[(evals.checkpoint_kind == "final") & (evals["mode"] == "deterministic")]
    params = ["force_mag", "pole_length", "pole_mass"]
    groups = e.groupby(["task", "algo", "kappa", "setting"])
    assert len(clips) == groups.ngroups >= 2
    for key, g in groups:
        means = g.groupby(params)["return_mean"].mean()
        row = clips[(clips.algo == key[1]) & (clips.kappa == key[2])].iloc[0]
        assert row["mean_return"] == pytest.approx(means.min())
        assert tuple(row[p] for p in params) == pytest.approx(means.idxmin())
        at = g[np.logical_and.reduce([np.isclose(g[p], row[p]) for p in params])]
        picked = at[at.seed == row["seed"]].iloc[0]
        assert abs(picked["return_mean"] - means.min()) == pytest.approx(
            (at["return_mean"] - means.min()).abs().min()
        )
        assert row["clip_return"] == pytest.approx(picked["return_mean"])  # the evaluated episode itself
        assert os.path.getsize(row["file"]) > 1000 and f"_{key[1]}_" in os.path.basename(row["file"])
