"""InvertedPendulum and InvertedDoublePendulum: Roboschool's pendula on pybullet directly.

Reproduces ``pybullet_envs`` (its ``InvertedPendulum``/``InvertedDoublePendulum`` robots
and ``SingleRobotEmptyScene``), which cannot be imported: pybullet_data's MJCF loaded
with Roboschool's flags, gravity 9.8 m/s², one 0.0165 s step per action (frame skip 1),
5 solver iterations, contact ERP 0.9, deterministic overlapping pairs, every joint motor
disabled (position control, gains 0.1, force 0) as ``robot_bases`` does. A reset puts
the slider at rest at 0 and each hinge at uniform(−0.1, 0.1) (from ``self.np_random``) at
rest; hinge motors disabled again as ``Joint.reset_position`` does.

- IP: observation ``[x, ẋ, cos θ, sin θ, θ̇]``; slider force 100·clip(a, −1, 1);
  reward 1 per step; the episode ends when |θ| > 0.2 rad.
- IDP: observation ``[x, ẋ, x₂, cos θ, sin θ, θ̇, cos γ, sin γ, γ̇]`` (x₂, y₂: the upper
  pole's centre of mass, from one ``getLinkState``); slider force 200·clip(a, −1, 1);
  reward 10 − dist_penalty − vel_penalty with dist_penalty = 0.01·x₂² + (h − h_target)²
  and vel_penalty = 0 — as in Roboschool, whose velocity term is commented out
  (bullet3 issue 1040).

Parameters (geometry), written into pybullet_data's MJCF text (read once, templated):

- IP ``cart_size``: the cart capsule's radius and half-length (``size="0.1 0.1"``);
  ``pole_length``: the pole capsule's vertical extent, ``fromto="0 0 0 0.001 0 L"``
  (Roboschool's 0.001 m tilt kept, so the capsule's length is √(L² + 10⁻⁶)), its ``size``
  half-length L/2 and radius 0.049 kept.
- IDP ``pole1_length``/``pole2_length``: the lengths l1, l2 of the two capsules (their
  ``fromto`` and ``size`` half-lengths; radius 0.045 kept) and the upper body's ``pos``
  (the upper hinge sits on top of the lower pole, at l1).

Bullet builds the masses from the geometry at 1000 kg/m³, so the lengths also change
masses and inertias.

Extra parameters, at their nominal 1.0 unless chosen with ``randomize=``: ``cart_mass``
scales the mass and local inertia diagonal of the ``cart`` link, ``pole_mass`` those of
the ``pole`` link (IDP: ``pole`` and ``pole2``), on top of what Bullet built from the
geometry: ``mass = m0(geometry)·scale``. They are applied with ``changeDynamics`` after
a (re)load, so a geometry rebuild keeps them, and only when a scale differs from what the
simulation holds (at scale 1 after a reload: no call at all). A geometry change writes the
MJCF into this instance's private temporary directory (on ``/dev/shm`` when available) and
swaps the body: ``removeBody`` of the old one, ``loadMJCF`` of the new one, file caching
off (pybullet caches MJCF files by path). ``removeBody`` leaves ~4 KB behind per body, so
every :data:`RELOADS_PER_WORLD` (256) loads the world is rebuilt with ``resetSimulation``
instead (and the physics settings set again): at most ~1 MB held, ~1 µs per reload. A
rebuilt world cost ~0.25 ms of a ~1.1 ms reload (it allocates Bullet's collision pools
anew); the swap gives trajectories bit for bit those of a new world (tested over
600 episodes per task, across world rebuilds, and in ``tests/test_pendulum_reload.py``). An
unchanged geometry is not reloaded. The static rail (and IDP's floor plane 3 m below) are
left out of the file: like every geom there they have contype 0, so they never touch
anything, and loading them took a quarter to a half of a rebuild. The directory is removed
by ``close()`` (or at garbage collection).

Why still a file (issue #19 item 4, measured 2026-12-07): building the bodies with
``createCollisionShape``/``createMultiBody`` instead cannot keep the link names
(``createMultiBody`` names links ``link1``, ``link2``, …; ``cart``, ``pole``, ``pole2`` are
part of the interface and of the tests), is not faster when it builds the capsules (1.2 ms
against 0.8 ms for ``resetSimulation`` + ``loadMJCF``: pybullet's TinyRenderer converts
every shape to a mesh either way), and even with Bullet's exact masses, inertias and frames
copied from the MJCF body (no shapes; joint limits by ``changeDynamics``) its trajectories
differ from the first step (up to 1e-6 over 300 IP steps, 1e-3 on the chaotic IDP). The
geometry (the pole's centre of mass, IDP's upper hinge) cannot be changed in place
(``changeDynamics`` sets masses and inertias, not frames). What a reload still costs is
``loadMJCF`` itself (~0.5 ms: the importer, TinyRenderer's meshes of the capsules and the
client's copy of the body's info).

Speed (``benchmarks/bench_envs.py``, 2026-12-07, 2 cores shared with another benchmark, load
average 1.5–2; random-policy episodes of ~35 steps): InvertedPendulum 23–27 k → 34–35 k
steps/s, InvertedDoublePendulum 15–18 k → 20–24 k; ``env_vs_raw`` 0.81–0.97 → 1.06–1.42 (IP),
0.72–0.74 → 1.08–1.18 (IDP), above 1 because the harness's raw loop still rebuilds the world
every episode; against the project's raw targets (57 k, 46 k steps/s) 0.60–0.62 (IP) and
0.43–0.52 (IDP), short of 0.8 by what ``loadMJCF`` costs (docs/benchmarks.md).

Unlike Roboschool, a reset does not ``restoreState`` a state saved after loading: with the
geometry changing at nearly every reset, ``saveState`` (which serialises the world, about
0.9 ms, a third of a rebuild) would be paid at every reset for nothing. The state of these
models is entirely their joints' (fixed base, no contacts), so setting every joint's
position and velocity restores the initial state exactly: tested bit for bit against
``pybullet_envs`` (which does restore a saved state) and across episodes.

IDP's height terms are calibrated in Roboschool for 0.6 m poles: with h = y₂ + 0.3 (the
upper pole's tip height when upright, 1.2 m), the episode ends at h ≤ 1 and the distance
penalty aims at h = 2. We scale both with the sampled poles. With H = l1 + l2 the upright
tip height and h = y₂ + l2/2:

- the episode ends at h ≤ H / 1.2 — the same fraction of the upright height (for a
  straight pendulum, the same tilt angle, about 34°);
- the target is h_target = H + 0.8 — the same distance above the upright tip, so the best
  reward per step (10 − 0.64 = 9.36) is the same for every geometry and returns stay
  comparable across environments, which MRPO's worst-case selection relies on.

At l1 = l2 = 0.6 m both are exactly Roboschool's 1 and 2 (bit for bit).

Why one file of ~500 lines: it is one physics family (both pendula share the geometry
rebuild, the masses, the reward and the termination); each part is a function of its own.
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

from mrpo_rllib.envs.base import RENDER_MODES, ParamsArg, RandomizeArg, RandomizedEnv, pybullet_frame

TIMESTEP = 0.0165  # SingleRobotEmptyScene, frame_skip 1
GRAVITY = 9.8
SOLVER_ITERATIONS = 5
CONTACT_ERP = 0.9
LOAD_FLAGS = (  # robot_bases.MJCFBasedRobot with self_collision=True
    pb.URDF_USE_SELF_COLLISION
    | pb.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
    | pb.URDF_GOOGLEY_UNDEFINED_COLORS
)
INIT_NOISE = 0.1  # hinges start at uniform(-0.1, 0.1) rad
# A geometry change removes the body and loads the new one; every this many loads the whole
# world is rebuilt instead (resetSimulation), freeing what removeBody leaves (~4 KB a body).
RELOADS_PER_WORLD = 256

# IDP height terms (see the module docstring).
NOMINAL_TIP_HEIGHT = 1.2  # Roboschool's upright h for 0.6 m + 0.6 m poles
ROBOSCHOOL_END_HEIGHT = 1.0  # the episode ends at h <= 1
ROBOSCHOOL_TARGET_HEIGHT = 2.0  # dist_penalty aims at h = 2
TARGET_ABOVE_TIP = ROBOSCHOOL_TARGET_HEIGHT - NOMINAL_TIP_HEIGHT

# render_mode="rgb_array": a fixed camera, side on, that frames the slider's ±1 m and the
# longest poles (IP 2 m, IDP 2 × 1.1 m) at the same scale for every geometry
CAMERA_TARGET = (0.0, 0.0, 0.8)
CAMERA_DISTANCE = 3.2


@dataclass(frozen=True)
class Pendulum:
    """One task's data: MJCF file, slider gain, hinges, observation size, templating."""

    xml: str
    gain: float
    hinges: tuple[str, ...]
    obs_dim: int
    # (exact text in pybullet_data's file, template). Placeholders: ``{name}`` is the
    # parameter's value, ``{name_half}`` half of it (both as exact float reprs).
    templates: tuple[tuple[str, str], ...]
    # the geometry parameters, in the order of ``_load``'s tuple (the task's Table 1)
    geometry: tuple[str, ...]
    # the links each mass-scale parameter scales
    mass_links: tuple[tuple[str, tuple[str, ...]], ...]
    # Static world geoms left out (exact text): with the file's default contype 0 they
    # never touch anything, and loading them took a quarter to a half of a rebuild.
    static_geoms: tuple[str, ...] = ()


PENDULA: dict[str, Pendulum] = {
    "InvertedPendulum": Pendulum(
        xml="inverted_pendulum.xml",
        gain=100.0,
        hinges=("hinge",),
        obs_dim=5,
        templates=(
            (
                '<geom name="cart" pos="0 0 0" quat="0.707 0 0.707 0" size="0.1 0.1" type="capsule"/>',
                '<geom name="cart" pos="0 0 0" quat="0.707 0 0.707 0" size="{cart_size} {cart_size}" type="capsule"/>',
            ),
            (
                'fromto="0 0 0 0.001 0 0.6" name="cpole" rgba="0 0.7 0.7 1" size="0.049 0.3"',
                'fromto="0 0 0 0.001 0 {pole_length}" name="cpole" rgba="0 0.7 0.7 1" size="0.049 {pole_length_half}"',
            ),
        ),
        geometry=("cart_size", "pole_length"),
        mass_links=(("cart_mass", ("cart",)), ("pole_mass", ("pole",))),
        static_geoms=(
            '<geom name="rail" pos="0 0 0" quat="0.707 0 0.707 0" rgba="0.3 0.3 0.7 1" size="0.02 1" type="capsule"/>',
        ),
    ),
    "InvertedDoublePendulum": Pendulum(
        xml="inverted_double_pendulum.xml",
        gain=200.0,
        hinges=("hinge", "hinge2"),
        obs_dim=9,
        templates=(
            (
                'fromto="0 0 0 0 0 0.6" name="cpole" rgba="0 0.7 0.7 1" size="0.045 0.3"',
                'fromto="0 0 0 0 0 {pole1_length}" name="cpole" rgba="0 0.7 0.7 1" size="0.045 {pole1_length_half}"',
            ),
            ('<body name="pole2" pos="0 0 0.6">', '<body name="pole2" pos="0 0 {pole1_length}">'),
            (
                'fromto="0 0 0 0 0 0.6" name="cpole2" rgba="0 0.7 0.7 1" size="0.045 0.3"',
                'fromto="0 0 0 0 0 {pole2_length}" name="cpole2" rgba="0 0.7 0.7 1" size="0.045 {pole2_length_half}"',
            ),
        ),
        geometry=("pole1_length", "pole2_length"),
        mass_links=(("cart_mass", ("cart",)), ("pole_mass", ("pole", "pole2"))),
        static_geoms=(
            '<geom name="floor" pos="0 0 -3.0" rgba="0.8 0.9 0.8 1" size="40 40 40" type="plane"/>',
            '<geom name="rail" pos="0 0 0" quat="0.707 0 0.707 0" rgba="0.3 0.3 0.7 1" size="0.02 1" type="capsule"/>',
        ),
    ),
}

_TEMPLATES: dict[str, str] = {}


def mjcf_template(pendulum: Pendulum) -> str:
    """pybullet_data's MJCF text with the geometry replaced by placeholders (read once)."""
    if pendulum.xml not in _TEMPLATES:
        with open(os.path.join(pybullet_data.getDataPath(), "mjcf", pendulum.xml)) as f:
            text = f.read()
        text = text.replace("{", "{{").replace("}", "}}")
        for geom in pendulum.static_geoms:
            if text.count(geom) != 1 or "contype" in geom:
                raise RuntimeError(f"{pendulum.xml}: expected exactly one {geom!r} to leave out")
            text = text.replace(geom, "")
        for original, template in pendulum.templates:
            if text.count(original) != 1:
                raise RuntimeError(f"{pendulum.xml}: expected exactly one {original!r} to template")
            text = text.replace(original, template)
        _TEMPLATES[pendulum.xml] = text
    return _TEMPLATES[pendulum.xml]


def _private_tmpdir() -> str:
    shm = "/dev/shm"  # tmpfs: writing the MJCF costs ~20 µs there, ~200 µs on disk
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="mrpo_pendulum_", dir=base)


def _release(cid_box: list, tmpdir: str) -> None:
    cid = cid_box[0]
    if cid is not None:
        cid_box[0] = None
        try:
            if pb.isConnected(cid):
                pb.disconnect(cid)
        except pb.error:
            pass
    shutil.rmtree(tmpdir, ignore_errors=True)


class PendulumEnv(RandomizedEnv):
    """A Roboschool pendulum whose geometry (or the parameters chosen with ``randomize``)
    is resampled at every reset."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 1.0 / TIMESTEP}

    def __init__(
        self,
        task: str = "InvertedPendulum",
        params: ParamsArg = None,
        randomize: RandomizeArg = None,
        render_mode: str | None = None,
    ):
        super().__init__(task, params, randomize, render_mode)
        if self.task.name not in PENDULA:
            raise ValueError(f"PendulumEnv implements {list(PENDULA)}, not {self.task.name!r}")
        self.pendulum = PENDULA[self.task.name]
        self._double = len(self.pendulum.hinges) == 2
        self._template = mjcf_template(self.pendulum)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.pendulum.obs_dim,), np.float32)

        self._tmpdir = _private_tmpdir()
        self._path = os.path.join(self._tmpdir, self.pendulum.xml)
        self._cid = pb.connect(pb.DIRECT)  # plainly: an options string prints to C stdout
        self._cid_box = [self._cid]
        self._finalizer = weakref.finalize(self, _release, self._cid_box, self._tmpdir)
        self._gain = self.pendulum.gain
        self._geometry: tuple[float, ...] | None = None
        self._loads_in_world = 0  # bodies loaded since the last resetSimulation
        self._half_l2 = self._target = self._end = 0.0
        self._theta = self._x2 = self._y2 = 0.0
        # mass scales Bullet holds (1 after every load) and the loaded (mass, inertia) per link
        self._mass_scales = {name: 1.0 for name, _ in self.pendulum.mass_links}
        self._loaded_dynamics: dict[int, tuple[float, tuple[float, float, float]]] | None = None
        self._load(tuple(self._nominal[n] for n in self.pendulum.geometry))

    # -- geometry ------------------------------------------------------------------------
    def _xml(self, geometry: tuple[float, ...]) -> str:
        values = {}
        for name, v in zip(self.pendulum.geometry, geometry, strict=True):
            values[name] = repr(float(v))
            values[name + "_half"] = repr(float(v) / 2)
        return self._template.format(**values)

    def _load(self, geometry: tuple[float, ...]) -> None:
        """Write the MJCF of ``geometry`` and load it in place of the current body.

        The old body is removed with ``removeBody``; every :data:`RELOADS_PER_WORLD` loads
        (and at the first) the whole world is rebuilt with ``resetSimulation`` instead, which
        frees what ``removeBody`` leaves behind (~4 KB per body).
        """
        cid = self._cid
        with open(self._path, "w") as f:
            f.write(self._xml(geometry))
        if self._geometry is None or self._loads_in_world >= RELOADS_PER_WORLD:
            self._new_world()
        else:
            pb.removeBody(self._body, physicsClientId=cid)
        self._loads_in_world += 1
        bodies = pb.loadMJCF(self._path, flags=LOAD_FLAGS, physicsClientId=cid)
        if self._geometry is None:  # the same structure for every geometry: parse once
            self._index(bodies)
        elif len(bodies) != 1:
            raise RuntimeError(f"reloaded {self.pendulum.xml} has bodies {bodies}, expected one")
        else:
            self._body = bodies[0]
        n = len(self._all_joints)
        pb.setJointMotorControlArray(  # every motor off, as robot_bases.addToScene
            self._body,
            self._all_joints,
            pb.POSITION_CONTROL,
            forces=[0.0] * n,
            positionGains=[0.1] * n,
            velocityGains=[0.1] * n,
            physicsClientId=cid,
        )
        self._geometry = geometry
        # Bullet built the masses from this geometry: unscaled, not read yet
        self._mass_scales = dict.fromkeys(self._mass_scales, 1.0)
        self._loaded_dynamics = None

    def _new_world(self) -> None:
        """An empty world with the scene's physics settings (``resetSimulation``)."""
        cid = self._cid
        pb.resetSimulation(physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            enableFileCaching=0,
            deterministicOverlappingPairs=1,
            fixedTimeStep=TIMESTEP,
            numSolverIterations=SOLVER_ITERATIONS,
            numSubSteps=1,
            physicsClientId=cid,
        )
        pb.setGravity(0, 0, -GRAVITY, physicsClientId=cid)
        pb.setDefaultContactERP(CONTACT_ERP, physicsClientId=cid)
        self._loads_in_world = 0

    def _index(self, bodies) -> None:
        cid = self._cid
        joints, links = {}, {}
        for body in bodies:
            for j in range(pb.getNumJoints(body, physicsClientId=cid)):
                info = pb.getJointInfo(body, j, physicsClientId=cid)
                joints[info[1].decode()] = (body, j)
                links[info[12].decode()] = j
        self._body, self._slider = joints["slider"]
        self._hinges = [joints[h][1] for h in self.pendulum.hinges]
        self._read = [self._slider, *self._hinges]  # joint states read per step
        self._all_joints = list(range(pb.getNumJoints(self._body, physicsClientId=cid)))
        self._joints = [self._slider]  # the actuated joint (benchmarks)
        self._links = links
        self._pole2 = links["pole2"] if self._double else -1
        nh = len(self._hinges)
        self._hinge_zeros, self._hinge_gains = [0.0] * nh, [0.1] * nh
        self._rest = [[0.0]] * (nh + 1)  # zero velocities of slider and hinges

    def loaded_geometry(self) -> dict[str, float]:
        """The geometry read back from the simulation, in metres (float32 precision).

        Capsule dimensions from ``getVisualShapeData`` (``getCollisionShapeData`` crashes
        on these MJCF bodies in pybullet 3.2.7); for IDP also the upper hinge's height in
        the zero pose.
        """
        cid, body, links = self._cid, self._body, self._links
        dims = {row[1]: row[3] for row in pb.getVisualShapeData(body, physicsClientId=cid)}
        if not self._double:
            return {"cart_size": dims[links["cart"]][1], "pole_length": dims[links["pole"]][0]}
        return {
            "pole1_length": dims[links["pole"]][0],
            "pole2_length": dims[links["pole2"]][0],
            "hinge2_height": self._hinge2_height(),
        }

    def _hinge2_height(self) -> float:
        """Height of the upper hinge with every joint at 0 (restores the current state)."""
        cid, body = self._cid, self._body
        saved = pb.saveState(physicsClientId=cid)
        try:
            for j in self._all_joints:
                pb.resetJointState(body, j, 0.0, 0.0, physicsClientId=cid)
            return pb.getLinkState(body, self._hinges[1], physicsClientId=cid)[4][2]  # joint frame
        finally:
            pb.restoreState(saved, physicsClientId=cid)
            pb.removeState(saved, physicsClientId=cid)

    # -- RandomizedEnv hooks ---------------------------------------------------------------
    def _apply_params(self, values: dict[str, float]) -> None:
        geometry = tuple(values[n] for n in self.pendulum.geometry)
        if geometry != self._geometry:
            self._load(geometry)
        for name, links in self.pendulum.mass_links:
            scale = values[name]
            if scale != self._mass_scales[name]:
                self._scale_masses(links, scale)
                self._mass_scales[name] = scale
        if self._double:
            l1, l2 = geometry
            upright = l1 + l2  # H: the upper tip's height, upright
            self._half_l2 = l2 / 2
            self._end = upright * ROBOSCHOOL_END_HEIGHT / NOMINAL_TIP_HEIGHT
            self._target = upright + TARGET_ABOVE_TIP

    def _scale_masses(self, links: tuple[str, ...], scale: float) -> None:
        """Mass and local inertia diagonal of ``links`` at ``scale`` × what Bullet built."""
        cid, body = self._cid, self._body
        if self._loaded_dynamics is None:  # read once per load, only when a scale is not 1
            self._loaded_dynamics = {}
            for _, names in self.pendulum.mass_links:
                for name in names:
                    dyn = pb.getDynamicsInfo(body, self._links[name], physicsClientId=cid)
                    self._loaded_dynamics[self._links[name]] = (dyn[0], tuple(dyn[2]))
        for name in links:
            link = self._links[name]
            mass, (ix, iy, iz) = self._loaded_dynamics[link]
            pb.changeDynamics(
                body,
                link,
                mass=mass * scale,
                localInertiaDiagonal=(ix * scale, iy * scale, iz * scale),
                physicsClientId=cid,
            )

    def _reset_model(self) -> np.ndarray:
        cid, body = self._cid, self._body
        u = self.np_random.uniform(-INIT_NOISE, INIT_NOISE, size=len(self._hinges))
        # The whole state of these models is their joints' (fixed base, no contacts):
        # Roboschool's restoreState of the initial state amounts to resetting the slider.
        pb.resetJointStatesMultiDof(
            body,
            self._read,  # slider, hinges
            [[0.0], *([float(q)] for q in u)],
            self._rest,
            physicsClientId=cid,
        )
        pb.setJointMotorControlArray(  # Joint.reset_position → disable_motor
            body,
            self._hinges,
            pb.POSITION_CONTROL,
            targetPositions=self._hinge_zeros,
            targetVelocities=self._hinge_zeros,
            positionGains=self._hinge_gains,
            velocityGains=self._hinge_gains,
            forces=self._hinge_zeros,
            physicsClientId=cid,
        )
        return self._observe()

    def _step_model(self, action):
        try:
            a = float(action[0])
        except (TypeError, IndexError):
            a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if not math.isfinite(a):
            raise ValueError(f"action must be finite, got {action!r}")
        a = 1.0 if a > 1.0 else -1.0 if a < -1.0 else a
        cid = self._cid
        pb.setJointMotorControl2(
            self._body, self._slider, pb.TORQUE_CONTROL, force=self._gain * a, physicsClientId=cid
        )
        pb.stepSimulation(physicsClientId=cid)
        obs = self._observe()
        if not self._double:
            return obs, 1.0, abs(self._theta) > 0.2
        h = self._y2 + self._half_l2
        dist_penalty = 0.01 * self._x2**2 + (h - self._target) ** 2
        vel_penalty = 0.0  # Roboschool: 1e-3·v1² + 5e-3·v2² commented out (bullet3 #1040)
        return obs, 10.0 - dist_penalty - vel_penalty, h <= self._end

    def _observe(self) -> np.ndarray:
        """The observation, from one ``getJointStates`` (and for IDP one ``getLinkState``).

        Also keeps θ (IP) or the upper pole's centre x₂, y₂ (IDP) for the reward.
        """
        cid, body = self._cid, self._body
        if not self._double:
            (x, vx, _, _), (theta, theta_dot, _, _) = pb.getJointStates(body, self._read, physicsClientId=cid)
            self._theta = theta
            return np.array([x, vx, math.cos(theta), math.sin(theta), theta_dot], dtype=np.float32)
        (x, vx, _, _), (theta, theta_dot, _, _), (gamma, gamma_dot, _, _) = pb.getJointStates(
            body, self._read, physicsClientId=cid
        )
        self._x2, _, self._y2 = pb.getLinkState(body, self._pole2, physicsClientId=cid)[0]
        return np.array(
            [
                x,
                vx,
                self._x2,
                math.cos(theta),
                math.sin(theta),
                theta_dot,
                math.cos(gamma),
                math.sin(gamma),
                gamma_dot,
            ],
            dtype=np.float32,
        )

    def _render_frame(self) -> np.ndarray:
        """The loaded bodies (the episode's geometry) from :data:`CAMERA_TARGET`, side on."""
        return pybullet_frame(self._cid, CAMERA_TARGET, CAMERA_DISTANCE)

    def close(self):
        self._finalizer()
        super().close()
