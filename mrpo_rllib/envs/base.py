"""The one base class of every task: parameter distributions, sampling, seeding, info.

A physics family (locomotion, pendulum, cart-pole) subclasses :class:`RandomizedEnv`
and implements three hooks:

- ``_apply_params(values)``: put the episode's parameters into the simulation. ``values``
  maps *every* parameter of the task (:attr:`TaskSpec.all_params`: Table 1 and the extra
  ones) to its value — the sampled ones and the nominal value of the others — so a family
  reads what it needs by name, whichever subset is randomized. Called once per reset;
  families skip simulation calls for values that did not change;
- ``_reset_model() -> obs``: start an episode (initial-state noise from ``self.np_random``);
- ``_step_model(action) -> (obs, reward, terminated)``: one control step;
- ``_render_frame() -> H×W×3 uint8``: the current state as an image (``render_mode="rgb_array"``).

Rendering (gymnasium's conventions): ``render_mode`` is ``None`` (the default: nothing is
drawn, and a step does no rendering work at all) or ``"rgb_array"``, with which ``render()``
returns a :data:`RENDER_HEIGHT` × :data:`RENDER_WIDTH` × 3 ``uint8`` image of the current
state. ``metadata["render_fps"]`` is one frame per control step in real time (1/0.0165 s for
the pybullet tasks, 1/0.02 s for CartPole). The pybullet tasks draw with pybullet's
TinyRenderer (``getCameraImage(renderer=ER_TINY_RENDERER)``: offscreen, on the CPU, no
display or GPU), from the bodies loaded for the episode, so the sampled geometry is what is
drawn; CartPole draws its cart and pole with numpy
(:func:`mrpo_rllib.envs.cartpole.draw_cartpole`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as pb

from mrpo_rllib.envs.tasks import TaskSpec, check_value, get_task

ParamsArg = str | Mapping[str, Any] | None
RandomizeArg = Mapping[str, Any] | None

RENDER_MODES = ("rgb_array",)
RENDER_WIDTH, RENDER_HEIGHT = 320, 240  # multiples of 16: what video encoders want


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if it is ``None`` or one of :data:`RENDER_MODES`, else ``ValueError``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode={render_mode!r}: expected None or one of {list(RENDER_MODES)}")
    return render_mode


def pybullet_frame(
    cid: int,
    target: tuple[float, float, float],
    distance: float,
    yaw: float = 0.0,
    pitch: float = 0.0,
    width: int = RENDER_WIDTH,
    height: int = RENDER_HEIGHT,
) -> np.ndarray:
    """A ``height`` × ``width`` × 3 uint8 image of pybullet client ``cid`` from a camera
    ``distance`` m from ``target`` (yaw and pitch in degrees; yaw 0 looks along +y, so the
    x–z plane the tasks move in is seen side on), by TinyRenderer (CPU, offscreen)."""
    view = pb.computeViewMatrixFromYawPitchRoll(target, distance, yaw, pitch, 0, 2, physicsClientId=cid)
    proj = pb.computeProjectionMatrixFOV(60, width / height, 0.05, 100.0, physicsClientId=cid)
    _, _, rgba, _, _ = pb.getCameraImage(
        width, height, view, proj, renderer=pb.ER_TINY_RENDERER, physicsClientId=cid
    )
    return np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3])


def resolve_param_ranges(task: str | TaskSpec, params: ParamsArg = None) -> tuple[np.ndarray, np.ndarray]:
    """Turn a user's parameter request into (low, high) arrays in task order.

    ``params`` is one of:

    - ``None`` or ``"train"``: uniform over the training range (the default);
    - ``"test"``: uniform over the testing range;
    - ``"nominal"``: every parameter fixed at its nominal value;
    - a dict ``{name: value}`` (fixed) or ``{name: (low, high)}`` (uniform).
      Names not in the dict keep their **training range**.

    Raises ``ValueError`` naming the parameter and value for an unknown name,
    NaN/inf, a non-physical value or an inverted range.
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    if params is None or (isinstance(params, str) and params == "train"):
        return spec.range_array("train")
    if isinstance(params, str):
        if params == "test":
            return spec.range_array("test")
        if params == "nominal":
            nom = np.array([p.nominal for p in spec.params], dtype=np.float64)
            return nom, nom.copy()
        raise ValueError(f"params={params!r} for {spec.name}: expected 'train', 'test', 'nominal' or a dict")
    if not isinstance(params, Mapping):
        raise ValueError(
            f"params for {spec.name} must be 'train', 'test', 'nominal' or a dict, "
            f"got {type(params).__name__}"
        )
    low, high = spec.range_array("train")
    for name, value in params.items():
        p = spec.param(name)  # raises for unknown names
        i = spec.param_names.index(name)
        if isinstance(value, (tuple, list, np.ndarray)) and not np.isscalar(value):
            if len(value) != 2:
                raise ValueError(f"{spec.name} parameter {name!r}: range {value!r} must be (low, high)")
            lo, hi = (check_value(spec.name, p, v) for v in value)
            if lo > hi:
                raise ValueError(
                    f"{spec.name} parameter {name!r}: inverted range ({lo}, {hi}); expected low <= high"
                )
        else:
            lo = hi = check_value(spec.name, p, value)
        low[i], high[i] = lo, hi
    return low, high


class RandomizedEnv(gym.Env):
    """A task whose physics parameters are resampled at every ``reset``.

    Args:
        task: the task name from :data:`mrpo_rllib.envs.tasks.TASKS` (or a :class:`TaskSpec`).
        params: the parameter distribution, see :func:`resolve_param_ranges`.
        randomize: ``None`` (the default): the paper's Table 1 parameters are randomized.
            Else a dict naming exactly the parameters to randomize — Table 1's or the extra
            ones (power, link masses) — with their ranges, see
            :meth:`TaskSpec.randomizing`: ``{"friction": (0.5, 1.1), "power": (0.6, 1.0)}``.
            The env then runs on that derived spec (``self.task``): ``params``,
            ``reset(options={"env_params": ...})`` and ``info["env_params"]`` refer to
            those names only, and every other parameter sits at its nominal value.

    ``reset(options={"env_params": {...}})`` fixes parameters for that one episode
    (used by evaluation grids). ``info["env_params"]`` of ``reset`` and of every
    ``step`` is a dict name → float of the episode's randomized parameters.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 50}

    def __init__(
        self,
        task: str | TaskSpec,
        params: ParamsArg = None,
        randomize: RandomizeArg = None,
        render_mode: str | None = None,
    ):
        self.render_mode = check_render_mode(render_mode)
        spec = task if isinstance(task, TaskSpec) else get_task(task)
        self.task = spec if randomize is None else spec.randomizing(randomize)
        self.param_names = self.task.param_names
        self._low, self._high = resolve_param_ranges(self.task, params)
        self._values = np.array([p.nominal for p in self.task.params], dtype=np.float64)
        self._info: dict[str, float] = {}
        # every parameter at nominal; each reset overlays the sampled ones
        self._nominal = self.task.nominal_values

    # -- parameter distribution ------------------------------------------------
    def set_param_distribution(self, params: ParamsArg) -> None:
        """Replace the distribution parameters are sampled from at the next resets."""
        self._low, self._high = resolve_param_ranges(self.task, params)

    @property
    def param_ranges(self) -> dict[str, tuple[float, float]]:
        return {
            n: (float(lo), float(hi))
            for n, lo, hi in zip(self.param_names, self._low, self._high, strict=True)
        }

    @property
    def env_params(self) -> dict[str, float]:
        """The current episode's parameters."""
        return dict(self._info)

    # -- gymnasium API ---------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and options.get("env_params") is not None:
            low, high = resolve_param_ranges(self.task, options["env_params"])
        else:
            low, high = self._low, self._high
        # One uniform draw per parameter, even for fixed ones, so that the RNG
        # stream (and thus initial states) does not depend on which are fixed.
        u = self.np_random.random(len(low))
        values = low + (high - low) * u
        self._values = values
        self._info = {n: float(v) for n, v in zip(self.param_names, values, strict=True)}
        full = self._nominal.copy()
        full.update(self._info)
        self._apply_params(full)
        obs = self._reset_model()
        return obs, {"env_params": dict(self._info)}

    def step(self, action):
        obs, reward, terminated = self._step_model(action)
        return obs, reward, terminated, False, {"env_params": dict(self._info)}

    def render(self):
        """The current state as an H×W×3 uint8 image (``render_mode="rgb_array"``); ``None``
        with a warning when the env was made without a render mode (gymnasium's convention)."""
        if self.render_mode is None:
            gym.logger.warn(
                f"{self.task.name}: render() without a render mode; make the env with render_mode='rgb_array'"
            )
            return None
        return self._render_frame()

    # -- hooks -----------------------------------------------------------------
    def _render_frame(self) -> np.ndarray:
        raise NotImplementedError

    def _apply_params(self, values: dict[str, float]) -> None:
        raise NotImplementedError

    def _reset_model(self) -> np.ndarray:
        raise NotImplementedError

    def _step_model(self, action) -> tuple[np.ndarray, float, bool]:
        raise NotImplementedError
