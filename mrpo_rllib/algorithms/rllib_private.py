"""The parts of RLlib and Ray Tune that this project relies on but that are not public API.

:class:`~mrpo_rllib.algorithms.env_runner.EpisodeEnvRunner` mirrors RLlib's own sampling loop
and reuses its helpers, the batched connectors keep RLlib's state format, evaluation freezes
the observation filter, and the ledger finds the trial's storage. A Ray upgrade may rename
any of these without notice: ``tests/test_rllib_private.py`` checks every member listed here
on the installed Ray and names the ones that are gone, before anything else breaks in a less
readable way. Keep this list complete when the code (or a test) starts to rely on a new
private member; use the public API where there is one (the observation filter is installed
with the public ``env_runners(env_to_module_connector=...)``).

Each entry: (what owns it, member names, how the test reaches it):

- ``"class"``: an attribute of the class (methods);
- ``"runner"``: an attribute of a built ``EpisodeEnvRunner`` instance;
- ``"filter"``: an attribute of the built observation filter connector;
- ``"running_stat"``: an attribute of the filter's ``RunningStat``;
- ``"episode"``: an attribute of a ``SingleAgentEpisode`` after its reset;
- ``"learner"``: an attribute of a built ``MRPOTorchLearner`` instance;
- ``"module"``: an attribute of the env runner's RLModule;
- ``"wandb"``: an attribute of Tune's ``WandbLoggerCallback`` class;
- ``"config_class"``: an attribute of RLlib's ``PPOConfig`` class;
- ``"actions"``: an attribute of the built action connector (``BatchNormalizeAndClipActions``);
- ``"trainable"``: an attribute of a Tune ``Trainable`` instance;
- ``"csv_logger"``: an attribute of a Tune ``CSVLoggerCallback`` instance;
- ``"autoscaler_util"``: a name in the module ``ray.autoscaler._private.util``.
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
    # ray.rllib.algorithms.algorithm_config.AlgorithmConfig: MRPOConfig extends the model
    # config RLlib adds for the env (free_log_std for the robot tasks)
    "AlgorithmConfig model config": ("config_class", ("_model_config_auto_includes",)),
    # ray.rllib.connectors.module_to_env.NormalizeAndClipActions (subclassed by
    # BatchNormalizeAndClipActions): the action space's bounds
    "NormalizeAndClipActions state": ("actions", ("_action_space_struct",)),
    # ray.tune.Trainable: the trial's storage, where the episode ledger goes
    # (selection_step.TrajectorySelection._ledger_path)
    "Trainable state": ("trainable", ("_storage",)),
    # ray.tune.logger.CSVLoggerCallback: mrpo_rllib.sweep's ContinuousCSVLogger reopens a
    # restarted trial's progress.csv with its own columns
    "CSVLoggerCallback members": (
        "csv_logger",
        ("_setup_trial", "_trial_continue", "_trial_files", "_trial_csv"),
    ),
    # ray.autoscaler._private.util: tests/test_cluster_config.py validates cluster/aws.yaml
    # with the autoscaler's own schema (no public validator)
    "autoscaler config validation": ("autoscaler_util", ("prepare_config", "validate_config")),
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
#   (where the episode ledger goes; checked by the sweep tests that read the ledger).
