"""Deliberate breakages of the project's core behaviours, and the tests that must catch them.

    python tools/mutants.py [--only ID ...] [--markdown docs/testing_mutants.md]

Each mutant replaces one exact piece of code (it must occur exactly once) in a scratch copy
of the repository, then runs the tests said to guard that behaviour there (with the copy
first on PYTHONPATH, so that Ray's worker processes import the mutant too). A mutant is
*killed* when those tests fail, *survived* when they pass — a hole in the suite. `make
mutants` runs them all; docs/testing.md lists the behaviours, the tests and the last run.
Redo it whenever a core behaviour changes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")


@dataclass(frozen=True)
class Mutant:
    id: str
    behaviour: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    # -- the selection rules ------------------------------------------------------------------
    Mutant(
        "w-ties",
        "W holds every tie with the k-th lowest return",
        "mrpo_rllib/selection.py",
        "return np.flatnonzero(r <= kth)",
        'return np.argsort(r, kind="stable")[:k]',
        ("tests/test_selection.py",),
    ),
    Mutant(
        "mrpo-strict",
        "MRPO keeps i iff η̂ᵢ − κ‖Δp̃‖ ≥ η̂ₖ (not >) for every k in W",
        "mrpo_rllib/selection.py",
        "keep = np.all(r[:, None] - kappa * dist >= r[None, w], axis=1)",
        "keep = np.all(r[:, None] - kappa * dist > r[None, w], axis=1)",
        ("tests/test_selection.py",),
    ),
    Mutant(
        "mrpo-any",
        "the MRPO condition must hold for every member of W",
        "mrpo_rllib/selection.py",
        "keep = np.all(r[:, None] - kappa * dist >= r[None, w], axis=1)",
        "keep = np.any(r[:, None] - kappa * dist >= r[None, w], axis=1)",
        ("tests/test_selection.py",),
    ),
    Mutant(
        "no-standardise",
        "MRPO compares batch-standardised returns",
        "mrpo_rllib/selection.py",
        "scaled, _ = scale_returns(returns)",
        "scaled = np.asarray(returns, dtype=np.float64)",
        (
            "tests/test_selection.py",
            "tests/test_algorithms.py::test_mrpo_mask_is_the_rule_at_the_scheduled_kappa",
        ),
    ),
    Mutant(
        "epopt-lt",
        "PW-DR keeps returns <= the α-percentile",
        "mrpo_rllib/selection.py",
        "return r <= np.percentile(r, 100.0 * alpha)",
        "return r < np.percentile(r, 100.0 * alpha)",
        ("tests/test_selection.py",),
    ),
    # -- the training step --------------------------------------------------------------------
    Mutant(
        "step-keeps-all",
        "the training step applies the configured rule",
        "mrpo_rllib/algorithms/selection_step.py",
        "selection = cfg.selection\n",
        'selection = "dr"\n',
        (
            "tests/test_algorithms.py::test_mrpo_mask_is_the_rule_at_the_scheduled_kappa",
            "tests/test_algorithms.py::test_mrpo_with_a_huge_kappa_keeps_exactly_w",
        ),
    ),
    Mutant(
        "kappa-frozen",
        "the κ in force follows the schedule",
        "mrpo_rllib/algorithms/selection_step.py",
        "kappa = cfg.kappa_at(self.iteration)",
        "kappa = cfg.kappa_at(0)",
        ("tests/test_algorithms.py::test_mrpo_mask_is_the_rule_at_the_scheduled_kappa",),
    ),
    Mutant(
        "no-normalise",
        "parameters enter MRPO's distance in training-range widths",
        "mrpo_rllib/algorithms/selection_step.py",
        "normalize_params(cfg.task_spec, params),",
        "params,",
        (
            "tests/test_algorithms.py::test_mrpo_mask_is_the_rule_at_the_scheduled_kappa",
            "tests/test_randomize.py",
        ),
    ),
    Mutant(
        "warmup-off-by-one",
        "PW-DR's warm-up keeps everything for exactly N iterations",
        "mrpo_rllib/algorithms/selection_step.py",
        "self.iteration < cfg.epopt_warmup_iters",
        "self.iteration <= cfg.epopt_warmup_iters",
        ("tests/test_algorithms.py::test_epopt_warmup_keeps_everything_first",),
    ),
    Mutant(
        "effort-by-data",
        "every rule takes num_epochs × num_minibatches gradient steps",
        "mrpo_rllib/algorithms/selection_step.py",
        '"num_total_minibatches": cfg.num_epochs * cfg.num_minibatches,',
        "",
        ("tests/test_algorithms.py::test_equal_optimiser_effort_whatever_is_kept",),
    ),
    Mutant(
        "ledger-kept",
        "the ledger records which episodes were trained on",
        "mrpo_rllib/algorithms/selection_step.py",
        "*(repr(float(x)) for x in p), int(k)]",
        "*(repr(float(x)) for x in p), 1]",
        ("tests/test_algorithms.py",),
    ),
    Mutant(
        "vf-clamp",
        "no clamp on the value loss",
        "mrpo_rllib/algorithms/mrpo.py",
        'self.vf_clip_param = float("inf")',
        "self.vf_clip_param = 10.0",
        ("tests/test_algorithms.py::test_ppo_settings_of_the_papers_code",),
    ),
    # -- sampling -----------------------------------------------------------------------------
    Mutant(
        "runner-overstarts",
        "the runner starts exactly the n episodes it returns",
        "mrpo_rllib/algorithms/env_runner.py",
        "started = [self._reset_slot(envs, slot) for slot in range(min(n, k))]",
        "started = [self._reset_slot(envs, slot) for slot in range(k)]",
        ("tests/test_env_runner.py",),
    ),
    Mutant(
        "seeds-collide",
        "env runners' streams do not collide (the worker index is in the seed)",
        "mrpo_rllib/algorithms/env.py",
        "ss = np.random.SeedSequence([int(seed), self._worker_index])",
        "ss = np.random.SeedSequence([int(seed)])",
        ("tests/test_algorithms.py::test_ledger_has_m_distinct_parameter_vectors_per_iteration",),
    ),
    Mutant(
        "restart-replays",
        "a restarted env runner does not replay its predecessor's environments",
        "mrpo_rllib/algorithms/env_runner.py",
        "if not self._weights_seq_no:",
        "if True:",
        ("tests/test_fault_tolerance.py",),
    ),
    Mutant(
        "no-resample",
        "a lost runner's share of M is sampled again",
        "mrpo_rllib/algorithms/selection_step.py",
        "while len(episodes) < m:",
        "for _ in range(1):",
        ("tests/test_fault_tolerance.py",),
    ),
    # -- evaluation and the worst case --------------------------------------------------------
    Mutant(
        "eval-ignores-grid",
        "evaluation runs the grid's parameters",
        "mrpo_rllib/evaluate.py",
        'options={"env_params": params}',
        "options=None",
        ("tests/test_evaluate.py",),
    ),
    Mutant(
        "eval-filter-learns",
        "evaluation freezes the observation filter",
        "mrpo_rllib/evaluate.py",
        "connector._update_stats = False",
        "connector._update_stats = True",
        ("tests/test_evaluate.py",),
    ),
    Mutant(
        "search-maximises",
        "the worst-case search minimises the return",
        "mrpo_rllib/worst_case.py",
        'metric="return_mean", mode="min"',
        'metric="return_mean", mode="max"',
        ("tests/test_worst_case.py::test_search_beats_a_dense_grid_on_a_known_surface",),
    ),
    Mutant(
        "search-batch-by-timing",
        "a batch of searched points closes when all of it is asked and done, not when the running ones are",
        "mrpo_rllib/worst_case.py",
        "full = len(self.batch) == self.batch_size or self.asked >= self.budget",
        "full = True",
        ("tests/test_worst_case.py::test_batches_do_not_depend_on_timing",),
    ),
    # -- runs, sweeps, report -----------------------------------------------------------------
    Mutant(
        "window-ignored",
        "the window table averages each seed over the window it names",
        "mrpo_rllib/report/stats.py",
        "ps = per_seed(runs, n)",
        "ps = per_seed(runs)",
        ("tests/test_report.py::test_window_sensitivity_equals_direct_pandas",),
    ),
    Mutant(
        "learner-report-dedup",
        "the learner study keeps a run of another M beside the main run, not as its duplicate",
        "mrpo_rllib/report/learner.py",
        "col = collect(root, deduplicate=False)",
        "col = collect(root)",
        ("tests/test_report_learner.py::test_each_m_has_its_own_row_from_its_own_run",),
    ),
    Mutant(
        "learner-kappa-from-all-runs",
        "κ's calibration reads only the main learning runs (the paper's M)",
        "mrpo_rllib/report/learner.py",
        'main = runs["experiment"] == "learner_learning_" + runs["task"].str.lower()',
        'main = runs["experiment"].str.startswith("learner_learning_")',
        ("tests/test_report_learner.py::test_kappa_calibration_reads_only_the_main_run",),
    ),
    Mutant(
        "trim-keeps-redone",
        "a restored trial keeps each iteration once in progress.csv",
        "mrpo_rllib/sweep.py",
        "if r and float(r[col]) <= iteration",
        "if r and float(r[col]) <= iteration + 1",
        ("tests/test_experiments.py::test_drop_rows_after_trims_progress_and_result_files",),
    ),
    Mutant(
        "no-config-check",
        "an experiment's algorithm settings are validated before anything runs",
        "mrpo_rllib/experiments.py",
        "self.trial_config(trial).validate()",
        "self.trial_config(trial)",
        ("tests/test_experiments.py", "tests/test_cli.py"),
    ),
    Mutant(
        "table2-first-window",
        "Table 2 averages each seed's last iterations",
        "mrpo_rllib/report/stats.py",
        'return c.groupby("run_dir", sort=False).tail(last)',
        'return c.groupby("run_dir", sort=False).head(last)',
        ("tests/test_report.py::test_table2_equals_direct_pandas",),
    ),
    Mutant(
        "significance",
        "a significant fall exceeds 2 standard errors of the difference",
        "mrpo_rllib/report/stats.py",
        "noise = 2.0 * np.sqrt(",
        "noise = 1.0 * np.sqrt(",
        ("tests/test_report.py::test_monotonicity_hand_computed",),
    ),
    Mutant(
        "best-is-worst",
        "the best checkpoint has the highest training 10%-worst return",
        "mrpo_rllib/report/evaluation.py",
        "best_it = int(at.idxmax())",
        "best_it = int(at.idxmin())",
        ("tests/test_report.py::test_best_checkpoint_is_the_best_saved_iteration",),
    ),
    Mutant(
        "colour-scale-data",
        "Figure 2's colour scale is anchored to the task's return range",
        "mrpo_rllib/report/figures.py",
        "high = max(get_task(task).return_scale, float(v.max()) if v.size else 0.0)",
        "high = float(v.max()) if v.size else 1.0",
        ("tests/test_report.py::test_figure2_averages_seeds_per_grid_point",),
    ),
    Mutant(
        "se-ddof",
        "Figure 1's band is ± one standard error over seeds",
        "mrpo_rllib/report/stats.py",
        '"se": g[column].std(ddof=1) / np.sqrt(g[column].count()),',
        '"se": g[column].std(ddof=1),',
        ("tests/test_report.py::test_figure1_plots_the_mean_and_standard_error_over_seeds",),
    ),
    Mutant(
        "eval-cache-ignored",
        "a second report reuses the evaluations kept in the run directories",
        "mrpo_rllib/report/evaluation.py",
        "if not os.path.exists(c)}",
        "if True}",
        ("tests/test_report.py::test_evaluations_are_kept_in_the_run_and_reused",),
    ),
    # -- the environments (more in docs/testing.md: 43 env mutants) ----------------------------
    Mutant(
        "table1-friction",
        "Walker2d's training friction is the paper's [0.2, 2.5]",
        "mrpo_rllib/envs/tasks.py",
        "_friction((0.2, 2.5), (0.05, 0.2))",
        "_friction((0.2, 0.25), (0.05, 0.2))",
        ("tests/test_envs.py",),
    ),
    Mutant(
        "cartpole-mass-cache",
        "CartPole recomputes gymnasium's cached masses",
        "mrpo_rllib/envs/cartpole.py",
        "cp.total_mass = cp.masspole + cp.masscart",
        "pass",
        ("tests/test_cartpole.py", "tests/test_env_extras.py"),
    ),
    # -- the cluster --------------------------------------------------------------------------
    Mutant(
        "no-token",
        "every cluster node requires the token",
        "cluster/aws.yaml",
        "  - ulimit -n 65536; export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/home/ray/.ray/auth_token;\n    ray start --address",
        "  - ulimit -n 65536; ray start --address",
        ("tests/test_cluster_config.py",),
    ),
    Mutant(
        "resume-from-scratch",
        "a retried trial resumes from its checkpoint",
        "mrpo_rllib/sweep.py",
        'return int(ckpt.metrics.get("training_iteration", 0)) if ckpt is not None else 0',
        "return 0",
        ("tests/test_multinode.py::test_sweep_survives_losing_a_worker_node",),
    ),
)


def _copy_repo(dest: str) -> None:
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "results", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)


def run(m: Mutant, keep: bool = False) -> tuple[str, float, str]:
    """(outcome, seconds, last lines) for one mutant: killed / survived / not applied."""
    base = tempfile.mkdtemp(prefix=f"mutant-{m.id}-")
    work = os.path.join(base, "repo")
    try:
        _copy_repo(work)
        path = os.path.join(work, m.file)
        with open(path) as f:
            text = f.read()
        if text.count(m.old) != 1:
            return "not applied", 0.0, f"{m.file}: the piece occurs {text.count(m.old)} times"
        with open(path, "w") as f:
            f.write(text.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": work}
        env.pop("RAY_ADDRESS", None)
        t0 = time.perf_counter()
        out = subprocess.run(
            [PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        seconds = time.perf_counter() - t0
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-3:])
        return ("killed" if out.returncode != 0 else "survived"), seconds, tail
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def _row(m: Mutant, outcome: str, seconds: float, day: str) -> str:
    change = f"`{m.file}`: `{m.old.strip()[:60]}` → `{m.new.strip()[:60] or '(removed)'}`"
    tests = ", ".join(f"`{t}`" for t in m.tests)
    return f"| {m.id} | {m.behaviour} | {change.replace('|', '/')} | {tests} | {outcome} | {day}, {seconds:.0f} s |"


def write_markdown(path: str, rows: list[tuple[Mutant, str, float]]) -> None:
    """Write the table; rows of mutants not run this time are kept from the existing file."""
    ids = {m.id for m in MUTANTS}
    old: dict[str, str] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                cells = [c.strip() for c in line.split("|")]
                if len(cells) > 7 and cells[1] in ids:
                    old[cells[1]] = line.rstrip("\n")
    day = datetime.date.today().isoformat()
    new = {m.id: _row(m, outcome, seconds, day) for m, outcome, seconds in rows}
    body = [new.get(m.id) or old.get(m.id) for m in MUTANTS]
    body = [b for b in body if b]
    killed = sum(1 for b in body if "| killed |" in b)
    lines = [
        "Written by `python tools/mutants.py --markdown docs/testing_mutants.md`; a run with",
        "`--only ID ...` replaces those rows and keeps the others (the last column says when",
        f"each row was run). {killed} of {len(body)} mutants killed.",
        "",
        "| mutant | behaviour broken | change | guarding tests | outcome | run |",
        "|---|---|---|---|---|---|",
        *body,
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="mutant ids")
    p.add_argument("--markdown", default=None, help="write the results as a markdown table here")
    args = p.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.id in args.only]
    rows = []
    for m in chosen:
        outcome, seconds, tail = run(m)
        print(
            f"{m.id:<22} {outcome:<12} {seconds:6.0f} s  {tail.splitlines()[-1] if tail else ''}", flush=True
        )
        rows.append((m, outcome, seconds))
    survived = [m.id for m, o, _ in rows if o != "killed"]
    if args.markdown:
        write_markdown(args.markdown, rows)
    print(
        f"{len(rows) - len(survived)} of {len(rows)} killed" + (f"; survived: {survived}" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
