"""Every key of an experiment file reaches what it sets (docs/cli.md: "any PPO setting can be
set there", "a key not given means MRPOConfig's default").

One experiment gives every key of the schema a value other than its default; the sweep is
handed to a stand-in for Tune's Tuner (no Ray), and each trial's config is rebuilt from
the param space exactly as RLlib's Algorithm builds it from Tune's dict
(``MRPOConfig().update_from_dict(config)``). The expectations are the values written in
this file, trial by trial. Mutants: tools/mutants.py ``key-*``, ``training-*``,
``variant-*`` (docs/testing_mutants.md).
"""

from __future__ import annotations

import contextlib
import itertools
import types

import pytest
import yaml

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.experiments import Training, parse_experiment

# Every key of `training:`, each with a valid value that is not MRPOConfig's default
# (num_minibatches and minibatch_size exclude each other: the second file has the latter).
TRAINING = {
    "lr": 0.0012,
    "num_epochs": 3,
    "num_minibatches": 5,
    "clip_param": 0.15,
    "gamma": 0.97,
    "lambda_": 0.9,
    "vf_loss_coeff": 0.7,
    "vf_clip_param": 12.0,
    "grad_clip": 0.7,
    "entropy_coeff": 0.01,
    "worst_fraction": 0.2,
    "epopt_alpha": 0.3,
    "epopt_warmup_iters": 4,
    "use_kl_loss": True,
    "kl_coeff": 0.3,
    "episodes_per_iteration": 12,
    "weight_init": "orthogonal",
    "adam_epsilon": 1e-5,
    "reward_scaling": True,
}
SETTINGS = {"a": {"lr": 0.002}, "b": {"num_epochs": 5}}
RANDOMIZE = {"friction": [0.6, 1.0], "power": {"train": [0.8, 1.2], "test": [0.5, 0.8]}}
FILE = {
    "name": "promises",
    "task": "Hopper",
    "algorithms": ["dr", "mrpo", "epopt"],
    "seeds": [3, 5],
    "budget": {"iterations": 4},
    "randomize": RANDOMIZE,
    "kappa": [{"start": 0.25, "end": 1.5, "ramp_iters": 6}, 3.0],
    "env_runners_per_trial": 1,
    "envs_per_env_runner": 3,
    "training": TRAINING,
    "settings": SETTINGS,
    "checkpoint_every": 3,
    "max_failures": 1,
    "max_concurrent_trials": 2,
    "evaluation": {"points": 4, "episodes": 2},
}
# the trials, by hand: setting x algorithm x κ (MRPO only) x seed, seed by seed
KAPPAS = {"dr": [("none", 0.0, 0.0, 0)], "epopt": [("none", 0.0, 0.0, 0)]}
KAPPAS["mrpo"] = [("0.25-1.5", 0.25, 1.5, 6), ("3", 3.0, 3.0, 0)]
EXPECTED = [
    (f"{algo}__Hopper__kappa{label}__seed{seed}__{setting}", algo, seed, (k0, k1, ramp), setting)
    for seed in (3, 5)
    for setting in ("a", "b")
    for algo in ("dr", "mrpo", "epopt")
    for label, k0, k1, ramp in KAPPAS[algo]
]


class _Tuner:
    """Stands in for ``ray.tune.Tuner``: records what the sweep would run."""

    seen: list = []

    def __init__(self, trainable, *, param_space, tune_config, run_config):
        _Tuner.seen.append(types.SimpleNamespace(param_space=param_space, tune=tune_config, run=run_config))

    @classmethod
    def can_restore(cls, path):
        return False

    def fit(self):
        return []


@pytest.fixture
def swept(tmp_path, monkeypatch):
    """``run(data)``: run_sweep on the experiment ``data`` into tmp_path, Tune stood in for."""
    import ray.tune

    import mrpo_rllib.sweep as sweep

    monkeypatch.setattr(ray.tune, "Tuner", _Tuner)
    monkeypatch.setattr(sweep, "ray_session", lambda **kw: contextlib.nullcontext())
    _Tuner.seen = []

    def run(data):
        sweep.run_sweep(parse_experiment(data, "promises.yaml"), str(tmp_path), echo=lambda *a: None)
        (seen,) = _Tuner.seen
        variants = seen.param_space["variant"]["grid_search"]
        configs = [MRPOConfig().update_from_dict({**seen.param_space, "variant": v}) for v in variants]
        return seen, variants, configs

    return run


def test_the_file_sets_every_key_to_something_else_than_its_default():
    """The test below is only as good as this: every key given, none at its default."""
    from mrpo_rllib.experiments import Experiment

    assert set(FILE) == set(Experiment.model_fields)
    assert set(TRAINING) | {"minibatch_size"} == set(Training.model_fields)
    default = MRPOConfig()
    for key, value in TRAINING.items():
        assert getattr(default, key) != value, key
    assert default.num_env_runners != 1 and default.num_envs_per_env_runner != 3
    assert (default.kappa_start, default.kappa_end, default.kappa_ramp_iters) != (0.25, 1.5, 6)


def test_every_key_reaches_each_trials_config_and_tune(swept, tmp_path):
    seen, variants, configs = swept(FILE)
    # the trials: names, algorithm, seed, κ, setting, in order (seed by seed)
    assert [v["name"] for v in variants] == [e[0] for e in EXPECTED]
    for (name, algo, seed, kappa, setting), config in zip(EXPECTED, configs, strict=True):
        assert config.selection == algo, name
        assert config.seed == seed, name
        assert (config.kappa_start, config.kappa_end, config.kappa_ramp_iters) == kappa, name
        assert config.env_config == {"task": "Hopper", "params": None, "randomize": RANDOMIZE}, name
        assert config.task_spec.param_names == ("friction", "power")
        assert config.episodes_per_iteration == 12
        assert (config.num_env_runners, config.num_envs_per_env_runner) == (1, 3)
        for key, value in {**TRAINING, **SETTINGS[setting]}.items():
            assert getattr(config, key) == value, (name, key)
    # Tune: the budget, checkpoints, retries, concurrency, storage
    assert seen.run.name == "promises" and seen.run.storage_path == str(tmp_path)
    assert seen.run.stop == {"training_iteration": 4}
    assert seen.run.checkpoint_config.checkpoint_frequency == 3
    assert seen.run.checkpoint_config.checkpoint_at_end is True
    assert seen.run.failure_config.max_failures == 1
    assert seen.tune.max_concurrent_trials == 2
    # the experiment as run, kept with the sweep, and what the report reads from it
    saved = yaml.safe_load((tmp_path / "promises" / "experiment.yaml").read_text())
    assert saved == FILE
    from mrpo_rllib.report import _experiment_eval_defaults

    sweep_dir = str(tmp_path / "promises")
    assert _experiment_eval_defaults([types.SimpleNamespace(sweep_dir=sweep_dir)]) == (4, 2)


def test_minibatch_size_and_the_other_budget(swept):
    data = {
        "name": "promises",
        "task": "CartPole",
        "algorithms": ["mrpo"],
        "seeds": [0],
        "budget": {"env_steps": 5000},
        "training": {"minibatch_size": 64},
    }
    seen, _, (config,) = swept(data)
    assert (config.minibatch_size, config.num_minibatches) == (64, None)
    assert seen.run.stop == {"num_env_steps_sampled_lifetime": 5000}


def test_not_given_is_mrpo_configs_default_in_every_trial(swept):
    """The other half of the promise: keys left out are MRPOConfig's, whatever the others."""
    data = {
        "name": "p",
        "task": "CartPole",
        "algorithms": ["mrpo", "dr"],
        "seeds": [1],
        "budget": {"iterations": 1},
    }
    seen, _, configs = swept(data)
    default = MRPOConfig()
    for config, key in itertools.product(configs, Training.model_fields):
        assert getattr(config, key) == getattr(default, key), key
    assert seen.run.checkpoint_config.checkpoint_frequency == 10 and seen.run.failure_config.max_failures == 3
    assert seen.tune.max_concurrent_trials is None
