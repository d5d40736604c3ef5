"""InvertedPendulum and InvertedDoublePendulum: Roboschool's pendula on pybullet directly.

Reproduces ``pybullet_envs`` (``InvertedPendulum``/``InvertedDoublePendulum`` robots,
``SingleRobotEmptyScene``: gravity 9.8 m/s², one 0.0165 s step per action, 5 solver
iterations), which cannot be imported:

- IP: observation ``[x, ẋ, cos θ, sin θ, θ̇]``; slider force 100·clip(a); reward 1 per
  step; the episode ends when |θ| > 0.2 rad.
- IDP: observation ``[x, ẋ, x_pole2, cos θ, sin θ, θ̇, cos γ, sin γ, γ̇]``; slider force
  200·clip(a); reward 10 − 0.01·x_pole2² − (h − h_target)² − 1e-3·θ̇² − 5e-3·γ̇².

Geometry parameters rewrite pybullet_data's MJCF (the file is read once and templated)
into a private temporary directory and reload it with ``resetSimulation`` (not
``removeBody``, which leaks) — only when the geometry changed since the last load. File
caching is off (pybullet caches MJCF by path). No state is saved: these models have no
contacts, so resetting every joint restores the initial state exactly.

- IP ``cart_size``: radius and half-length of the cart capsule (nominal 0.1 m);
  ``pole_length``: the pole capsule's length (nominal 0.6 m; radius kept).
- IDP ``pole1_length``/``pole2_length``: the two capsules' lengths and the position of
  the upper hinge on top of the lower pole (nominal 0.6 m each).

IDP's height terms are calibrated in Roboschool for 0.6 m poles: with h = y_pole2 +
0.3 (y_pole2 is the upper pole's centre of mass, so h is its tip when upright, 1.2 m),
the episode ends at h ≤ 1 and the distance penalty aims at h = 2. We scale both with the
sampled poles, H = l1 + l2 being the upright tip height: h = y_pole2 + l2/2; the episode
ends at h ≤ H/1.2 (the same fraction of the upright height), and the target is H + 0.8
(the same distance above the upright tip, so the best reward is the same for every
geometry and returns stay comparable across environments — which MRPO's worst-case
selection relies on). At l1 = l2 = 0.6 m both are exactly Roboschool's 1 and 2.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data

from mrpo_rllib.envs.base import ParamsArg, RandomizedEnv

TIMESTEP = 0.0165
NOMINAL_HEIGHT = 1.2  # Roboschool's upright h for 0.6 m + 0.6 m poles
END_FRACTION = 1.0 / NOMINAL_HEIGHT  # Roboschool ends at h <= 1
TARGET_ABOVE_TIP = 2.0 - NOMINAL_HEIGHT  # Roboschool's target h = 2


@dataclass(frozen=True)
class PendulumSpec:
    xml: str
    gain: float
    obs_dim: int
    templates: tuple[tuple[str, str], ...]  # (text in pybullet_data's file, template)


PENDULA = {
    "InvertedPendulum": PendulumSpec(
        "inverted_pendulum.xml",
        100.0,
        5,
        (
            (
                'name="cart" pos="0 0 0" quat="0.707 0 0.707 0" size="0.1 0.1"',
                'name="cart" pos="0 0 0" quat="0.707 0 0.707 0" size="{cart_size!r} {cart_size!r}"',
            ),
            (
                'fromto="0 0 0 0.001 0 0.6" name="cpole" rgba="0 0.7 0.7 1" size="0.049 0.3"',
                'fromto="0 0 0 0.001 0 {pole_length!r}" name="cpole" rgba="0 0.7 0.7 1" size="0.049 {half_pole!r}"',
            ),
        ),
    ),
    "InvertedDoublePendulum": PendulumSpec(
        "inverted_double_pendulum.xml",
        200.0,
        9,
        (
            (
                'fromto="0 0 0 0 0 0.6" name="cpole" rgba="0 0.7 0.7 1" size="0.045 0.3"',
                'fromto="0 0 0 0 0 {pole1_length!r}" name="cpole" rgba="0 0.7 0.7 1" size="0.045 {half_pole1!r}"',
            ),
            ('<body name="pole2" pos="0 0 0.6">', '<body name="pole2" pos="0 0 {pole1_length!r}">'),
            (
                'fromto="0 0 0 0 0 0.6" name="cpole2" rgba="0 0.7 0.7 1" size="0.045 0.3"',
                'fromto="0 0 0 0 0 {pole2_length!r}" name="cpole2" rgba="0 0.7 0.7 1" size="0.045 {half_pole2!r}"',
            ),
        ),
    ),
}


def _template(spec: PendulumSpec) -> str:
    with open(os.path.join(pybullet_data.getDataPath(), "mjcf", spec.xml)) as f:
        text = f.read()
    for original, template in spec.templates:
        if text.count(original) != 1:
            raise RuntimeError(f"{spec.xml}: expected exactly one {original!r} to template")
        text = text.replace(original, template)
    return text


class PendulumEnv(RandomizedEnv):
    """A Roboschool pendulum whose geometry varies per episode."""

    def __init__(self, task: str = "InvertedPendulum", params: ParamsArg = None):
        super().__init__(task, params)
        self.spec_ = PENDULA[self.task.name]
        self._double = self.task.name == "InvertedDoublePendulum"
        self._xml_template = _template(self.spec_)
        self._tmpdir = tempfile.mkdtemp(prefix="mrpo_pendulum_")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        self._cid = pb.connect(pb.DIRECT)  # plainly: an options string prints to C stdout
        self._geometry = None
        self._torque = [self.spec_.gain]
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.spec_.obs_dim,), np.float32)
        self._load(tuple(p.nominal for p in self.task.params))

    # -- geometry ------------------------------------------------------------------
    def _xml(self, geometry: tuple[float, ...]) -> str:
        values = dict(zip(self.param_names, geometry, strict=True))
        if self._double:
            values["half_pole1"] = values["pole1_length"] / 2
            values["half_pole2"] = values["pole2_length"] / 2
        else:
            values["half_pole"] = values["pole_length"] / 2
        return self._xml_template.format(**values)

    def _load(self, geometry: tuple[float, ...]) -> None:
        cid = self._cid
        path = os.path.join(self._tmpdir, self.spec_.xml)
        with open(path, "w") as f:
            f.write(self._xml(geometry))
        pb.resetSimulation(physicsClientId=cid)  # not removeBody, which leaks
        pb.setPhysicsEngineParameter(
            enableFileCaching=0,
            deterministicOverlappingPairs=1,
            fixedTimeStep=TIMESTEP,
            numSolverIterations=5,
            numSubSteps=1,
            physicsClientId=cid,
        )
        pb.setGravity(0, 0, -9.8, physicsClientId=cid)
        pb.setDefaultContactERP(0.9, physicsClientId=cid)
        bodies = pb.loadMJCF(path, physicsClientId=cid)
        if self._geometry is None:  # the structure is the same for every geometry: parse once
            joints, links = {}, {}
            for body in bodies:
                for j in range(pb.getNumJoints(body, physicsClientId=cid)):
                    info = pb.getJointInfo(body, j, physicsClientId=cid)
                    joints[info[1].decode()] = (body, j)
                    links[info[12].decode()] = (body, j)
            self._body, self._slider = joints["slider"]
            self._hinges = [joints["hinge"][1]] + ([joints["hinge2"][1]] if self._double else [])
            self._all_joints = list(range(pb.getNumJoints(self._body, physicsClientId=cid)))
            self._joints = [self._slider]  # the actuated joint (for benchmarks)
            self._links = {name: j for name, (_, j) in links.items()}
            self._pole2 = self._links["pole2"] if self._double else None
        n = len(self._all_joints)
        pb.setJointMotorControlArray(  # every motor off, as Roboschool's addToScene
            self._body,
            self._all_joints,
            pb.POSITION_CONTROL,
            forces=[0.0] * n,
            positionGains=[0.1] * n,
            velocityGains=[0.1] * n,
            physicsClientId=cid,
        )
        self._geometry = geometry

    def loaded_geometry(self) -> dict[str, float]:
        """The geometry read back from the simulation (for tests), in metres.

        Capsule dimensions from ``getVisualShapeData`` (``getCollisionShapeData``
        segfaults on these MJCF bodies in pybullet 3.2.7).
        """
        cid, body = self._cid, self._body
        dims = {
            row[1]: row[3] for row in pb.getVisualShapeData(body, physicsClientId=cid)
        }  # (length, radius)
        if self._double:
            return {
                "pole1_length": dims[self._links["pole"]][0],
                "pole2_length": dims[self._links["pole2"]][0],
            }
        return {"cart_size": dims[self._links["cart"]][1], "pole_length": dims[self._links["pole"]][0]}

    # -- RandomizedEnv hooks -------------------------------------------------------------
    def _apply_params(self, values: np.ndarray) -> None:
        geometry = tuple(float(v) for v in values)
        if geometry != self._geometry:
            self._load(geometry)
        if self._double:
            l1, l2 = geometry
            self._half_l2 = l2 / 2
            self._upright = l1 + l2
        else:
            self._half_l2 = self._upright = None

    def _reset_model(self) -> np.ndarray:
        cid, body = self._cid, self._body
        # The whole state of these models is their joints' (no contacts): reset them all.
        pb.resetJointState(body, self._slider, targetValue=0.0, targetVelocity=0.0, physicsClientId=cid)
        u = self.np_random.uniform(-0.1, 0.1, size=len(self._hinges))
        for j, q in zip(self._hinges, u, strict=True):
            pb.resetJointState(body, j, targetValue=float(q), targetVelocity=0.0, physicsClientId=cid)
        pb.setJointMotorControlArray(
            body,
            self._hinges,
            pb.POSITION_CONTROL,
            targetPositions=[0.0] * len(self._hinges),
            forces=[0.0] * len(self._hinges),
            physicsClientId=cid,
        )
        return self._calc_state()

    def _step_model(self, action):
        cid, body = self._cid, self._body
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if not math.isfinite(a):
            raise ValueError(f"action must be finite, got {action!r}")
        a = 1.0 if a > 1.0 else -1.0 if a < -1.0 else a
        pb.setJointMotorControl2(
            body, self._slider, pb.TORQUE_CONTROL, force=self.spec_.gain * a, physicsClientId=cid
        )
        pb.stepSimulation(physicsClientId=cid)
        obs = self._calc_state()
        if not self._double:
            return obs, 1.0, bool(abs(self._theta) > 0.2)
        h = self._pos_y + self._half_l2
        target = self._upright + TARGET_ABOVE_TIP
        dist_penalty = 0.01 * self._pos_x**2 + (h - target) ** 2
        vel_penalty = 1e-3 * self._v1**2 + 5e-3 * self._v2**2
        return obs, float(10.0 - dist_penalty - vel_penalty), bool(h <= self._upright * END_FRACTION)

    def _calc_state(self) -> np.ndarray:
        cid, body = self._cid, self._body
        states = pb.getJointStates(body, [self._slider, *self._hinges], physicsClientId=cid)
        x, vx = states[0][0], states[0][1]
        theta, theta_dot = states[1][0], states[1][1]
        self._theta = theta
        if not self._double:
            return np.array([x, vx, math.cos(theta), math.sin(theta), theta_dot], dtype=np.float32)
        gamma, gamma_dot = states[2][0], states[2][1]
        pos = pb.getLinkState(body, self._pole2, physicsClientId=cid)[0]
        self._pos_x, self._pos_y = pos[0], pos[2]
        self._v1, self._v2 = theta_dot, gamma_dot
        return np.array(
            [
                x,
                vx,
                self._pos_x,
                math.cos(theta),
                math.sin(theta),
                theta_dot,
                math.cos(gamma),
                math.sin(gamma),
                gamma_dot,
            ],
            dtype=np.float32,
        )

    def close(self):
        if getattr(self, "_cid", None) is not None and pb.isConnected(self._cid):
            pb.disconnect(self._cid)
        self._cid = None
        self._finalizer()
