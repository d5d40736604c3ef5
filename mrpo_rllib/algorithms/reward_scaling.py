"""PPO2's reward scaling (``VecNormalize(norm_reward=True)``) as a learner connector.

PPO2 divides every reward by the running standard deviation of the *discounted return*
and clips the result to ±10:

    G_t = γ·G_{t−1} + r_t          (G = 0 at an episode's start)
    r̃_t = clip(r_t / √(Var[G] + 1e-8), −10, 10)

where Var[G] is a running variance over every G_t seen so far (Chan et al.'s parallel
update, starting from mean 0, variance 1, count 1e-4: stable-baselines3's
``RunningMeanStd``). The rewards are not centred.

Here the scaling happens in the learner, on the train batch, just before GAE: the
critic learns scaled returns and the advantages are computed from scaled rewards,
while everything a person or a selection rule reads — episode returns in the metrics,
the ledger, MRPO's and EPOpt's selection — stays on the raw rewards (the env runners
never see the scaled ones). The one difference from PPO2: its statistics are updated
step by step as the envs run, ours once per train batch (all of the batch's G_t), then
the batch is scaled. The statistics are part of the learner's checkpoint state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.utils.numpy import convert_to_numpy

REWARD_CLIP = 10.0
EPSILON = 1e-8


class RunningMeanStd:
    """Running mean and variance of a stream of numbers (stable-baselines3's, parallel update)."""

    def __init__(self) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return
        batch_mean, batch_var, batch_count = float(x.mean()), float(x.var()), x.size
        delta = batch_mean - self.mean
        total = self.count + batch_count
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean = self.mean + delta * batch_count / total
        self.var = m2 / total
        self.count = total


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = γ·G_{t−1} + r_t from G_{−1} = 0, for one episode's rewards."""
    out = np.empty(len(rewards), dtype=np.float64)
    g = 0.0
    for t, r in enumerate(rewards):
        g = gamma * g + float(r)
        out[t] = g
    return out


class RewardScaling(ConnectorV2):
    """Learner connector piece: rewards divided by the running std of the discounted
    return, clipped to ±10 (see the module docstring). Goes right before GAE, after
    the one artificial bootstrap step RLlib's PPO appends to every episode (reward 0,
    left out of the statistics and left 0)."""

    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float):
        super().__init__(input_observation_space, input_action_space)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.return_rms = RunningMeanStd()

    def __call__(self, *, rl_module, episodes, batch: dict[str, Any], **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        for module_id, module_batch in batch.items():
            if Columns.REWARDS not in module_batch:
                continue
            rewards = np.asarray(convert_to_numpy(module_batch[Columns.REWARDS]))
            lens = [len(e) for e in sa_episodes if e.module_id in (None, module_id)]
            if sum(lens) != len(rewards):
                raise ValueError(
                    f"reward scaling: {len(rewards)} reward rows for episodes of {sum(lens)} steps "
                    "(a zero-padded, stateful module's batch is not supported)"
                )
            starts = np.cumsum([0, *lens[:-1]])
            # the last row of every episode is the artificial bootstrap step
            returns = [
                discounted_returns(rewards[s : s + n - 1], self.gamma)
                for s, n in zip(starts, lens, strict=True)
            ]
            self.return_rms.update(np.concatenate(returns) if returns else np.empty(0))
            scaled = np.clip(rewards / np.sqrt(self.return_rms.var + EPSILON), -REWARD_CLIP, REWARD_CLIP)
            module_batch[Columns.REWARDS] = scaled.astype(rewards.dtype, copy=False)
        return batch

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict:
        rms = self.return_rms
        return {"mean": rms.mean, "var": rms.var, "count": rms.count}

    def set_state(self, state: dict) -> None:
        self.return_rms.mean = float(state["mean"])
        self.return_rms.var = float(state["var"])
        self.return_rms.count = float(state["count"])
