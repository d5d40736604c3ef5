"""The parts of RLlib and Ray Tune that this project relies on but that are not public API.

:class:`~mrpo_rllib.algorithms.env_runner.EpisodeEnvRunner` mirrors RLlib's own sampling loop
and reuses its helpers, the batched connectors keep RLlib's state format, evaluation freezes
the observation filter, and the ledger finds the trial's storage. A Ray upgrade may rename
any of these without notice: ``tests/test_rllib_private.py`` checks every member listed here
on the installed Ray and names the ones that are gone, before anything else breaks in a less
readable way. Keep this list complete when the code starts to rely on a new private member.

Each entry: (what owns it, member names, how the test reaches it):

- ``"class"``: an attribute of the class (methods);
- ``"runner"``: an attribute of a built ``EpisodeEnvRunner`` instance;
- ``"filter"``: an attribute of the built observation filter connector;
- ``"running_stat"``: an attribute of the filter's ``RunningStat``;
- ``"episode"``: an attribute of a ``SingleAgentEpisode`` after its reset;
- ``"learner"``: an attribute of a built ``MRPOTorchLearner`` instance;
- ``"module"``: an attribute of the env runner's RLModule;
- ``"wandb"``: an attribute of Tune's ``WandbLoggerCallback`` class.
"""

from __future__ import annotations

PRIVATE_MEMBERS: dict[str, tuple[str, tuple[str, ...]]] = {
    # ray.rllib.env.single_agent_env_runner.SingleAgentEnvRunner: the sampling loop's helpers
    "SingleAgentEnvRunner methods": (
        "class",
        (
            "_sample",
            "_new_episode",
            "_make_on_episode_callback",
            "_log_env_steps",
            "_increase_sampled_metrics",
        ),
    ),
    "SingleAgentEnvRunner state": (
        "runner",
        (
            "_env_to_module",
            "_module_to_env",
            "_ongoing_episodes_for_metrics",
            "_done_episodes_for_metrics",
            "_cached_to_module",
            "_weights_seq_no",
            "_seed",
            "_metrics_num_env_steps_sampled",
            "_callbacks",
        ),
    ),
    # ray.rllib.env.single_agent_episode.SingleAgentEpisode: the batched loop builds each
    # episode once at its end and carries over the start time of the one the callbacks saw
    "SingleAgentEpisode timing": ("episode", ("_start_time", "_last_step_time")),
    # ray.rllib.core.rl_module.torch.TorchRLModule: BatchActor calls the forward passes
    # without RLlib's eval/train switch around every call (the module stays in eval mode)
    "TorchRLModule forward passes": ("module", ("_forward_exploration", "_forward_inference")),
    # ray.air.integrations.wandb.WandbLoggerCallback: mrpo_rllib.tracking starts each trial's
    # W&B run with the experiment file as its config
    "WandbLoggerCallback methods": ("wandb", ("_start_logging_actor",)),
    # ray.rllib.core.learner.torch.torch_learner.TorchLearner: MRPOTorchLearner.apply_gradients
    "TorchLearner state": (
        "learner",
        ("_params", "_module_optimizers", "_lr_scheduler_classes", "_grad_scalers"),
    ),
    # ray.rllib.connectors.env_to_module.MeanStdFilter (subclassed by BatchMeanStdFilter;
    # frozen by mrpo evaluate)
    "MeanStdFilter state": ("filter", ("_filters", "_init_new_filters", "_update_stats", "_multi_agent")),
    # ray.rllib.utils.filter.RunningStat, updated in place by the batched filter
    "RunningStat fields": (
        "running_stat",
        (
            "num_pushes",
            "num_pushes_delta",
            "mean_array",
            "mean_delta_array",
            "sum_sq_diff_array",
            "sum_sq_diff_delta_array",
        ),
    ),
}

# Behaviour rather than names, also checked by the tests:
# - RLlib's PPO learner connector adds one bootstrap row per episode to the train batch
#   (MRPO._minibatching sizes minibatches as (kept timesteps + kept episodes) / n; checked
#   by tests/test_algorithms.py::test_learner_trained_on_exactly_the_kept_timesteps);
# - a Tune Trainable's ``_storage.trial_fs_path`` is its trial directory on the storage
#   (where the episode ledger goes; checked by the sweep tests that read episodes.csv).
