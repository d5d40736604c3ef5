"""The task table: every task, its physics parameters, training and testing ranges.

This is the single source of truth for the paper's Table 1. Environments, the
MRPO parameter normalisation, evaluation grids and reports all read it.

Each task has two sets of parameters:

- ``params``: the paper's Table 1, in its order. They are the ones randomized by default
  and the ones ``info["env_params"]`` reports.
- ``extra_params``: further physical parameters the simulation honours (actuator power,
  link masses), fixed at their nominal values unless chosen with
  :meth:`TaskSpec.randomizing` (``gym.make(..., randomize={...})``).

Why one file of ~450 lines: half of it is the table itself (every task's rows, as data, in
the paper's order), the rest the ``TaskSpec`` that reads it; the table is kept whole so that
it can be checked against the paper at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

NAMESPACE = "mrpo"
MAX_EPISODE_STEPS = 1000
# The two ranges of every parameter: the one trained on, the one tested on (Table 1)
RANGES = ("train", "test")
DEFAULT_RANGE = "test"  # what evaluations and worst-case searches look at unless told


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


def _value_problem(spec: ParamSpec, value: Any) -> tuple[float | None, str]:
    """(the float, "") or (None, what is wrong with ``value`` for ``spec``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None, f"value {value!r} is not a number"
    if math.isnan(v) or math.isinf(v):
        return None, f"value {v} is not finite"
    ok = v >= spec.min_value if spec.min_inclusive else v > spec.min_value
    if not ok:
        bound = ">=" if spec.min_inclusive else ">"
        return None, (
            f"value {v} is outside physical sense; expected {bound} {spec.min_value} "
            f"(training range {list(spec.train)})"
        )
    return v, ""


def check_value(task: str, spec: ParamSpec, value: Any) -> float:
    """``value`` as a float, or ``ValueError`` naming the task, parameter and value when it
    is not a finite number of physical sense (``spec.min_value``/``min_inclusive``)."""
    v, problem = _value_problem(spec, value)
    if v is None:
        raise ValueError(f"{task} parameter {spec.name!r}: {problem}")
    return v


def _randomize_range(task: str, spec: ParamSpec, which: str, value: Any) -> tuple[float, float]:
    """A ``randomize`` range ``(low, high)`` checked like :func:`check_value`, or ``ValueError``
    naming the task, the key and the value."""
    where = f"{task} randomize[{spec.name!r}]: {which} range {value!r}"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{where} must be (low, high)")
    bounds = []
    for v in value:
        checked, problem = _value_problem(spec, v)
        if checked is None:
            raise ValueError(f"{where}: {problem}")
        bounds.append(checked)
    lo, hi = bounds
    if lo > hi:
        raise ValueError(f"{where} is inverted; expected low <= high")
    return lo, hi


@dataclass(frozen=True)
class TaskSpec:
    """A task: a gymnasium id, the physics family that implements it, its parameters,
    whether its actions are continuous (a Box: the robots) or discrete (CartPole), and
    ``return_scale``, the return of a solved 1000-step episode (the maximum for CartPole and
    the pendula; pybullet_envs' reward threshold for the walkers, which good policies pass):
    what figures anchor their colour and value scales to.

    ``params`` are the randomized parameters (in the table: the paper's Table 1);
    ``extra_params`` the others, which sit at their nominal values. Together they are
    every parameter the task's simulation takes (:attr:`all_params`).
    """

    name: str
    entry_point: str
    params: tuple[ParamSpec, ...]
    return_scale: float
    continuous_actions: bool = True
    extra_params: tuple[ParamSpec, ...] = ()
    # Parameters an evaluation grid varies (None: all); the others sit at their nominal value.
    grid_params: tuple[str, ...] | None = None

    @property
    def env_id(self) -> str:
        return f"{NAMESPACE}/{self.name}-v0"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def all_params(self) -> tuple[ParamSpec, ...]:
        """Every parameter: the randomized ones, then the ones fixed at nominal."""
        return self.params + self.extra_params

    @property
    def nominal_values(self) -> dict[str, float]:
        """name → nominal value of every parameter (:attr:`all_params` order)."""
        return {p.name: p.nominal for p in self.all_params}

    def randomizing(self, ranges: Mapping[str, Any]) -> TaskSpec:
        """The task with exactly the parameters named in ``ranges`` randomized.

        ``ranges`` maps a parameter name (of Table 1 or an extra parameter) to either
        ``(low, high)`` — the training range; the testing range stays the table's — or
        ``{"train": (low, high), "test": (low, high)}`` (a key left out keeps the table's
        range). The derived spec's ``params`` are those parameters, in the order given;
        every other parameter moves to ``extra_params``, fixed at its nominal value. Its
        ``name`` (and so its gymnasium id and physics family) is the task's.

        Raises ``ValueError`` naming the task, the key and the value for an unknown name,
        a malformed, inverted, NaN/inf or non-physical range, or an empty mapping.
        """
        if not isinstance(ranges, Mapping):
            raise ValueError(
                f"{self.name} randomize must be a dict name -> (low, high), got {type(ranges).__name__}"
            )
        if not ranges:
            raise ValueError(
                f"{self.name} randomize is empty: name at least one parameter "
                f"(or use params='nominal' to fix them all)"
            )
        known = {p.name: p for p in self.all_params}
        chosen = []
        for key, value in ranges.items():
            if key not in known:
                raise ValueError(
                    f"{self.name} randomize: unknown parameter {key!r} (value {value!r}); "
                    f"expected one of {list(known)}"
                )
            spec = known[key]
            if isinstance(value, Mapping):
                unknown = [k for k in value if k not in RANGES]
                if unknown:
                    raise ValueError(
                        f"{self.name} randomize[{key!r}]: value {dict(value)!r} has keys {unknown}; "
                        f"expected 'train' and/or 'test'"
                    )
                train = (
                    _randomize_range(self.name, spec, "train", value["train"])
                    if "train" in value
                    else spec.train
                )
                test = (
                    _randomize_range(self.name, spec, "test", value["test"]) if "test" in value else spec.test
                )
            else:
                train, test = _randomize_range(self.name, spec, "train", value), spec.test
            chosen.append(replace(spec, train=train, test=test))
        rest = tuple(p for p in self.all_params if p.name not in ranges)
        # grid every randomized parameter but those the table keeps off its grid (CartPole's force)
        off_grid = set(self.param_names) - set(self.grid_axes)
        axes = tuple(p.name for p in chosen if p.name not in off_grid)
        grid = None if len(axes) == len(chosen) else axes
        return replace(self, params=tuple(chosen), extra_params=rest, grid_params=grid)

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        for p in self.extra_params:
            if p.name == name:
                raise ValueError(
                    f"parameter {name!r} of task {self.name} is not randomized (fixed at its nominal "
                    f"{p.nominal}); randomized: {list(self.param_names)}. Choose it with "
                    f"randomize={{{name!r}: (low, high), ...}}"
                )
        raise ValueError(
            f"unknown parameter {name!r} for task {self.name}; expected one of {list(self.param_names)}"
        )

    def range_array(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) float64 arrays of the ``train`` or ``test`` range."""
        if which not in RANGES:
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
        if which not in RANGES:
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


# Extra parameters: fixed at nominal unless chosen with TaskSpec.randomizing. Their default
# ranges follow Table 1's pattern: a training range around the nominal value, a testing
# range beyond it on the harder side (weaker motors, heavier bodies).


def _power():
    return ParamSpec(
        "power",
        (0.75, 1.25),
        (0.5, 0.75),
        1.0,
        "",
        "gain on every actuator's torque: torque = power x robot power x power_coef x clip(a, -1, 1). "
        "Default training range +-25 % around nominal (density's own spread), testing range "
        "weaker motors (0.5-0.75)",
    )


def _mass_scale(name, what):
    return ParamSpec(
        name,
        (0.5, 1.5),
        (1.5, 2.0),
        1.0,
        "",
        f"scale on the mass and local inertia diagonal of {what}, on top of any density scaling. "
        "Default training range +-50 % around nominal, testing range 1.5-2x heavier",
    )


def _locomotion_extras(feet):
    return (
        _power(),
        _mass_scale("torso_mass", "the torso link"),
        _mass_scale("foot_mass", f"the foot link(s) ({', '.join(feet)})"),
    )


def _pendulum_extras(poles):
    return (
        _mass_scale("cart_mass", "the cart link"),
        _mass_scale("pole_mass", poles),
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
            extra_params=_locomotion_extras(("foot", "foot_left")),
        ),
        TaskSpec(
            "Hopper",
            _LOCO,
            return_scale=2500.0,
            params=(
                _density((750.0, 1250.0), (1.0, 750.0)),
                _friction((0.5, 1.1), (0.2, 0.5)),
            ),
            extra_params=_locomotion_extras(("foot",)),
        ),
        TaskSpec(
            "HalfCheetah",
            _LOCO,
            return_scale=3000.0,
            params=(
                _density((750.0, 1250.0), (1.0, 750.0)),
                _friction((0.2, 2.25), (0.05, 0.2)),
            ),
            extra_params=_locomotion_extras(("bfoot", "ffoot")),
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
            extra_params=_pendulum_extras("the pole link"),
        ),
        TaskSpec(
            "InvertedDoublePendulum",
            _PEND,
            return_scale=9360.0,  # 9.36 per step upright (see pendulum.py)
            params=(
                ParamSpec("pole1_length", (0.5, 1.0), (1.0, 1.1), 0.6, "m", "length of the lower pole"),
                ParamSpec("pole2_length", (0.5, 1.0), (1.0, 1.1), 0.6, "m", "length of the upper pole"),
            ),
            extra_params=_pendulum_extras("both pole links (pole, pole2)"),
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
            extra_params=(
                ParamSpec(
                    "cart_mass",
                    (0.5, 1.5),
                    (1.5, 2.0),
                    1.0,
                    "kg",
                    "mass of the cart (gymnasium's masscart); total_mass and polemass_length are "
                    "recomputed. Default training range +-50 % around nominal, testing range "
                    "1.5-2 kg",
                ),
            ),
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
