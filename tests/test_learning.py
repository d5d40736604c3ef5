"""Slow learning tests (`make test-slow`): real PPO on CartPole reaches a return threshold."""

import pytest

from mrpo_rllib.algorithms import MRPOConfig

BUDGET_ITERATIONS = 40  # of M = 50 episodes each
THRESHOLD = 400.0


@pytest.mark.slow
@pytest.mark.parametrize("selection", ["dr", "mrpo"])
def test_cartpole_reaches_400(ray_local, tmp_path, selection):
    config = (
        MRPOConfig()
        .environment("CartPole")
        .env_runners(num_env_runners=2)
        .training(selection=selection, episodes_per_iteration=50)
        .debugging(seed=0)
        .reporting(episode_ledger_dir=str(tmp_path))
    )
    algo = config.build_algo()
    history = []
    try:
        for _ in range(BUDGET_ITERATIONS):
            history.append(algo.train()["mrpo"]["return_mean"])
            if history[-1] >= THRESHOLD:
                break
    finally:
        algo.stop()
    print(f"{selection}: {len(history)} iterations, average returns {[round(h) for h in history]}")
    assert max(history) >= THRESHOLD, history
