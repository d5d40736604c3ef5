"""PPO's update with less per-minibatch overhead, same math: :class:`MRPOTorchLearner`.

RLlib's ``PPOTorchLearner`` computes the loss through distribution objects, logs six loss
metrics per minibatch, and before every optimiser step scans every gradient and parameter
for non-finite values (``isfinite`` per tensor, twice), silently zeroing or skipping bad
updates. Here, for the policies this project builds (a Gaussian with a state-independent
or state-dependent log-std, or a categorical; no KL term), the loss is PPO2's clipped
objective written on tensors:

    ratio = exp(log π(a|s) − log π_old(a|s))
    L = mean(−min(A·ratio, A·clip(ratio, 1−ε, 1+ε)) + c_vf·min((V(s) − V_targ)², vf_clip)
             − c_ent·H[π(·|s)])

over the rows of the loss mask — RLlib's formula (``PPOTorchLearner.compute_loss_for_module``),
shown equal to it on a fixed batch, loss and gradients, in ``tests/test_learner.py``. The
per-minibatch metrics are the ones the reports read (policy and value loss, explained
variance, entropy), logged as one dict of detached tensors; and instead of the ``isfinite``
scans, the loss is checked once per minibatch: a non-finite loss raises a
:class:`NonFiniteLossError` naming the module, the term and the learner update, the
moment it happens (RLlib would set the gradients to zero, or skip the step, and go on).
The one non-finite loss that is not an error is a minibatch of masked rows only (the
bootstrap rows PPO adds per episode, in minibatches of a row or two): 0/0 in RLlib's loss,
whose gradients its learner sets to zero; zero gradients here too, so the same numbers.

Anything else (a KL term, another distribution, learning-rate schedules, gradient scalers)
goes to RLlib's implementation unchanged.

Three of PPO2's settings are options of the config (docs/decisions.md gives the measured
default of each): ``weight_init="orthogonal"`` (:func:`orthogonal_init`), ``adam_epsilon``
(the optimiser's ε; torch's 1e-8 or PPO2's 1e-5) and ``reward_scaling``
(:class:`~mrpo_rllib.algorithms.reward_scaling.RewardScaling`, a learner connector before
GAE whose statistics travel in this learner's checkpoint state).
"""

from __future__ import annotations

import math

import torch
from ray.rllib.algorithms.ppo.ppo import (
    LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY,
    LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY,
)
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical, TorchDiagGaussian
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.torch_utils import explained_variance

from mrpo_rllib.algorithms.reward_scaling import RewardScaling

# PPO2's orthogonal initialisation gains: hidden layers, the policy's output, the value output
ORTHOGONAL_GAINS = {"hidden": math.sqrt(2.0), "pi": 0.01, "vf": 1.0}
_REWARD_SCALING_STATE = "mrpo_reward_scaling"


class NonFiniteLossError(FloatingPointError):
    """A PPO loss term became NaN or infinite."""


def normal_logp(actions: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``torch.distributions.Normal(loc, scale).log_prob(actions)`` summed over the action
    dimensions, with Normal's operations in Normal's order (so the same floats)."""
    var = scale**2
    log_scale = scale.log()
    logp = -((actions - loc) ** 2) / (2 * var) - log_scale - math.log(math.sqrt(2 * math.pi))
    return logp.sum(-1)


def normalized_logits(dist_inputs: torch.Tensor) -> torch.Tensor:
    """``torch.distributions.Categorical(logits=dist_inputs).logits``: log-probabilities."""
    return dist_inputs - dist_inputs.logsumexp(dim=-1, keepdim=True)


def categorical_logp(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``Categorical.log_prob(actions)`` from :func:`normalized_logits`."""
    return logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def logp_and_entropy(dist_cls, dist_inputs: torch.Tensor, actions: torch.Tensor):
    """log π(a|s) and the entropy per row, for RLlib's ``TorchDiagGaussian`` (inputs: means
    and log-stds) and ``TorchCategorical`` (logits), with the same tensor operations, in the
    same order, as ``torch.distributions.Normal``/``Categorical`` (so the same floats);
    None for any other distribution class."""
    if issubclass(dist_cls, TorchDiagGaussian):
        loc, log_std = dist_inputs.chunk(2, dim=-1)
        scale = log_std.exp()
        entropy = 0.5 + 0.5 * math.log(2 * math.pi) + torch.log(scale)
        return normal_logp(actions, loc, scale), entropy.sum(-1)
    if issubclass(dist_cls, TorchCategorical):
        logits = normalized_logits(dist_inputs)
        clamped = torch.clamp(logits, min=torch.finfo(logits.dtype).min)
        entropy = -(clamped * torch.softmax(logits, dim=-1)).sum(-1)
        return categorical_logp(logits, actions), entropy
    return None


def orthogonal_init(module: torch.nn.Module) -> None:
    """PPO2's initialisation, in place: every linear layer orthogonal with a zero bias, gain
    √2, except the last layer of the policy head ``pi`` (gain 0.01: near-zero initial
    action means) and of the value head ``vf`` (gain 1). Other parameters (the free
    log-std) keep their values."""
    for head in ("pi", "vf"):
        if not isinstance(getattr(module, head, None), torch.nn.Module):
            raise ValueError(f"orthogonal init: the module has no {head!r} head ({type(module).__name__})")
    outputs = {}
    for head in ("pi", "vf"):
        linears = [m for m in getattr(module, head).modules() if isinstance(m, torch.nn.Linear)]
        outputs[id(linears[-1])] = ORTHOGONAL_GAINS[head]
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.orthogonal_(
                    layer.weight, gain=outputs.get(id(layer), ORTHOGONAL_GAINS["hidden"])
                )
                if layer.bias is not None:
                    layer.bias.zero_()


class MRPOTorchLearner(PPOTorchLearner):
    """RLlib's PPO torch learner with PPO2's loss on tensors (see the module docstring)."""

    def build(self) -> None:
        super().build()
        if self.config.weight_init == "orthogonal":
            for module_id in self.module.keys():
                orthogonal_init(self.module[module_id].unwrapped())
        if self.config.reward_scaling and self._learner_connector is not None:
            self._learner_connector.insert_before(
                GeneralAdvantageEstimation, RewardScaling(gamma=self.config.gamma)
            )

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        # RLlib's (Adam, the default name, the lr schedule), with the config's ε
        params = self.get_parameters(self._module[module_id])
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, eps=config.adam_epsilon),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def reward_scaler(self) -> RewardScaling | None:
        """The reward-scaling piece of the learner connector, or None when off."""
        if self._learner_connector is None:
            return None
        found = [c for c in self._learner_connector.connectors if isinstance(c, RewardScaling)]
        return found[0] if found else None

    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        # the whole state only (a checkpoint), not the per-iteration weight syncs
        scaler = self.reward_scaler() if components is None else None
        if scaler is not None:
            state[_REWARD_SCALING_STATE] = scaler.get_state()
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        scaler = self.reward_scaler()
        if scaler is not None and _REWARD_SCALING_STATE in state:
            scaler.set_state(state[_REWARD_SCALING_STATE])

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        dist_cls = module.get_train_action_dist_cls()
        closed = None
        if not config.use_kl_loss and config.use_critic:
            closed = logp_and_entropy(dist_cls, fwd_out[Columns.ACTION_DIST_INPUTS], batch[Columns.ACTIONS])
        if closed is None:
            return super().compute_loss_for_module(
                module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
            )
        logp, entropy = closed

        mask = batch.get(Columns.LOSS_MASK)
        if mask is None:
            mean = torch.mean
        else:
            valid = mask.sum()

            def mean(x):
                return x[mask].sum() / valid

        advantages = batch[Postprocessing.ADVANTAGES]
        ratio = torch.exp(logp - batch[Columns.ACTION_LOGP])
        surrogate = torch.min(
            advantages * ratio,
            advantages * torch.clamp(ratio, 1.0 - config.clip_param, 1.0 + config.clip_param),
        )
        values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        vf_loss = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
        vf_loss_clipped = torch.clamp(vf_loss, 0, config.vf_clip_param)
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        total = mean(-surrogate + config.vf_loss_coeff * vf_loss_clipped - entropy_coeff * entropy)

        if mask is not None and not valid:
            # A minibatch of masked rows only (the bootstrap rows; minibatches of a row or
            # two): no data, no gradient. RLlib's loss is 0/0 there and its learner zeroes
            # the NaN gradients before the optimiser step: the same zero gradients here.
            total = 0.0 * (fwd_out[Columns.ACTION_DIST_INPUTS].sum() + values.sum())
        elif not torch.isfinite(total):
            self._raise_non_finite(module_id, surrogate, vf_loss, entropy, mean)
        with torch.no_grad():
            vf_mean = mean(vf_loss_clipped)
            self.metrics.log_dict(
                {
                    POLICY_LOSS_KEY: -mean(surrogate),
                    VF_LOSS_KEY: vf_mean,
                    LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY: mean(vf_loss)
                    if math.isfinite(config.vf_clip_param)
                    else vf_mean,
                    LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY: explained_variance(
                        batch[Postprocessing.VALUE_TARGETS], values
                    ),
                    ENTROPY_KEY: mean(entropy),
                },
                key=module_id,
                window=1,
            )
        return total

    def _raise_non_finite(self, module_id, surrogate, vf_loss, entropy, mean) -> None:
        terms = {"policy (surrogate)": mean(surrogate), "value": mean(vf_loss), "entropy": mean(entropy)}
        bad = [name for name, value in terms.items() if not torch.isfinite(value)] or ["total"]
        raise NonFiniteLossError(
            f"PPO loss of module {module_id!r} is not finite in learner update "
            f"{self._mrpo_updates + 1} of this learner: {', '.join(bad)} term "
            f"({', '.join(f'{k} = {float(v.detach()):.6g}' for k, v in terms.items())})"
        )

    _mrpo_updates = 0  # learner updates (training iterations) completed by this learner

    def after_gradient_based_update(self, *, timesteps) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self._mrpo_updates += 1

    def apply_gradients(self, gradients_dict) -> None:
        # The loss was checked finite; no per-tensor isfinite scans (RLlib's would zero
        # non-finite gradients or skip the step silently).
        if self._lr_scheduler_classes is not None or self._grad_scalers is not None:
            return super().apply_gradients(gradients_dict)
        for pid, grad in gradients_dict.items():
            self._params[pid].grad = grad
        for module_id, names in self._module_optimizers.items():
            for name in names:
                self.get_optimizer(module_id, name).step()
        return None
