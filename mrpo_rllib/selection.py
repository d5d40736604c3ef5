"""The three trajectory-selection rules: PPO-DR, PW-DR (EPOpt) and MRPO.

Pure numpy, no Ray. Each rule maps the M episodes of one iteration to a boolean
mask of shape (M,) — the subset T that PPO trains on. :func:`select` is the entry
point training uses (raw returns; MRPO's returns standardised by :func:`scale_returns`);
the rules themselves use their inputs as given, parameters normalised by the caller
(:func:`mrpo_rllib.envs.tasks.normalize_params`).

The worst set W of MRPO is tie-aware: every episode whose return is <= the k-th lowest,
k = ⌈worst_fraction·M⌉. Once a task saturates (most CartPole episodes at 1000), a W of
exactly k episodes would hold an arbitrary few of the 1000s, and every other 1000 would
fail the MRPO condition at any κ > 0; with ties in W a saturated batch keeps everything.
"""

from __future__ import annotations

import math

import numpy as np

SELECTIONS = ("mrpo", "epopt", "dr")


def _check_returns(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"episode_returns must be 1-D (M,), got shape {r.shape}")
    if r.size == 0:
        raise ValueError("episode_returns is empty: need at least one episode")
    bad = ~np.isfinite(r)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"episode_returns must be finite; {int(bad.sum())} are not (first: index {i}, value {r[i]})"
        )
    return r


def _check_fraction(name: str, value: float) -> float:
    v = float(value)
    if not (0.0 < v <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return v


def select_dr(returns) -> np.ndarray:
    """PPO-DR: keep every episode."""
    r = _check_returns(returns)
    return np.ones(r.shape, dtype=bool)


def select_epopt(returns, alpha: float = 0.1) -> np.ndarray:
    """PW-DR (EPOpt): keep the episodes whose return is <= the alpha-percentile.

    ``alpha`` in (0, 1]; the percentile is numpy's default (linear interpolation),
    so at least the worst episode is always kept, and ties at the threshold are all kept.
    """
    r = _check_returns(returns)
    alpha = _check_fraction("alpha", alpha)
    return r <= np.percentile(r, 100.0 * alpha)


def worst_count(m: int, worst_fraction: float = 0.1) -> int:
    """k = ⌈worst_fraction·M⌉ (at least 1): how many episodes the worst fraction is."""
    worst_fraction = _check_fraction("worst_fraction", worst_fraction)
    return max(1, math.ceil(worst_fraction * m - 1e-9))  # 0.1 * 30 is 3.0000000000000004


def worst_set(returns, worst_fraction: float = 0.1) -> np.ndarray:
    """Indices of W: every episode whose return is <= the k-th lowest, k = :func:`worst_count`.

    Ties at the k-th value all belong to W (as the authors' code, ``<= percentile``, and
    :func:`select_epopt` do), so W has k or more members; a batch whose returns are all
    equal is all W. Indices in increasing order.
    """
    r = _check_returns(returns)
    k = worst_count(r.size, worst_fraction)
    kth = np.partition(r, k - 1)[k - 1]
    return np.flatnonzero(r <= kth)


def worst_mean(returns, worst_fraction: float = 0.1) -> float:
    """Mean of the k = :func:`worst_count` lowest returns (the ``return_worst10`` metric;
    ties do not change it)."""
    r = _check_returns(returns)
    k = worst_count(r.size, worst_fraction)
    return float(np.partition(r, k - 1)[:k].mean())


def select_mrpo(returns, params, kappa: float, worst_fraction: float = 0.1) -> np.ndarray:
    """MRPO (Algorithm 2 with the 10%-worst refinement of section 4).

    W = :func:`worst_set` (ties at its boundary included). Every episode of W is kept; any
    other episode i is kept iff for every k in W:
    ``returns[i] - kappa * ||params[i] - params[k]||_2 >= returns[k]``.

    Args:
        returns: (M,) episode returns η̂_i, on the caller's scale.
        params: (M, d) or (M,) normalised environment parameters p̃_i.
        kappa: the Lipschitz-penalty coefficient κ >= 0 (in return units per unit
            of normalised parameter distance).
        worst_fraction: share of episodes forming W, in (0, 1].
    """
    r = _check_returns(returns)
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] != r.size:
        raise ValueError(f"params must have shape (M={r.size}, d), got {np.shape(params)}")
    if not np.isfinite(p).all():
        raise ValueError("params must be finite; got NaN or inf")
    kappa = float(kappa)
    if not (kappa >= 0.0) or math.isinf(kappa):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")
    w = worst_set(r, worst_fraction)
    # dist[i, j] = ||p_i - p_w_j||
    dist = np.linalg.norm(p[:, None, :] - p[None, w, :], axis=-1)
    keep = np.all(r[:, None] - kappa * dist >= r[None, w], axis=1)
    keep[w] = True
    return keep


def scale_returns(returns) -> tuple[np.ndarray, float]:
    """Returns centred on the batch mean and divided by the batch standard deviation.

    This is the scale on which MRPO compares returns with κ·distance, so that κ
    means the same across tasks whose returns differ by orders of magnitude:
    κ = 1 trades one standard deviation of this iteration's returns against one
    training-range width of parameter distance. A batch with zero spread
    (identical returns) is divided by 1. Returns (scaled, std_used).
    """
    r = _check_returns(returns)
    std = float(r.std())
    if not std > 1e-12:
        std = 1.0
    return (r - r.mean()) / std, std


def select(
    selection: str,
    returns,
    params=None,
    *,
    kappa: float = 0.0,
    worst_fraction: float = 0.1,
    alpha: float = 0.1,
) -> np.ndarray:
    """The subset T of one iteration under rule ``selection`` (``"mrpo"``, ``"epopt"``, ``"dr"``).

    This is what training uses. ``returns`` are the raw episode returns η̂_i; ``params``
    (MRPO only) the parameters normalised by the training-range widths, shape (M, d).
    MRPO compares returns on the scale of :func:`scale_returns` (batch-standardised), so
    κ is dimensionless; EPOpt's percentile and W do not depend on the scale.
    """
    if selection == "dr":
        return select_dr(returns)
    if selection == "epopt":
        return select_epopt(returns, alpha)
    if selection == "mrpo":
        if params is None:
            raise ValueError("selection 'mrpo' needs params")
        scaled, _ = scale_returns(returns)
        return select_mrpo(scaled, params, kappa, worst_fraction)
    raise ValueError(f"unknown selection {selection!r}; expected one of {list(SELECTIONS)}")
