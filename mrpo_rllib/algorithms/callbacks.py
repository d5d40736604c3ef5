"""RLlib callbacks: per-episode parameter records, per-iteration node id and gauges."""

from __future__ import annotations

import math

import numpy as np
import ray
from ray.rllib.callbacks.callbacks import RLlibCallback

# Exported to the Ray dashboard / Prometheus as ray_mrpo_<name>, tagged by trial.
GAUGE_METRICS = ("return_mean", "return_worst10", "return_min", "kept_fraction", "kappa")
_gauges: dict | None = None


def _get_gauges() -> dict:
    global _gauges
    if _gauges is None:
        from ray.util.metrics import Gauge

        _gauges = {
            name: Gauge(
                f"mrpo_{name}",
                description=f"MRPO per-iteration {name} (see result['mrpo'])",
                tag_keys=("trial", "task", "algo"),
            )
            for name in GAUGE_METRICS
        }
    return _gauges


def _run_name(cfg) -> str:
    from mrpo_rllib import runs

    label = runs.kappa_label(cfg.selection, cfg.kappa_start, cfg.kappa_end)
    return runs.run_name(cfg.selection, cfg.task, label, cfg.seed)


class MRPOCallbacks(RLlibCallback):
    """Records what MRPO's selection needs and what a sweep's monitoring shows.

    - ``on_episode_end``: ``episode.custom_data["env_params"]`` (float64, task order, from
      the reset info) and ``custom_data["return"]`` (undiscounted return);
    - ``on_train_result``: ``result["node_id"]`` (the Ray node the algorithm runs on) and
      the ``ray_mrpo_*`` gauges tagged by trial.
    """

    def on_episode_end(self, *, episode, **kwargs) -> None:
        params = episode.get_infos(0)["env_params"]
        episode.custom_data["env_params"] = np.fromiter(params.values(), dtype=np.float64)
        episode.custom_data["return"] = float(episode.get_return())

    def on_train_result(self, *, algorithm, result, **kwargs) -> None:
        if not ray.is_initialized():
            return
        result["node_id"] = ray.get_runtime_context().get_node_id()
        stats = result.get("mrpo")
        if not stats:
            return
        cfg = algorithm.config
        trial = (cfg.variant or {}).get("name") or algorithm.trial_name
        if trial == "default":  # not under Tune
            trial = _run_name(cfg)
        tags = {"trial": trial, "task": cfg.task, "algo": cfg.selection}
        for name, gauge in _get_gauges().items():
            value = stats.get(name)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                gauge.set(float(value), tags=tags)
