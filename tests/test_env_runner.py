"""EpisodeEnvRunner: n complete episodes from k envs, none dropped, none chosen by length."""

import pytest
from ray.rllib.env.env_context import EnvContext

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.algorithms.env import make_rllib_env

SEED, K = 3, 4


def _runner_config(**env_runners):
    return (
        MRPOConfig()
        .environment("CartPole")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=K, **env_runners)
        .training(episodes_per_iteration=10)
        .debugging(seed=SEED)
    )


def _slot_stream(slot: int, n: int) -> list[tuple]:
    """The parameter vectors slot ``slot`` of the local runner (worker 0) draws, in order."""
    env = make_rllib_env(EnvContext({"task": "CartPole"}, worker_index=0))
    params = [env.reset(seed=SEED + slot)[1]["env_params"]]
    params += [env.reset()[1]["env_params"] for _ in range(n - 1)]
    env.close()
    return [tuple(p.values()) for p in params]


def test_every_started_episode_is_returned_in_stream_order(ray_local):
    algo = _runner_config().build_algo()
    try:
        # the first call uses fewer episodes than slots: the idle slot's stream must not lose its start
        batches = [algo.env_runner.sample(num_episodes=n, explore=True) for n in (3, 10, 7)]
    finally:
        algo.stop()
    assert [len(b) for b in batches] == [3, 10, 7]
    assert all(e.is_done for b in batches for e in b)

    # Each slot runs its own stream of environments one after the other. Over the three
    # calls, the episodes returned from a slot must be a prefix of its stream: an episode
    # that started is never dropped (RLlib's own runner drops the ones still running,
    # which are the long ones), and none is skipped.
    streams = [_slot_stream(slot, 25) for slot in range(K)]
    where = {p: (slot, i) for slot, s in enumerate(streams) for i, p in enumerate(s)}
    used: dict[int, list[int]] = {slot: [] for slot in range(K)}
    for b in batches:
        for e in b:
            slot, i = where[tuple(e.custom_data["env_params"])]
            used[slot].append(i)
    for slot, idx in used.items():
        # in stream order, not just the right set: a slot runs one episode after the other
        assert idx == list(range(len(idx))), (slot, idx)
    assert sum(len(v) for v in used.values()) == 20
    assert all(len(v) >= 2 for v in used.values())  # the slots shared the work


def test_episodes_carry_what_ppo_needs(ray_local):
    algo = _runner_config().build_algo()
    try:
        episodes = algo.env_runner.sample(num_episodes=5, explore=True)
    finally:
        algo.stop()
    for e in episodes:
        n = len(e)
        assert len(e.get_actions()) == n and len(e.get_observations()) == n + 1
        for key in ("action_logp", "action_dist_inputs"):
            assert len(e.get_extra_model_outputs(key)) == n, key
        assert e.custom_data["return"] == pytest.approx(float(sum(e.get_rewards())))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"gym_env_vectorize_mode": "async"}, "gym_env_vectorize_mode must be 'sync'"),
        ({"env_runner_cls": object}, "env_runner_cls must be EpisodeEnvRunner"),
    ],
)
def test_config_rejects_runners_that_would_bias_the_sample(change, match):
    with pytest.raises(ValueError, match=match):
        _runner_config(**change).validate()
