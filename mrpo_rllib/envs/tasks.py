"""The task table: every task, its physics parameters, training and testing ranges.

This is the single source of truth for the paper's Table 1. Environments, the
MRPO parameter normalisation, evaluation grids and reports all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAMESPACE = "mrpo"
MAX_EPISODE_STEPS = 1000


@dataclass(frozen=True)
class ParamSpec:
    """One physics parameter of a task.

    ``train`` and ``test`` are closed ranges ``(low, high)``; a point is ``(v, v)``.
    ``min_value`` is the physical lower bound; ``min_inclusive`` says whether the
    bound itself is allowed (friction 0 is allowed, a length of 0 is not).
    """

    name: str
    train: tuple[float, float]
    test: tuple[float, float]
    nominal: float
    unit: str
    doc: str
    min_value: float = 0.0
    min_inclusive: bool = False

    @property
    def train_width(self) -> float:
        return self.train[1] - self.train[0]


@dataclass(frozen=True)
class TaskSpec:
    """A task: a gymnasium id, the physics family that implements it, its parameters,
    whether its actions are continuous (a Box: the robots) or discrete (CartPole), and
    ``return_scale``, the return of a solved 1000-step episode (the maximum for CartPole and
    the pendula; pybullet_envs' reward threshold for the walkers, which good policies pass):
    what figures anchor their colour and value scales to."""

    name: str
    entry_point: str
    params: tuple[ParamSpec, ...]
    return_scale: float
    continuous_actions: bool = True
    # Parameters an evaluation grid varies (None: all); the others sit at their nominal value.
    grid_params: tuple[str, ...] | None = None

    @property
    def env_id(self) -> str:
        return f"{NAMESPACE}/{self.name}-v0"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(
            f"unknown parameter {name!r} for task {self.name}; expected one of {list(self.param_names)}"
        )

    def range_array(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) float64 arrays of the ``train`` or ``test`` range."""
        if which not in ("train", "test"):
            raise ValueError(f"range must be 'train' or 'test', got {which!r}")
        lows = np.array([getattr(p, which)[0] for p in self.params], dtype=np.float64)
        highs = np.array([getattr(p, which)[1] for p in self.params], dtype=np.float64)
        return lows, highs

    def train_widths(self) -> np.ndarray:
        return np.array([p.train_width for p in self.params], dtype=np.float64)

    @property
    def grid_axes(self) -> tuple[str, ...]:
        """The parameters an evaluation grid varies (CartPole: pole length and mass)."""
        return self.grid_params if self.grid_params is not None else self.param_names

    def grid(self, which: str = "test", points: int = 5) -> list[dict[str, float]]:
        """An evaluation grid over the ``which`` ("train"/"test") range, one dict per point.

        Axis parameters (:attr:`grid_axes`) take ``points`` evenly spaced values over the
        range (``points=1``: its midpoint; a one-value range: that value). A parameter off
        the grid sits at its nominal value, or at the middle of the range when the nominal
        value lies outside it. Order: the last axis varies fastest.
        """
        if which not in ("train", "test"):
            raise ValueError(f"grid must be 'train' or 'test', got {which!r}")
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ValueError(f"points must be an integer >= 1, got {points!r}")
        columns = []
        for p in self.params:
            lo, hi = getattr(p, which)
            if p.name not in self.grid_axes:
                columns.append([p.nominal if lo <= p.nominal <= hi else (lo + hi) / 2.0])
            elif lo == hi:
                columns.append([lo])
            elif points == 1:
                columns.append([(lo + hi) / 2.0])
            else:
                columns.append(np.linspace(lo, hi, points).tolist())
        mesh = np.meshgrid(*columns, indexing="ij")
        flat = [m.ravel() for m in mesh]
        return [
            {name: float(col[i]) for name, col in zip(self.param_names, flat, strict=True)}
            for i in range(flat[0].size)
        ]


def _density(train, test):
    return ParamSpec(
        "density",
        train,
        test,
        1000.0,
        "kg/m^3",
        "density of every robot link: mass and inertia scaled by density/1000 "
        "(Bullet builds MJCF bodies at 1000 kg/m^3)",
    )


def _friction(train, test):
    return ParamSpec(
        "friction",
        train,
        test,
        0.8,
        "",
        "lateral friction coefficient of every robot link; Bullet multiplies it with the floor's 0.8",
        min_inclusive=True,
    )


_LOCO = "mrpo_rllib.envs.locomotion:LocomotionEnv"
_PEND = "mrpo_rllib.envs.pendulum:PendulumEnv"
_CART = "mrpo_rllib.envs.cartpole:CartPoleEnv"

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "Walker2d",
            _LOCO,
            return_scale=2500.0,
            params=(
                _density((750.0, 1250.0), (1.0, 750.0)),
                _friction((0.2, 2.5), (0.05, 0.2)),
            ),
        ),
        TaskSpec(
            "Hopper",
            _LOCO,
            return_scale=2500.0,
            params=(
                _density((750.0, 1250.0), (1.0, 750.0)),
                _friction((0.5, 1.1), (0.2, 0.5)),
            ),
        ),
        TaskSpec(
            "HalfCheetah",
            _LOCO,
            return_scale=3000.0,
            params=(
                _density((750.0, 1250.0), (1.0, 750.0)),
                _friction((0.2, 2.25), (0.05, 0.2)),
            ),
        ),
        TaskSpec(
            "InvertedPendulum",
            _PEND,
            return_scale=1000.0,  # 1 per step
            params=(
                ParamSpec(
                    "cart_size",
                    (0.05, 0.25),
                    (0.025, 0.05),
                    0.1,
                    "m",
                    "radius and half-length of the cart capsule",
                ),
                ParamSpec("pole_length", (0.5, 2.0), (0.25, 0.5), 0.6, "m", "length of the pole"),
            ),
        ),
        TaskSpec(
            "InvertedDoublePendulum",
            _PEND,
            return_scale=9360.0,  # 9.36 per step upright (see pendulum.py)
            params=(
                ParamSpec("pole1_length", (0.5, 1.0), (1.0, 1.1), 0.6, "m", "length of the lower pole"),
                ParamSpec("pole2_length", (0.5, 1.0), (1.0, 1.1), 0.6, "m", "length of the upper pole"),
            ),
        ),
        TaskSpec(
            "CartPole",
            _CART,
            return_scale=1000.0,  # 1 per step
            grid_params=("pole_length", "pole_mass"),  # force's testing range is one value
            params=(
                ParamSpec(
                    "force_mag",
                    (1.0, 20.0),
                    (10.0, 10.0),
                    10.0,
                    "N",
                    "magnitude of the push applied to the cart",
                ),
                ParamSpec(
                    "pole_length",
                    (0.05, 1.0),
                    (1.0, 6.0),
                    0.5,
                    "m",
                    "gymnasium's `length`: half the pole's length",
                ),
                ParamSpec("pole_mass", (0.01, 1.0), (1.0, 6.0), 0.1, "kg", "mass of the pole"),
            ),
            continuous_actions=False,
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (``"Hopper"``) or with gymnasium id ``"mrpo/Hopper-v0"``."""
    for t in TASKS.values():
        if name in (t.name, t.env_id):
            return t
    raise ValueError(f"unknown task {name!r}; expected one of {list(TASKS)}")


def normalize_params(task: str | TaskSpec, params: np.ndarray) -> np.ndarray:
    """Parameters divided coordinate-wise by the width of the training range.

    ``params`` has shape (M, d) in the task's parameter order. The result is
    dimensionless, so distances ‖p̃_i − p̃_k‖ are comparable across parameters
    and tasks. A zero-width training range divides by 1.
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    widths = spec.train_widths()
    widths = np.where(widths > 0, widths, 1.0)
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != len(widths):
        raise ValueError(
            f"params must have shape (M, {len(widths)}) for task {spec.name}, got {params.shape}"
        )
    return params / widths
