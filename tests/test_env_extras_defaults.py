"""Extra physical parameters (power, link masses, cart mass) and ``randomize=``: the default behaviour is unchanged (Table 1 with its ranges, a trajectory recorded before the extra parameters existed) and the corners of the extra ranges are finite.

Every expectation here is computed without the code under test: masses from pybullet_data's
MJCF loaded in a fresh pybullet client (or from the capsule formula of the pendula's
geometry), torques from actions, ranges and names written out as literals, and the
default behaviour from a trajectory recorded with the code before the extra parameters
existed (``MAIN_TRAJECTORIES``).
"""

import gymnasium as gym
import numpy as np
import pytest

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import TASKS, get_task
from task_ranges import range_corners

# -- the default behaviour is unchanged ------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_table_one_with_its_ranges_runs_exactly_as_the_default(task):
    spec = get_task(task)
    ranges = {p.name: {"train": p.train, "test": p.test} for p in spec.params}
    for params in (None, "test"):
        kwargs = {} if params is None else {"params": params}
        a = gym.make(spec.env_id, **kwargs)
        b = gym.make(spec.env_id, randomize=ranges, **kwargs)
        rng = np.random.default_rng(0)
        for seed in (0, 1):
            oa, ia = a.reset(seed=seed)
            ob, ib = b.reset(seed=seed)
            assert oa.tobytes() == ob.tobytes() and ia == ib
            for _ in range(60):
                act = (
                    a.action_space.sample()
                    if task == "CartPole"
                    else rng.uniform(-1, 1, a.action_space.shape).astype(np.float32)
                )
                ra, rb = a.step(act), b.step(act)
                assert ra[0].tobytes() == rb[0].tobytes() and ra[1:] == rb[1:]
                if ra[2]:
                    break
        a.close()
        b.close()


@pytest.mark.parametrize("task", list(TASKS))
def test_default_trajectory_as_recorded_before_the_extra_parameters(task):
    """``gym.make(id)``, reset(seed=2024), 8 steps of actions from default_rng(1): the numbers
    the code before the extra parameters produced (recorded with main's code at 0baa122)."""
    rec = MAIN_TRAJECTORIES[task]
    env = gym.make(f"mrpo/{task}-v0")
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=2024)
    assert info["env_params"] == rec["env_params"]  # exactly: the same RNG stream and names
    observed, rewards = [obs], []
    for t in range(8):
        if task == "CartPole":
            a = int(rng.integers(2))
        else:
            a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, r, term, trunc, step_info = env.step(a)
        assert not term and not trunc and step_info["env_params"] == rec["env_params"]
        rewards.append(r)
        if t in (3, 7):
            observed.append(obs)
    np.testing.assert_allclose(np.array(observed), np.array(rec["obs"], np.float32), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rewards, rec["rewards"], rtol=1e-9, atol=1e-6)
    env.close()


# -- corners of the extra parameters' ranges ------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_corners_of_the_extra_ranges_are_finite(task):
    spec = get_task(task)
    derived = spec.randomizing({p.name: {"train": p.train, "test": p.test} for p in spec.extra_params})
    env = gym.make(
        spec.env_id, randomize={p.name: {"train": p.train, "test": p.test} for p in spec.extra_params}
    )
    rng = np.random.default_rng(0)
    for which in ("train", "test"):
        for params in range_corners(derived, which):
            obs, info = env.reset(seed=1, options={"env_params": params})
            assert info["env_params"] == params and np.isfinite(obs).all()
            for _ in range(300):
                a = (
                    int(rng.integers(2))
                    if task == "CartPole"
                    else rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                )
                obs, r, term, trunc, _ = env.step(a)
                assert np.isfinite(obs).all() and np.isfinite(r), (which, params)
                if term or trunc:
                    env.reset(options={"env_params": params})
    env.close()


MAIN_TRAJECTORIES = {
    "Walker2d": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6929433628479926},
        "obs": [  # after reset, step 4, step 8 (float32)
            [
                0.0,
                0.0,
                1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                -0.0,
                0.9708864,
                0.0,
                1.045755,
                0.0,
                0.12625496,
                0.0,
                0.94533706,
                0.0,
                0.935634,
                0.0,
                -0.08127755,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.019631425,
                0.0,
                1.0,
                -0.16527717,
                0.0,
                -0.28021455,
                0.0,
                -0.06977389,
                0.893749,
                -0.7328003,
                1.0380408,
                -0.006775556,
                0.01781828,
                -0.013105599,
                0.8589936,
                -0.8197901,
                0.9290559,
                0.1239707,
                0.065537386,
                0.4617885,
                0.0,
                1.0,
            ],
            [
                -0.062119808,
                0.0,
                1.0,
                -0.21576129,
                0.0,
                -0.28922758,
                0.0,
                -0.44799775,
                0.6213955,
                -0.7297591,
                0.94053143,
                -0.34918743,
                0.15674174,
                0.40201426,
                0.5325955,
                -1.011489,
                0.9013327,
                0.16097099,
                0.57746994,
                0.564319,
                1.0,
                0.0,
            ],
        ],
        "rewards": [
            -0.02715155868999558,
            0.48686948352635034,
            1.2392673541801609,
            1.3664733478155455,
            1.5935878949805735,
            1.3465752290818087,
            1.2183948405368281,
            2.738987653696068,
        ],
    },
    "Hopper": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6285939207429546},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.0, 0.9708864, 0.0, 1.045755, 0.0, 0.12625496, 0.0, 0.0],
            [
                -0.016079994,
                0.0,
                1.0,
                -0.20748799,
                0.0,
                -0.3156514,
                0.0,
                -0.10368651,
                0.87308794,
                -1.1904384,
                1.0030417,
                -0.02413012,
                -0.096170865,
                0.38597438,
                0.0,
            ],
            [
                -0.13772589,
                0.0,
                1.0,
                -0.07684426,
                0.0,
                -1.1508993,
                0.0,
                -0.9392688,
                0.277515,
                -1.3036846,
                0.7211109,
                -1.0694962,
                0.4471465,
                0.9912494,
                1.0,
            ],
        ],
        "rewards": [
            0.5004445320733697,
            -0.16701160629895,
            1.5793716437149958,
            2.3681756189477587,
            4.458043046010423,
            4.602021898880512,
            3.799609153864281,
            4.321934757183984,
        ],
    },
    "HalfCheetah": {
        "env_params": {"density": 1087.9156689906408, "friction": 0.6393625625384282},
        "obs": [  # after reset, step 4, step 8 (float32)
            [
                0.0,
                0.0,
                1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                -0.0,
                -0.38612688,
                0.0,
                0.07629709,
                0.0,
                -0.15753517,
                0.0,
                0.24212727,
                0.0,
                -0.029786853,
                0.0,
                1.1686891,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.041725222,
                0.0,
                1.0,
                -0.10886915,
                0.0,
                -0.25639606,
                0.0,
                -0.036852594,
                -0.42121926,
                -0.25400808,
                0.41814223,
                0.29471985,
                -1.0226772,
                0.3510788,
                0.3197031,
                -0.10256211,
                -0.10793187,
                -0.07454102,
                1.1133966,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            [
                -0.11196718,
                0.0,
                1.0,
                -0.14951734,
                0.0,
                -0.32786554,
                0.0,
                -0.030631598,
                -0.549638,
                -0.22721605,
                0.49643362,
                -0.17715138,
                -0.25622386,
                1.5199193,
                0.22596714,
                -0.3792858,
                -0.14718221,
                0.16110082,
                1.1133966,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        ],
        "rewards": [
            0.2769566475641607,
            0.8160640207082932,
            0.5906282732902802,
            0.5694095315666918,
            0.6325635409242832,
            0.7200123280697821,
            0.560671977697757,
            0.34771510187467713,
        ],
    },
    "InvertedPendulum": {
        "env_params": {"cart_size": 0.18516626759625637, "pole_length": 0.8214848018573865},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, 0.9992739, -0.03810037, 0.0],
            [0.0009630378, 0.02819403, 0.9991486, -0.041256174, -0.084688604],
            [0.0025612956, 0.028547075, 0.99883795, -0.048194733, -0.12920287],
        ],
        "rewards": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    },
    "InvertedDoublePendulum": {
        "env_params": {"pole1_length": 0.8379156689906408, "pole2_length": 0.6071616006191288},
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.0, 0.0, -0.025312329, 0.9992739, -0.03810037, 0.0, 0.9982069, 0.059857417, 0.0],
            [
                0.010657839,
                0.31231782,
                -0.02600821,
                0.99841577,
                -0.0562672,
                -0.5205381,
                0.9960497,
                0.088797644,
                0.8107505,
            ],
            [
                0.028741486,
                0.3261748,
                -0.028595096,
                0.9957974,
                -0.09158338,
                -0.65997386,
                0.9883774,
                0.15202016,
                1.216399,
            ],
        ],
        "rewards": [
            9.358904423719196,
            9.35886957412168,
            9.358469129291045,
            9.358278551372665,
            9.357608362046681,
            9.35697489393137,
            9.35627940271307,
            9.354956048025148,
        ],
    },
    "CartPole": {
        "env_params": {
            "force_mag": 13.840795421644355,
            "pole_length": 0.25360704117634475,
            "pole_mass": 0.3163575105728748,
        },
        "obs": [  # after reset, step 4, step 8 (float32)
            [0.02994661, 0.04958021, -0.03577682, -0.042127445],
            [0.034087803, 0.5676754, -0.042025637, -1.6433213],
            [0.05929119, 0.5798175, -0.11805356, -1.8530518],
        ],
        "rewards": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    },
}
