"""Hopper, Walker2d, HalfCheetah: Roboschool's locomotion tasks on pybullet directly.

One class, :class:`LocomotionEnv`, for the three robots; what differs between them is
data (:data:`ROBOTS`). It reproduces pybullet's Roboschool port (``pybullet_envs``:
``WalkerBase``, ``WalkerBaseBulletEnv``, ``SinglePlayerStadiumScene``), which cannot be
imported:

- scene: ``plane_stadium.sdf`` (floor friction 0.8, restitution 0.5), gravity 9.8 m/s²,
  default contact ERP 0.9, one control step = 4 substeps of 0.0165/4 s (dt = 0.0165 s),
  5 solver iterations, deterministic overlapping pairs; one pybullet client (DIRECT)
  per environment, disconnected by ``close()``;
- robot: pybullet_data's MJCF, self-collision except parents; every joint motor switched
  off once after loading (position control with zero force, as ``addToScene`` does);
  joints named ``ignore*`` (the planar root) and ``jointfix*`` are not actuated;
  torque = power × power_coef × clip(a, −1, 1);
- reset: ``restoreState`` of the state saved right after loading (never saved again),
  then every actuated joint at uniform(−0.1, 0.1) rad from ``self.np_random``, at rest;
- observation (clipped to ±5, float32): height change of the torso, sin/cos of the angle
  to a target 1 km ahead, 0.3 × the torso's velocity in its yaw frame, roll, pitch, then
  per joint (position scaled to [−1, 1] between its limits, 0.1 × velocity), then the
  previous step's foot-contact flags (contacts with the floor); body x/y is the mean of
  the links' centres of mass;
- reward: alive bonus (+1/−1), progress (potential difference of −distance/dt),
  electricity cost −2·mean|a · 0.1·joint speed|, stall-torque cost −0.1·mean(a²) (both
  with the action as given, as Roboschool does), joints-at-limit cost −0.1 per joint
  beyond 0.99 of its half range; the episode ends when the alive bonus is negative
  (Hopper, Walker2d: torso not above 0.8 m or |pitch| not below 1; HalfCheetah: |pitch|
  not below 1 or a shin/thigh touched the floor at the previous step) or the
  observation holds a NaN.

Quirk kept: Bullet's cached link poses, which Roboschool reads with ``getLinkState``,
date from the start of the last of the 4 substeps while joint states are current; we
read the same poses. Two deliberate differences from ``pybullet_envs``:

- after its first reset ``pybullet_envs`` adds the floor to the robot's parts
  (``addToScene(ground_plane)``), so the floor's origin enters the body's mean x/y and
  shrinks progress by n/(n+1); we average over the robot's links only, as the original
  Roboschool did;
- ``pybullet_envs`` never ends a HalfCheetah episode (its ``_isDone`` returns False, the
  −1 is only a penalty); as the original Roboschool, and as for the other two, it ends
  when the alive bonus is negative.

Parameters (see :mod:`mrpo_rllib.envs.tasks`):

- ``density`` scales the mass and the local inertia diagonal of every link that has mass:
  ``mass = m0·ρ/1000``, ``inertia = I0·ρ/1000`` with ``m0, I0`` read once after loading
  (Bullet's MJCF importer ignores the ``density`` attribute and builds at 1000 kg/m³).
  Scaled links — Hopper: torso, thigh, leg, foot; Walker2d: torso, thigh, leg, foot,
  thigh_left, leg_left, foot_left; HalfCheetah: torso, bthigh, bshin, bfoot, fthigh,
  fshin, ffoot (Bullet gives bfoot and ffoot 10 kg each). The static base ``link0_1`` and
  the ``link0_*`` links Bullet inserts between the joints of one MJCF body have mass 0
  and no collision shape; they stay as they are.
- ``friction`` is the lateral friction coefficient of every robot link with a collision
  shape (the same links; the others cannot touch anything). Bullet multiplies it by the
  floor's 0.8 at each contact.

Extra parameters, at their nominal 1.0 unless chosen with ``randomize=``:

- ``power`` multiplies every actuator's torque: torque = power × robot power ×
  power_coef × clip(a, −1, 1) (a Python-side gain; no pybullet call).
- ``torso_mass`` and ``foot_mass`` scale the mass and local inertia diagonal of the torso
  link and of the foot link(s) (:attr:`RobotSpec.mass_feet` — Hopper: foot; Walker2d:
  foot, foot_left; HalfCheetah: bfoot, ffoot), multiplied with the density scaling:
  ``mass = m0·ρ/1000·scale``.

``changeDynamics`` is not part of Bullet's saved state (``restoreState`` leaves masses
and friction as they are), so a reset calls it — one call per link with mass, setting
mass, inertia and friction — only when density, friction or a mass scale differs from
what the simulation holds.

Speed: a step makes four pybullet calls besides ``stepSimulation`` (set the torques,
read the joints, read the torso, read the floor contacts) and does its arithmetic on
Python floats, cheaper than numpy on a few numbers. The mean x over all links, which
would need ``getLinkStates`` over every link, is computed in closed form from the
joints (:class:`_PlanarSumX`, at the joint positions of the last substep's start so as
to equal Bullet's cached poses); it is checked against Bullet's kinematics at load time
and falls back to ``getLinkStates`` for a model it does not fit.

Why one file of ~550 lines: it is one physics family (the three Roboschool walkers share the
model loading, the randomized dynamics, the reward and the fast state reads), and its parts
are only meaningful together; each part is a class or a function of its own.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data

from mrpo_rllib.envs.base import RENDER_MODES, ParamsArg, RandomizeArg, RandomizedEnv, pybullet_frame

TIMESTEP = 0.0165 / 4
FRAME_SKIP = 4
DT = TIMESTEP * FRAME_SKIP
GRAVITY = 9.8
SOLVER_ITERATIONS = 5
FLOOR_FRICTION = 0.8
FLOOR_RESTITUTION = 0.5
ELECTRICITY_COST = -2.0
STALL_TORQUE_COST = -0.1
JOINTS_AT_LIMIT_COST = -0.1
WALK_TARGET_X, WALK_TARGET_Y = 1e3, 0.0
OBS_CLIP = 5.0
INIT_NOISE = 0.1
DEFAULT_POWER_COEF = 100.0
# render_mode="rgb_array": a camera side on, following the torso along x at a fixed height
CAMERA_HEIGHT = 0.8
CAMERA_DISTANCE = 3.0
CAMERA_PITCH = -10.0
ROBOT_RGBA = (0.85, 0.45, 0.15, 1.0)  # the MJCF gives no colours: white on the light floor


@dataclass(frozen=True)
class RobotSpec:
    """Per-robot data of ``pybullet_envs.robot_locomotors``."""

    xml: str  # file in pybullet_data/mjcf
    feet: tuple[str, ...]  # links whose floor contact is observed (``foot_list``)
    power: float
    power_coef: dict[str, float] = field(default_factory=dict)  # per joint; default 100
    # alive bonus: +1 while |pitch| < 1 and, if ``min_z`` is set, torso z > min_z, and none
    # of the feet listed in ``ends_on_contact`` (indices into ``feet``) touches the floor
    min_z: float | None = 0.8
    ends_on_contact: tuple[int, ...] = ()
    # links the ``foot_mass`` parameter scales
    mass_feet: tuple[str, ...] = ("foot",)


ROBOTS: dict[str, RobotSpec] = {
    "Hopper": RobotSpec("hopper.xml", ("foot",), 0.75),
    "Walker2d": RobotSpec(
        "walker2d.xml",
        ("foot", "foot_left"),
        0.40,
        {"foot_joint": 30.0, "foot_left_joint": 30.0},
        mass_feet=("foot", "foot_left"),
    ),
    "HalfCheetah": RobotSpec(
        "half_cheetah.xml",
        ("ffoot", "fshin", "fthigh", "bfoot", "bshin", "bthigh"),
        0.90,
        {"bthigh": 120.0, "bshin": 90.0, "bfoot": 60.0, "fthigh": 140.0, "fshin": 60.0, "ffoot": 30.0},
        min_z=None,
        ends_on_contact=(1, 2, 4, 5),  # knees: "a lot of strange walks using knees"
        mass_feet=("bfoot", "ffoot"),
    ),
}


class _PlanarSumX:
    """Σx of the links' centres of mass of a planar walker, in closed form from its joints.

    The three MJCF robots move in the x–z plane: the root is a slide along x, a slide
    along z and a hinge about y, every other joint a hinge about ±y, every frame offset
    lies in the plane and every frame is unrotated at zero angles. Then each link's
    centre of mass is a constant plus slides plus plane offsets rotated by the sum of the
    hinge angles above them, and Σx over the links is
    ``c + Σ_s a_s q_s + Σ_k (a_k cos θ_k + b_k sin θ_k)`` with constant coefficients,
    where θ_k is the angle of hinge k's child frame. Every y is 0. This replaces
    ``getLinkStates`` over all links, the most expensive read of a step.
    :meth:`build` returns None for a model that is not of this kind.
    """

    def __init__(self):
        self.n_nodes = 1  # angle nodes; node 0 is the zero angle
        self.nodes: list[tuple[int, int, int, float]] = []  # (node, parent node, read row, sign)
        self.const = 0.0
        self.slides: list[tuple[int, float]] = []  # (read row, coefficient of q)
        self.terms: list[tuple[int, float, float]] = []  # (node, a, b)

    @classmethod
    def build(cls, cid: int, body: int, parts: list[int], read: list[int]) -> _PlanarSumX | None:
        """Σx over ``parts`` of ``body``; ``read`` lists the joints whose states are read."""
        eps = 1e-12
        identity = (0.0, 0.0, 0.0, 1.0)
        pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
        base = pb.getDynamicsInfo(body, -1, physicsClientId=cid)
        if abs(pos[1] + base[3][1]) > eps or tuple(orn) != identity or tuple(base[4]) != identity:
            return None
        fk = cls()
        row = {j: r for r, j in enumerate(read)}
        # per link: (angle node of its COM frame, constant x, slides, {node: [a, b]})
        links: dict[int, tuple[int, float, list, dict]] = {-1: (0, pos[0] + base[3][0], [], {})}
        for j in range(pb.getNumJoints(body, physicsClientId=cid)):
            info = pb.getJointInfo(body, j, physicsClientId=cid)
            dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
            jtype, axis, ppos, porn, parent = info[2], info[13], info[14], info[15], info[16]
            inert_pos, inert_orn = dyn[3], dyn[4]
            if tuple(porn) != identity or tuple(inert_orn) != identity:
                return None
            if abs(ppos[1]) > eps or abs(inert_pos[1]) > eps:
                return None
            node_p, const, slides, terms = links[parent]
            slides = list(slides)
            terms = {k: list(v) for k, v in terms.items()}

            def offset(node, ox, oz, const, terms=terms):
                # x of R_y(θ_node)·(ox, oz) is ox cos θ + oz sin θ
                if node == 0:
                    return const + ox
                v = terms.setdefault(node, [0.0, 0.0])
                v[0] += ox
                v[1] += oz
                return const

            const = offset(node_p, ppos[0], ppos[2], const)
            if jtype == pb.JOINT_REVOLUTE:
                if abs(axis[0]) > eps or abs(axis[2]) > eps or abs(abs(axis[1]) - 1.0) > eps or j not in row:
                    return None
                node = fk.n_nodes
                fk.n_nodes += 1
                fk.nodes.append((node, node_p, row[j], float(axis[1])))
            elif jtype == pb.JOINT_PRISMATIC:
                if node_p != 0 or abs(axis[1]) > eps or j not in row:
                    return None  # a slide below a hinge is not handled
                node = node_p
                slides.append((row[j], float(axis[0])))
            elif jtype == pb.JOINT_FIXED:
                node = node_p
            else:
                return None
            const = offset(node, inert_pos[0], inert_pos[2], const)
            links[j] = (node, const, slides, terms)

        slide_sum: dict[int, float] = {}
        term_sum: dict[int, list[float]] = {}
        for link in parts:
            _, const, slides, terms = links[link]
            fk.const += const
            for r, a in slides:
                slide_sum[r] = slide_sum.get(r, 0.0) + a
            for node, (a, b) in terms.items():
                v = term_sum.setdefault(node, [0.0, 0.0])
                v[0] += a
                v[1] += b
        fk.slides = [(r, a) for r, a in slide_sum.items() if a != 0.0]
        fk.terms = [(node, a, b) for node, (a, b) in sorted(term_sum.items()) if a != 0.0 or b != 0.0]
        fk.finish()
        return fk

    def finish(self) -> None:
        """Fuse the angle recursion and the Σx terms into one pass over the hinges."""
        ab = {node: (a, b) for node, a, b in self.terms}
        self.chain = [
            (node, parent, r, sign, *ab.get(node, (0.0, 0.0))) for node, parent, r, sign in self.nodes
        ]
        self.theta = [0.0] * self.n_nodes

    def sum_x(self, states, h: float = 0.0) -> float:
        """Σx at joint positions ``q − h·dq`` of ``states`` (getJointStates rows in read order)."""
        sx = self.const
        for r, a in self.slides:
            st = states[r]
            sx += a * (st[0] - h * st[1])
        theta, cos, sin = self.theta, math.cos, math.sin
        for node, parent, r, sign, a, b in self.chain:
            st = states[r]
            t = theta[parent] + sign * (st[0] - h * st[1])
            theta[node] = t
            sx += a * cos(t) + b * sin(t)
        return sx


class LocomotionEnv(RandomizedEnv):
    """A Roboschool walker whose density and friction (or the parameters chosen with
    ``randomize``) are resampled at every reset.

    Args:
        task: ``"Hopper"``, ``"Walker2d"`` or ``"HalfCheetah"``.
        params: the parameter distribution (see :func:`mrpo_rllib.envs.base.resolve_param_ranges`).
        randomize: which parameters to randomize instead of Table 1's
            (see :class:`mrpo_rllib.envs.base.RandomizedEnv`).
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 1.0 / DT}

    def __init__(
        self,
        task: str = "Hopper",
        params: ParamsArg = None,
        randomize: RandomizeArg = None,
        render_mode: str | None = None,
    ):
        super().__init__(task, params, randomize, render_mode)
        if self.task.name not in ROBOTS:
            raise ValueError(
                f"LocomotionEnv has no robot for task {self.task.name!r}; expected {list(ROBOTS)}"
            )
        self.robot = ROBOTS[self.task.name]
        self._cid = pb.connect(pb.DIRECT)  # plainly: an options string prints to C stdout
        # disconnects once: at close(), or when the env is collected without close()
        self._disconnect = weakref.finalize(self, pb.disconnect, self._cid)
        self._load()
        if self.render_mode is not None:  # colours only: nothing the physics reads
            for link in [-1, *range(pb.getNumJoints(self._body, physicsClientId=self._cid))]:
                pb.changeVisualShape(self._body, link, rgbaColor=ROBOT_RGBA, physicsClientId=self._cid)
        n = len(self._joints)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs_dim = 8 + 2 * n + len(self._feet)
        self.observation_space = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (obs_dim,), np.float32)

    # -- loading -----------------------------------------------------------------
    def _load(self) -> None:
        cid = self._cid
        pb.resetSimulation(physicsClientId=cid)
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        pb.setGravity(0, 0, -GRAVITY, physicsClientId=cid)
        pb.setDefaultContactERP(0.9, physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=DT,
            numSolverIterations=SOLVER_ITERATIONS,
            numSubSteps=FRAME_SKIP,
            physicsClientId=cid,
        )
        data = pybullet_data.getDataPath()
        (self._floor,) = pb.loadSDF(os.path.join(data, "plane_stadium.sdf"), physicsClientId=cid)
        pb.changeDynamics(
            self._floor,
            -1,
            lateralFriction=FLOOR_FRICTION,
            restitution=FLOOR_RESTITUTION,
            physicsClientId=cid,
        )
        flags = pb.URDF_USE_SELF_COLLISION | pb.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
        (body,) = pb.loadMJCF(os.path.join(data, "mjcf", self.robot.xml), flags=flags, physicsClientId=cid)
        self._body = body

        links: dict[str, int] = {}
        joints, limits, gains, moving = [], [], [], []
        for j in range(pb.getNumJoints(body, physicsClientId=cid)):
            info = pb.getJointInfo(body, j, physicsClientId=cid)
            name, link = info[1].decode(), info[12].decode()
            links[link] = j
            # addToScene: every motor off (position control with zero force); this
            # setting is part of the saved state and survives every restoreState.
            pb.setJointMotorControl2(
                body, j, pb.POSITION_CONTROL, positionGain=0.1, velocityGain=0.1, force=0, physicsClientId=cid
            )
            if info[2] != pb.JOINT_FIXED:
                moving.append(j)
            if name.startswith("ignore") or name.startswith("jointfix"):
                continue
            joints.append(j)
            limits.append((info[8], info[9]))
            gains.append(self.robot.power * self.robot.power_coef.get(name, DEFAULT_POWER_COEF))
        self._joints = joints
        self._n = len(joints)
        self._mid = [0.5 * (lo + hi) for lo, hi in limits]
        self._half = [0.5 * (hi - lo) for lo, hi in limits]
        self._base_gains = gains  # robot power × power_coef
        self._gains = gains  # × the power parameter
        self._power = 1.0
        self._parts = sorted(links.values())  # one part per link name, as pybullet_envs
        self._n_parts = len(self._parts)
        self._torso = links["torso"]
        self._feet = [links[f] for f in self.robot.feet]
        self._ends_on_contact = [self._feet[i] for i in self.robot.ends_on_contact]

        # (link, mass, inertia diagonal, mass-scale parameter or None) of the links with
        # mass: the ones density scales; the torso and the feet have a scale of their own.
        missing = [f for f in self.robot.mass_feet if f not in links]
        if missing:
            raise RuntimeError(f"{self.robot.xml} has no link(s) {missing} for foot_mass")
        group = {links["torso"]: "torso_mass", **{links[f]: "foot_mass" for f in self.robot.mass_feet}}
        self._massive: list[tuple[int, float, tuple[float, float, float], str | None]] = []
        for link in [-1, *range(pb.getNumJoints(body, physicsClientId=cid))]:
            dyn = pb.getDynamicsInfo(body, link, physicsClientId=cid)
            if dyn[0] > 0:
                self._massive.append((link, dyn[0], tuple(dyn[2]), group.get(link)))
        if {g for *_, g in self._massive} != {None, "torso_mass", "foot_mass"}:
            raise RuntimeError(f"{self.robot.xml}: the torso or a foot has no mass")
        self._dynamics: tuple[float, float, float, float] | None = None  # what Bullet holds
        self._state_id = pb.saveState(physicsClientId=cid)

        # Each step reads the actuated joints first, then the other moving ones (the root).
        self._read = joints + [j for j in moving if j not in joints]
        self._fk = _PlanarSumX.build(cid, body, self._parts, self._read)
        if self._fk is not None and self._fk_error() > 1e-9:
            self._fk = None  # not the model we expect: read the links from Bullet instead
        if self._fk is None:
            self._read = joints
        pb.restoreState(self._state_id, physicsClientId=cid)

    def _fk_error(self, trials: int = 5) -> float:
        """Largest gap between the closed-form Σx (and y = 0) and Bullet's, over random poses."""
        cid, body = self._cid, self._body
        rng = np.random.default_rng(0)
        worst = 0.0
        for _ in range(trials):
            q = rng.uniform(-1.5, 1.5, len(self._read)).tolist()
            pb.resetJointStatesMultiDof(body, self._read, [[v] for v in q], physicsClientId=cid)
            links = pb.getLinkStates(body, self._parts, computeForwardKinematics=1, physicsClientId=cid)
            gap = abs(self._fk.sum_x([(v, 0.0) for v in q]) - sum(st[0][0] for st in links))
            worst = max(worst, gap, *(abs(st[0][1]) for st in links))
        return worst

    # -- RandomizedEnv hooks -------------------------------------------------------
    def _apply_params(self, values: dict[str, float]) -> None:
        cid, body = self._cid, self._body
        pb.restoreState(self._state_id, physicsClientId=cid)
        power = values["power"]
        if power != self._power:
            self._gains = [g * power for g in self._base_gains]
            self._power = power
        dynamics = (values["density"], values["friction"], values["torso_mass"], values["foot_mass"])
        if dynamics == self._dynamics:
            return  # changeDynamics survives restoreState: Bullet holds these values already
        density, friction = dynamics[0], dynamics[1]
        scale = density / 1000.0
        scales = {None: scale, "torso_mass": scale * dynamics[2], "foot_mass": scale * dynamics[3]}
        for link, mass, (ix, iy, iz), group in self._massive:
            s = scales[group]
            pb.changeDynamics(
                body,
                link,
                mass=mass * s,
                localInertiaDiagonal=(ix * s, iy * s, iz * s),
                lateralFriction=friction,
                physicsClientId=cid,
            )
        self._dynamics = dynamics

    def _reset_model(self) -> np.ndarray:
        noise = self.np_random.uniform(-INIT_NOISE, INIT_NOISE, size=self._n)
        pb.resetJointStatesMultiDof(
            self._body,
            self._joints,
            targetValues=[[q] for q in noise.tolist()],
            targetVelocities=[[0.0]] * self._n,
            physicsClientId=self._cid,
        )
        self._feet_contact = [0.0] * len(self._feet)
        self._touching: set[int] = set()
        self._initial_z = None
        obs = self._calc_state()
        self._potential = self._calc_potential()
        return obs

    def _step_model(self, action):
        cid, body = self._cid, self._body
        if isinstance(action, np.ndarray) and action.ndim == 1:
            a = action.tolist()  # exact Python floats, also from float32
        else:
            a = np.asarray(action, dtype=np.float64).reshape(-1).tolist()
        if len(a) != self._n:
            raise ValueError(f"action must have {self._n} entries, got {len(a)}")
        if not math.isfinite(sum(a)):
            raise ValueError(f"action must be finite, got {action!r}")
        forces = [g * (1.0 if x > 1.0 else -1.0 if x < -1.0 else x) for g, x in zip(self._gains, a)]  # noqa: B905
        pb.setJointMotorControlArray(
            body, self._joints, pb.TORQUE_CONTROL, forces=forces, physicsClientId=cid
        )
        pb.stepSimulation(physicsClientId=cid)

        obs = self._calc_state()
        # alive bonus, with the previous step's contacts (HalfCheetah); a NaN is not alive
        robot = self.robot
        alive = 1.0
        if not abs(self._pitch) < 1.0 or (robot.min_z is not None and not self._z > robot.min_z):
            alive = -1.0
        elif self._ends_on_contact:
            touching = self._touching
            for f in self._ends_on_contact:
                if f in touching:
                    alive = -1.0
        # only a NaN survives the clipping to ±5 (Roboschool's np.isfinite(state) test)
        terminated = alive < 0.0 or self._nan
        potential_old = self._potential
        self._potential = potential = self._calc_potential()

        # this step's floor contacts: seen by the next observation and alive bonus
        self._touching = touching = {
            c[3] for c in pb.getContactPoints(bodyA=body, bodyB=self._floor, physicsClientId=cid)
        }
        self._feet_contact = [1.0 if f in touching else 0.0 for f in self._feet]

        electricity = stall = 0.0
        for x, v in zip(a, self._joint_speeds):  # noqa: B905
            electricity += abs(x * v)
            stall += x * x
        cost = (ELECTRICITY_COST * electricity + STALL_TORQUE_COST * stall) / self._n
        reward = alive + (potential - potential_old) + cost + JOINTS_AT_LIMIT_COST * self._joints_at_limit
        return obs, reward, terminated

    # -- Roboschool's state, potential and alive bonus -------------------------------
    def _calc_state(self) -> np.ndarray:
        cid, body = self._cid, self._body
        states = pb.getJointStates(body, self._read, physicsClientId=cid)
        # Bullet's cached link poses, which Roboschool reads, are those at the start of the
        # last substep (positions are integrated after the transforms are updated).
        torso = pb.getLinkState(body, self._torso, computeLinkVelocity=1, physicsClientId=cid)
        fk = self._fk
        if fk is not None:  # the same poses in closed form, at q of the last substep's start
            x, y = fk.sum_x(states, TIMESTEP) / self._n_parts, 0.0
        else:
            sx = sy = 0.0
            for st in pb.getLinkStates(body, self._parts, physicsClientId=cid):
                p = st[0]
                sx += p[0]
                sy += p[1]
            x, y = sx / self._n_parts, sy / self._n_parts

        obs = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # filled below
        speeds, at_limit = [], 0
        for (q, dq, _, _), mid, half in zip(states, self._mid, self._half):  # noqa: B905 (actuated rows first)
            rel = (q - mid) / half
            if rel > 0.99 or rel < -0.99:
                at_limit += 1
                rel = OBS_CLIP if rel > OBS_CLIP else -OBS_CLIP if rel < -OBS_CLIP else rel
            speed = 0.1 * dq
            speeds.append(speed)
            obs.append(rel)
            obs.append(OBS_CLIP if speed > OBS_CLIP else -OBS_CLIP if speed < -OBS_CLIP else speed)
        self._joint_speeds, self._joints_at_limit = speeds, at_limit
        obs += self._feet_contact

        z = torso[0][2]
        if self._initial_z is None:
            self._initial_z = z
        roll, pitch, yaw = pb.getEulerFromQuaternion(torso[1])
        self._x, self._y, self._z, self._pitch = x, y, z, pitch
        angle = math.atan2(WALK_TARGET_Y - y, WALK_TARGET_X - x) - yaw
        vx, vy, vz = torso[6]
        c, s = math.cos(-yaw), math.sin(-yaw)  # the torso's velocity in its yaw frame
        vx, vy = 0.3 * (c * vx - s * vy), 0.3 * (s * vx + c * vy)
        vz = 0.3 * vz
        dz = z - self._initial_z
        obs[0] = OBS_CLIP if dz > OBS_CLIP else -OBS_CLIP if dz < -OBS_CLIP else dz
        obs[1] = math.sin(angle)
        obs[2] = math.cos(angle)
        obs[3] = OBS_CLIP if vx > OBS_CLIP else -OBS_CLIP if vx < -OBS_CLIP else vx
        obs[4] = OBS_CLIP if vy > OBS_CLIP else -OBS_CLIP if vy < -OBS_CLIP else vy
        obs[5] = OBS_CLIP if vz > OBS_CLIP else -OBS_CLIP if vz < -OBS_CLIP else vz
        obs[6] = roll  # |roll|, |pitch| <= π < 5: no clipping needed
        obs[7] = pitch
        total = sum(obs)
        self._nan = total != total
        return np.array(obs, np.float32)

    def _calc_potential(self) -> float:
        return -math.hypot(WALK_TARGET_Y - self._y, WALK_TARGET_X - self._x) / DT

    def _render_frame(self) -> np.ndarray:
        """The robot side on, the camera following the torso along x."""
        x = pb.getLinkState(self._body, self._torso, physicsClientId=self._cid)[0][0]
        return pybullet_frame(self._cid, (x, 0.0, CAMERA_HEIGHT), CAMERA_DISTANCE, pitch=CAMERA_PITCH)

    def close(self):
        if self._cid is not None:
            self._disconnect()
            self._cid = None
