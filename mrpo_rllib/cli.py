"""The ``mrpo`` command line: thin wrappers over the package's functions.

``mrpo train`` and ``mrpo tune`` read the same experiment schema
(:mod:`mrpo_rllib.experiments`): ``train`` builds a one-trial experiment from its flags,
``tune`` reads a file; both take ``--set key=value`` overrides of any key of the schema.

Defaults have one owner each, never this module: an option left out is not passed on, so the
function or schema it reaches applies its own default (``tests/test_defaults.py`` checks),
and choices come from the module that owns them.

Why one file of ~480 lines: every command's options (more than half of it, declarations)
sit next to the thin function that hands them on, so a flag and where it goes are read
together; nothing here computes anything of its own.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import logging
import os
import signal
import sys

from mrpo_rllib import runs
from mrpo_rllib.selection import SELECTIONS

DEFAULT_OUT = "results"
TRAIN_ITERATIONS = 20  # `mrpo train`'s budget when neither --iterations nor --env-steps is given


def _given(**options) -> dict:
    """The options given on the command line (not None): the callee's defaults for the rest."""
    return {k: v for k, v in options.items() if v is not None}


def _cmd_tasks(args) -> int:
    from mrpo_rllib.envs import TASKS

    for t in TASKS.values():
        print(f"{t.env_id}")
        for p in t.params:
            unit = f" {p.unit}" if p.unit else ""
            print(f"    {p.name:<14} train {list(p.train)}  test {list(p.test)}  nominal {p.nominal}{unit}")
        for p in t.extra_params:
            unit = f" {p.unit}" if p.unit else ""
            print(
                f"  + {p.name:<14} train {list(p.train)}  test {list(p.test)}  nominal {p.nominal}{unit}"
                "  (extra: nominal unless randomized)"
            )
    return 0


def train_experiment(args, name: str):
    """The one-trial experiment of ``mrpo train``'s flags (validated, nothing written)."""
    from mrpo_rllib.algorithms import MRPOConfig
    from mrpo_rllib.experiments import apply_overrides, parse_experiment

    budget = {"env_steps": args.env_steps} if args.env_steps else {"iterations": args.iterations}
    default = MRPOConfig()
    data = {
        "name": name,
        "task": args.task or default.task,
        "algorithms": [args.algo or default.selection],
        "seeds": [args.seed],
        "budget": budget,
        **_given(checkpoint_every=args.checkpoint_every),
    }
    return parse_experiment(apply_overrides(data, args.set), "mrpo train")


def _latest_train_run(out: str, trial: str) -> str | None:
    """The newest ``train-*`` experiment under ``out`` that holds a trial named ``trial``."""
    found = sorted(glob.glob(os.path.join(out, "train-*", trial)), key=os.path.getmtime)
    return os.path.basename(os.path.dirname(found[-1])) if found else None


def _cmd_train(args) -> int:
    from mrpo_rllib.report import write_run_summary
    from mrpo_rllib.sweep import run_sweep

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    exp = train_experiment(args, args.name or f"train-{stamp}")
    (trial,) = exp.trials()
    if args.resume and not args.name:
        earlier = _latest_train_run(args.out, trial.name)
        if earlier is None:
            raise ValueError(f"--resume: no earlier `mrpo train` run of {trial.name} under {args.out}")
        exp = exp.model_copy(update={"name": earlier})
    budget = ", ".join(
        f"{v:,} {k.replace('_', ' ')}" for k, v in exp.budget.model_dump(exclude_none=True).items()
    )
    print(f"{trial.name}: {budget} -> {os.path.join(args.out, exp.name, trial.name)}")
    results = run_sweep(
        exp, args.out, resume=args.resume, per_iteration=True, verbose=args.verbose, argv=args.argv
    )
    (result,) = list(results)
    if result.error is not None:
        print(f"mrpo train: the run failed: {result.error}", file=sys.stderr)
        return 1
    run_dir = result.path
    write_run_summary(run_dir)
    m = result.metrics
    print(
        f"done: {m['training_iteration']} iterations, {int(m['num_env_steps_sampled_lifetime']):,} env steps; "
        f"last iteration: average {m['mrpo']['return_mean']:.1f}, 10%-worst {m['mrpo']['return_worst10']:.1f}"
    )
    files = (runs.SUMMARY_FILE, runs.CURVES_FILE, runs.PROGRESS_FILE, runs.LEDGER_FILE, "checkpoint_*/")
    print(f"run directory: {run_dir} ({', '.join(files)})")
    return 0


def _submit_job(args) -> int:
    from mrpo_rllib.jobs import submit_sweep

    return submit_sweep(
        args.file, overrides=args.set, storage=args.storage, resume=args.resume, loggers=args.logger
    )


def _cmd_tune(args) -> int:
    from mrpo_rllib.experiments import load_experiment
    from mrpo_rllib.sweep import DEFAULT_STORAGE, run_sweep, trial_table

    address = os.environ.get("RAY_ADDRESS", "")
    if address.startswith(("http://", "https://")) and not args.dry_run:
        return _submit_job(args)  # a cluster's dashboard: run the sweep there as a Ray job
    exp = load_experiment(args.file, args.set)
    if args.logger and not args.dry_run:
        from mrpo_rllib.tracking import check_loggers

        try:
            check_loggers(args.logger)
        except ModuleNotFoundError as e:
            print(f"mrpo tune: error: {e}", file=sys.stderr)
            return 2
    if args.dry_run:
        print(trial_table(exp))
        return 0
    results = run_sweep(
        exp,
        args.storage or DEFAULT_STORAGE,
        resume=args.resume,
        verbose=args.verbose,
        loggers=args.logger,
        argv=args.argv,
    )
    return 1 if any(r.error is not None for r in results) else 0


def _require_video(command: str) -> bool:
    """True when the video extra is installed; else prints the error naming it."""
    from mrpo_rllib.video import require_video

    try:
        require_video()
    except ModuleNotFoundError as e:
        print(f"mrpo {command}: error: {e}", file=sys.stderr)
        return False
    return True


def _cmd_evaluate(args) -> int:
    from mrpo_rllib.evaluate import evaluate

    if args.video and not _require_video("evaluate"):  # before the evaluation, not after it
        return 2
    try:
        df = evaluate(
            args.checkpoint,
            **_given(grid=args.grid, points=args.points, episodes=args.episodes, seed=args.seed),
            deterministic=not args.stochastic,
        )
    except FileNotFoundError as e:
        print(f"mrpo evaluate: error: {e}", file=sys.stderr)
        return 2
    print(f"{df.attrs['task']}, {df.attrs['grid']} grid, checkpoint {df.attrs['checkpoint']}")
    print(df.to_string(index=False))
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    if args.video:
        from mrpo_rllib.video import film_evaluation

        for path in film_evaluation(
            args.checkpoint, df, args.video, args.video_points, df.attrs["seed"], not args.stochastic
        ):
            print(f"wrote {path}")
    return 0


def _cmd_worst_case(args) -> int:
    from mrpo_rllib import worst_case as wc
    from mrpo_rllib.evaluate import checkpoint_task

    if args.video and args.compare_samplers:
        raise ValueError("--video films one search's worst point; it does not go with --compare-samplers")
    if args.video and not _require_video("worst-case"):
        return 2
    try:
        task = checkpoint_task(args.checkpoint)
    except FileNotFoundError as e:
        print(f"mrpo worst-case: error: {e}", file=sys.stderr)
        return 2
    if args.task and args.task != task:
        raise ValueError(f"checkpoint {args.checkpoint!r} is of task {task}, not {args.task}")
    which, sampler = args.range or wc.DEFAULT_RANGE, args.sampler or wc.DEFAULT_SAMPLER
    seed = 0 if args.seed is None else args.seed
    out = args.out or os.path.join(DEFAULT_OUT, "worst_case", f"{task}_{which}_{sampler}_seed{seed}")
    if args.compare_samplers:
        from mrpo_rllib.worst_case_study import compare_samplers

        seeds = tuple(args.compare_samplers)
        # the search's budget and episodes, not the study's own defaults
        budget, episodes = args.budget or wc.DEFAULT_BUDGET, args.episodes or wc.DEFAULT_EPISODES
        compare_samplers(args.checkpoint, which, budget, episodes, seeds, out=out)
        print(f"wrote {out}/ (samplers.csv, samplers_summary.csv, samplers.png)")
        return 0
    result = wc.search_worst_case(
        args.checkpoint,
        which=which,
        sampler=sampler,
        **_given(
            budget=args.budget,
            episodes=args.episodes,
            seed=args.seed,
            reeval_episodes=args.reeval_episodes,
            grid_points=args.grid_points,
        ),
        out=out,
    )
    print(wc.describe(result))
    print(f"wrote {out}/ (worst_case.json, trials.csv, best_so_far.png)")
    if args.video:
        from mrpo_rllib.video import film_worst_case

        print(f"wrote {film_worst_case(args.checkpoint, result, args.video)} (worst point | nominal point)")
    return 0


def _cmd_report(args) -> int:
    from mrpo_rllib.report import report

    if args.study == "learner":
        from mrpo_rllib.report.learner import learner_study

        learner_study(args.runs_dir, args.out)
        return 0

    from mrpo_rllib.report.stats import Window

    window = None
    if args.window_steps is not None:
        window = Window(env_steps=args.window_steps)
    elif args.window_fraction is not None:
        window = Window(fraction=args.window_fraction)
    elif args.last is not None:
        window = Window(iterations=args.last)
    report(
        args.runs_dir,
        args.out,
        evaluate=not args.no_eval,
        videos=args.videos,
        argv=args.argv,
        **_given(
            eval_points=args.eval_points,
            eval_episodes=args.eval_episodes,
            last=window,
            worst_case_budget=args.worst_case_budget,
            worst_case_episodes=args.worst_case_episodes,
        ),
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {v}")
    return v


def _add_set(p) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the experiment schema, e.g. training.lr=0.001 or "
        "training.episodes_per_iteration=50 (repeatable; value read as YAML; see docs/cli.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    from mrpo_rllib import evaluate as ev
    from mrpo_rllib import worst_case as wc
    from mrpo_rllib.envs.tasks import DEFAULT_RANGE, RANGES
    from mrpo_rllib.report import WORST_CASE_EPISODES
    from mrpo_rllib.report.stats import LAST_ITERATIONS

    parser = argparse.ArgumentParser(prog="mrpo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list the tasks and their parameter ranges")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("train", help="one training run: a one-trial sweep (embedded Ray unless RAY_ADDRESS)")
    p.add_argument("--task", default=None, help="task name, e.g. Hopper (default: MRPOConfig's)")
    p.add_argument("--algo", default=None, choices=SELECTIONS, help="selection rule (default: MRPOConfig's)")
    p.add_argument("--seed", type=int, default=0)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--iterations",
        type=_positive_int,
        default=TRAIN_ITERATIONS,
        help=f"budget (default {TRAIN_ITERATIONS})",
    )
    budget.add_argument("--env-steps", type=_positive_int, default=None, help="budget in env steps instead")
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=None,
        help="checkpoint period, and at the end (default: the schema's checkpoint_every)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="storage: the run goes to OUT/train-<time>/<trial>/")
    p.add_argument("--name", default=None, help="experiment name instead of train-<time>")
    p.add_argument("--resume", action="store_true", help="continue the newest earlier run of this trial")
    p.add_argument("--verbose", action="store_true", help="Ray's and Tune's own output too")
    _add_set(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("tune", help="run a sweep from tune_configs/ (cluster at RAY_ADDRESS, else local)")
    p.add_argument("file", help="experiment file, e.g. tune_configs/smoke.yaml")
    p.add_argument("--storage", default=None, help="storage path or URI (default results/tune)")
    p.add_argument("--dry-run", action="store_true", help="print the trial table without running")
    p.add_argument("--resume", action="store_true", help="require an existing sweep to resume")
    p.add_argument("--verbose", action="store_true", help="Tune's per-trial configuration and results too")
    p.add_argument(
        "--logger",
        action="append",
        default=[],
        choices=("mlflow", "wandb"),
        help="also track each trial in MLflow (<storage>/mlruns) or W&B (offline); repeatable",
    )
    _add_set(p)
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("evaluate", help="roll a checkpoint out on a grid over the train or test range")
    p.add_argument("checkpoint", help="a checkpoint_000NNN dir, or a run dir (its last checkpoint)")
    p.add_argument("--grid", choices=RANGES, default=None, help=f"which range (default {DEFAULT_RANGE})")
    p.add_argument(
        "--points",
        type=_positive_int,
        default=None,
        help=f"grid points per parameter axis (default {ev.DEFAULT_POINTS})",
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help=f"episodes per grid point (default {ev.DEFAULT_EPISODES})",
    )
    p.add_argument("--seed", type=int, default=None, help="evaluation seed (default 0)")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: deterministic)")
    p.add_argument("--out", default=None, help="also write the table to this CSV file")
    p.add_argument(
        "--video",
        default=None,
        metavar="DIR",
        help="also film episodes into DIR (MP4; needs the [video] extra)",
    )
    p.add_argument(
        "--video-points",
        choices=("worst", "nominal", "all"),
        default="worst",
        help="with --video: the grid point of lowest mean return (default), the nominal point, or every point",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("worst-case", help="search a checkpoint's worst environment (Ray Tune + Optuna)")
    p.add_argument("checkpoint", help="a checkpoint_000NNN dir, or a run dir (its last checkpoint)")
    p.add_argument(
        "--range",
        choices=RANGES,
        default=None,
        help=f"the box searched (default {DEFAULT_RANGE})",
    )
    p.add_argument(
        "--budget",
        type=_positive_int,
        default=None,
        help=f"points evaluated (default {wc.DEFAULT_BUDGET})",
    )
    p.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help=f"episodes per point (default {wc.DEFAULT_EPISODES})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="search and evaluation seed (default 0)",
    )
    p.add_argument(
        "--sampler",
        choices=wc.SAMPLERS,
        default=None,
        help=f"optimiser (default {wc.DEFAULT_SAMPLER})",
    )
    p.add_argument(
        "--reeval-episodes", type=_positive_int, default=None, help="for the worst point (default 4x)"
    )
    p.add_argument(
        "--grid-points",
        type=int,
        default=None,
        help=f"comparison grid per axis, <= 2 params (0: none) (default {wc.DEFAULT_GRID_POINTS})",
    )
    p.add_argument("--task", default=None, help="refuse a checkpoint of another task")
    p.add_argument(
        "--compare-samplers",
        type=int,
        nargs="+",
        metavar="SEED",
        default=None,
        help="run every sampler with these search seeds and compare them (docs/worst_case.md)",
    )
    p.add_argument("--out", default=None, help="output dir (default results/worst_case/<task>_<range>_...)")
    p.add_argument(
        "--video",
        default=None,
        metavar="DIR",
        help="also film the worst point found and the nominal one, side by side, into DIR (MP4)",
    )
    p.set_defaults(func=_cmd_worst_case)

    p = sub.add_parser("report", help="Table 2, Figures 1-3 and a monotonicity audit from a tree of runs")
    p.add_argument("runs_dir", help="directory searched recursively for run directories")
    p.add_argument("--out", required=True, help="output directory (report.md, tables, figures)")
    p.add_argument("--eval-points", type=_positive_int, default=None, help="Figure 2 grid points per axis")
    p.add_argument(
        "--eval-episodes", type=_positive_int, default=None, help="Figure 2 episodes per grid point"
    )
    p.add_argument("--no-eval", action="store_true", help="skip the checkpoint evaluation (Figure 2)")
    window = p.add_mutually_exclusive_group()
    window.add_argument(
        "--last",
        type=_positive_int,
        default=None,
        help=f"Table 2's window: the last N iterations of each run (default {LAST_ITERATIONS})",
    )
    window.add_argument(
        "--window-steps",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Table 2's window: the iterations ending in the last N env steps of each run",
    )
    window.add_argument(
        "--window-fraction",
        type=_fraction,
        default=None,
        metavar="F",
        help="Table 2's window: the iterations ending in the last fraction F (0 < F <= 1) of each run's env steps",
    )
    p.add_argument(
        "--videos",
        action="store_true",
        help="film a worst-case clip per algorithm group into OUT/videos and link them (needs the evaluation)",
    )
    p.add_argument(
        "--worst-case-budget",
        type=int,
        default=None,
        help="also search each run's worst test environment with N points (default 0: no search)",
    )
    p.add_argument(
        "--worst-case-episodes",
        type=_positive_int,
        default=None,
        help=f"episodes per searched point (default {WORST_CASE_EPISODES})",
    )
    p.add_argument(
        "--study", choices=("learner",), default=None, help="a study's figures instead (docs/learner.md)"
    )
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so that an embedded Ray is shut down (no orphans).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in ("ray", "ray.rllib"):  # RLlib's config notices; Ray's own output: see ray_session
        logging.getLogger(name).setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv if argv is None else ["mrpo", *argv]  # what command.txt records
    try:
        return args.func(args)
    except ValueError as e:
        print(f"mrpo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
