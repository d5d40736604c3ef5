"""PPO2's remaining settings as options: orthogonal initialisation, Adam's ε, reward scaling.

Expectations are computed here, independently of the code under test: the running std by
a direct float64 variance over every discounted return seen, the initial weights by their
singular values (an orthogonal matrix times g has every singular value equal to g).
"""

import math

import numpy as np
import pytest
import torch

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.algorithms.reward_scaling import RewardScaling, RunningMeanStd, discounted_returns


def _config(task="Hopper", seed=3, **training):
    training = {
        "selection": "dr",
        "episodes_per_iteration": 4,
        "num_minibatches": 2,
        "num_epochs": 1,
        **training,
    }
    return MRPOConfig().environment(task).training(**training).debugging(seed=seed)


# -- reward scaling, by hand -----------------------------------------------------------------


def test_running_std_by_hand():
    """Two updates of the running statistics equal one variance over everything seen, with
    the prior (mean 0, var 1, weight 1e-4) counted in."""
    rms = RunningMeanStd()
    a, b = np.array([1.0, 2.0, 4.0]), np.array([-3.0, 0.5])
    rms.update(a)
    rms.update(b)
    seen = np.concatenate([a, b])
    n0 = 1e-4
    # the prior as a point mass of weight n0 at 0 with variance 1 inside it
    total = n0 + seen.size
    mean = seen.sum() / total
    second = (n0 * (1.0 + 0.0) + (seen**2).sum()) / total
    assert rms.count == pytest.approx(total)
    assert rms.mean == pytest.approx(mean, rel=1e-12)
    assert rms.var == pytest.approx(second - mean**2, rel=1e-10)


def test_discounted_returns_restart_per_episode():
    assert np.allclose(discounted_returns(np.array([1.0, 1.0, 1.0]), 0.5), [1.0, 1.5, 1.75])


class _Episode:
    def __init__(self, n):
        self.n, self.module_id = n, None

    def __len__(self):
        return self.n


def test_scaling_a_batch_by_hand():
    """Two episodes (3 and 2 real steps, each followed by RLlib's bootstrap row with reward 0):
    rewards divided by √(var + 1e-8) of the five discounted returns, clipped to ±10, the
    bootstrap rows left at 0 and out of the statistics."""
    gamma = 0.9
    rewards = np.array([1.0, 2.0, 3.0, 0.0, 100.0, -1.0, 0.0], dtype=np.float32)
    episodes = [_Episode(4), _Episode(3)]
    piece = RewardScaling(gamma=gamma)
    piece.single_agent_episode_iterator = lambda eps, agents_that_stepped_only=False: iter(eps)
    batch = {"default_policy": {"rewards": rewards.copy()}}
    out = piece(rl_module=None, episodes=episodes, batch=batch)["default_policy"]["rewards"]
    g = [1.0, 1.0 * gamma + 2.0, (1.0 * gamma + 2.0) * gamma + 3.0, 100.0, 100.0 * gamma - 1.0]
    n0, seen = 1e-4, np.array(g)
    mean = seen.sum() / (n0 + 5)
    var = (n0 + (seen**2).sum()) / (n0 + 5) - mean**2
    expected = np.clip(rewards / math.sqrt(var + 1e-8), -10, 10)
    assert out.dtype == np.float32
    assert np.allclose(out, expected, rtol=1e-6)
    assert out[3] == 0.0 and out[6] == 0.0
    assert abs(out[4]) <= 10.0 and out[4] == pytest.approx(min(10.0, 100.0 / math.sqrt(var + 1e-8)))


def test_bad_gamma_is_an_error():
    with pytest.raises(ValueError, match="gamma must be in"):
        RewardScaling(gamma=1.5)


# -- options in a real run --------------------------------------------------------------------


def test_option_values_are_checked():
    with pytest.raises(ValueError, match="weight_init must be one of .*'xavier'"):
        _config(weight_init="xavier").validate()
    with pytest.raises(ValueError, match="adam_epsilon must be a number in \\(0, 1\\), got 0"):
        _config(adam_epsilon=0).validate()
    with pytest.raises(ValueError, match="reward_scaling must be true or false, got 'yes'"):
        _config(reward_scaling="yes").validate()


def test_orthogonal_init_and_adam_epsilon(ray_local):
    algo = _config(weight_init="orthogonal", adam_epsilon=1e-5).build_algo()
    try:
        learner = algo.learner_group._learner
        module = learner.module["default_policy"]
        layers = {n: m for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)}
        gains = {"pi.net.mlp.0": 0.01, "vf.net.mlp.0": 1.0}
        assert set(gains) < set(layers) and len(layers) == 6
        for name, layer in layers.items():
            s = torch.linalg.svdvals(layer.weight.detach())
            assert torch.allclose(s, torch.full_like(s, gains.get(name, math.sqrt(2))), rtol=1e-4), name
            assert not layer.bias.detach().any(), name
        assert module.pi.log_std.detach().abs().max() == 0  # initial std 1 kept
        assert learner.get_optimizer("default_policy").defaults["eps"] == 1e-5
        # the env runner acts with the learner's initial weights
        runner_weights = algo.env_runner.module.state_dict()
        for name, value in module.state_dict().items():
            if name in runner_weights:
                assert torch.equal(value, runner_weights[name]), name
    finally:
        algo.stop()


def test_default_init_and_epsilon_are_torchs(ray_local):
    algo = _config().build_algo()
    try:
        learner = algo.learner_group._learner
        assert learner.get_optimizer("default_policy").defaults["eps"] == 1e-8
        w = learner.module["default_policy"].pi.net.mlp[0].weight.detach()
        s = torch.linalg.svdvals(w)
        assert s.max() > 0.1  # torch's default init, not a 0.01 orthogonal output layer
        assert learner.reward_scaler() is None
    finally:
        algo.stop()


def test_reward_scaling_keeps_raw_returns_and_checkpoints(ray_local, tmp_path):
    algo = _config(reward_scaling=True, seed=5).reporting(episode_ledger_dir=str(tmp_path)).build_algo()
    try:
        learner = algo.learner_group._learner
        scaler = learner.reward_scaler()
        assert scaler is not None and scaler.return_rms.count == pytest.approx(1e-4)
        result = algo.train()
        rms = scaler.return_rms
        assert rms.count > 10 and rms.var != 1.0  # statistics updated from the batch
        # raw returns where people and selection rules read them: the ledger's returns are
        # the sums of the env's rewards, and the metric is their mean
        import pandas as pd

        ledger = pd.read_csv(tmp_path / "episodes.csv")
        mean_return = result["env_runners"]["episode_return_mean"]
        assert ledger["return"].mean() == pytest.approx(mean_return, rel=1e-6)
        # scaled rewards would make the returns ~√var times smaller: Hopper's raw ones are >> 1
        assert ledger["return"].abs().mean() > 5
        state = {"mean": rms.mean, "var": rms.var, "count": rms.count}
        path = tmp_path / "ckpt"
        algo.save_to_path(str(path.resolve()))
    finally:
        algo.stop()
    restored = _config(reward_scaling=True, seed=5).build_algo()
    try:
        restored.restore_from_path(str(path.resolve()))
        got = restored.learner_group._learner.reward_scaler().return_rms
        assert {"mean": got.mean, "var": got.var, "count": got.count} == state
    finally:
        restored.stop()
