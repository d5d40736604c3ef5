"""The selection step of MRPO, PW-DR (EPOpt) and PPO-DR, as a mixin on top of RLlib's PPO.

:class:`TrajectorySelection` replaces ``training_step`` (and nothing else) of an RLlib
Algorithm whose config is an :class:`~mrpo_rllib.algorithms.mrpo.MRPOConfig`:

1. sample exactly M complete episodes across the env runners (:meth:`_sample_episodes`);
2. read each episode's return η̂_i and parameter vector p_i (recorded by
   :class:`~mrpo_rllib.algorithms.callbacks.MRPOCallbacks`);
3. select the subset T with the pure rules of :func:`mrpo_rllib.selection.select`;
4. hand only T to ``learner_group.update`` (RLlib's PPO loss, untouched) with the same
   number of gradient steps whatever T's size (:meth:`_minibatching`); sync weights.

Each phase is timed; the iteration's selection metrics go to ``result["mrpo"]`` and every
episode to the ``episodes.csv`` ledger (:meth:`_write_ledger`).
"""

from __future__ import annotations

import csv
import functools
import math
import os
import time

import numpy as np
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
from mrpo_rllib.envs import normalize_params
from mrpo_rllib.runs import LEDGER_FILE

SELECTION_TIMER = "selection"


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


class TrajectorySelection:
    """Mixin for an RLlib PPO: ``training_step`` samples M episodes, selects T, learns on T."""

    def training_step(self) -> None:
        cfg = self.config
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
        cfg = self.config
        selection = cfg.selection
        if selection == "epopt" and self.iteration < cfg.epopt_warmup_iters:
            selection = "dr"  # EPOpt's warm-up keeps every episode
        kappa = cfg.kappa_at(self.iteration) if selection == "mrpo" else float("nan")
        mask = sel.select(
            selection,
            returns,
            normalize_params(cfg.task_spec, params),
            kappa=kappa,
            worst_fraction=cfg.worst_fraction,
            alpha=cfg.epopt_alpha,
        )
        return mask, kappa

    def _minibatching(self, kept: list) -> dict:
        """``learner_group.update`` arguments: ``num_epochs × num_minibatches`` gradient steps on
        minibatches of ⌈rows / num_minibatches⌉ rows (rows: the kept timesteps plus the one
        bootstrap row RLlib's PPO adds per episode), or RLlib's own ``minibatch_size`` mode."""
        cfg = self.config
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
        cfg = self.config
        kept_norm = normalize_params(cfg.task_spec, params[mask])
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
        storage = self._storage  # Tune's Trainable sets it (None outside Tune): rllib_private.py
        if not directory and storage is not None and storage.storage_filesystem.type_name == "local":
            directory = storage.trial_fs_path
        directory = directory or self.logdir
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, LEDGER_FILE)

    def _write_ledger(self, returns, lengths, params, mask) -> None:
        path = self._ledger_path()
        names = self.config.task_spec.param_names
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
