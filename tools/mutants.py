"""Deliberate breakages of the project's core behaviours, and the tests that must catch them.

    python tools/mutants.py [--only ID ...] [--markdown docs/testing_mutants.md]

Each mutant replaces one exact piece of code (it must occur exactly once) in a scratch copy
of the repository, then runs the tests said to guard that behaviour there (with the copy
first on PYTHONPATH, so that Ray's worker processes import the mutant too). A mutant is
*killed* when those tests fail, *survived* when they pass — a hole in the suite. `make
mutants` runs them all; docs/testing.md lists the behaviours, the tests and the last run.
Redo it whenever a core behaviour changes.

Why one file of ~900 lines: most of it is the catalogue of mutants (data: the piece of code,
its replacement, the tests that must catch it), kept in one place so that docs/testing.md's
table and the catalogue cannot drift apart; the runner itself is short.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import fnmatch
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the interpreter that runs the tests: MUTANTS_PYTHON, else the checkout's .venv, else this one
PYTHON = os.environ.get("MUTANTS_PYTHON") or (
    os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.exists(os.path.join(ROOT, ".venv", "bin", "python"))
    else sys.executable
)


@dataclass(frozen=True)
class Mutant:
    id: str
    behaviour: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    # why the mutant is not run now (e.g. its code is being rewritten); run with --later
    later: str = ""


HAND_MUTANTS = (
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
        ("tests/test_cartpole.py", "tests/test_env_extras_cartpole.py"),
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


# -- generated mutants: the documented surface, read from the code -------------------------------
# Each family reads what it mutates from the code (the schema's pydantic fields, the variant a
# trial is built from, argparse's parser, the environments' termination comparisons and
# limits), so a new key, flag or limit gets its mutants without an edit here.

SCHEMA_TESTS = ("tests/test_promises_schema.py",)
CLI_TESTS = ("tests/test_promises_cli.py",)
ENV_TESTS = {
    "mrpo_rllib/envs/locomotion.py": ("tests/test_promises_envs.py", "tests/test_locomotion.py"),
    "mrpo_rllib/envs/pendulum.py": ("tests/test_promises_envs.py", "tests/test_pendulum.py"),
    "mrpo_rllib/envs/cartpole.py": ("tests/test_promises_envs.py", "tests/test_cartpole.py"),
    "mrpo_rllib/envs/tasks.py": ("tests/test_promises_envs.py", "tests/test_envs.py"),
}
# A required key has no default to fall back to: "ignored" is a plain value in its place.
# (A list keeps its first entry.) A new required key needs a plain value here.
_PLAIN = {"name": '"experiment"', "task": '"CartPole"', "budget": "Budget(iterations=1)"}
# named module constants of the environments that are limits or reward coefficients
_LIMIT_NAME = re.compile(r"END|LIMIT|MAX_EPISODE|THRESHOLD|COST")
# what was not generated, and why (listed by --list and in the markdown)
NOT_GENERATED: list[tuple[str, str]] = []


def _read(rel: str) -> str:
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def _once(text: str, piece: str) -> bool:
    return text.count(piece) == 1


def _class_fields(tree: ast.Module, name: str) -> list[ast.AnnAssign]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return [n for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    raise LookupError(f"class {name} not found")


def _function(tree: ast.AST, name: str) -> ast.FunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"function {name} not found")


def schema_mutants() -> list[Mutant]:
    """Every key of the experiment schema, forgotten right after validation (reset to its
    default, or a plain value when it has none); every ``training:`` key dropped on its way to
    MRPOConfig; every entry of a trial's variant replaced by its type's zero value; every
    keyword MRPOConfig applies from the variant left out."""
    rel = "mrpo_rllib/experiments.py"
    text = _read(rel)
    tree = ast.parse(text)
    out = []
    anchor = "        exp = Experiment.model_validate(data)\n"
    assert _once(text, anchor), anchor
    for node in _class_fields(tree, "Experiment"):
        key = node.target.id
        if node.value is not None:
            value, how = f'Experiment.model_fields["{key}"].get_default(call_default_factory=True)', "default"
        elif "list[" in ast.unparse(node.annotation):
            value, how = f"exp.{key}[:1]", "first entry only"
        elif key in _PLAIN:
            value, how = _PLAIN[key], f"{_PLAIN[key]}"
        else:
            raise ValueError(f"experiment key {key!r} is required: give it a plain value in _PLAIN")
        out.append(
            Mutant(
                f"key-{key}",
                f"experiment key `{key}` is used as given (ignored: {how})",
                rel,
                anchor,
                anchor + f'        exp = exp.model_copy(update={{"{key}": {value}}})\n',
                SCHEMA_TESTS,
            )
        )
    kwargs = "return self.model_dump(exclude_unset=True)"
    assert _once(text, kwargs), kwargs
    from mrpo_rllib.experiments import Training  # derived from MRPOConfig.training's signature

    for key in Training.model_fields:
        out.append(
            Mutant(
                f"training-{key}",
                f"`training: {{{key}: ...}}` reaches the trial's MRPOConfig",
                rel,
                kwargs,
                f'return {{k: v for k, v in self.model_dump(exclude_unset=True).items() if k != "{key}"}}',
                SCHEMA_TESTS,
            )
        )
    ret = next(n for n in ast.walk(_function(tree, "as_variant")) if isinstance(n, ast.Return))
    for k, v in zip(ret.value.keys, ret.value.values, strict=True):
        expr = ast.get_source_segment(text, v)
        piece = f'"{k.value}": {expr},'
        assert _once(text, piece), piece
        out.append(
            Mutant(
                f"variant-{k.value}",
                f"a trial's `{k.value}` reaches its variant (zero value instead)",
                rel,
                piece,
                f'"{k.value}": type({expr})(),',
                SCHEMA_TESTS,
            )
        )
    rel = "mrpo_rllib/algorithms/mrpo.py"
    text = _read(rel)
    fn = _function(ast.parse(text), "update_from_dict")
    for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
        for kw in call.keywords:
            if "variant" not in ast.unparse(kw.value):
                continue
            seg = ast.get_source_segment(text, kw)
            piece = seg + ",\n" if _once(text, seg + ",\n") else seg
            assert _once(text, piece), piece
            name = kw.arg or "training"
            out.append(
                Mutant(
                    f"variant-applied-{name}",
                    f"MRPOConfig applies the variant's `{name}` to the trial's config",
                    rel,
                    piece,
                    "",
                    SCHEMA_TESTS,
                )
            )
    return out


def cli_mutants() -> list[Mutant]:
    """Every optional flag of every ``mrpo`` command, ignored: right after parsing, reset to
    its default (argparse's own parser is read: a new flag gets its mutant)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from mrpo_rllib.cli import build_parser

    rel = "mrpo_rllib/cli.py"
    anchor = "    args = parser.parse_args(argv)\n"
    assert _once(_read(rel), anchor), anchor
    parser = build_parser()
    (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out = []
    for cmd, sp in subs.choices.items():
        for a in sp._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            if a.required or not a.option_strings:
                NOT_GENERATED.append(
                    (f"flag-{cmd}-{a.dest}", "required: there is no default to ignore it for")
                )
                continue
            flag = max(a.option_strings, key=len)
            out.append(
                Mutant(
                    f"flag-{cmd}-{a.dest.replace('_', '-')}",
                    f"`mrpo {cmd} {flag}` has its effect (ignored: {a.default!r})",
                    rel,
                    anchor,
                    anchor + f"    if args.command == {cmd!r}:\n        args.{a.dest} = {a.default!r}\n",
                    (*CLI_TESTS, "-k", f"test_{cmd.replace('-', '_')}_"),
                )
            )
    return out


def _moved(v: float | int) -> list[tuple[str, str]]:
    """(label, value) one step each way: ±1 for an integer, ±5% otherwise."""
    if isinstance(v, int):
        return [("up", repr(v + 1)), ("down", repr(v - 1))]
    return [("up", repr(round(v * 1.05, 12))), ("down", repr(round(v * 0.95, 12)))]


def _number(node: ast.AST) -> float | int | None:
    """The value of a numeric literal (``-2.0`` too), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _number(node.operand)
        return None if v is None else -v
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return node.value
    return None


def _is_number(node: ast.AST) -> bool:
    return _number(node) is not None


def env_limit_mutants() -> list[Mutant]:
    """Every termination limit of the environments moved both ways: numbers compared in
    ``_step_model`` (outside conditional expressions, which are the action clips); named
    module limits and reward coefficients (``*END*``, ``*LIMIT*``, ``MAX_EPISODE*``,
    ``*COST``); numeric defaults of the robots' dataclasses; each index of an ``ends_on*``
    tuple dropped, and each missing one added; the thresholds of gymnasium's CartPole."""
    out = []
    envs = sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "mrpo_rllib", "envs", "*.py"))
    )
    for rel in envs:
        text = _read(rel)
        tree = ast.parse(text)
        tests = ENV_TESTS.get(rel, ("tests/test_promises_envs.py",))
        stem = os.path.basename(rel)[:-3]
        has_step = any(isinstance(n, ast.FunctionDef) and n.name == "_step_model" for n in ast.walk(tree))
        # (a) numbers compared in _step_model
        if has_step:
            fn = _function(tree, "_step_model")
            clipped = {id(n) for e in ast.walk(fn) if isinstance(e, ast.IfExp) for n in ast.walk(e)}
            for node in ast.walk(fn):
                if not (isinstance(node, ast.Compare) and len(node.comparators) == 1) or id(node) in clipped:
                    continue
                if not isinstance(node.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                    continue  # a limit is an inequality
                c = node.comparators[0]
                if not _is_number(c):
                    continue
                seg = ast.get_source_segment(text, node)
                if _number(c) == 0:
                    NOT_GENERATED.append(
                        (f"limit-{stem}-{seg}", "a sign test (the ±1 alive bonus): no step to move")
                    )
                    continue
                assert _once(text, seg), seg
                cseg = ast.get_source_segment(text, c)
                off = c.col_offset - node.col_offset
                for label, v in _moved(_number(c)):
                    out.append(
                        Mutant(
                            f"limit-{stem}-{re.sub(r'[^A-Za-z0-9]+', '', ast.unparse(node.left))}-{label}",
                            f"{stem}: the episode ends at `{seg}` (moved {label})",
                            rel,
                            seg,
                            seg[:off] + v + seg[off + len(cseg) :],
                            tests,
                        )
                    )
        for node in tree.body:
            # (b) named limits and reward coefficients
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and _LIMIT_NAME.search(node.targets[0].id)
                and _is_number(node.value)
            ):
                name = node.targets[0].id
                seg = ast.get_source_segment(text, node)
                assert _once(text, seg + "\n") or _once(text, seg + "  #"), seg
                for label, v in _moved(_number(node.value)):
                    out.append(
                        Mutant(
                            f"limit-{name.lower().replace('_', '-')}-{label}",
                            f"{stem}: `{seg}` (moved {label})",
                            rel,
                            seg,
                            f"{name} = {v}",
                            tests,
                        )
                    )
            # (c) numeric defaults of the physics files' dataclasses
            if isinstance(node, ast.ClassDef) and has_step:
                for f in (n for n in node.body if isinstance(n, ast.AnnAssign) and n.value is not None):
                    if _is_number(f.value):
                        seg = ast.get_source_segment(text, f)
                        assert _once(text, seg), seg
                        vseg = ast.get_source_segment(text, f.value)
                        for label, v in _moved(_number(f.value)):
                            out.append(
                                Mutant(
                                    f"limit-{node.name.lower()}-{f.target.id.replace('_', '-')}-{label}",
                                    f"{stem}: `{node.name}.{seg}` (moved {label})",
                                    rel,
                                    seg,
                                    seg[: -len(vseg)] + v,
                                    tests,
                                )
                            )
        # (d) the indices of an ends_on* tuple: each dropped, each missing one added
        for node in ast.walk(tree):
            if not (isinstance(node, ast.keyword) and node.arg and node.arg.startswith("ends_on")):
                continue
            if not (isinstance(node.value, ast.Tuple) and all(_is_number(e) for e in node.value.elts)):
                continue
            seg = ast.get_source_segment(text, node)
            assert _once(text, seg), seg
            idx = [e.value for e in node.value.elts]
            for i in idx:
                new = tuple(j for j in idx if j != i)
                out.append(
                    Mutant(
                        f"limit-{node.arg.replace('_', '-')}-without-{i}",
                        f"{stem}: `{seg}` (index {i} dropped: ends later)",
                        rel,
                        seg,
                        f"{node.arg}={new!r}",
                        tests,
                    )
                )
            for i in sorted(set(range(max(idx) + 1)) - set(idx)):
                out.append(
                    Mutant(
                        f"limit-{node.arg.replace('_', '-')}-with-{i}",
                        f"{stem}: `{seg}` (index {i} added: ends sooner)",
                        rel,
                        seg,
                        f"{node.arg}={tuple(sorted([*idx, i]))!r}",
                        tests,
                    )
                )
    # (e) gymnasium's CartPole: its thresholds (read from the class) moved after every _apply_params
    rel = "mrpo_rllib/envs/cartpole.py"
    anchor = "        cp.polemass_length = cp.masspole * cp.length\n"
    if _once(_read(rel), anchor):
        from gymnasium.envs.classic_control.cartpole import CartPoleEnv

        gym_cp = CartPoleEnv()
        for attr, value in sorted(vars(gym_cp).items()):
            if "threshold" in attr and isinstance(value, (int, float)):
                for label, v in _moved(float(value)):
                    out.append(
                        Mutant(
                            f"limit-cartpole-{attr.replace('_', '-')}-{label}",
                            f"cartpole: gymnasium's `{attr}` = {value:.6g} (moved {label})",
                            rel,
                            anchor,
                            anchor + f"        cp.{attr} = {v}\n",
                            ENV_TESTS[rel],
                        )
                    )
    return out


EVAL_MODE_MUTANTS = (
    Mutant(
        "eval-modes-swapped",
        "`mrpo evaluate` is deterministic unless --stochastic",
        "mrpo_rllib/cli.py",
        "deterministic=not args.stochastic,",
        "deterministic=args.stochastic,",
        (*CLI_TESTS, "-k", "test_evaluate_"),
    ),
    Mutant(
        "eval-default-sampled",
        "evaluate() is deterministic by default",
        "mrpo_rllib/evaluate.py",
        '    deterministic: bool = True,\n) -> pd.DataFrame:\n    """Evaluate a checkpoint',
        '    deterministic: bool = False,\n) -> pd.DataFrame:\n    """Evaluate a checkpoint',
        (
            "tests/test_promises_run.py::test_deterministic_evaluation_is_the_argmax_rollout_and_sampling_differs",
        ),
    ),
)

LATER_MUTANTS = (
    Mutant(
        "eval-rollout-explores",
        "evaluation's deterministic mode takes the distribution's mode (argmax / mean)",
        "mrpo_rllib/evaluate.py",
        "explore = not deterministic",
        "explore = deterministic",
        (
            "tests/test_promises_run.py::test_deterministic_evaluation_is_the_argmax_rollout_and_sampling_differs",
        ),
        later="edits rollout_point, which is being rewritten in /work/main",
    ),
)


def generated_mutants() -> list[Mutant]:
    return [*schema_mutants(), *cli_mutants(), *env_limit_mutants()]


MUTANTS = (*HAND_MUTANTS, *EVAL_MODE_MUTANTS, *LATER_MUTANTS, *generated_mutants())
_ids = [m.id for m in MUTANTS]
assert len(set(_ids)) == len(_ids), sorted({i for i in _ids if _ids.count(i) > 1})


def _copy_repo(dest: str) -> None:
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "results", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)


def run(m: Mutant, keep: bool = False, timeout: float = 900) -> tuple[str, float, str]:
    """(outcome, seconds, last lines) for one mutant: killed / survived / not applied / timed out."""
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
        try:
            out = subprocess.run(
                [PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return "timed out", time.perf_counter() - t0, f"no verdict within {timeout:.0f} s"
        seconds = time.perf_counter() - t0
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-3:])
        if out.returncode in (4, 5):  # usage error / no tests collected: no verdict
            return "not applied", seconds, tail
        return ("killed" if out.returncode != 0 else "survived"), seconds, tail
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def _cell(text: str, n: int = 70) -> str:
    text = " / ".join(line.strip() for line in text.strip().splitlines())
    return (text[: n - 1] + "…" if len(text) > n else text).replace("|", "/")


def _row(m: Mutant, outcome: str, when: str) -> str:
    new = m.new.replace(m.old, "…") if m.old in m.new else m.new  # an insertion after the piece
    change = f"`{m.file}`: `{_cell(m.old, 60)}` → `{_cell(new) or '(removed)'}`"
    tests = ", ".join(f"`{t}`" for t in m.tests)
    return f"| {m.id} | {m.behaviour.replace('|', '/')} | {change} | {tests} | {outcome} | {when} |"


def _not_run(m: Mutant) -> str:
    return _row(m, "for later" if m.later else "not run", m.later or "never run")


def write_markdown(path: str, rows: list[tuple[Mutant, str, float]]) -> None:
    """Write the table; rows of mutants not run this time are kept from the existing file
    (a mutant never run is listed as not run)."""
    ids = {m.id for m in MUTANTS}
    old: dict[str, str] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                cells = [c.strip() for c in line.split("|")]
                if len(cells) > 7 and cells[1] in ids:
                    old[cells[1]] = line.rstrip("\n")
    day = datetime.date.today().isoformat()
    new = {m.id: _row(m, outcome, f"{day}, {seconds:.0f} s") for m, outcome, seconds in rows}
    body = [new.get(m.id) or old.get(m.id) or _not_run(m) for m in MUTANTS]
    outcome = [b.split("|")[5].strip() for b in body]
    counts = {o: outcome.count(o) for o in dict.fromkeys(outcome)}
    ran = sum(n for o, n in counts.items() if o not in ("not run", "for later"))
    n_gen = len(MUTANTS) - len(HAND_MUTANTS) - len(EVAL_MODE_MUTANTS) - len(LATER_MUTANTS)
    lines = [
        "Written by `python tools/mutants.py --markdown docs/testing_mutants.md`; a run with",
        "`--only ID|PATTERN ...` replaces those rows and keeps the others (the last column says",
        f"when each row was run). {len(HAND_MUTANTS) + len(EVAL_MODE_MUTANTS)} mutants chosen by hand,"
        f" {len(LATER_MUTANTS)} for later,",
        f"{n_gen} generated from the code (the experiment schema, the trial variant, the `mrpo`",
        f"flags, the environments' limits). {ran} run: "
        + ", ".join(f"{n} {o}" for o, n in counts.items() if o not in ("not run", "for later"))
        + "; "
        + ", ".join(f"{n} {o}" for o, n in counts.items() if o in ("not run", "for later"))
        + ".",
        "",
        "| mutant | behaviour broken | change | guarding tests | outcome | run |",
        "|---|---|---|---|---|---|",
        *body,
        "",
        "Not generated:",
        "",
        *(f"- `{i}`: {why}" for i, why in NOT_GENERATED),
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only", nargs="*", default=None, help="mutant ids or shell patterns (key-*, flag-train-*)"
    )
    p.add_argument("--later", action="store_true", help="also run the mutants marked for later")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests (default 900)")
    p.add_argument("--markdown", default=None, help="write the results as a markdown table here")
    p.add_argument(
        "--drop-tests",
        nargs="*",
        default=(),
        metavar="PATTERN",
        help="run without the test files matching these patterns (which tests kill what: no --markdown)",
    )
    p.add_argument("--keep-tests", nargs="*", default=(), metavar="PATTERN", help="run only these test files")
    p.add_argument(
        "--tests", default="", help="run these pytest arguments instead, one quoted string (no --markdown)"
    )
    args = p.parse_args(argv)
    if args.drop_tests or args.keep_tests or args.tests:
        if args.markdown:
            p.error("--drop-tests/--keep-tests change the guarding tests: not with --markdown")
    chosen = [
        m
        for m in MUTANTS
        if (not args.only or any(fnmatch.fnmatchcase(m.id, pat) for pat in args.only))
        and (args.later or not m.later or (args.only and m.id in args.only))
    ]
    if args.list:
        for m in chosen:
            print(
                f"{m.id:<40} {m.file:<40} {' '.join(m.tests)}{'  [later: ' + m.later + ']' if m.later else ''}"
            )
        for i, why in NOT_GENERATED:
            print(f"{i:<40} not generated: {why}")
        return 0
    rows = []
    for m in chosen:
        if args.tests:
            m = dataclasses.replace(m, tests=tuple(shlex.split(args.tests)))
        elif args.drop_tests or args.keep_tests:
            files = [t for t in m.tests if t.startswith("tests/")]
            keep = [
                t
                for t in files
                if not any(fnmatch.fnmatchcase(t, pat) for pat in args.drop_tests)
                and (not args.keep_tests or any(fnmatch.fnmatchcase(t, pat) for pat in args.keep_tests))
            ]
            if not keep:
                print(f"{m.id:<40} {'no tests':<12}", flush=True)
                continue
            options = [t for t in m.tests if not t.startswith("tests/")]
            m = dataclasses.replace(m, tests=(*keep, *options))
        outcome, seconds, tail = run(m, timeout=args.timeout)
        print(
            f"{m.id:<40} {outcome:<12} {seconds:6.0f} s  {tail.splitlines()[-1] if tail else ''}", flush=True
        )
        rows.append((m, outcome, seconds))
        if args.markdown:  # after each mutant: an interrupted run keeps what it found
            write_markdown(args.markdown, rows)
    survived = [m.id for m, o, _ in rows if o != "killed"]
    print(
        f"{len(rows) - len(survived)} of {len(rows)} killed"
        + (f"; not killed: {survived}" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
