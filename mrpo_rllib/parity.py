"""Parity with a trusted PPO: our PPO-DR against Stable-Baselines3's PPO, same settings.

``python -m mrpo_rllib.parity`` (``make parity``) runs the study and writes its report:

- **ours**: the experiment files of ``tune_configs/parity/`` (PPO-DR, MRPOConfig's PPO,
  M = 8 complete episodes per iteration), through ``mrpo tune``;
- **sb3**: stable-baselines3's ``PPO`` with the same hyperparameters — 64-64 tanh policy
  and value networks, state-independent log-std starting at std 1, lr 3e-4, 10 epochs ×
  32 minibatches, clip 0.2, γ 0.99, λ 0.95, value coefficient 0.5, no value clipping,
  gradient norm 0.5, entropy 0 — on ``DummyVecEnv`` × 16 × 512 steps = 8,192 steps per
  update, observations normalised by ``VecNormalize`` (clip ±10, rewards not scaled),
  SB3's own initialisation and Adam ε (orthogonal, 1e-5: SB3 as people use it).

**Same data per update.** SB3 updates on 8,192 steps; our iteration is M complete
episodes. M = 8 makes our iteration 8,000 steps once episodes reach their 1000-step limit,
where the runs spend most of their env steps; before that ours updates on fewer steps
(8 short episodes) than SB3 — the paper's unit is complete episodes, so that is ours.

**Measures, the same on both sides** (fixed before the runs, docs/learner.md#parity):

- *training return*: the mean return of the training episodes that ended in the last
  100k env steps of the run (episode-weighted), and the reward per env step there;
- *hops*: reward per env step ≥ 1.5 in that window (Hopper, Walker2d: standing on the
  alive bonus earns ~1 per step);
- *deterministic evaluation*: the final policy, mean actions, 10 episodes on the training
  range, the same 10 environments on both sides (reset seeds ``EVAL_SEED + j``), the
  observation statistics frozen.

Outputs under the storage directory: ``ours/<experiment>/<run>/`` (Tune's) and
``sb3/<task>__seed<s>/`` (``progress.csv`` per update, ``eval.json``, the model); the
report: ``runs.csv`` (every update of every run, both sides), ``summary.csv`` (one row per
run), ``parity.md`` and ``parity_<task>.png`` (mean ± SE over seeds).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from mrpo_rllib import runs
from mrpo_rllib.envs import get_task

CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tune_configs", "parity"
)
WINDOW_STEPS = 100_000
HOP_REWARD_PER_STEP = 1.5
HOPPING_TASKS = ("Hopper", "Walker2d")
EVAL_EPISODES = 10
EVAL_SEED = 1_000_000
SB3_ENVS, SB3_STEPS = 16, 512
# SB3's PPO with our PPO's settings (MRPOConfig's defaults; docs/decisions.md)
SB3_SETTINGS = dict(
    learning_rate=3e-4,
    n_steps=SB3_STEPS,
    batch_size=SB3_ENVS * SB3_STEPS // 32,
    n_epochs=10,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    clip_range_vf=None,
    ent_coef=0.0,
    vf_coef=0.5,
    max_grad_norm=0.5,
)
RUN_COLUMNS = [
    "side",
    "task",
    "seed",
    "iteration",
    "env_steps",
    "episodes",
    "return_mean",
    "length_mean",
    "time_s",
]


# -- deterministic evaluation, one protocol for both sides ------------------------------------
def evaluate_deterministic(act, task: str, episodes: int = EVAL_EPISODES, randomize=None) -> list[float]:
    """Returns of ``episodes`` episodes on the training range, ``act(obs) -> env action``;
    episode j resets with seed ``EVAL_SEED + j`` (so its parameters are the same for everyone)."""
    import gymnasium as gym

    from mrpo_rllib.envs import register_envs

    register_envs()
    env = gym.make(get_task(task).env_id, randomize=randomize)
    returns = []
    try:
        for j in range(episodes):
            obs, _ = env.reset(seed=EVAL_SEED + j)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns


def evaluate_ours(run_dir: str) -> dict:
    """Deterministic evaluation of a run's last checkpoint (``eval.json`` in the run dir)."""
    from mrpo_rllib.algorithms.acting import BatchActor
    from mrpo_rllib.evaluate import load_policy

    ckpt = runs.checkpoints(run_dir)[-1]
    policy = load_policy(ckpt)
    env = policy.make_env()
    space, action_space = env.observation_space, env.action_space
    env.close()
    if not BatchActor.applies(policy.module, policy.env_to_module, policy.module_to_env, space, action_space):
        raise RuntimeError(f"{ckpt}: the batched actor does not apply to this policy")
    actor = BatchActor(policy.module, policy.env_to_module, policy.module_to_env, space, action_space)

    def act(obs):
        return actor.act(actor.normalize(np.asarray(obs)[None]), False)[1][0]

    returns = evaluate_deterministic(act, policy.task, randomize=policy.randomize)
    out = {"checkpoint": ckpt, "returns": returns, "mean": float(np.mean(returns))}
    with open(os.path.join(run_dir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


# -- Stable-Baselines3's side -----------------------------------------------------------------
def sb3_run_dir(storage: str, task: str, seed: int) -> str:
    return os.path.join(storage, "sb3", f"{get_task(task).name}__seed{seed}")


def train_sb3(task: str, seed: int, env_steps: int, storage: str) -> str:
    """Train SB3's PPO (``SB3_SETTINGS``) for ``env_steps`` and evaluate it; the run dir.
    A run whose ``eval.json`` exists is complete and skipped; an incomplete one restarts."""
    try:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    except ImportError as e:
        raise SystemExit(f"the parity study needs stable-baselines3 (make install-bench): {e}") from None
    import gymnasium as gym

    from mrpo_rllib.envs import register_envs

    task = get_task(task).name
    out = sb3_run_dir(storage, task, seed)
    if os.path.isfile(os.path.join(out, "eval.json")):
        return out
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)  # one core per run, as a one-CPU Tune trial
    register_envs()
    env_id = get_task(task).env_id
    venv = VecNormalize(
        DummyVecEnv([lambda: Monitor(gym.make(env_id)) for _ in range(SB3_ENVS)]),
        norm_obs=True,
        norm_reward=False,
        clip_obs=10.0,
        gamma=SB3_SETTINGS["gamma"],
    )
    policy_kwargs = dict(
        net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh, log_std_init=0.0
    )
    model = PPO(
        "MlpPolicy", venv, seed=seed, policy_kwargs=policy_kwargs, device="cpu", verbose=0, **SB3_SETTINGS
    )
    rows: list[dict] = []
    start = time.time()

    class _Log(BaseCallback):
        def _on_rollout_start(self) -> None:
            self._episodes = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self._episodes.append((info["episode"]["r"], info["episode"]["l"]))
            return True

        def _on_rollout_end(self) -> None:
            r = np.array([e[0] for e in self._episodes], dtype=float)
            n = np.array([e[1] for e in self._episodes], dtype=float)
            rows.append(
                dict(
                    iteration=len(rows) + 1,
                    env_steps=int(self.num_timesteps),
                    episodes=len(r),
                    return_mean=float(r.mean()) if len(r) else np.nan,
                    length_mean=float(n.mean()) if len(n) else np.nan,
                    time_s=time.time() - start,
                )
            )
            pd.DataFrame(rows).to_csv(os.path.join(out, runs.PROGRESS_FILE), index=False)

    model.learn(total_timesteps=env_steps, callback=_Log())
    model.save(os.path.join(out, "model.zip"))
    venv.save(os.path.join(out, "vecnormalize.pkl"))
    venv.training = False

    def act(obs):
        return model.predict(venv.normalize_obs(np.asarray(obs)[None]), deterministic=True)[0][0]

    returns = evaluate_deterministic(act, task)
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(
            {"returns": returns, "mean": float(np.mean(returns)), "wall_s": time.time() - start}, f, indent=1
        )
    return out


# -- the study: runs, then the tidy table and the report --------------------------------------
def study(config_dir: str = CONFIG_DIR) -> list[dict]:
    """The parity experiments (``tune_configs/parity/*.yaml``): path, task, seeds, budget,
    in the order they run (Hopper first: its seeds split between standing and hopping)."""
    from mrpo_rllib.experiments import load_experiment

    order = {"Hopper": 0, "Walker2d": 1, "HalfCheetah": 2}
    out = []
    for path in glob.glob(os.path.join(config_dir, "*.yaml")):
        exp = load_experiment(path)
        out.append(
            {"path": path, "task": exp.task, "seeds": list(exp.seeds), "env_steps": exp.budget.env_steps}
        )
    return sorted(out, key=lambda e: (order.get(e["task"], 9), e["task"]))


def run_study(storage: str, only: str | None = None, config_dir: str = CONFIG_DIR) -> None:
    """Both sides, side by side (one process each, one core each), task by task in the
    order of ``study()``, seed-major, resumable: finished runs are skipped."""
    procs = []
    if only in (None, "ours"):
        cmds = [
            [
                sys.executable,
                "-m",
                "mrpo_rllib.cli",
                "tune",
                e["path"],
                "--storage",
                os.path.join(storage, "ours"),
            ]
            for e in study(config_dir)
        ]
        script = " && ".join(shlex.join(c) for c in cmds)
        # Ray lowers its workers to nice 15: the same CPU priority as SB3's process instead
        env = {**os.environ, "RAY_worker_niceness": "0"}
        procs.append(subprocess.Popen(["bash", "-c", script], env=env))
    if only in (None, "sb3"):
        sb3 = [
            [
                sys.executable,
                "-m",
                "mrpo_rllib.parity",
                "sb3",
                e["task"],
                str(s),
                str(e["env_steps"]),
                storage,
            ]
            for e in study(config_dir)
            for s in e["seeds"]
        ]
        procs.append(subprocess.Popen(["bash", "-c", " && ".join(shlex.join(c) for c in sb3)]))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"parity runs failed: exit codes {codes}")


def collect(storage: str, config_dir: str = CONFIG_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, evals)``: every update of every run of both sides in one tidy table, and
    each finished run's deterministic evaluation (ours evaluated here, once, if missing)."""
    frames, evals = [], []
    budget = budgets(config_dir)
    for run_dir in runs.find_run_dirs(os.path.join(storage, "ours")):
        name = runs.parse_run_name(run_dir)
        df = runs.read_progress(run_dir)
        if name is None or df is None:
            continue
        df = df.drop_duplicates("training_iteration", keep="last")
        params = runs.read_params(run_dir)
        m = params.get("episodes_per_iteration") or params.get("variant", {}).get("training", {}).get(
            "episodes_per_iteration"
        )
        frames.append(
            pd.DataFrame(
                dict(
                    side="ours",
                    task=name.task,
                    seed=name.seed,
                    iteration=df["training_iteration"],
                    env_steps=df["num_env_steps_sampled_lifetime"],
                    episodes=m,
                    return_mean=df["mrpo/return_mean"],
                    length_mean=df["env_runners/episode_len_mean"],
                    time_s=df["time_total_s"],
                )
            )
        )
        if df["num_env_steps_sampled_lifetime"].max() >= _budget(budget, name.task) and runs.checkpoints(
            run_dir
        ):
            path = os.path.join(run_dir, "eval.json")
            ev = json.load(open(path)) if os.path.isfile(path) else evaluate_ours(run_dir)
            evals.append(dict(side="ours", task=name.task, seed=name.seed, eval_mean=ev["mean"]))
    for run_dir in sorted(glob.glob(os.path.join(storage, "sb3", "*__seed*"))):
        task, seed = os.path.basename(run_dir).split("__seed")
        df = runs.read_progress(run_dir)  # the SB3 side's, written like ours
        if df is None:
            continue
        frames.append(df.assign(side="sb3", task=task, seed=int(seed)))
        path = os.path.join(run_dir, "eval.json")
        if os.path.isfile(path):
            evals.append(dict(side="sb3", task=task, seed=int(seed), eval_mean=json.load(open(path))["mean"]))
    table = pd.concat(frames, ignore_index=True)[RUN_COLUMNS] if frames else pd.DataFrame(columns=RUN_COLUMNS)
    return table.sort_values(["task", "side", "seed", "iteration"]).reset_index(drop=True), pd.DataFrame(
        evals
    )


def budgets(config_dir: str = CONFIG_DIR) -> dict[str, int]:
    """Each task's budget in env steps, from the study's experiment files (read once)."""
    return {e["task"]: e["env_steps"] for e in study(config_dir)}


def _budget(budget: dict[str, int], task: str) -> int:
    if task not in budget:
        raise ValueError(f"task {task!r} is not in the parity study ({list(budget)})")
    return budget[task]


def summarize(table: pd.DataFrame, evals: pd.DataFrame, config_dir: str = CONFIG_DIR) -> pd.DataFrame:
    """One row per run: the window's training return and reward per step, hops, the
    deterministic evaluation; ``complete`` when the run reached its budget."""
    budget = budgets(config_dir)
    rows = []
    for (task, side, seed), df in table.groupby(["task", "side", "seed"]):
        end = df["env_steps"].max()
        w = df[(df["env_steps"] > end - WINDOW_STEPS) & (df["episodes"] > 0)].dropna(subset=["return_mean"])
        n = w["episodes"].astype(float)
        ret = float((w["return_mean"] * n).sum() / n.sum())
        per_step = float((w["return_mean"] * n).sum() / (w["length_mean"] * n).sum())
        ev = (
            evals[(evals.task == task) & (evals.side == side) & (evals.seed == seed)] if len(evals) else evals
        )
        rows.append(
            dict(
                task=task,
                side=side,
                seed=seed,
                env_steps=int(end),
                complete=bool(end >= _budget(budget, task)),
                window_return=ret,
                window_reward_per_step=per_step,
                hops=bool(per_step >= HOP_REWARD_PER_STEP) if task in HOPPING_TASKS else None,
                eval_mean=float(ev["eval_mean"].iloc[0]) if len(ev) else np.nan,
                wall_min=float(df["time_s"].max()) / 60,
            )
        )
    return pd.DataFrame(rows)


def curves(
    table: pd.DataFrame, task: str, side: str, points: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean and SE over seeds of the training return, each seed's curve interpolated
    onto ``points`` env-step positions up to the shortest run's end."""
    runs_ = [df for _, df in table[(table.task == task) & (table.side == side)].groupby("seed")]
    runs_ = [df.dropna(subset=["return_mean"]) for df in runs_]
    if not runs_:
        return np.array([]), np.array([]), np.array([]), 0
    end = min(df["env_steps"].max() for df in runs_)
    x = np.linspace(end / points, end, points)
    ys = np.array([np.interp(x, df["env_steps"], df["return_mean"]) for df in runs_])
    se = ys.std(axis=0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1 else np.zeros(points)
    return x, ys.mean(axis=0), se, len(ys)


def report(storage: str, out: str, config_dir: str = CONFIG_DIR) -> pd.DataFrame:
    """Write runs.csv, summary.csv, parity.md and one figure per task into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    table, evals = collect(storage, config_dir)
    table.to_csv(os.path.join(out, "runs.csv"), index=False, float_format="%.6g")
    summary = summarize(table, evals, config_dir) if len(table) else pd.DataFrame()
    summary.to_csv(os.path.join(out, "summary.csv"), index=False, float_format="%.6g")
    lines = [
        "# Parity: our PPO-DR vs Stable-Baselines3's PPO",
        "",
        f"Generated by `python -m mrpo_rllib.parity report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Window: the last {WINDOW_STEPS:,} env steps of each run. Deterministic evaluation: "
        f"{EVAL_EPISODES} episodes, training range, the same environments on both sides.",
        "",
        "| task | side | seeds done | training return (window), mean ± SE | per seed | "
        "reward per step | hops | deterministic eval, mean ± SE | wall min per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, side), df in summary.groupby(["task", "side"]) if len(summary) else []:
        done = df[df.complete]
        if done.empty:
            continue
        r = done["window_return"]
        se = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else np.nan
        e = done["eval_mean"]
        ese = e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else np.nan
        hops = f"{int(done['hops'].sum())}/{len(done)}" if task in HOPPING_TASKS else "n/a"

        def pm(mean, err):
            return f"{mean:.0f}" + ("" if np.isnan(err) else f" ± {err:.0f}")

        lines.append(
            f"| {task} | {side} | {len(done)} | {pm(r.mean(), se)} | "
            f"{', '.join(f'{v:.0f}' for v in r)} | {', '.join(f'{v:.2f}' for v in done['window_reward_per_step'])} | "
            f"{hops} | {pm(e.mean(), ese)} | {done['wall_min'].mean():.1f} |"
        )
    with open(os.path.join(out, "parity.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for task in sorted(table["task"].unique()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for side, colour in (("ours", "C0"), ("sb3", "C1")):
            x, mean, se, n = curves(table, task, side)
            if n:
                label = f"{'ours (PPO-DR, M = 8)' if side == 'ours' else 'SB3 PPO'}, {n} seeds"
                ax.plot(x, mean, color=colour, label=label)
                ax.fill_between(x, mean - se, mean + se, color=colour, alpha=0.25)
        ax.set(xlabel="env steps", ylabel="training return (mean ± SE over seeds)", title=f"{task}: parity")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"parity_{task}.png"), dpi=110)
        plt.close(fig)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mrpo_rllib.parity", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="both sides of the study, resumable")
    r.add_argument("--storage", default="results/parity")
    r.add_argument("--only", choices=["ours", "sb3"])
    r.add_argument("--configs", default=CONFIG_DIR, help="the study's experiment files")
    s = sub.add_parser("sb3", help="one Stable-Baselines3 run")
    s.add_argument("task")
    s.add_argument("seed", type=int)
    s.add_argument("env_steps", type=int)
    s.add_argument("storage")
    rep = sub.add_parser("report", help="tidy table, summary, figures")
    rep.add_argument("storage")
    rep.add_argument("--out", default="docs/parity")
    rep.add_argument("--configs", default=CONFIG_DIR, help="the study's experiment files")
    args = p.parse_args(argv)
    if args.command == "run":
        run_study(args.storage, args.only, args.configs)
    elif args.command == "sb3":
        if args.env_steps < SB3_ENVS * SB3_STEPS:
            p.error(f"env_steps must be >= one update ({SB3_ENVS * SB3_STEPS}), got {args.env_steps}")
        print(train_sb3(args.task, args.seed, args.env_steps, args.storage))
    else:
        print(report(args.storage, args.out, args.configs).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
