"""Every private RLlib member the project relies on still exists on the installed Ray
(mrpo_rllib/algorithms/rllib_private.py): a Ray upgrade that renames one fails here, by name."""

import importlib

from ray.air.integrations.wandb import WandbLoggerCallback
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.tune import Trainable
from ray.tune.logger import CSVLoggerCallback

from mrpo_rllib.algorithms import MRPOConfig
from mrpo_rllib.algorithms.connectors import BatchNormalizeAndClipActions
from mrpo_rllib.algorithms.env_runner import EpisodeEnvRunner
from mrpo_rllib.algorithms.learner import MRPOTorchLearner
from mrpo_rllib.algorithms.rllib_private import PRIVATE_MEMBERS


class _Trainable(Trainable):
    def step(self):
        return {}


def _owners():
    config = MRPOConfig().environment("Hopper").env_runners(num_envs_per_env_runner=2)
    runner = EpisodeEnvRunner(config=config, worker_index=0)
    try:
        runner.sample(num_episodes=2, explore=True)  # the filter's statistics exist once it ran
        filt = runner._env_to_module.connectors[0]
        stat = filt._filters[None].running_stats
        episode = SingleAgentEpisode()
        episode.add_env_reset(observation=0)
        spaces = {"default_policy": (runner.env.single_observation_space, runner.env.single_action_space)}
        learner = MRPOTorchLearner(config=config, module_spec=config.get_multi_rl_module_spec(spaces=spaces))
        learner.build()
        (actions,) = [
            c for c in runner._module_to_env.connectors if isinstance(c, BatchNormalizeAndClipActions)
        ]
        trainable = _Trainable()
        trainable.stop()
        owners = {
            "class": SingleAgentEnvRunner,
            "runner": runner,
            "filter": filt,
            "running_stat": stat,
            "episode": episode,
            "learner": learner,
            "module": runner.module,
            "wandb": WandbLoggerCallback,
            "config_class": PPOConfig,
            "actions": actions,
            "trainable": trainable,
            "csv_logger": CSVLoggerCallback(),
            "autoscaler_util": importlib.import_module("ray.autoscaler._private.util"),
        }
        return owners, runner
    except Exception:
        runner.stop()
        raise


def test_every_private_member_is_still_there():
    owners, runner = _owners()
    try:
        missing = [
            f"{what}: {name}"
            for what, (owner, names) in PRIVATE_MEMBERS.items()
            for name in names
            if not hasattr(owners[owner], name)
        ]
    finally:
        runner.stop()
    assert not missing, (
        "RLlib no longer has these members that mrpo_rllib relies on (see "
        f"mrpo_rllib/algorithms/rllib_private.py): {missing}"
    )


def test_the_check_names_a_missing_member(monkeypatch):
    """The check above can fail: a member removed from the class is reported."""
    monkeypatch.delattr(SingleAgentEnvRunner, "_new_episode")
    owners = {"class": SingleAgentEnvRunner}
    names = PRIVATE_MEMBERS["SingleAgentEnvRunner methods"][1]
    assert [n for n in names if not hasattr(owners["class"], n)] == ["_new_episode"]
