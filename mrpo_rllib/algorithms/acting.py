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
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical, TorchDiagGaussian
from ray.rllib.core.rl_module.torch import TorchRLModule

from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter, BatchNormalizeAndClipActions
from mrpo_rllib.algorithms.learner import categorical_logp, normal_logp, normalized_logits

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
            drawn = sample_with_logp(dist_cls, out[Columns.ACTION_DIST_INPUTS]) if explore else None
            if drawn is None:  # RLlib's distribution objects (deterministic, other classes)
                dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
                if not explore:
                    dist = dist.to_deterministic()
                actions = dist.sample()
                drawn = actions, dist.logp(actions)  # as GetActions, explore or not
            actions, logp = drawn
            extra = {key: _to_numpy(v) for key, v in out.items() if isinstance(v, torch.Tensor)}
            extra[Columns.ACTION_LOGP] = _to_numpy(logp)
            actions = _to_numpy(actions)
        if self.box_actions and self.unsquash is not None:
            return actions, self.unsquash.actions_for_env(actions), extra
        return actions, actions, extra


def sample_with_logp(dist_cls, dist_inputs: torch.Tensor):
    """``(actions, log π(actions))`` drawn as RLlib's ``TorchDiagGaussian``/``TorchCategorical``
    draw them — ``torch.normal(loc, scale)``, ``torch.multinomial(softmax(normalised
    logits), 1, True)``: the same calls on torch's random stream, so the same actions —
    without building distribution objects; None for any other class."""
    if issubclass(dist_cls, TorchDiagGaussian):
        loc, log_std = dist_inputs.chunk(2, dim=-1)
        scale = log_std.exp()
        actions = torch.normal(loc, scale)
        return actions, normal_logp(actions, loc, scale)
    if issubclass(dist_cls, TorchCategorical):
        logits = normalized_logits(dist_inputs)
        probs = torch.softmax(logits, dim=-1)
        actions = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, True).T.reshape(probs.shape[:-1])
        return actions, categorical_logp(logits, actions)
    return None


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """As RLlib's ``convert_to_numpy`` (``reduce_type``): int64 -> int32, float64 -> float32."""
    a = t.detach().cpu().numpy()
    if a.dtype == np.float64:
        return a.astype(np.float32)
    if a.dtype == np.int64:
        return a.astype(np.int32)
    return a
