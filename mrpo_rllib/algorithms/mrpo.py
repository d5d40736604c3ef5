"""MRPO, PW-DR (EPOpt) and PPO-DR: one PPO, three trajectory-selection rules.

``MRPOConfig(PPOConfig)`` adds the selection settings and owns every algorithm default;
``MRPO(TrajectorySelection, PPO)`` is RLlib's PPO with the selection step of
:mod:`~mrpo_rllib.algorithms.selection_step` as its ``training_step`` (plus
``get_default_config`` so that Tune builds the right config).

Returns enter the MRPO rule standardised by the batch (:func:`~mrpo_rllib.selection.
scale_returns`), parameters divided by the training-range widths
(:func:`~mrpo_rllib.envs.tasks.normalize_params`), so κ is dimensionless: κ = 1 trades
one standard deviation of this iteration's returns for one training-range width.
"""

from __future__ import annotations

import math

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.util import log_once

from mrpo_rllib import selection as sel
from mrpo_rllib.algorithms.callbacks import MRPOCallbacks
from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter
from mrpo_rllib.algorithms.env import ENV_NAME
from mrpo_rllib.algorithms.env_runner import EpisodeEnvRunner
from mrpo_rllib.algorithms.learner import MRPOTorchLearner
from mrpo_rllib.algorithms.selection_step import TrajectorySelection
from mrpo_rllib.envs import TaskSpec, get_task

# RLlib warns once per process that an algorithm runs on the new API stack: we use it on purpose.
log_once("MRPO_on_new_api_stack")

# Envs per env runner, stepped as one batch (see EpisodeEnvRunner); measured in `mrpo bench`.
DEFAULT_ENVS_PER_ENV_RUNNER = 16
# Gradient steps per epoch (equal optimiser effort); chosen by measurement, docs/decisions.md.
DEFAULT_NUM_MINIBATCHES = 32
# weight_init choices: torch's default layers (RLlib's), PPO2's orthogonal initialisation
WEIGHT_INITS = ("torch", "orthogonal")


def _obs_filter(*args, **kwargs):
    return BatchMeanStdFilter()


# PPO settings MRPOConfig.validate range-checks: name -> (test, what is expected)
_PPO_RANGES = {
    "lr": (lambda v: v > 0, "> 0"),
    "clip_param": (lambda v: v > 0, "> 0"),
    "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lambda_": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "vf_clip_param": (lambda v: v > 0, "> 0 (inf: no clamp)"),
    "vf_loss_coeff": (lambda v: v >= 0, ">= 0"),
    "kl_coeff": (lambda v: v >= 0, ">= 0"),
}


class MRPOConfig(PPOConfig):
    """PPOConfig plus the trajectory-selection settings of MRPO / EPOpt / DR.

    PPO defaults follow the paper's PPO (OpenAI baselines PPO2 in the authors' code) where
    RLlib's differ; ``docs/decisions.md`` gives the reason for each:

    - two 64-unit tanh layers, separate for policy and value; a state-independent log-std
      (``free_log_std``, initial std 1);
    - lr 3e-4, clip 0.2, the clipped objective alone (no KL penalty: ``use_kl_loss=False``),
      γ 0.99, λ 0.95, 10 epochs, entropy 0;
    - value-loss coefficient 0.5, no clamp on the value loss (``vf_clip_param=inf``;
      RLlib's 10 clamps the *squared* error), gradients clipped to global norm 0.5;
    - **equal optimiser effort**: ``num_minibatches`` gradient steps per epoch whatever
      the kept batch size (minibatch = ⌈rows / num_minibatches⌉), so every selection rule
      takes ``num_epochs × num_minibatches`` steps per iteration;
    - observation normalisation (RLlib's MeanStdFilter, batched: BatchMeanStdFilter);
    - M = 100 episodes per iteration.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MRPO)
        # Selection (see `training()` for the meaning of each).
        self.selection = "mrpo"
        # κ rises from 0.5 (keeps ~85% of a batch) to 2 (~40%) over 20 iterations: chosen by
        # measurement on our dimensionless scale (docs/learner.md#kappa)
        self.kappa_start = 0.5
        self.kappa_end = 2.0
        self.kappa_ramp_iters = 20
        self.worst_fraction = 0.1
        self.epopt_alpha = 0.1
        self.epopt_warmup_iters = 0
        self.episodes_per_iteration = 100
        self.episode_ledger_dir = None
        # A Tune sweep's trial variant, applied by `update_from_dict` (see there).
        self.variant = None
        # PPO settings of the paper's code.
        self.lr = 3e-4
        self.clip_param = 0.2
        self.gamma = 0.99
        self.lambda_ = 0.95
        self.num_epochs = 10
        # Equal optimiser effort: a fixed number of minibatches per epoch (see training()).
        self.num_minibatches = DEFAULT_NUM_MINIBATCHES
        self.minibatch_size = None
        self.train_batch_size_per_learner = 4000
        self.entropy_coeff = 0.0
        self.use_kl_loss = False  # the clipped objective alone, as in the paper's PPO
        self.vf_loss_coeff = 0.5
        self.vf_clip_param = float("inf")  # RLlib's 10 clamps the squared value error
        self.grad_clip = 0.5
        self.grad_clip_by = "global_norm"
        # PPO2's remaining settings, options measured in docs/learner.md#ppo2-options
        self.weight_init = "torch"
        self.adam_epsilon = 1e-8
        self.reward_scaling = False
        # (a dict, so that the task-dependent free_log_std of _model_config_auto_includes applies)
        self.rl_module(
            model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", "vf_share_layers": False}
        )
        # Sampling: exactly M complete episodes, several envs per runner stepped as one
        # batch without a bias towards short episodes (EpisodeEnvRunner); generous timeout.
        self.batch_mode = "complete_episodes"
        self.env_runner_cls = EpisodeEnvRunner
        # Sampling in the trial's own process by default: a trial is one CPU, on any machine
        # (RLlib's PPO asks for 2 remote runners, 3 CPUs with the learner). Sweeps and runs
        # ask for remote runners with env_runners_per_trial / num_env_runners.
        self.num_env_runners = 0
        self.num_envs_per_env_runner = DEFAULT_ENVS_PER_ENV_RUNNER
        self.sample_timeout_s = 3600.0
        self.env_runners(env_to_module_connector=_obs_filter)
        self.restart_failed_env_runners = True
        self.callbacks_class = MRPOCallbacks
        self.env = ENV_NAME
        self.env_config = {"task": "CartPole", "params": None, "randomize": None}
        self.min_time_s_per_iteration = 0
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0

    def environment(self, env=NotProvided, *, env_config=NotProvided, **kwargs):
        """As RLlib's, and ``env`` may name a task (``"Hopper"`` or ``"mrpo/Hopper-v0"``).

        A task name becomes ``env="mrpo_env"`` with ``env_config["task"]`` set, so that the
        seeding fix and parameter reporting of :mod:`mrpo_rllib.algorithms.env` apply.
        """
        if isinstance(env, str) and env != ENV_NAME:
            try:
                task = get_task(env)
            except ValueError:
                task = None
            if task is not None:
                base = dict(self.env_config) if env_config is NotProvided else dict(env_config)
                base["task"] = task.name
                env, env_config = ENV_NAME, base
        return super().environment(env=env, env_config=env_config, **kwargs)

    def training(
        self,
        *,
        selection: str = NotProvided,
        kappa_start: float = NotProvided,
        kappa_end: float = NotProvided,
        kappa_ramp_iters: int = NotProvided,
        worst_fraction: float = NotProvided,
        epopt_alpha: float = NotProvided,
        epopt_warmup_iters: int = NotProvided,
        episodes_per_iteration: int = NotProvided,
        num_minibatches: int | None = NotProvided,
        weight_init: str = NotProvided,
        adam_epsilon: float = NotProvided,
        reward_scaling: bool = NotProvided,
        **kwargs,
    ) -> MRPOConfig:
        """Selection settings (plus every PPOConfig.training argument).

        Args:
            selection: ``"mrpo"``, ``"epopt"`` (PW-DR) or ``"dr"`` (PPO-DR).
            kappa_start: κ at iteration 0, >= 0 (dimensionless, see module docstring).
            kappa_end: κ after the ramp, >= kappa_start. A fixed κ: start == end.
            kappa_ramp_iters: iterations of the linear rise from start to end, >= 0;
                κ stays at kappa_end afterwards.
            worst_fraction: share of episodes in MRPO's worst set W, in (0, 1].
            epopt_alpha: EPOpt's percentile α, in (0, 1].
            epopt_warmup_iters: EPOpt iterations that keep all episodes first, >= 0.
            episodes_per_iteration: M, complete episodes sampled per iteration, >= 1.
            num_minibatches: gradient steps per epoch, >= 1, whatever the kept batch size:
                each iteration takes exactly ``num_epochs × num_minibatches`` steps on
                minibatches of ⌈rows / num_minibatches⌉ rows (1: the authors' full-batch
                update). ``None`` drives the learner by ``minibatch_size`` instead, as RLlib
                does; giving ``minibatch_size`` alone switches to that mode. Not both.
        """
        if (
            kwargs.get("minibatch_size", NotProvided) not in (NotProvided, None)
            and num_minibatches is NotProvided
        ):
            num_minibatches = None  # minibatch_size given alone: RLlib's way of driving the learner
        super().training(**kwargs)
        for name, value in (
            ("selection", selection),
            ("kappa_start", kappa_start),
            ("kappa_end", kappa_end),
            ("kappa_ramp_iters", kappa_ramp_iters),
            ("worst_fraction", worst_fraction),
            ("epopt_alpha", epopt_alpha),
            ("epopt_warmup_iters", epopt_warmup_iters),
            ("episodes_per_iteration", episodes_per_iteration),
            ("num_minibatches", num_minibatches),
            ("weight_init", weight_init),
            ("adam_epsilon", adam_epsilon),
            ("reward_scaling", reward_scaling),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def reporting(self, *, episode_ledger_dir: str | None = NotProvided, **kwargs) -> MRPOConfig:
        """As RLlib's, plus ``episode_ledger_dir``: where ``episodes.csv`` goes
        (default: the algorithm's log/trial directory)."""
        super().reporting(**kwargs)
        if episode_ledger_dir is not NotProvided:
            self.episode_ledger_dir = episode_ledger_dir
        return self

    def update_from_dict(self, config_dict) -> MRPOConfig:
        """As RLlib's; a ``variant`` dict (one trial of a sweep: selection, seed, κ
        schedule, name) is applied on top, so that one Tune grid over whole variants
        gives exactly the trials of an experiment file."""
        super().update_from_dict(config_dict)
        variant = config_dict.get("variant")
        if variant:
            self.training(
                selection=variant["selection"],
                kappa_start=variant["kappa_start"],
                kappa_end=variant["kappa_end"],
                kappa_ramp_iters=variant["kappa_ramp_iters"],
                **variant.get("training", {}),
            )
            self.debugging(seed=variant["seed"])
        return self

    def kappa_at(self, iteration: int) -> float:
        """κ at training iteration ``iteration`` (0-based): linear ramp, then capped."""
        if self.kappa_ramp_iters <= 0:
            return float(self.kappa_end)
        frac = min(1.0, max(0, iteration) / self.kappa_ramp_iters)
        return float(self.kappa_start + (self.kappa_end - self.kappa_start) * frac)

    def validate(self) -> None:
        super().validate()
        if self.selection not in sel.SELECTIONS:
            raise ValueError(f"selection must be one of {list(sel.SELECTIONS)}, got {self.selection!r}")
        for name in ("kappa_start", "kappa_end"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.kappa_end < self.kappa_start:
            raise ValueError(
                f"kappa_end ({self.kappa_end}) must be >= kappa_start ({self.kappa_start}): κ rises"
            )
        for name in ("kappa_ramp_iters", "epopt_warmup_iters"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("worst_fraction", "epopt_alpha"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0.0 < v <= 1.0):
                raise ValueError(f"{name} must be in (0, 1], got {v!r}")
        m = self.episodes_per_iteration
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"episodes_per_iteration must be an integer >= 1, got {m!r}")
        for name, (ok, expected) in _PPO_RANGES.items():
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v) or not ok(v):
                raise ValueError(f"{name} must be a number {expected}, got {v!r}")
        if self.grad_clip is not None and not (
            isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0
        ):
            raise ValueError(f"grad_clip must be a number > 0 or None, got {self.grad_clip!r}")
        if not isinstance(self.num_epochs, int) or isinstance(self.num_epochs, bool) or self.num_epochs < 1:
            raise ValueError(f"num_epochs must be an integer >= 1, got {self.num_epochs!r}")
        n = self.num_minibatches
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"num_minibatches must be an integer >= 1 or None, got {n!r}")
            if self.minibatch_size is not None:
                raise ValueError(
                    f"give num_minibatches ({n}) or minibatch_size ({self.minibatch_size}), not both: "
                    "num_minibatches fixes the gradient steps per epoch, minibatch_size the rows per step"
                )
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {list(WEIGHT_INITS)}, got {self.weight_init!r}")
        eps = self.adam_epsilon
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not (0 < eps < 1):
            raise ValueError(f"adam_epsilon must be a number in (0, 1), got {eps!r}")
        if not isinstance(self.reward_scaling, bool):
            raise ValueError(f"reward_scaling must be true or false, got {self.reward_scaling!r}")
        if self.env == ENV_NAME:
            _ = self.task_spec  # raises for an unknown task, parameter or range
        runner = self.env_runner_cls
        if not (isinstance(runner, type) and issubclass(runner, EpisodeEnvRunner)):
            raise ValueError(
                f"env_runner_cls must be EpisodeEnvRunner or a subclass, got {runner!r}: RLlib's "
                "own runner keeps the first M episodes to finish, a sample biased towards short ones"
            )
        if self.gym_env_vectorize_mode != "sync":
            raise ValueError(
                f"gym_env_vectorize_mode must be 'sync' (EpisodeEnvRunner steps its sub-envs one "
                f"by one), got {self.gym_env_vectorize_mode!r}"
            )

    def get_default_learner_class(self):
        """:class:`~mrpo_rllib.algorithms.learner.MRPOTorchLearner`: RLlib's PPO loss, same
        floats, less per-minibatch overhead, and a clear error on a non-finite loss."""
        if self.framework_str == "torch":
            return MRPOTorchLearner
        return super().get_default_learner_class()

    @property
    def _model_config_auto_includes(self) -> dict:
        # A state-independent log-std for the Gaussian policies of the robot tasks (RLlib
        # supports it for DiagGaussian only, so not for CartPole's discrete actions).
        continuous = self.env == ENV_NAME and get_task(self.task).continuous_actions
        return super()._model_config_auto_includes | {"free_log_std": continuous}

    @property
    def task(self) -> str:
        return get_task(self.env_config.get("task", "CartPole")).name

    @property
    def task_spec(self) -> TaskSpec:
        """The task as this run randomizes it: the table's (Table 1), or the parameters and
        ranges of ``env_config["randomize"]``. MRPO's distance, the ledger's columns and the
        evaluation grids follow it."""
        task = get_task(self.env_config.get("task", "CartPole"))
        randomize = self.env_config.get("randomize")
        return task.randomizing(randomize) if randomize else task


class MRPO(TrajectorySelection, PPO):
    """RLlib's PPO with per-iteration trajectory selection (MRPO, EPOpt or DR)."""

    @classmethod
    def get_default_config(cls) -> MRPOConfig:
        return MRPOConfig()
