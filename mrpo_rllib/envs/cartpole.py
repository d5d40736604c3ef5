"""CartPole: gymnasium's classic-control CartPole with randomized physics.

Parameters (see the task table): ``force_mag`` (N), ``pole_length`` (gymnasium's
``length`` attribute, i.e. *half* the pole's length, m) and ``pole_mass`` (kg); the extra
parameter ``cart_mass`` (kg, gymnasium's ``masscart``, nominal 1.0) is fixed unless
randomized. After setting them, the derived quantities gymnasium caches are recomputed:
``total_mass = masspole + masscart`` and ``polemass_length = masspole * length``.
Dynamics, termination (|x| > 2.4 m or |θ| > 12°) and the reward of 1 per step are
gymnasium's own; the episode limit is 1000 steps (set at registration).

``render_mode="rgb_array"`` draws the cart and the pole with numpy (:func:`draw_cartpole`),
at gymnasium's scale (the track's ±2.4 m span the image's width), so a long pole is drawn
long; gymnasium's own renderer needs pygame, which this project does not install.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv as _GymCartPole

from mrpo_rllib.envs.base import (
    RENDER_HEIGHT,
    RENDER_MODES,
    RENDER_WIDTH,
    ParamsArg,
    RandomizeArg,
    RandomizedEnv,
)

X_THRESHOLD = 2.4  # gymnasium's: the episode ends beyond ±2.4 m
BACKGROUND = (255, 255, 255)
TRACK_RGB = (0, 0, 0)
CART_RGB = (0, 0, 0)
POLE_RGB = (202, 152, 101)  # gymnasium's colours
AXLE_RGB = (129, 132, 203)


def draw_cartpole(
    x: float, theta: float, length: float, width: int = RENDER_WIDTH, height: int = RENDER_HEIGHT
) -> np.ndarray:
    """A ``height`` × ``width`` × 3 uint8 image of a cart at ``x`` m with a pole of half-length
    ``length`` m (gymnasium's ``length``) at ``theta`` rad from upright (positive: to the right),
    at gymnasium's scale: ``width`` pixels for the track's 4.8 m, cart 50 × 30 and pole 10
    pixels wide at gymnasium's 600-pixel width, scaled with ``width``. Parts beyond the image
    are clipped."""
    scale = width / (2 * X_THRESHOLD)  # pixels per metre
    k = width / 600.0  # gymnasium's pixel sizes are for a 600-pixel-wide screen
    cart_w, cart_h, pole_w = 50.0 * k, 30.0 * k, 10.0 * k
    track_y = height * 0.75  # rows counted from the top
    cart_x = x * scale + width / 2.0
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    rows, cols = np.mgrid[0:height, 0:width]
    px, py = cols + 0.5, rows + 0.5  # pixel centres
    img[np.abs(py - track_y) <= 0.5 * k + 0.5] = TRACK_RGB
    cart = (np.abs(px - cart_x) <= cart_w / 2) & (py >= track_y - cart_h / 2) & (py <= track_y + cart_h / 2)
    img[cart] = CART_RGB
    # the pole: the points within pole_w/2 of the segment from the axle to the tip
    axle = np.array([cart_x, track_y - cart_h / 4])
    tip = axle + 2.0 * length * scale * np.array([np.sin(theta), -np.cos(theta)])
    d = tip - axle
    t = np.clip(((px - axle[0]) * d[0] + (py - axle[1]) * d[1]) / max(float(d @ d), 1e-12), 0.0, 1.0)
    dist2 = (px - axle[0] - t * d[0]) ** 2 + (py - axle[1] - t * d[1]) ** 2
    img[dist2 <= (pole_w / 2) ** 2] = POLE_RGB
    img[(px - axle[0]) ** 2 + (py - axle[1]) ** 2 <= (pole_w / 2) ** 2] = AXLE_RGB
    return img


class CartPoleEnv(RandomizedEnv):
    """Gymnasium's CartPole whose force, pole length and pole mass (and, if chosen, cart
    mass) vary per episode."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 50}  # tau = 0.02 s

    def __init__(
        self,
        task: str = "CartPole",
        params: ParamsArg = None,
        randomize: RandomizeArg = None,
        render_mode: str | None = None,
    ):
        super().__init__(task, params, randomize, render_mode)
        self._cp = _GymCartPole()
        self.action_space = self._cp.action_space
        self.observation_space = self._cp.observation_space

    def _apply_params(self, values: dict[str, float]) -> None:
        cp = self._cp
        cp.force_mag = values["force_mag"]
        cp.length = values["pole_length"]
        cp.masspole = values["pole_mass"]
        cp.masscart = values["cart_mass"]
        cp.total_mass = cp.masspole + cp.masscart
        cp.polemass_length = cp.masspole * cp.length

    def _reset_model(self) -> np.ndarray:
        # Share our generator so that reset(seed=...) fixes the initial state too.
        self._cp._np_random = self.np_random
        obs, _ = self._cp.reset()
        return obs

    def _step_model(self, action):
        obs, reward, terminated, _, _ = self._cp.step(action)
        return obs, reward, terminated

    def _render_frame(self) -> np.ndarray:
        state = self._cp.state
        x, theta = (0.0, 0.0) if state is None else (float(state[0]), float(state[2]))
        return draw_cartpole(x, theta, self._cp.length)

    def close(self):
        self._cp.close()
