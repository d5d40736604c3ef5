"""The RLlib-facing environment layer: env creator and seeding fix.

Seeding pitfall (measured on RLlib 2.60): with ``config.seed`` set, the
SingleAgentEnvRunner calls ``env.reset(seed=config.seed + worker_index)`` at the
start of *every* ``sample(num_episodes=...)`` call, and gymnasium's vector env
seeds sub-env i with ``seed + i``, so sub-envs of different runners collide.
Domain randomization then collapses to a handful of parameter vectors.

:class:`SeedOnce` fixes that without touching the plain gymnasium env: the first
seeded reset derives a stream seed from (RLlib's seed, worker index) with
``numpy.random.SeedSequence``; every later reset ignores the seed RLlib passes
and continues the env's own RNG stream. Same ``config.seed`` → same sequence of
parameter vectors; every episode draws fresh parameters.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.tune.registry import register_env

from mrpo_rllib.envs import get_task, register_envs

ENV_NAME = "mrpo_env"


class SeedOnce(gym.Wrapper):
    """Use the seed of the first seeded ``reset`` only; later seeds are ignored."""

    def __init__(self, env: gym.Env, worker_index: int = 0):
        super().__init__(env)
        self._worker_index = int(worker_index)
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None and not self._seeded:
            self._seeded = True
            ss = np.random.SeedSequence([int(seed), self._worker_index])
            seed = int(ss.generate_state(1, dtype=np.uint32)[0])
        else:
            seed = None
        return self.env.reset(seed=seed, options=options)


def make_rllib_env(env_config) -> gym.Env:
    """RLlib env creator: ``env_config = {"task": "Hopper", "params": None | "test" | {...},
    "randomize": None | {name: range}}`` (see :class:`~mrpo_rllib.envs.base.RandomizedEnv`)."""
    register_envs()
    task = get_task(env_config.get("task", "CartPole"))
    env = gym.make(task.env_id, params=env_config.get("params"), randomize=env_config.get("randomize"))
    worker_index = getattr(env_config, "worker_index", 0)
    return SeedOnce(env, worker_index=worker_index)


register_env(ENV_NAME, make_rllib_env)
