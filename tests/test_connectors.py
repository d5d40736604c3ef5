"""The batched observation filter and action unsquashing against RLlib's per-item ones."""

import copy

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.connectors.env_to_module import MeanStdFilter
from ray.rllib.connectors.module_to_env.normalize_and_clip_actions import NormalizeAndClipActions
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.filter import RunningStat

from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter, BatchNormalizeAndClipActions, push_batch

FIELDS = ("mean_array", "sum_sq_diff_array", "mean_delta_array", "sum_sq_diff_delta_array")


def _assert_same_stat(a: RunningStat, b: RunningStat):
    assert (a.num_pushes, a.num_pushes_delta) == (b.num_pushes, b.num_pushes_delta)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-9, atol=1e-9, err_msg=f)


@pytest.mark.parametrize("prior", [0, 1, 37])
def test_push_batch_leaves_the_state_of_pushing_one_by_one(prior):
    rng = np.random.default_rng(prior)
    one, batched = RunningStat((3,)), RunningStat((3,))
    for x in rng.normal(5.0, 3.0, size=(prior, 3)):
        one.push(x)
        batched.push(x)
    # a merge across runners resets the delta fields; pushes continue from there
    for rs in (one, batched):
        rs.num_pushes_delta = 0
        rs.mean_delta_array[...] = 0
        rs.sum_sq_diff_delta_array[...] = 0
    for b in (1, 16, 5):
        xs = rng.normal(-2.0, 10.0, size=(b, 3))
        for x in xs:
            one.push(x)
        push_batch(batched, xs)
        _assert_same_stat(one, batched)
    np.testing.assert_allclose(batched.std, one.std, rtol=1e-6)


def _episodes(obs_rows, space):
    eps = []
    for row in obs_rows:
        ep = SingleAgentEpisode(observation_space=space)
        ep.add_env_reset(observation=row)
        eps.append(ep)
    return eps


def test_batched_filter_keeps_rllibs_state_and_normalises_with_it():
    space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    ours, theirs = BatchMeanStdFilter(), MeanStdFilter()
    for f in (ours, theirs):
        f.input_observation_space, f.input_action_space = space, gym.spaces.Discrete(2)
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 10.0, 0.1, 100.0], np.float32)
    for b in (16, 16, 9, 1, 16):
        obs = (rng.normal(size=(b, 4)) * scale + 3.0).astype(np.float32)
        eps_ours, eps_theirs = _episodes(obs, space), _episodes(obs, space)
        ours(rl_module=None, batch={}, episodes=eps_ours)
        theirs(rl_module=None, batch={}, episodes=eps_theirs)
    # the same statistics, in RLlib's state format (checkpoints and merges across runners)
    s_ours, s_theirs = ours.get_state(), theirs.get_state()
    assert s_ours.keys() == s_theirs.keys()
    for a, b in zip(s_ours[None]["running_stats"], s_theirs[None]["running_stats"], strict=True):
        _assert_same_stat(RunningStat.from_state(a), RunningStat.from_state(b))
    # the last batch: every observation normalised with the statistics after the batch
    rs = ours._filters[None].running_stats
    want = np.clip((obs - rs.mean) / (rs.std + 1e-8), -10, 10)
    got = np.stack([ep.get_observations(-1) for ep in eps_ours])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # RLlib's per-item filter used statistics that grew within the batch: close, not equal
    theirs_last = np.stack([ep.get_observations(-1) for ep in eps_theirs])
    np.testing.assert_allclose(got, theirs_last, atol=0.2)
    assert not np.array_equal(got, theirs_last)


def test_batched_filter_can_freeze_its_statistics():
    space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    f = BatchMeanStdFilter(update_stats=False)
    f.input_observation_space, f.input_action_space = space, gym.spaces.Discrete(2)
    eps = _episodes(np.ones((3, 2), np.float32), space)
    f(rl_module=None, batch={}, episodes=eps)
    assert f._filters[None].running_stats.num_pushes == 0


def _unbatched_actions(actions):
    """Actions as UnBatchToIndividualItems leaves them: {(episode_id,): [action]}."""
    return {(f"ep{i}",): [a] for i, a in enumerate(actions)}


@pytest.mark.parametrize(
    "space, actions",
    [
        # bounds other than [-1, 1] and samples outside [-1, 1]: unsquashed, then clipped
        (gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 5.0], np.float32)), "normal"),
        (gym.spaces.Box(-1.0, 1.0, (3,), np.float32), "normal"),
        (gym.spaces.Box(-np.inf, np.inf, (2,), np.float32), "normal"),  # unbounded: unchanged
        (gym.spaces.Discrete(3), "discrete"),
        # not batched: RLlib's own code runs (an integer Box is shifted by its low bound)
        (gym.spaces.Box(2, 5, (2,), np.int64), "ints"),
        (gym.spaces.MultiDiscrete([3, 2]), "ints"),
    ],
)
@pytest.mark.parametrize("normalize", [True, False])
def test_batched_actions_equal_rllibs(space, actions, normalize):
    rng = np.random.default_rng(1)
    if actions == "discrete":
        acts = [int(a) for a in rng.integers(0, 3, size=16)]
    elif actions == "ints":
        acts = list(rng.integers(0, 2, size=(16, 2)))
    else:
        acts = list((rng.normal(size=(16, space.shape[0])) * 2).astype(np.float32))
    theirs = NormalizeAndClipActions(
        gym.spaces.Box(-1, 1, (1,)), space, normalize_actions=normalize, clip_actions=True
    )
    ours = BatchNormalizeAndClipActions.replacing(theirs)
    batch_theirs = {Columns.ACTIONS: _unbatched_actions(copy.deepcopy(acts))}
    batch_ours = {Columns.ACTIONS: _unbatched_actions(copy.deepcopy(acts))}
    theirs(rl_module=None, batch=batch_theirs, episodes=[])
    ours(rl_module=None, batch=batch_ours, episodes=[])
    assert batch_ours[Columns.ACTIONS_FOR_ENV].keys() == batch_theirs[Columns.ACTIONS_FOR_ENV].keys()
    for k, want in batch_theirs[Columns.ACTIONS_FOR_ENV].items():
        np.testing.assert_allclose(
            np.asarray(batch_ours[Columns.ACTIONS_FOR_ENV][k]), np.asarray(want), rtol=1e-6
        )
    # the sampled actions (what PPO trains on) are left as they were
    for k, a in batch_ours[Columns.ACTIONS].items():
        np.testing.assert_array_equal(np.asarray(a), np.asarray(batch_theirs[Columns.ACTIONS][k]))
    if actions == "normal" and space.is_bounded():  # samples beyond ±1 end on the bounds
        out = np.stack([a for v in batch_ours[Columns.ACTIONS_FOR_ENV].values() for a in v])
        assert (out >= space.low).all() and (out <= space.high).all() and (out == space.high).any()


def test_env_runner_uses_the_batched_pieces(ray_local):
    from mrpo_rllib.algorithms import MRPOConfig

    algo = MRPOConfig().environment("InvertedPendulum").env_runners(num_env_runners=0).build_algo()
    try:
        runner = algo.env_runner
        kinds = [type(c) for c in runner._module_to_env.connectors]
        assert BatchNormalizeAndClipActions in kinds and NormalizeAndClipActions not in kinds
        assert any(isinstance(c, BatchMeanStdFilter) for c in runner._env_to_module.connectors)
        episodes = runner.sample(num_episodes=20, explore=True)
        actions = np.concatenate([e.get_actions() for e in episodes])
        assert len(episodes) == 20 and np.isfinite(actions).all()
        # the filter saw every observation of every episode, terminal ones included
        seen = runner._env_to_module.get_state()
        (filt,) = [v for k, v in seen.items() if "MeanStdFilter" in k]
        assert filt[None]["running_stats"][0]["num_pushes"] == sum(len(e) + 1 for e in episodes)
    finally:
        algo.stop()


def test_pieces_are_rebuilt_from_a_checkpoint_with_their_settings(tmp_path):
    from ray.rllib.utils.checkpoints import Checkpointable

    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    actions = BatchNormalizeAndClipActions(box, box, normalize_actions=False, clip_actions=True)
    actions.save_to_path(tmp_path / "actions")
    a = Checkpointable.from_checkpoint(tmp_path / "actions")
    assert type(a) is BatchNormalizeAndClipActions and (a.normalize_actions, a.clip_actions) == (False, True)
    # the filter is restored inside its pipeline, which gives it its spaces (test_evaluate)
    filt = BatchMeanStdFilter(clip_by_value=5.0, update_stats=False)
    args, kwargs = filt.get_ctor_args_and_kwargs()
    f = BatchMeanStdFilter(*args, **kwargs)
    assert (f.clip_by_value, f._update_stats, f._multi_agent) == (5.0, False, False)
