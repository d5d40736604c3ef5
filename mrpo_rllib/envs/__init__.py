"""The six parameterized tasks, registered with gymnasium as ``mrpo/<Task>-v0``."""

import gymnasium as gym

from mrpo_rllib.envs.base import RandomizedEnv, resolve_param_ranges
from mrpo_rllib.envs.tasks import MAX_EPISODE_STEPS, TASKS, TaskSpec, get_task, normalize_params


def register_envs() -> None:
    """Register every task under the ``mrpo`` namespace (idempotent)."""
    for task in TASKS.values():
        if task.env_id not in gym.registry:
            gym.register(
                id=task.env_id,
                entry_point=task.entry_point,
                max_episode_steps=MAX_EPISODE_STEPS,
                kwargs={"task": task.name},
            )


__all__ = [
    "MAX_EPISODE_STEPS",
    "TASKS",
    "RandomizedEnv",
    "TaskSpec",
    "get_task",
    "normalize_params",
    "register_envs",
    "resolve_param_ranges",
]
