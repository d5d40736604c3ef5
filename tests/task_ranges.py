"""Shared by the environment tests: the corners of a task's parameter ranges."""

import itertools

from mrpo_rllib.envs import TaskSpec, get_task


def range_corners(task: str | TaskSpec, which: str) -> list[dict[str, float]]:
    """Every corner of the task's ``which`` ("train" or "test") range, as ``{name: value}``."""
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    low, high = spec.range_array(which)
    return [
        dict(zip(spec.param_names, corner, strict=True))
        for corner in itertools.product(*zip(low, high, strict=True))
    ]
