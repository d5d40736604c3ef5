"""MRPO (Monotonic Robust Policy Optimization) and its baselines on Ray RLlib."""

from mrpo_rllib.envs import TASKS, get_task, register_envs

register_envs()

__version__ = "0.1.0"
__all__ = ["TASKS", "get_task", "register_envs"]
