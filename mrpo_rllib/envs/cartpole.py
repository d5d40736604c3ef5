"""CartPole: gymnasium's classic-control CartPole with randomized physics.

Parameters (see the task table): ``force_mag`` (N), ``pole_length`` (gymnasium's
``length`` attribute, i.e. *half* the pole's length, m) and ``pole_mass`` (kg); the extra
parameter ``cart_mass`` (kg, gymnasium's ``masscart``, nominal 1.0) is fixed unless
randomized. After setting them, the derived quantities gymnasium caches are recomputed:
``total_mass = masspole + masscart`` and ``polemass_length = masspole * length``.
Dynamics, termination (|x| > 2.4 m or |θ| > 12°) and the reward of 1 per step are
gymnasium's own; the episode limit is 1000 steps (set at registration).
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv as _GymCartPole

from mrpo_rllib.envs.base import ParamsArg, RandomizeArg, RandomizedEnv


class CartPoleEnv(RandomizedEnv):
    """Gymnasium's CartPole whose force, pole length and pole mass (and, if chosen, cart
    mass) vary per episode."""

    def __init__(self, task: str = "CartPole", params: ParamsArg = None, randomize: RandomizeArg = None):
        super().__init__(task, params, randomize)
        self._cp = _GymCartPole()
        self.action_space = self._cp.action_space
        self.observation_space = self._cp.observation_space

    def _apply_params(self, values: dict[str, float]) -> None:
        cp = self._cp
        cp.force_mag = values["force_mag"]
        cp.length = values["pole_length"]
        cp.masspole = values["pole_mass"]
        cp.masscart = values["cart_mass"]
        cp.total_mass = cp.masspole + cp.masscart
        cp.polemass_length = cp.masspole * cp.length

    def _reset_model(self) -> np.ndarray:
        # Share our generator so that reset(seed=...) fixes the initial state too.
        self._cp._np_random = self.np_random
        obs, _ = self._cp.reset()
        return obs

    def _step_model(self, action):
        obs, reward, terminated, _, _ = self._cp.step(action)
        return obs, reward, terminated

    def close(self):
        self._cp.close()
