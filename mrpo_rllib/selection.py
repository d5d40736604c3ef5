"""The three trajectory-selection rules: PPO-DR, PW-DR (EPOpt) and MRPO.

Pure numpy, no Ray. Each rule maps the M episodes of one iteration to a boolean
mask of shape (M,) — the subset T that PPO trains on. Inputs are used as given:
the caller puts returns on a common scale and normalises parameters (see
:func:`scale_returns` and :func:`mrpo_rllib.envs.tasks.normalize_params`).
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


def worst_set(returns, worst_fraction: float = 0.1) -> np.ndarray:
    """Indices of the ⌈worst_fraction·M⌉ lowest returns (at least one; ties by lower index)."""
    r = _check_returns(returns)
    worst_fraction = _check_fraction("worst_fraction", worst_fraction)
    n_worst = max(1, math.ceil(worst_fraction * r.size - 1e-9))
    return np.argsort(r, kind="stable")[:n_worst]


def select_mrpo(returns, params, kappa: float, worst_fraction: float = 0.1) -> np.ndarray:
    """MRPO (Algorithm 2 with the 10%-worst refinement of section 4).

    W = :func:`worst_set`. Every episode of W is kept; any other episode i is kept
    iff for every k in W: ``returns[i] - kappa * ||params[i] - params[k]||_2 >= returns[k]``.

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
    """Dispatch to one rule by name: ``"mrpo"``, ``"epopt"`` or ``"dr"``."""
    if selection == "dr":
        return select_dr(returns)
    if selection == "epopt":
        return select_epopt(returns, alpha)
    if selection == "mrpo":
        if params is None:
            raise ValueError("selection 'mrpo' needs params")
        return select_mrpo(returns, params, kappa, worst_fraction)
    raise ValueError(f"unknown selection {selection!r}; expected one of {list(SELECTIONS)}")
