"""Hopper, Walker2d, HalfCheetah: Roboschool's locomotion tasks on pybullet directly.

Reproduces pybullet's Roboschool port (``pybullet_envs``: ``WalkerBase``,
``WalkerBaseBulletEnv``, ``SinglePlayerStadiumScene``), which cannot be imported:

- scene: ``plane_stadium.sdf`` (floor friction 0.8, restitution 0.5), gravity 9.8 m/s²,
  one control step = 4 substeps of 0.0165/4 s (dt = 0.0165 s), 5 solver iterations;
- robot: pybullet_data's MJCF, self-collision except parents; joints named ``ignore*``
  (the planar root) and ``jointfix*`` are not actuated; torque = power × power_coef ×
  clip(a, −1, 1) (per-robot data below);
- observation (clipped to ±5): height change, sin/cos of the angle to a target 1 km ahead,
  0.3 × body-frame velocity, roll, pitch, then per joint (position scaled to [−1, 1]
  between its limits, 0.1 × velocity), then the previous step's foot-contact flags;
- reward: alive bonus (+1/−1), progress (potential difference of −distance/dt),
  electricity cost −2·mean|a·joint speed|, stall-torque cost −0.1·mean(a²),
  joints-at-limit cost −0.1 per joint beyond 0.99; the episode ends when the alive
  bonus is negative. One deliberate difference: ``pybullet_envs`` also averages the
  floor's position into the body's x/y (a side effect of adding the floor to the
  robot's parts), which shrinks progress; we average over the robot's links only.

Parameters:

- ``density`` scales the mass and the local inertia diagonal of every link that has
  mass: ``mass = m0·ρ/1000``, ``inertia = I0·ρ/1000`` (Bullet builds MJCF bodies at
  1000 kg/m³ and ignores the ``density`` attribute). Scaled links: Hopper torso, thigh,
  leg, foot; Walker2d torso, thigh, leg, foot and their ``_left`` twins; HalfCheetah
  torso, bthigh, bshin, bfoot, fthigh, fshin, ffoot. The massless links Bullet's MJCF
  importer inserts for joints (``link0_*``) and the static root stay massless.
- ``friction`` is the lateral friction coefficient of every robot link; Bullet
  multiplies it by the floor's 0.8 at each contact.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data

from mrpo_rllib.envs.base import ParamsArg, RandomizedEnv

TIMESTEP = 0.0165 / 4
FRAME_SKIP = 4
DT = TIMESTEP * FRAME_SKIP
ELECTRICITY_COST = -2.0
STALL_TORQUE_COST = -0.1
JOINTS_AT_LIMIT_COST = -0.1
WALK_TARGET = (1e3, 0.0)


@dataclass(frozen=True)
class RobotSpec:
    xml: str
    feet: tuple[str, ...]
    power: float
    power_coef: dict[str, float] = field(default_factory=dict)  # default 100 per joint
    knee_contacts_end: tuple[int, ...] = ()  # feet indices whose contact ends the episode
    upright: bool = True  # alive needs torso z > 0.8 as well as |pitch| < 1


ROBOTS = {
    "Hopper": RobotSpec("hopper.xml", ("foot",), 0.75),
    "Walker2d": RobotSpec(
        "walker2d.xml", ("foot", "foot_left"), 0.40, {"foot_joint": 30.0, "foot_left_joint": 30.0}
    ),
    "HalfCheetah": RobotSpec(
        "half_cheetah.xml",
        ("ffoot", "fshin", "fthigh", "bfoot", "bshin", "bthigh"),
        0.90,
        {"bthigh": 120.0, "bshin": 90.0, "bfoot": 60.0, "fthigh": 140.0, "fshin": 60.0, "ffoot": 30.0},
        knee_contacts_end=(1, 2, 4, 5),
        upright=False,
    ),
}


class LocomotionEnv(RandomizedEnv):
    """A Roboschool walker whose density and friction vary per episode."""

    def __init__(self, task: str = "Hopper", params: ParamsArg = None):
        super().__init__(task, params)
        self.robot = ROBOTS[self.task.name]
        self._cid = pb.connect(pb.DIRECT)  # plainly: an options string prints to C stdout
        self._load()
        n = len(self._joints)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs_dim = 8 + 2 * n + len(self._feet)
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (obs_dim,), np.float32)

    # -- loading -----------------------------------------------------------------
    def _load(self) -> None:
        cid = self._cid
        pb.resetSimulation(physicsClientId=cid)
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        pb.setGravity(0, 0, -9.8, physicsClientId=cid)
        pb.setDefaultContactERP(0.9, physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=DT, numSolverIterations=5, numSubSteps=FRAME_SKIP, physicsClientId=cid
        )
        data = pybullet_data.getDataPath()
        (self._floor,) = pb.loadSDF(os.path.join(data, "plane_stadium.sdf"), physicsClientId=cid)
        pb.changeDynamics(self._floor, -1, lateralFriction=0.8, restitution=0.5, physicsClientId=cid)
        flags = pb.URDF_USE_SELF_COLLISION | pb.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
        (body,) = pb.loadMJCF(os.path.join(data, "mjcf", self.robot.xml), flags=flags, physicsClientId=cid)
        self._body = body

        links, joints, limits, coefs = {}, [], [], []
        for j in range(pb.getNumJoints(body, physicsClientId=cid)):
            info = pb.getJointInfo(body, j, physicsClientId=cid)
            name, link = info[1].decode(), info[12].decode()
            links[link] = j
            # addToScene: every motor off (position control with zero force)
            pb.setJointMotorControl2(
                body, j, pb.POSITION_CONTROL, positionGain=0.1, velocityGain=0.1, force=0, physicsClientId=cid
            )
            if name.startswith("ignore") or name.startswith("jointfix"):
                continue
            joints.append(j)
            limits.append((info[8], info[9]))
            coefs.append(self.robot.power_coef.get(name, 100.0))
        self._parts = np.array(sorted(links.values()), dtype=np.int64)
        self._torso_row = int(np.flatnonzero(self._parts == links["torso"])[0])
        self._joints = joints
        lim = np.array(limits, dtype=np.float64)
        self._mid = lim.mean(axis=1).tolist()
        self._half = (0.5 * (lim[:, 1] - lim[:, 0])).tolist()
        self._torque = [self.robot.power * c for c in coefs]
        self._feet = [links[f] for f in self.robot.feet]
        self._massive = []  # (link, mass, inertia diagonal) of links with mass
        for link in [-1, *range(pb.getNumJoints(body, physicsClientId=cid))]:
            dyn = pb.getDynamicsInfo(body, link, physicsClientId=cid)
            if dyn[0] > 0:
                self._massive.append((link, dyn[0], np.array(dyn[2])))
        self._state_id = pb.saveState(physicsClientId=cid)

    # -- RandomizedEnv hooks -------------------------------------------------------
    def _apply_params(self, values: np.ndarray) -> None:
        cid, body = self._cid, self._body
        pb.restoreState(self._state_id, physicsClientId=cid)
        density, friction = float(values[0]), float(values[1])
        scale = density / 1000.0
        # The links with mass are the ones with collision shapes: one call each.
        for link, mass, inertia in self._massive:
            pb.changeDynamics(
                body,
                link,
                mass=mass * scale,
                localInertiaDiagonal=(inertia * scale).tolist(),
                lateralFriction=friction,
                physicsClientId=cid,
            )

    def _reset_model(self) -> np.ndarray:
        cid, body = self._cid, self._body
        noise = self.np_random.uniform(-0.1, 0.1, size=len(self._joints))
        for j, q in zip(self._joints, noise, strict=True):
            pb.resetJointState(body, j, targetValue=float(q), targetVelocity=0.0, physicsClientId=cid)
        pb.setJointMotorControlArray(
            body,
            self._joints,
            pb.POSITION_CONTROL,
            targetPositions=[0.0] * len(self._joints),
            forces=[0.0] * len(self._joints),
            physicsClientId=cid,
        )
        self._feet_contact = [0.0] * len(self._feet)
        self._initial_z = None
        obs = self._calc_state()
        self._potential = self._calc_potential()
        return obs

    def _step_model(self, action):
        cid, body = self._cid, self._body
        a = [float(x) for x in np.asarray(action, dtype=np.float64).reshape(-1)]
        if not all(math.isfinite(x) for x in a):
            raise ValueError(f"action must be finite, got {action!r}")
        a = [1.0 if x > 1.0 else -1.0 if x < -1.0 else x for x in a]
        forces = [g * x for g, x in zip(self._torque, a, strict=True)]
        pb.setJointMotorControlArray(
            body, self._joints, pb.TORQUE_CONTROL, forces=forces, physicsClientId=cid
        )
        pb.stepSimulation(physicsClientId=cid)
        obs = self._calc_state()
        alive = self._alive_bonus(self._body_z, self._pitch)
        terminated = alive < 0 or not np.isfinite(obs).all()
        potential_old, self._potential = self._potential, self._calc_potential()
        progress = self._potential - potential_old
        # contacts of this step, seen in the next observation (as Roboschool does)
        touching = {c[3] for c in pb.getContactPoints(bodyA=body, bodyB=self._floor, physicsClientId=cid)}
        self._feet_contact = [1.0 if f in touching else 0.0 for f in self._feet]
        n = len(a)
        electricity = (
            ELECTRICITY_COST * sum(abs(x * v) for x, v in zip(a, self._joint_speeds, strict=True)) / n
        )
        electricity += STALL_TORQUE_COST * sum(x * x for x in a) / n
        limits = JOINTS_AT_LIMIT_COST * self._joints_at_limit
        return obs, float(alive + progress + electricity + limits), bool(terminated)

    # -- Roboschool's state, potential and alive bonus -------------------------------
    def _calc_state(self) -> np.ndarray:
        # Pure Python on these few numbers: numpy's per-call overhead would dominate.
        cid, body = self._cid, self._body
        j, speeds, at_limit = [], [], 0
        for (q, dq, _, _), mid, half in zip(
            pb.getJointStates(body, self._joints, physicsClientId=cid), self._mid, self._half, strict=True
        ):
            rel = (q - mid) / half
            at_limit += abs(rel) > 0.99
            speed = 0.1 * dq
            j += (rel, speed)
            speeds.append(speed)
        self._joint_speeds, self._joints_at_limit = speeds, at_limit

        states = pb.getLinkStates(body, self._parts, computeLinkVelocity=1, physicsClientId=cid)
        n = len(states)
        x = sum(st[0][0] for st in states) / n
        y = sum(st[0][1] for st in states) / n
        torso = states[self._torso_row]
        z = torso[0][2]
        if self._initial_z is None:
            self._initial_z = z
        roll, pitch, yaw = pb.getEulerFromQuaternion(torso[1])
        self._body_xy, self._body_z, self._pitch = (x, y), z, pitch
        angle = math.atan2(WALK_TARGET[1] - y, WALK_TARGET[0] - x) - yaw
        vx, vy, vz = torso[6]
        c, s = math.cos(-yaw), math.sin(-yaw)
        more = [
            z - self._initial_z,
            math.sin(angle),
            math.cos(angle),
            0.3 * (c * vx - s * vy),
            0.3 * (s * vx + c * vy),
            0.3 * vz,
            roll,
            pitch,
        ]
        obs = np.array(more + j + list(self._feet_contact), dtype=np.float32)
        return np.clip(obs, -5.0, 5.0, out=obs)

    def _calc_potential(self) -> float:
        x, y = self._body_xy
        return -math.hypot(WALK_TARGET[1] - y, WALK_TARGET[0] - x) / DT

    def _alive_bonus(self, z: float, pitch: float) -> float:
        if self.robot.upright:
            return 1.0 if z > 0.8 and abs(pitch) < 1.0 else -1.0
        knees = any(self._feet_contact[i] for i in self.robot.knee_contacts_end)
        return 1.0 if abs(pitch) < 1.0 and not knees else -1.0

    def close(self):
        if getattr(self, "_cid", None) is not None and pb.isConnected(self._cid):
            pb.disconnect(self._cid)
        self._cid = None
