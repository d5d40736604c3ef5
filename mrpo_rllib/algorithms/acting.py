"""The policy side of one batched env step, shared by sampling and evaluation.

:class:`BatchActor` does, for the observations of all running envs at once, what RLlib's
env-to-module and module-to-env connector pipelines do one episode at a time: the
observation filter (:class:`~mrpo_rllib.algorithms.connectors.BatchMeanStdFilter`), one
module forward, the action draw from the module's distribution (``GetActions``), the
conversion to numpy (``TensorToNumpy``: int64 → int32, float64 → float32) and the action
unsquashing (:class:`~mrpo_rllib.algorithms.connectors.BatchNormalizeAndClipActions`) — the
same operations in the same order, so the same floats and the same draws from torch's
random stream (``tests/test_env_runner.py`` compares whole episodes bit for bit).

It applies when the pipelines hold only RLlib's default pieces plus those two (see
:meth:`BatchActor.applies`), the module is a stateless single-agent torch module and the
spaces are a Box observation and a Box or Discrete action; anything else goes through the
pipelines as before.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.connectors.common import (
    AddObservationsFromEpisodesToBatch,
    AddStatesFromEpisodesToBatch,
    AddTimeDimToBatchAndZeroPad,
    AgentToModuleMapping,
    BatchIndividualItems,
    NumpyToTensor,
    TensorToNumpy,
)
from ray.rllib.connectors.module_to_env import (
    GetActions,
    ListifyDataForVectorEnv,
    ModuleToAgentUnmapping,
    RemoveSingleTsTimeRankFromBatch,
    UnBatchToIndividualItems,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.numpy import convert_to_numpy

from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter, BatchNormalizeAndClipActions

# The connector pieces whose work BatchActor does (the rest of RLlib's defaults only move
# data between episodes, batches and tensors).
_ENV_TO_MODULE = (
    BatchMeanStdFilter,
    AddObservationsFromEpisodesToBatch,
    AddTimeDimToBatchAndZeroPad,
    AddStatesFromEpisodesToBatch,
    AgentToModuleMapping,
    BatchIndividualItems,
    NumpyToTensor,
)
_MODULE_TO_ENV = (
    GetActions,
    TensorToNumpy,
    UnBatchToIndividualItems,
    ModuleToAgentUnmapping,
    RemoveSingleTsTimeRankFromBatch,
    BatchNormalizeAndClipActions,
    ListifyDataForVectorEnv,
)


class BatchActor:
    """Observation filter, module forward, action draw and unsquashing for a batch of
    observations (one row per running env). Build with :meth:`applies` checked first."""

    def __init__(self, module, env_to_module, module_to_env, observation_space, action_space):
        self.module = module
        self.filter = next((p for p in env_to_module.connectors if isinstance(p, BatchMeanStdFilter)), None)
        self.unsquash = next(
            (p for p in module_to_env.connectors if isinstance(p, BatchNormalizeAndClipActions)), None
        )
        self.box_actions = isinstance(action_space, gym.spaces.Box)
        # the episodes' observation space: the filter's output space, as the filter sets it
        self.observation_space = (
            self.filter.observation_space if self.filter is not None else observation_space
        )

    @staticmethod
    def applies(module, env_to_module, module_to_env, observation_space, action_space) -> bool:
        """Whether :class:`BatchActor` computes exactly what the two pipelines would."""
        ok = (
            isinstance(module, TorchRLModule)
            and not module.is_stateful()
            and isinstance(observation_space, gym.spaces.Box)
            and isinstance(action_space, (gym.spaces.Box, gym.spaces.Discrete))
            and all(type(p) in _ENV_TO_MODULE for p in env_to_module.connectors)
            and all(type(p) in _MODULE_TO_ENV for p in module_to_env.connectors)
        )
        filters = [p for p in env_to_module.connectors if isinstance(p, BatchMeanStdFilter)]
        if ok and filters:
            ok = len(filters) == 1 and filters[0].batch_filter() is not None
        return ok

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """The filter on ``obs`` (B, obs_dim): statistics updated unless frozen."""
        return obs if self.filter is None else self.filter.normalize_batch(obs)

    def act(self, obs: np.ndarray, explore: bool, t: int | None = None):
        """``(actions, actions_for_env, extra)`` for normalised observations ``obs``:
        the module's actions (numpy, as stored in episodes), the env's (unsquashed), and
        the other model outputs per row (``action_dist_inputs``, ``action_logp``)."""
        module = self.module
        batch = {Columns.OBS: torch.from_numpy(obs)}
        if module.training:  # RLlib's forward_* switch to eval mode and back on every call
            module.eval()
        if explore:
            out = module._forward_exploration(batch, **({} if t is None else {"t": t}))
            dist_cls = module.get_exploration_action_dist_cls()
        else:
            out = module._forward_inference(batch)
            dist_cls = module.get_inference_action_dist_cls()
        with torch.no_grad():
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
            if not explore:
                dist = dist.to_deterministic()
            actions = dist.sample()
            extra = {key: v for key, v in out.items() if isinstance(v, torch.Tensor)}
            extra[Columns.ACTION_LOGP] = dist.logp(actions)  # as GetActions, explore or not
        extra, actions = convert_to_numpy((extra, actions))
        if self.box_actions and self.unsquash is not None:
            return actions, self.unsquash.actions_for_env(actions), extra
        return actions, actions, extra
