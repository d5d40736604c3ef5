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
    p.add_argument("--minibatch-size", type=int, default=256)
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
