"""MRPO, PW-DR (EPOpt) and PPO-DR: one PPO, three trajectory-selection rules.

``MRPOConfig(PPOConfig)`` adds the selection settings; ``MRPO(PPO)`` overrides only
``training_step`` (plus ``get_default_config`` so that Tune builds the right config):

1. sample exactly M complete episodes across the env runners (one env each);
2. read each episode's return η̂_i and parameter vector p_i (recorded by
   :class:`~mrpo_rllib.algorithms.callbacks.MRPOCallbacks`);
3. select the subset T with :mod:`mrpo_rllib.selection`;
4. hand only T to ``learner_group.update`` (RLlib's PPO loss, untouched); sync weights.

Returns enter the MRPO rule standardised by the batch (:func:`~mrpo_rllib.selection.
scale_returns`), parameters divided by the training-range widths
(:func:`~mrpo_rllib.envs.tasks.normalize_params`), so κ is dimensionless: κ = 1 trades
one standard deviation of this iteration's returns for one training-range width.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import time

import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    MODULE_TRAIN_BATCH_SIZE_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from mrpo_rllib import selection as sel
from mrpo_rllib.algorithms.callbacks import MRPOCallbacks
from mrpo_rllib.algorithms.connectors import BatchMeanStdFilter
from mrpo_rllib.algorithms.env import ENV_NAME
from mrpo_rllib.algorithms.env_runner import EpisodeEnvRunner
from mrpo_rllib.envs import get_task, normalize_params

SELECTION_TIMER = "selection"
# Envs per env runner, stepped as one batch (see EpisodeEnvRunner); measured in `mrpo bench`.
DEFAULT_ENVS_PER_ENV_RUNNER = 16
# Gradient steps per epoch (equal optimiser effort); chosen by measurement, docs/decisions.md.
DEFAULT_NUM_MINIBATCHES = 32


def _obs_filter(*args, **kwargs):
    return BatchMeanStdFilter()


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
        self.kappa_start = 0.25
        self.kappa_end = 2.0
        self.kappa_ramp_iters = 100
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
        # (a dict, so that the task-dependent free_log_std of _model_config_auto_includes applies)
        self.rl_module(
            model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", "vf_share_layers": False}
        )
        # Sampling: exactly M complete episodes, several envs per runner stepped as one
        # batch without a bias towards short episodes (EpisodeEnvRunner); generous timeout.
        self.batch_mode = "complete_episodes"
        self.env_runner_cls = EpisodeEnvRunner
        self.num_envs_per_env_runner = DEFAULT_ENVS_PER_ENV_RUNNER
        self.sample_timeout_s = 3600.0
        self._env_to_module_connector = _obs_filter
        self.restart_failed_env_runners = True
        self.callbacks_class = MRPOCallbacks
        self.env = ENV_NAME
        self.env_config = {"task": "CartPole", "params": None}
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
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
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
        n = self.num_minibatches
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"num_minibatches must be an integer >= 1 or None, got {n!r}")
            if self.minibatch_size is not None:
                raise ValueError(
                    f"give num_minibatches ({n}) or minibatch_size ({self.minibatch_size}), not both: "
                    "num_minibatches fixes the gradient steps per epoch, minibatch_size the rows per step"
                )
        if self.env == ENV_NAME:
            get_task(self.env_config.get("task", "CartPole"))  # raises for an unknown task
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

    @property
    def _model_config_auto_includes(self) -> dict:
        # A state-independent log-std for the Gaussian policies of the robot tasks (RLlib
        # supports it for DiagGaussian only, so not for CartPole's discrete actions).
        continuous = self.env == ENV_NAME and get_task(self.task).continuous_actions
        return super()._model_config_auto_includes | {"free_log_std": continuous}

    @property
    def task(self) -> str:
        return get_task(self.env_config.get("task", "CartPole")).name


def _gradient_steps(learner_results) -> int:
    """Gradient steps the learner took this iteration: rows trained / rows per minibatch,
    both as RLlib's Learner counted them."""
    stats = learner_results[0][DEFAULT_MODULE_ID]
    trained = float(_value(stats[NUM_MODULE_STEPS_TRAINED]))
    size = float(_value(stats[MODULE_TRAIN_BATCH_SIZE_MEAN]))
    return int(round(trained / size)) if size > 0 else 0


def _value(stat):
    return stat.peek() if hasattr(stat, "peek") else stat


def _sample_on_runner(runner, num_episodes: int):
    episodes = runner.sample(num_episodes=num_episodes, explore=True)
    return episodes, runner.get_metrics()


class MRPO(PPO):
    """PPO with per-iteration trajectory selection (MRPO, EPOpt or DR)."""

    @classmethod
    def get_default_config(cls) -> MRPOConfig:
        return MRPOConfig()

    # -- the one overridden step -------------------------------------------------
    def training_step(self) -> None:
        cfg: MRPOConfig = self.config
        m = cfg.episodes_per_iteration

        t0 = time.perf_counter()
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = self._sample_episodes(m)
            if not episodes:
                return
            self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        self._log(sample_time_s=time.perf_counter() - t0)

        t0 = time.perf_counter()
        with self.metrics.log_time((TIMERS, SELECTION_TIMER)):
            returns = np.array([e.custom_data["return"] for e in episodes], dtype=np.float64)
            lengths = np.array([len(e) for e in episodes], dtype=np.int64)
            params = np.stack([e.custom_data["env_params"] for e in episodes])
            mask, kappa = self._select(returns, params)
            kept = [e for e, k in zip(episodes, mask, strict=True) if k]
            self._log_selection(returns, lengths, params, mask, kappa)
        self._log(selection_time_ms=1e3 * (time.perf_counter() - t0))

        t0 = time.perf_counter()
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=kept,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME),
                        default=0,
                    ),
                },
                **self._minibatching(kept),
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        self._log(learn_time_s=time.perf_counter() - t0, gradient_steps=_gradient_steps(learner_results))

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            modules_to_update = set(learner_results[0].keys()) - {ALL_MODULES}
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=modules_to_update,
                inference_only=True,
            )

    # -- helpers (called only from training_step) ----------------------------------
    def _select(self, returns: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, float]:
        """This iteration's mask T and κ (NaN unless MRPO) from the pure selection rules."""
        cfg: MRPOConfig = self.config
        selection = cfg.selection
        if selection == "epopt" and self.iteration < cfg.epopt_warmup_iters:
            selection = "dr"  # EPOpt's warm-up keeps every episode
        kappa = cfg.kappa_at(self.iteration) if selection == "mrpo" else float("nan")
        mask = sel.select(
            selection,
            returns,
            normalize_params(cfg.task, params),
            kappa=kappa,
            worst_fraction=cfg.worst_fraction,
            alpha=cfg.epopt_alpha,
        )
        return mask, kappa

    def _minibatching(self, kept: list) -> dict:
        """``learner_group.update`` arguments: ``num_epochs × num_minibatches`` gradient steps on
        minibatches of ⌈rows / num_minibatches⌉ rows (rows: the kept timesteps plus the one
        bootstrap row RLlib's PPO adds per episode), or RLlib's own ``minibatch_size`` mode."""
        cfg: MRPOConfig = self.config
        common = {"num_epochs": cfg.num_epochs, "shuffle_batch_per_epoch": cfg.shuffle_batch_per_epoch}
        if cfg.num_minibatches is None:
            return {**common, "minibatch_size": cfg.minibatch_size}
        rows = sum(len(e) + 1 for e in kept)
        return {
            **common,
            "minibatch_size": math.ceil(rows / cfg.num_minibatches),
            "num_total_minibatches": cfg.num_epochs * cfg.num_minibatches,
        }

    def _sample_episodes(self, m: int):
        """Exactly ``m`` complete episodes, split across the healthy env runners."""
        group = self.env_runner_group
        episodes, metrics = [], []
        stalls = 0
        while len(episodes) < m:
            need = m - len(episodes)
            if group.num_remote_workers() <= 0:
                eps, met = _sample_on_runner(group.local_env_runner, need)
                results = [(eps, met)]
            else:
                ids = group.healthy_env_runner_ids()
                if len(ids) < group.num_remote_workers():
                    # Let RLlib bring failed runners back (and sync their state) first.
                    self.restore_env_runners(group)
                    ids = group.healthy_env_runner_ids()
                results = []
                if ids:
                    shares = [need // len(ids) + (1 if i < need % len(ids) else 0) for i in range(len(ids))]
                    ids = [i for i, s in zip(ids, shares, strict=True) if s > 0]
                    shares = [s for s in shares if s > 0]
                    results = group.foreach_env_runner(
                        [functools.partial(_sample_on_runner, num_episodes=s) for s in shares],
                        local_env_runner=False,
                        remote_worker_ids=ids,
                        # one callable per id: no filtering here; a runner lost meanwhile
                        # just returns nothing and its share is sampled again
                        healthy_only=False,
                        kwargs=[{} for _ in ids],  # RLlib wants a list beside a list of callables
                        timeout_seconds=self.config.sample_timeout_s,
                    )
            got = 0
            for eps, met in results:
                episodes.extend(eps)
                metrics.append(met)
                got += len(eps)
            if got == 0:  # no healthy runner, or none returned episodes: wait, then retry
                stalls += 1
                if stalls >= 3:
                    raise RuntimeError(
                        f"sampling stalled: {len(episodes)} of {m} episodes after 3 attempts "
                        "(no healthy env runner returned episodes)"
                    )
                time.sleep(1.0)
        return episodes[:m], metrics

    def _log_selection(self, returns, lengths, params, mask, kappa) -> None:
        cfg: MRPOConfig = self.config
        kept_norm = normalize_params(cfg.task, params[mask])
        spread = float(kept_norm.std(axis=0).mean()) if mask.sum() > 1 else 0.0
        stats = {
            "return_mean": float(returns.mean()),
            "return_worst10": sel.worst_mean(returns, 0.1),
            "return_min": float(returns.min()),
            "return_std": float(returns.std()),
            "episodes": int(returns.size),
            "kept_episodes": int(mask.sum()),
            "kept_fraction": float(mask.mean()),
            "sampled_timesteps": int(lengths.sum()),
            "kept_timesteps": int(lengths[mask].sum()),
            "kappa": kappa,
            "kept_param_spread": spread,
        }
        self._log(**stats)
        self._write_ledger(returns, lengths, params, mask)

    def _log(self, **stats) -> None:
        """This iteration's values under ``result["mrpo"]`` (latest value, not smoothed)."""
        for key, value in stats.items():
            self.metrics.log_value(("mrpo", key), value, reduce="item")

    def _ledger_path(self) -> str:
        """``episodes.csv`` in ``episode_ledger_dir``; under Tune, in the trial's directory on
        its storage when that is a (shared) file system, else in the trial working dir."""
        directory = self.config.episode_ledger_dir
        storage = getattr(self, "_storage", None)
        if not directory and storage is not None and storage.storage_filesystem.type_name == "local":
            directory = storage.trial_fs_path
        directory = directory or self.logdir
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, "episodes.csv")

    def _write_ledger(self, returns, lengths, params, mask) -> None:
        path = self._ledger_path()
        names = get_task(self.config.task).param_names
        it = self.iteration + 1  # the iteration this result will be reported as
        if not getattr(self, "_ledger_checked", False):
            # After a restore from checkpoint, drop rows of iterations that will be redone.
            self._ledger_checked = True
            if os.path.exists(path):
                with open(path, newline="") as f:
                    rows = list(csv.reader(f))
                keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) < it]
                if len(keep) < len(rows):
                    with open(path, "w", newline="") as f:
                        csv.writer(f).writerows(keep)
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["iteration", "return", "length", *names, "kept"])
            for r, n, p, k in zip(returns, lengths, params, mask, strict=True):
                w.writerow([it, repr(float(r)), int(n), *(repr(float(x)) for x in p), int(k)])
