"""MRPOTorchLearner: RLlib's PPO loss and gradients, the same floats, computed on tensors;
a non-finite loss raises a clear error."""

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical, TorchDiagGaussian

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.algorithms.learner import MRPOTorchLearner, NonFiniteLossError, logp_and_entropy


def test_closed_forms_are_rllibs_distributions_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(257, 6, generator=g)
    actions = torch.randn(257, 3, generator=g)
    logp, entropy = logp_and_entropy(TorchDiagGaussian, inputs, actions)
    dist = TorchDiagGaussian.from_logits(inputs)
    assert torch.equal(logp, dist.logp(actions)) and torch.equal(entropy, dist.entropy())

    logits = torch.randn(257, 4, generator=g) * 3
    choices = torch.randint(0, 4, (257,), generator=g).to(torch.int32)
    logp, entropy = logp_and_entropy(TorchCategorical, logits, choices)
    dist = TorchCategorical.from_logits(logits)
    assert torch.equal(logp, dist.logp(choices)) and torch.equal(entropy, dist.entropy())

    assert logp_and_entropy(object, logits, choices) is None  # any other class: RLlib's own loss


def _update_once(task: str, learner_class, *, seed: int = 11, **training):
    """Build, sample one iteration's episodes and run one PPO update; the learner's weights,
    its loss metrics and the iteration's ``result["mrpo"]`` after it."""
    training = {"episodes_per_iteration": 6, "num_minibatches": 4, "num_epochs": 2, **training}
    config = (
        MRPOConfig()
        .environment(task)
        .training(selection="dr", learner_class=learner_class, **training)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        assert type(learner) is learner_class
        result = algo.train()
        weights = {k: v.detach().clone() for k, v in learner.module["default_policy"].state_dict().items()}
        stats = result["learners"]["default_policy"]
        losses = {k: stats[k] for k in ("policy_loss", "vf_loss", "entropy", "vf_explained_var")}
        return weights, losses, result["mrpo"]
    finally:
        algo.stop()


@pytest.mark.parametrize("task", ["CartPole", "Hopper"])
def test_update_equals_rllibs_ppo_learner(task, ray_local):
    ours, ours_stats, _ = _update_once(task, MRPOTorchLearner)
    rllib, rllib_stats, _ = _update_once(task, PPOTorchLearner)
    assert ours.keys() == rllib.keys()
    changed = 0
    for name, value in ours.items():
        assert torch.equal(value, rllib[name]), name  # same loss, same gradients, same steps
        changed += 1
    assert changed > 4
    for key, value in rllib_stats.items():
        assert ours_stats[key] == pytest.approx(value, rel=1e-6), key


def test_non_finite_loss_raises_naming_module_and_term(ray_local):
    config = (
        MRPOConfig()
        .environment("Hopper")
        .training(selection="dr", episodes_per_iteration=2)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        module = learner.module["default_policy"]
        n = 5
        batch = {
            "obs": torch.zeros(n, 15),
            "actions": torch.zeros(n, 3),
            "action_logp": torch.zeros(n),
            "advantages": torch.tensor([0.0, np.nan, 0.0, 0.0, 0.0]),
            "value_targets": torch.zeros(n),
        }
        fwd = module.forward_train(batch)
        with pytest.raises(NonFiniteLossError, match=r"module 'default_policy'.*policy \(surrogate\) term"):
            learner.compute_loss_for_module(
                module_id="default_policy", config=config, batch=batch, fwd_out=fwd
            )
        batch["advantages"] = torch.zeros(n)
        batch["value_targets"] = torch.tensor([np.inf, 0.0, 0.0, 0.0, 0.0])
        with pytest.raises(NonFiniteLossError, match="value term"):
            learner.compute_loss_for_module(
                module_id="default_policy", config=config, batch=batch, fwd_out=fwd
            )
        batch["value_targets"] = torch.zeros(n)
        loss = learner.compute_loss_for_module(
            module_id="default_policy", config=config, batch=batch, fwd_out=fwd
        )
        assert torch.isfinite(loss)
    finally:
        algo.stop()


def test_tiny_minibatches_of_masked_rows_only_match_rllib(ray_local):
    """Minibatches of one row (more minibatches than rows): the bootstrap rows (masked out)
    make minibatches of their own. RLlib's loss is 0/0 there and its learner zeroes the NaN gradients; ours gives zero gradients, no
    error, and the same weights afterwards."""

    def weights(learner_class):
        tiny = {"episodes_per_iteration": 2, "num_minibatches": 64, "num_epochs": 2}
        weights, _, mrpo = _update_once("CartPole", learner_class, seed=5, **tiny)
        assert mrpo["gradient_steps"] == 128
        assert mrpo["sampled_timesteps"] + 2 < 64  # minibatches of one row
        return weights

    ours, rllib = weights(MRPOTorchLearner), weights(PPOTorchLearner)
    assert all(torch.equal(v, rllib[k]) for k, v in ours.items())
