"""The ``mrpo`` command line: thin wrappers over the package's functions."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from mrpo_rllib import runs


def _params_arg(text: str | None):
    """``--params test`` / ``nominal`` / a JSON dict such as ``'{"density": 900}'``."""
    if text is None or text in ("train", "test", "nominal"):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"--params must be train, test, nominal or a JSON object, got {text!r} ({e})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--params JSON must be an object, got {text!r}")
    return value


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


def _cmd_train(args) -> int:
    from mrpo_rllib.train import TrainSettings, train

    s = TrainSettings(
        task=args.task,
        algo=args.algo,
        iterations=args.iterations,
        episodes_per_iteration=args.episodes_per_iteration,
        seed=args.seed,
        out=args.out,
        kappa_start=args.kappa_start,
        kappa_end=args.kappa_end,
        kappa_ramp_iters=args.kappa_ramp_iters,
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_minibatches=args.num_minibatches,
        minibatch_size=args.minibatch_size,
        num_epochs=args.num_epochs,
        checkpoint_every=args.checkpoint_every,
        params=args.params,
    )
    train(s, argv=sys.argv)
    return 0


def _cmd_tune(args) -> int:
    from mrpo_rllib.sweep import run_sweep

    results = run_sweep(args.file, storage=args.storage, dry_run=args.dry_run, resume=args.resume)
    if results is None:
        return 0
    return 1 if any(r.error is not None for r in results) else 0


def _cmd_bench(args) -> int:
    from mrpo_rllib.bench import MissingBenchDependency, bench

    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    overrides = {} if args.envs_per_env_runner is None else {"envs_per_env_runner": args.envs_per_env_runner}
    try:
        bench(mode, out=args.out, **overrides)
    except MissingBenchDependency as e:
        print(f"mrpo bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_evaluate(args) -> int:
    from mrpo_rllib.evaluate import evaluate

    try:
        df = evaluate(
            args.checkpoint,
            grid=args.grid,
            points=args.points,
            episodes=args.episodes,
            seed=args.seed,
            deterministic=not args.stochastic,
        )
    except FileNotFoundError as e:
        print(f"mrpo evaluate: error: {e}", file=sys.stderr)
        return 2
    print(f"{df.attrs['task']}, {args.grid} grid, checkpoint {df.attrs['checkpoint']}")
    print(df.to_string(index=False))
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


def _cmd_report(args) -> int:
    from mrpo_rllib.report import report

    report(
        args.runs_dir,
        args.out,
        eval_points=args.eval_points,
        eval_episodes=args.eval_episodes,
        evaluate=not args.no_eval,
        last=args.last,
        argv=sys.argv,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrpo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list the tasks and their parameter ranges")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("train", help="one training run (embedded Ray unless RAY_ADDRESS is set)")
    p.add_argument("--task", default="CartPole", help="task name, e.g. Hopper (default CartPole)")
    p.add_argument("--algo", default="mrpo", choices=runs.ALGOS, help="selection rule (default mrpo)")
    p.add_argument("--iterations", type=int, default=20, help="training iterations (default 20)")
    p.add_argument(
        "--episodes-per-iteration", type=int, default=50, help="M, episodes per iteration (default 50)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results", help="parent of the run directory (default results)")
    p.add_argument("--kappa-start", type=float, default=0.25)
    p.add_argument("--kappa-end", type=float, default=2.0)
    p.add_argument("--kappa-ramp-iters", type=int, default=100)
    p.add_argument("--num-env-runners", type=int, default=2, help="sampling processes (default 2)")
    p.add_argument(
        "--num-envs-per-env-runner",
        type=int,
        default=None,
        help="envs each runner steps as one batch (default: MRPOConfig's, 16)",
    )
    p.add_argument(
        "--num-minibatches", type=int, default=None, help="gradient steps per epoch (default: MRPOConfig's)"
    )
    p.add_argument("--minibatch-size", type=int, default=None, help="rows per minibatch instead")
    p.add_argument("--num-epochs", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N iterations")
    p.add_argument(
        "--params",
        type=_params_arg,
        default=None,
        help="parameter distribution: train (default), test, nominal or JSON like '{\"pole_mass\": 0.5}'",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("tune", help="run a sweep from tune_configs/ (cluster at RAY_ADDRESS, else local)")
    p.add_argument("file", help="experiment file, e.g. tune_configs/smoke.yaml")
    p.add_argument("--storage", default=None, help="storage path or URI (default results/tune)")
    p.add_argument("--dry-run", action="store_true", help="print the trial table without running")
    p.add_argument("--resume", action="store_true", help="require an existing sweep to resume")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("bench", help="speed figures, each a ratio against a reference run alongside")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer steps and iterations (< 15 min on 2 cores)")
    size.add_argument("--tiny", action="store_true", help="seconds-scale smoke run (SB3 optional)")
    p.add_argument("--out", default="bench.json", help="JSON report (default bench.json)")
    p.add_argument(
        "--envs-per-env-runner", type=int, default=None, help="ours: envs per env runner (default 16)"
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("evaluate", help="roll a checkpoint out on a grid over the train or test range")
    p.add_argument("checkpoint", help="checkpoint dir (RUN/checkpoint, checkpoint_000NNN) or a run dir")
    p.add_argument("--grid", choices=("train", "test"), default="test", help="which range (default test)")
    p.add_argument("--points", type=int, default=5, help="grid points per parameter axis (default 5)")
    p.add_argument("--episodes", type=int, default=3, help="episodes per grid point (default 3)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: deterministic)")
    p.add_argument("--out", default=None, help="also write the table to this CSV file")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("report", help="Table 2, Figures 1-3 and a monotonicity audit from a tree of runs")
    p.add_argument("runs_dir", help="directory searched recursively for run / trial directories")
    p.add_argument("--out", required=True, help="output directory (report.md, tables, figures)")
    p.add_argument("--eval-points", type=int, default=None, help="Figure 2 grid points per axis")
    p.add_argument("--eval-episodes", type=int, default=None, help="Figure 2 episodes per grid point")
    p.add_argument("--no-eval", action="store_true", help="skip the checkpoint evaluation (Figure 2)")
    p.add_argument("--last", type=int, default=50, help="Table 2: last N iterations per seed")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so that an embedded Ray is shut down (no orphans).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"mrpo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
