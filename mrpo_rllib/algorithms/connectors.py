"""RLlib's observation filter and action unsquashing, done once per batch instead of per item.

:class:`EpisodeEnvRunner` runs the policy on all running episodes of a runner as one batch,
but two of RLlib's per-step connectors still loop over the batch in Python, one item at a
time: ``MeanStdFilter`` (two Welford pushes and a normalisation per observation) and
``NormalizeAndClipActions`` (a deep copy and a ``tree.map_structure`` per action).
Profiled on Hopper (16 envs, 0 env runners) they were 23% of the sampling time. The
subclasses here compute the same thing with one numpy operation per batch and keep
RLlib's state format, so checkpoints, ``merge_states`` across env runners and
:mod:`mrpo_rllib.evaluate` see no difference. Anything they do not cover (multi-agent,
nested spaces) goes to RLlib's implementation unchanged.

One difference, on purpose: RLlib normalises the i-th observation of a batch with the
statistics that include observations 1..i; the batched filter adds the whole batch first
and normalises every observation with the same statistics (the mean and variance after
the batch are equal, up to rounding, to RLlib's after its last push).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.connectors.env_to_module import MeanStdFilter
from ray.rllib.connectors.module_to_env.normalize_and_clip_actions import NormalizeAndClipActions
from ray.rllib.core.columns import Columns
from ray.rllib.utils.filter import RunningStat
from ray.rllib.utils.numpy import SMALL_NUMBER


def push_batch(rs: RunningStat, x: np.ndarray) -> None:
    """Add the rows of ``x`` (shape ``(B, *rs.shape)``) to ``rs``: the state that B calls
    of ``rs.push`` leave (Chan et al.'s parallel update of mean and sum of squares), the
    "delta" fields RLlib merges across env runners included."""
    x = np.asarray(x, dtype=np.float64)  # as push(): float32 observations, float64 sums
    b = x.shape[0]
    if b == 0:
        return
    n0 = rs.num_pushes
    n = n0 + b
    mean0 = rs.mean_array.copy()
    batch_mean = x.mean(axis=0)
    diff = batch_mean - mean0
    mean = mean0 + diff * (b / n)
    added_sq = ((x - batch_mean) ** 2).sum(axis=0) + diff * diff * (n0 * b / n)
    # push() adds each step's change of the mean and of S to the delta fields as well
    rs.mean_delta_array += mean - mean0
    rs.sum_sq_diff_delta_array += added_sq
    rs.mean_array[...] = mean
    rs.sum_sq_diff_array += added_sq
    rs.num_pushes = n
    rs.num_pushes_delta += b


class BatchMeanStdFilter(MeanStdFilter):
    """RLlib's ``MeanStdFilter`` connector (observation normalisation with running mean and
    std), updating and normalising the newest observation of all episodes at once."""

    def get_ctor_args_and_kwargs(self):
        # RLlib records the constructor's arguments only for classes that define __init__;
        # as for RLlib's filter, the spaces come from the pipeline it is restored into
        return (), {
            "multi_agent": self._multi_agent,
            "de_mean_to_zero": self.de_mean_to_zero,
            "de_std_to_one": self.de_std_to_one,
            "clip_by_value": self.clip_by_value,
            "update_stats": self._update_stats,
        }

    def batch_filter(self):
        """The single-agent Box filter this connector runs, or None when it would fall back
        to RLlib's per-item loop (multi-agent, nested observations)."""
        if self._filters is None:
            self._init_new_filters()
        filt = None if self._multi_agent else self._filters.get(None)
        ok = isinstance(getattr(filt, "running_stats", None), RunningStat) and isinstance(
            getattr(filt, "buffer", None), RunningStat
        )
        return filt if ok else None

    def normalize_batch(self, obs: np.ndarray) -> np.ndarray:
        """Add the rows of ``obs`` (B, obs_dim) to the running statistics (when updating)
        and return them normalised with the statistics after the batch, in ``obs``'s dtype."""
        filt = self.batch_filter()
        if self._update_stats:
            push_batch(filt.running_stats, obs)
            push_batch(filt.buffer, obs)
        rs = filt.running_stats
        out = obs
        if filt.demean:
            out = out - rs.mean
        if filt.destd:
            out = out / (rs.std + SMALL_NUMBER)
        if filt.clip:
            out = np.clip(out, -filt.clip, filt.clip)
        return out.astype(obs.dtype, copy=False)

    def __call__(self, *, rl_module, batch, episodes, **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes))
        # a Box observation: one RunningStat (RLlib's per-item loop covers the rest)
        if not sa_episodes or self.batch_filter() is None:
            return super().__call__(rl_module=rl_module, batch=batch, episodes=episodes, **kwargs)
        obs = np.stack([ep.get_observations(indices=-1) for ep in sa_episodes])
        out = self.normalize_batch(obs)
        for ep, row in zip(sa_episodes, out, strict=True):
            ep.set_observations(at_indices=-1, new_data=row)
            ep.observation_space = self.observation_space
        return batch


class BatchNormalizeAndClipActions(NormalizeAndClipActions):
    """RLlib's ``NormalizeAndClipActions`` for a single-agent Box or Discrete action space:
    one unsquash (or clip) of all actions of the batch."""

    @classmethod
    def replacing(cls, piece: NormalizeAndClipActions) -> BatchNormalizeAndClipActions:
        """This class with the spaces and settings of RLlib's ``piece``."""
        return cls(
            piece.input_observation_space,
            piece.input_action_space,
            normalize_actions=piece.normalize_actions,
            clip_actions=piece.clip_actions,
        )

    def get_ctor_args_and_kwargs(self):
        return (), {
            "input_observation_space": self.input_observation_space,
            "input_action_space": self.input_action_space,
            "normalize_actions": self.normalize_actions,
            "clip_actions": self.clip_actions,
        }

    def actions_for_env(self, a: np.ndarray) -> np.ndarray:
        """The env's actions for the module's actions ``a`` (B, *action_shape) of a float
        Box space: unsquashed from [-1, 1] to the bounds (``normalize_actions``) or clipped
        to them (``clip_actions``), as RLlib's connector does one action at a time."""
        space = self._action_space_struct
        if not self.normalize_actions:
            return np.clip(a, space.low, space.high) if self.clip_actions else a
        if np.all(space.bounded_below) and np.all(space.bounded_above):
            return np.clip(space.low + (a + 1.0) * (space.high - space.low) / 2.0, space.low, space.high)
        return a

    def __call__(self, *, rl_module, batch, episodes, **kwargs):
        space = self._action_space_struct
        actions = batch.get(Columns.ACTIONS)
        float_box = isinstance(space, gym.spaces.Box) and space.dtype in (np.float32, np.float64)
        discrete = isinstance(space, gym.spaces.Discrete)
        if not ((float_box or discrete) and isinstance(actions, dict)) or not (
            self.normalize_actions or self.clip_actions
        ):
            return super().__call__(rl_module=rl_module, batch=batch, episodes=episodes, **kwargs)
        # keys are (episode_id,), each with a list of one action per env step
        if discrete:  # RLlib leaves Discrete actions as they are
            batch[Columns.ACTIONS_FOR_ENV] = {k: list(v) for k, v in actions.items()}
            return batch
        keys = list(actions)
        lengths = [len(actions[k]) for k in keys]
        a = self.actions_for_env(np.stack([item for k in keys for item in actions[k]]))
        rows = iter(a)
        batch[Columns.ACTIONS_FOR_ENV] = {
            k: [next(rows) for _ in range(m)] for k, m in zip(keys, lengths, strict=True)
        }
        return batch
