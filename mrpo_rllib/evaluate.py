"""``mrpo evaluate``: roll a trained policy out on a fixed grid of environment parameters.

No training and no RLlib Algorithm are built. From the checkpoint we restore exactly
what an EnvRunner uses to act:

- the RLModule (``learner_group/learner/rl_module/default_policy``: the learner's copy,
  i.e. the latest weights);
- the env-to-module connector pipeline (``env_runner/env_to_module_connector``), which
  holds the **MeanStdFilter observation normalisation** with its running mean/std at
  checkpoint time; its statistics are frozen (``update_stats=False``) for evaluation;
- the module-to-env pipeline (``env_runner/module_to_env_connector``), which turns the
  module output into actions (and unsquashes continuous actions to the env's bounds).

Actions are deterministic by default: RLlib's ``GetActions`` connector with
``explore=False`` takes ``action_dist.to_deterministic()`` of the module's inference
distribution (argmax of the logits for CartPole, the Gaussian mean for the robots).
``stochastic=True`` samples from the exploration distribution instead.

The grid (:meth:`~mrpo_rllib.envs.tasks.TaskSpec.grid`): ``points`` values per axis, evenly
spaced over the training or testing range of the parameters the run randomized (the
checkpoint's ``randomize``, or the task's Table 1); ``points=1``: the range's midpoint; an
axis whose range is one value collapses to that value. CartPole's grid is over
(pole_length, pole_mass) with force_mag fixed at its nominal 10 N, which is also its whole
testing range. Each row reports the parameters the environments ran with
(``info["env_params"]``).

Seeding: episode ``j`` of grid point ``g`` resets its environment with a seed derived from
``(seed, g, j)`` (``numpy.random.SeedSequence``), and the point's E episodes run as one
batch through the policy. So results depend on the checkpoint, grid, seed and E, not on
the number of CPUs or how points are split into Ray tasks; every algorithm evaluated with
the same seed sees the same initial states (common random numbers).

Parallelism: one Ray task per chunk of grid points (embedded Ray unless ``RAY_ADDRESS`` is
set; an already initialised Ray is used as is). The policy is shipped to the tasks
through the object store, so a cluster needs no shared file system for evaluation.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mrpo_rllib import runs
from mrpo_rllib.envs import TaskSpec, get_task
from mrpo_rllib.envs.tasks import DEFAULT_RANGE, RANGES
from mrpo_rllib.ray_session import ray_session

# The evaluation grid's defaults (mrpo evaluate, mrpo report, an experiment's `evaluation:`)
DEFAULT_POINTS = 5  # grid points per parameter axis
DEFAULT_EPISODES = 3  # episodes per grid point
RESULT_COLUMNS = ("return_mean", "return_std", "return_min", "length_mean", "episodes")

_MODULE_PATH = os.path.join("learner_group", "learner", "rl_module", "default_policy")
_E2M_PATH = os.path.join("env_runner", "env_to_module_connector")
_M2E_PATH = os.path.join("env_runner", "module_to_env_connector")


def grid_points(
    task: str | TaskSpec, grid: str = DEFAULT_RANGE, points: int = DEFAULT_POINTS
) -> pd.DataFrame:
    """The evaluation grid of ``task`` as a DataFrame, one row per point, one column per
    parameter (see :meth:`~mrpo_rllib.envs.tasks.TaskSpec.grid`)."""
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    return pd.DataFrame(spec.grid(grid, points), columns=list(spec.param_names))


def checkpoint_env_config(checkpoint: str) -> dict:
    """``env_config`` of the algorithm config stored in a checkpoint (task, randomize)."""
    ckpt = runs.resolve_checkpoint(checkpoint)
    with open(os.path.join(ckpt, "class_and_ctor_args.pkl"), "rb") as f:
        ctor = pickle.load(f)
    args = ctor["ctor_args_and_kwargs"][0]
    config = args[0] if args else ctor["ctor_args_and_kwargs"][1].get("config")
    env_config = config.get("env_config") if isinstance(config, dict) else getattr(config, "env_config", None)
    if not env_config or "task" not in env_config:
        raise ValueError(f"checkpoint {ckpt!r}: its config has no env_config['task']; not an mrpo_rllib run")
    return dict(env_config)


def checkpoint_spec(checkpoint: str) -> TaskSpec:
    """The task a checkpoint was trained on, as its run randomized it (the parameters and
    ranges of its ``randomize``, or the table's)."""
    env_config = checkpoint_env_config(checkpoint)
    task = get_task(env_config["task"])
    return task.randomizing(env_config["randomize"]) if env_config.get("randomize") else task


def checkpoint_task(checkpoint: str) -> str:
    """The name of the task a checkpoint was trained on."""
    return checkpoint_spec(checkpoint).name


@dataclass
class Policy:
    """What acting needs: the RLModule and the two connector pipelines of an EnvRunner, and
    the task's parameter space as the run randomized it."""

    task: str
    module: Any
    env_to_module: Any
    module_to_env: Any
    randomize: dict | None = None

    @property
    def spec(self) -> TaskSpec:
        task = get_task(self.task)
        return task.randomizing(self.randomize) if self.randomize else task

    def make_env(self):
        """An environment of the policy's task with the run's randomized parameters."""
        import gymnasium as gym

        from mrpo_rllib.envs import register_envs

        register_envs()
        return gym.make(get_task(self.task).env_id, randomize=self.randomize)


def load_policy(checkpoint: str | os.PathLike) -> Policy:
    """Restore module and connectors from a checkpoint (see module docstring)."""
    from ray.rllib.core.rl_module.rl_module import RLModule
    from ray.rllib.utils.checkpoints import Checkpointable

    ckpt = os.path.abspath(runs.resolve_checkpoint(checkpoint))  # RLlib reads a relative path as a URI
    env_config = checkpoint_env_config(ckpt)
    task = get_task(env_config["task"]).name
    for sub in (_MODULE_PATH, _E2M_PATH, _M2E_PATH):
        if not os.path.isdir(os.path.join(ckpt, sub)):
            raise FileNotFoundError(
                f"checkpoint {ckpt!r} has no {sub}/ (not an RLlib new-API-stack checkpoint?)"
            )
    rllib_logger = logging.getLogger("ray.rllib")
    level = rllib_logger.level
    rllib_logger.setLevel(logging.ERROR)  # RLModule.from_checkpoint warns about its own deprecations
    try:
        module = RLModule.from_checkpoint(os.path.join(ckpt, _MODULE_PATH))
        e2m = Checkpointable.from_checkpoint(os.path.join(ckpt, _E2M_PATH))
        m2e = Checkpointable.from_checkpoint(os.path.join(ckpt, _M2E_PATH))
    finally:
        rllib_logger.setLevel(level)
    module.eval()
    for connector in e2m.connectors:
        if hasattr(connector, "_update_stats"):  # MeanStdFilter: freeze the statistics
            connector._update_stats = False
    return Policy(task, module, e2m, m2e, env_config.get("randomize") or None)


# -- rollouts (run inside Ray tasks, or directly) ---------------------------------------------
def episode_seed(seed: int, point_index: int, episode: int) -> int:
    """The reset seed of episode ``episode`` at grid point ``point_index``."""
    ss = np.random.SeedSequence([int(seed), int(point_index), int(episode)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def rollout_point(policy: Policy, envs, params: dict, point_index: int, seed: int, deterministic: bool):
    """Run ``len(envs)`` episodes at ``params`` as one batch; returns (returns, lengths, ran):
    ``ran`` is the parameter dict the environments reported (``info["env_params"]``), the
    same for every episode (an error otherwise)."""
    import torch
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from mrpo_rllib.algorithms.acting import BatchActor

    explore = not deterministic
    if explore:
        # A stream of its own (four entropy words), distinct from every episode's reset seed.
        ss = np.random.SeedSequence([int(seed), int(point_index), 0, 1])
        torch.manual_seed(int(ss.generate_state(1, dtype=np.uint32)[0]))
    episodes, ran = [], None
    for j, env in enumerate(envs):
        obs, info = env.reset(seed=episode_seed(seed, point_index, j), options={"env_params": params})
        if ran is not None and info["env_params"] != ran:
            raise RuntimeError(f"grid point {point_index}: episodes ran with {ran} and {info['env_params']}")
        ran = dict(info["env_params"])
        ep = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
        ep.add_env_reset(observation=obs, infos=info)
        episodes.append(ep)
    returns = np.zeros(len(envs))
    lengths = np.zeros(len(envs), dtype=np.int64)
    space, action_space = envs[0].observation_space, envs[0].action_space
    actor = None  # the sampler's batched core where it applies: the same floats as the pipelines
    if BatchActor.applies(policy.module, policy.env_to_module, policy.module_to_env, space, action_space):
        actor = BatchActor(policy.module, policy.env_to_module, policy.module_to_env, space, action_space)
    latest = {i: ep.get_observations(-1) for i, ep in enumerate(episodes)}
    active = list(range(len(envs)))
    while active:
        if actor is not None:
            _, to_env, _ = actor.act(actor.normalize(np.stack([latest[i] for i in active])), explore)
        else:
            actions, to_env = _act_pipelines(policy, [episodes[i] for i in active], explore)
        still = []
        for k, i in enumerate(active):
            obs, reward, terminated, truncated, info = envs[i].step(to_env[k])
            returns[i] += float(reward)
            lengths[i] += 1
            latest[i] = obs
            if actor is None:  # the pipelines read the episodes
                episodes[i].add_env_step(
                    observation=obs,
                    action=actions[k],
                    reward=float(reward),
                    infos=info,
                    terminated=terminated,
                    truncated=truncated,
                )
            if not (terminated or truncated):
                still.append(i)
        active = still
    return returns, lengths, ran


def _act_pipelines(policy: Policy, batch_eps: list, explore: bool):
    """``(actions, actions_for_env)`` through the connector pipelines, for pipelines or
    modules the batched core does not cover (e.g. a checkpoint of RLlib's own unsquashing)."""
    import torch

    shared: dict = {}
    batch = policy.env_to_module(
        rl_module=policy.module, batch={}, episodes=batch_eps, explore=explore, shared_data=shared
    )
    with torch.no_grad():
        if explore:
            out = policy.module.forward_exploration(batch)
        else:
            out = policy.module.forward_inference(batch)
    out = policy.module_to_env(
        rl_module=policy.module, batch=out, episodes=batch_eps, explore=explore, shared_data=shared
    )
    actions = out["actions"]
    return actions, out.get("actions_for_env", actions)


def evaluate_points(
    policy: Policy,
    points: list[tuple[int, dict]],
    episodes: int,
    seed: int,
    deterministic: bool = True,
) -> list[dict]:
    """Evaluate ``(point_index, params)`` pairs in this process; one result dict each."""
    import torch

    torch.set_num_threads(1)
    envs = [policy.make_env() for _ in range(episodes)]
    rows = []
    try:
        for index, params in points:
            returns, lengths, ran = rollout_point(policy, envs, params, index, seed, deterministic)
            rows.append(
                {
                    "point": index,
                    **ran,  # the parameters the environments reported running with
                    "return_mean": float(returns.mean()),
                    "return_std": float(returns.std()),
                    "return_min": float(returns.min()),
                    "length_mean": float(lengths.mean()),
                    "episodes": int(episodes),
                }
            )
    finally:
        for env in envs:
            env.close()
    return rows


def _remote_chunk(policy, points, episodes, seed, deterministic):
    return evaluate_points(policy, points, episodes, seed, deterministic)


# -- driver ------------------------------------------------------------------------------------
def _check_args(grid: str, points: int, episodes: int, seed: int) -> None:
    if grid not in RANGES:
        raise ValueError(f"grid must be 'train' or 'test', got {grid!r}")
    for name, v in (("points", points), ("episodes", episodes)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def evaluate_many(
    checkpoints: list[str],
    grid: str = DEFAULT_RANGE,
    points: int = DEFAULT_POINTS,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    deterministic: bool = True,
) -> list[pd.DataFrame]:
    """:func:`evaluate` for several checkpoints at once (all their Ray tasks in flight together)."""
    _check_args(grid, points, episodes, seed)
    policies = [load_policy(c) for c in checkpoints]  # fails early, naming the bad path
    if not policies:
        return []
    with ray_session() as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1)(_remote_chunk)
        jobs = []
        for policy in policies:
            table = grid_points(policy.spec, grid, points)
            pts = [
                (i, {k: float(v) for k, v in row.items()}) for i, row in enumerate(table.to_dict("records"))
            ]
            tasks_per_ckpt = max(1, math.ceil(2 * cpus / len(policies)))
            size = max(1, math.ceil(len(pts) / tasks_per_ckpt))
            ref = ray.put(policy)
            refs = [
                remote.remote(ref, pts[i : i + size], episodes, seed, deterministic)
                for i in range(0, len(pts), size)
            ]
            jobs.append((policy, table, refs))
        frames = []
        for policy, table, refs in jobs:
            rows = [r for chunk in ray.get(refs) for r in chunk]
            df = pd.DataFrame(rows).sort_values("point").drop(columns="point").reset_index(drop=True)
            df = df[[*table.columns, *RESULT_COLUMNS]]
            df.attrs.update(task=policy.task, grid=grid, seed=seed, deterministic=deterministic)
            frames.append(df)
        return frames


def evaluate(
    checkpoint: str,
    grid: str = DEFAULT_RANGE,
    points: int = DEFAULT_POINTS,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    deterministic: bool = True,
) -> pd.DataFrame:
    """Evaluate a checkpoint on an N×N grid over the task's ``grid`` range ("train"/"test").

    Returns one row per grid point: every task parameter, ``return_mean``, ``return_std``
    (over the E episodes, ddof=0), ``return_min``, ``length_mean`` and ``episodes``.
    ``checkpoint`` may be a checkpoint dir or a run/trial dir (see
    :func:`resolve_checkpoint`); a missing one raises ``FileNotFoundError`` naming it.
    """
    (df,) = evaluate_many([checkpoint], grid, points, episodes, seed, deterministic)
    df.attrs["checkpoint"] = runs.resolve_checkpoint(checkpoint)
    return df
