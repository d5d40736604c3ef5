"""Every default has one owner: the command line and the experiment schema restate none.

- ``mrpo``'s options default to None (not passed on: the callee's default applies), apart
  from the few the command line owns itself (:data:`CLI_OWNED`); choices come from the
  module that owns them.
- ``training:`` of the experiment schema is read off ``MRPOConfig.training``'s signature: a
  new keyword of the config is a key of the schema with no listing of its own, and no key
  has a default of the schema's (not given = MRPOConfig's).
- The Makefile passes ``mrpo train``'s options only when a variable is set.
"""

from __future__ import annotations

import argparse
import inspect
import pathlib
import re

import pytest
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.ppo import PPOConfig

from mrpo_rllib import cli, evaluate, worst_case
from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.envs.tasks import RANGES
from mrpo_rllib.experiments import RLLIB_TRAINING, TRIAL_KEYWORDS, Experiment, Training, parse_experiment
from mrpo_rllib.selection import SELECTIONS

ROOT = pathlib.Path(__file__).resolve().parents[1]
# (command, option): defaults the command line owns (no function or schema behind them)
CLI_OWNED = {
    ("train", "--iterations"): cli.TRAIN_ITERATIONS,  # `mrpo train`'s budget
    ("train", "--seed"): 0,  # the one-trial experiment's seed (the schema requires seeds)
    ("train", "--out"): cli.DEFAULT_OUT,
    ("evaluate", "--video-points"): "worst",
}


def _subcommands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_cli_options_default_to_none_unless_the_cli_owns_them():
    written = {}
    for command, p in _subcommands().items():
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
                continue
            if action.default in (None, []) or not action.option_strings:
                continue
            written[(command, action.option_strings[0])] = action.default
    assert written == CLI_OWNED


def test_cli_choices_are_the_owners():
    commands = _subcommands()

    def choices(command, option):
        (action,) = [a for a in commands[command]._actions if option in a.option_strings]
        return tuple(action.choices)

    assert choices("train", "--algo") == tuple(SELECTIONS)
    assert choices("worst-case", "--sampler") == worst_case.SAMPLERS
    assert choices("worst-case", "--range") == RANGES
    assert choices("evaluate", "--grid") == RANGES


def test_cli_help_quotes_the_owners_defaults():
    text = {c: p.format_help() for c, p in _subcommands().items()}
    assert f"(default {evaluate.DEFAULT_POINTS})" in text["evaluate"]
    assert f"(default {worst_case.DEFAULT_BUDGET})" in text["worst-case"]
    from mrpo_rllib.report.stats import LAST_ITERATIONS

    assert f"(default {LAST_ITERATIONS})" in text["report"]


def test_training_schema_is_mrpo_configs_signature():
    sig = inspect.signature(MRPOConfig.training)
    own = {n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(TRIAL_KEYWORDS) <= own
    assert set(Training.model_fields) == (own - set(TRIAL_KEYWORDS)) | set(RLLIB_TRAINING)
    # the RLlib settings are PPOConfig.training's keywords and attributes of the config
    rllib = set(inspect.signature(PPOConfig.training).parameters)
    rllib |= set(inspect.signature(AlgorithmConfig.training).parameters)
    default = MRPOConfig()
    for key in Training.model_fields:
        assert key in own or key in rllib, key
        assert hasattr(default, key), key
        # no default of the schema's: a key not given is not passed on
        assert Training.model_fields[key].default is None, key
    assert Training().kwargs() == {}


@pytest.mark.parametrize("key", sorted(Training.model_fields))
def test_not_given_keeps_the_configs_default_given_reaches_it(key):
    data = {"name": "d", "task": "CartPole", "algorithms": ["dr"], "seeds": [0], "budget": {"iterations": 1}}
    exp = parse_experiment(data, check=False)
    (trial,) = exp.trials()
    assert getattr(exp.trial_config(trial), key) == getattr(MRPOConfig(), key)


def test_the_schemas_own_defaults_are_written_once():
    """The experiment's own settings have their default in the schema alone; the evaluation
    grid's is evaluate's (the schema's keys default to None)."""
    own = {
        k: f.default
        for k, f in Experiment.model_fields.items()
        if not f.is_required() and f.default is not None
    }
    own = {k: v for k, v in own.items() if Experiment.model_fields[k].default_factory is None}
    assert own == {"checkpoint_every": 10, "max_failures": 3}
    ev = Experiment.model_fields["evaluation"].default_factory()
    assert (ev.points, ev.episodes) == (None, None)
    sig = inspect.signature(evaluate.evaluate).parameters
    assert (sig["points"].default, sig["episodes"].default) == (
        evaluate.DEFAULT_POINTS,
        evaluate.DEFAULT_EPISODES,
    )


def test_old_top_level_m_names_its_new_place():
    data = {"name": "d", "task": "CartPole", "algorithms": ["dr"], "seeds": [0], "budget": {"iterations": 1}}
    with pytest.raises(ValueError, match=r"moved under training: .*training: \{episodes_per_iteration: 7\}"):
        parse_experiment({**data, "episodes_per_iteration": 7}, "f.yaml", check=False)


def test_makefile_leaves_train_defaults_to_mrpo_train():
    text = (ROOT / "Makefile").read_text()
    for var in ("TASK", "ALGO", "ITERS", "EPISODES"):
        (value,) = re.findall(rf"^{var}\s*\?=(.*)$", text, re.M)
        assert value.strip() == "", var
