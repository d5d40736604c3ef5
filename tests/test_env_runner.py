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


def _episodes(task: str, batched: bool, n: int, calls: int = 2):
    config = (
        MRPOConfig()
        .environment(task)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=K)
        .training(selection="dr", episodes_per_iteration=n)
        .debugging(seed=SEED)
    )
    algo = config.build_algo()
    try:
        runner = algo.env_runner
        assert runner._batched_path_applies()  # the default pipelines take the batched loop
        runner._batched_ok = batched  # False: RLlib's connector loop, the reference
        batches = [runner.sample(num_episodes=n, explore=explore) for explore in (True, False)[:calls]]
        return batches, runner._env_to_module.get_state()
    finally:
        algo.stop()


@pytest.mark.parametrize("task", ["CartPole", "Hopper"])
def test_batched_loop_gives_the_connector_loops_episodes(task, ray_local):
    """Same seed: the batched loop returns the episodes RLlib's connector loop returns, bit
    for bit (observations as normalised by the filter, actions, rewards, infos, the model
    outputs PPO needs), explore and inference alike, and leaves the same filter state.
    n > K: slots are reused."""
    import numpy as np

    reference, ref_state = _episodes(task, batched=False, n=2 * K + 1)
    batched, state = _episodes(task, batched=True, n=2 * K + 1)
    for ref_batch, batch in zip(reference, batched, strict=True):
        assert len(ref_batch) == len(batch) == 2 * K + 1
        for a, b in zip(ref_batch, batch, strict=True):
            assert (
                len(a) == len(b) and a.is_terminated == b.is_terminated and a.is_truncated == b.is_truncated
            )
            for get in ("get_observations", "get_actions", "get_rewards"):
                x, y = getattr(a, get)(), getattr(b, get)()
                assert x.dtype == y.dtype and np.array_equal(x, y), get
            # the reference also carries RLlib's weights_seq_no column, which nothing here reads
            assert set(b.extra_model_outputs) == set(a.extra_model_outputs) - {"weights_seq_no"}
            for key in b.extra_model_outputs:
                assert np.array_equal(a.get_extra_model_outputs(key), b.get_extra_model_outputs(key)), key
            assert a.get_infos() == b.get_infos()
            assert a.custom_data["return"] == b.custom_data["return"]
            assert a.observation_space == b.observation_space and b.is_numpy
    filt = ref_state["BatchMeanStdFilter"][None]["running_stats"][0]
    assert filt["num_pushes"] == sum(len(e) + 1 for b in batched for e in b)  # every obs counted once
    assert repr(ref_state) == repr(state)


def test_a_step_callback_takes_the_connector_loop(ray_local):
    """A callback that acts on every env step needs the episode after every step: the
    batched loop, which builds episodes at their end, is not used then."""
    from mrpo_rllib.algorithms.callbacks import MRPOCallbacks

    class StepCounter(MRPOCallbacks):
        def on_episode_step(self, *, episode, **kwargs):
            episode.custom_data["steps"] = episode.custom_data.get("steps", 0) + 1

    algo = _runner_config().callbacks(StepCounter).build_algo()
    try:
        assert not algo.env_runner._batched_path_applies()
        episodes = algo.env_runner.sample(num_episodes=3, explore=True)
        assert [e.custom_data["steps"] for e in episodes] == [len(e) for e in episodes]
    finally:
        algo.stop()
