"""Environment speed: our pybullet tasks against raw pybullet stepping of the same model.

Run as a script from the repository root (``make env-bench``)::

    python -m benchmarks.bench_envs [--steps N] [--tasks T ...] [--repeats R] [--json PATH]

``benchmarks/bench.py`` (``make bench``) imports :func:`measure_env` for its ``env_vs_raw``
figure. Neither is part of the installed package, and both use only public things of it:
``gymnasium.make`` of the task's id (:func:`mrpo_rllib.envs.get_task`), ``info
["env_params"]`` for each episode's parameters, and the documented module-level constants,
robot table and MJCF template of :mod:`mrpo_rllib.envs.locomotion` and
:mod:`mrpo_rllib.envs.pendulum`; the raw loops are written against pybullet alone.

For each task, :func:`measure_env` first runs our environment (``gymnasium.make``, so
with gymnasium's wrappers; random actions from a seeded generator; a reset whenever an
episode ends or reaches 1000 steps) and records each episode's length and parameters.
The reference, in the same process right after, is the minimal loop any simulation of
the task needs, on a fresh pybullet client with the same scene and physics settings:

- locomotion (Hopper, Walker2d, HalfCheetah): load the floor and the MJCF, switch the
  motors off, ``saveState``; per step ``setJointMotorControlArray`` (torques precomputed)
  and ``stepSimulation``; per episode, at the same step counts as ours, ``restoreState``,
  the same density/friction as our episode (``changeDynamics`` of the links with mass) and
  random initial joint angles. Same physics, so the same contacts and solver cost: the
  ratio ours/raw is the price of our observation, reward and bookkeeping. A third loop,
  raw plus the three pybullet reads Roboschool's observation needs every step (joint
  states, the torso's link state with velocity, the floor contacts), splits that price:
  ``ceiling`` = that loop / raw is the best any such environment can reach,
  ``ours_vs_queries`` = ours / that loop is what our own Python costs.
- pendula (InvertedPendulum, InvertedDoublePendulum): every episode rebuilds the
  geometry, since that is part of those tasks: the MJCF of that episode's sampled
  lengths written from :func:`mrpo_rllib.envs.pendulum.mjcf_template` (its documented
  ``{name}``/``{name_half}`` placeholders), ``resetSimulation`` + ``loadMJCF`` with the
  module's physics settings, motors off, random initial hinge angles; per step the slider
  force and ``stepSimulation``.

Each loop runs ``repeats`` times, alternating, and is timed in segments of 250 steps; a
segment counts with its fastest repeat, so that other load on the machine (two shared
cores) hardly moves the figures. The goal is ratio ≥ 0.8.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import pybullet as pb
import pybullet_data

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import get_task
from mrpo_rllib.envs import locomotion as loco
from mrpo_rllib.envs import pendulum as pend

LOCOMOTION_TASKS = ("Hopper", "Walker2d", "HalfCheetah")
PENDULUM_TASKS = ("InvertedPendulum", "InvertedDoublePendulum")
PYBULLET_TASKS = (*LOCOMOTION_TASKS, *PENDULUM_TASKS)
SEGMENT = 250  # steps per timed segment
CONTACT_ERP = 0.9  # Roboschool's default contact ERP (locomotion.py's module docstring)


def _ours(task: str, steps: int, seed: int):
    """Our env's segment times and its episodes as (length, parameters) pairs, the
    parameters a dict name → value from ``info["env_params"]``."""
    env = gym.make(get_task(task).env_id)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps, *env.action_space.shape)).astype(np.float32)
    _, info = env.reset(seed=seed)
    params, lengths, length = [info["env_params"]], [], 0
    marks = [time.perf_counter()]
    for i, a in enumerate(actions, 1):
        _, _, terminated, truncated, _ = env.step(a)
        length += 1
        if terminated or truncated:
            lengths.append(length)
            length = 0
            _, info = env.reset()
            params.append(info["env_params"])
        if i % SEGMENT == 0:
            marks.append(time.perf_counter())
    lengths.append(length)
    env.close()
    return np.diff(marks), list(zip(lengths, params, strict=True))


def _boundaries(episodes) -> dict[int, int]:
    """Step count → index of the episode that starts after it (our env's reset points)."""
    out, t = {}, 0
    for k, (length, _) in enumerate(episodes[:-1]):
        t += length
        out[t] = k + 1
    return out


def _raw_locomotion(task: str, steps: int, episodes, seed: int, queries: bool = False) -> np.ndarray:
    """Raw pybullet stepping of the task's MJCF, written against pybullet, the robot table
    (:data:`mrpo_rllib.envs.locomotion.ROBOTS`) and that module's physics constants.

    ``queries``: also make, every step, the three reads any environment with Roboschool's
    observation needs (joint states, the torso's pose and velocity, the floor contacts),
    without using them: the fastest such an environment could be.
    """
    robot = loco.ROBOTS[task]
    cid = pb.connect(pb.DIRECT)
    try:
        pb.resetSimulation(physicsClientId=cid)
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        pb.setGravity(0, 0, -loco.GRAVITY, physicsClientId=cid)
        pb.setDefaultContactERP(CONTACT_ERP, physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=loco.DT,
            numSolverIterations=loco.SOLVER_ITERATIONS,
            numSubSteps=loco.FRAME_SKIP,
            physicsClientId=cid,
        )
        data = pybullet_data.getDataPath()
        (floor,) = pb.loadSDF(os.path.join(data, "plane_stadium.sdf"), physicsClientId=cid)
        pb.changeDynamics(
            floor,
            -1,
            lateralFriction=loco.FLOOR_FRICTION,
            restitution=loco.FLOOR_RESTITUTION,
            physicsClientId=cid,
        )
        flags = pb.URDF_USE_SELF_COLLISION | pb.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
        (body,) = pb.loadMJCF(os.path.join(data, "mjcf", robot.xml), flags=flags, physicsClientId=cid)
        joints, gains, massive, moving, torso = [], [], [], [], 0
        for j in range(pb.getNumJoints(body, physicsClientId=cid)):
            pb.setJointMotorControl2(body, j, pb.POSITION_CONTROL, force=0, physicsClientId=cid)
            info = pb.getJointInfo(body, j, physicsClientId=cid)
            name = info[1].decode()
            torso = j if info[12] == b"torso" else torso
            if info[2] != pb.JOINT_FIXED:
                moving.append(j)
            if not (name.startswith("ignore") or name.startswith("jointfix")):
                joints.append(j)
                gains.append(robot.power * robot.power_coef.get(name, loco.DEFAULT_POWER_COEF))
            dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
            if dyn[0] > 0:
                massive.append((j, dyn[0], dyn[2]))
        state = pb.saveState(physicsClientId=cid)

        rng = np.random.default_rng(seed)
        n = len(joints)
        forces = (rng.uniform(-1.0, 1.0, size=(steps, n)) * np.array(gains)).tolist()
        starts = [[[q] for q in rng.uniform(-loco.INIT_NOISE, loco.INIT_NOISE, n).tolist()] for _ in episodes]
        zero = [[0.0]] * n
        resets = _boundaries(episodes)

        def reset(k: int) -> None:
            pb.restoreState(state, physicsClientId=cid)
            p = episodes[k][1]
            scale, friction = p["density"] / 1000.0, p["friction"]
            for link, m0, i0 in massive:
                pb.changeDynamics(
                    body,
                    link,
                    mass=m0 * scale,
                    localInertiaDiagonal=[i * scale for i in i0],
                    lateralFriction=friction,
                    physicsClientId=cid,
                )
            pb.resetJointStatesMultiDof(body, joints, starts[k], zero, physicsClientId=cid)

        reset(0)
        marks = [time.perf_counter()]
        for i in range(steps):
            pb.setJointMotorControlArray(
                body, joints, pb.TORQUE_CONTROL, forces=forces[i], physicsClientId=cid
            )
            pb.stepSimulation(physicsClientId=cid)
            if queries:
                pb.getJointStates(body, moving, physicsClientId=cid)
                pb.getLinkState(body, torso, computeLinkVelocity=1, physicsClientId=cid)
                pb.getContactPoints(bodyA=body, bodyB=floor, physicsClientId=cid)
            k = resets.get(i + 1)
            if k is not None:
                reset(k)
            if (i + 1) % SEGMENT == 0:
                marks.append(time.perf_counter())
    finally:
        pb.disconnect(cid)
    return np.diff(marks)


def _shm_tmpdir() -> str:
    """A private temporary directory, on tmpfs when there is one (as the pendulum env's)."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="mrpo_bench_", dir=base)


def _raw_pendulum(task: str, steps: int, episodes, seed: int) -> np.ndarray:
    """Raw pybullet stepping of the pendulum, written against pybullet, the task table and
    :mod:`mrpo_rllib.envs.pendulum`'s public constants and MJCF template.

    Every episode rebuilds its own sampled geometry, as the task does: write the MJCF
    (``mjcf_template`` with ``{name}`` = the value, ``{name_half}`` = half of it, exact float
    reprs), ``resetSimulation``, the physics settings, ``loadMJCF`` (file caching off), every
    motor off, the hinges at random initial angles. Per step: the slider force (precomputed)
    and ``stepSimulation``.
    """
    spec = pend.PENDULA[task]
    names = get_task(task).param_names
    template = pend.mjcf_template(spec)
    tmpdir = _shm_tmpdir()
    path = os.path.join(tmpdir, spec.xml)
    rng = np.random.default_rng(seed)
    forces = (rng.uniform(-1.0, 1.0, size=steps) * spec.gain).tolist()
    nh = len(spec.hinges)
    starts = [[[q] for q in rng.uniform(-pend.INIT_NOISE, pend.INIT_NOISE, nh).tolist()] for _ in episodes]
    zero = [[0.0]] * nh
    resets = _boundaries(episodes)
    cid = pb.connect(pb.DIRECT)
    index: dict = {}  # body, slider, hinges, all joints: the same structure for every geometry

    def load(k: int) -> None:
        values = {}
        for name in names:
            v = float(episodes[k][1][name])
            values[name], values[name + "_half"] = repr(v), repr(v / 2)
        with open(path, "w") as f:
            f.write(template.format(**values))
        pb.resetSimulation(physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            enableFileCaching=0,
            deterministicOverlappingPairs=1,
            fixedTimeStep=pend.TIMESTEP,
            numSolverIterations=pend.SOLVER_ITERATIONS,
            numSubSteps=1,
            physicsClientId=cid,
        )
        pb.setGravity(0, 0, -pend.GRAVITY, physicsClientId=cid)
        pb.setDefaultContactERP(pend.CONTACT_ERP, physicsClientId=cid)
        bodies = pb.loadMJCF(path, flags=pend.LOAD_FLAGS, physicsClientId=cid)
        if not index:
            joints = {}
            for b in bodies:
                for j in range(pb.getNumJoints(b, physicsClientId=cid)):
                    joints[pb.getJointInfo(b, j, physicsClientId=cid)[1].decode()] = (b, j)
            body, slider = joints["slider"]
            index.update(
                body=body,
                slider=[slider],
                hinges=[joints[h][1] for h in spec.hinges],
                all=list(range(pb.getNumJoints(body, physicsClientId=cid))),
            )
        body, every = index["body"], index["all"]
        pb.setJointMotorControlArray(
            body, every, pb.POSITION_CONTROL, forces=[0.0] * len(every), physicsClientId=cid
        )
        pb.resetJointStatesMultiDof(body, index["hinges"], starts[k], zero, physicsClientId=cid)

    try:
        load(0)
        body, slider = index["body"], index["slider"]
        marks = [time.perf_counter()]
        for i in range(steps):
            pb.setJointMotorControlArray(
                body, slider, pb.TORQUE_CONTROL, forces=[forces[i]], physicsClientId=cid
            )
            pb.stepSimulation(physicsClientId=cid)
            k = resets.get(i + 1)
            if k is not None:
                load(k)
            if (i + 1) % SEGMENT == 0:
                marks.append(time.perf_counter())
    finally:
        pb.disconnect(cid)
        shutil.rmtree(tmpdir, ignore_errors=True)
    return np.diff(marks)


def measure_env(task: str, steps: int = 20000, seed: int = 0, repeats: int = 3) -> dict:
    """Our env's and raw pybullet's steps/s on ``task`` and their ratio.

    The two loops alternate ``repeats`` times with the same seed, so each repeat does
    exactly the same work. Every loop is timed in segments of :data:`SEGMENT` steps and a
    segment counts with its fastest time over the repeats: what another process on the
    machine steals from one repeat is not counted. ``steps`` is rounded down to a multiple
    of :data:`SEGMENT` (at least one segment).
    """
    steps = max(SEGMENT, steps - steps % SEGMENT)
    ours_t, raw_t, query_t = [], [], []
    for _ in range(repeats):
        times, episodes = _ours(task, steps, seed)
        ours_t.append(times)
        if task in loco.ROBOTS:
            raw_t.append(_raw_locomotion(task, steps, episodes, seed))
            query_t.append(_raw_locomotion(task, steps, episodes, seed, queries=True))
        elif task in pend.PENDULA:
            raw_t.append(_raw_pendulum(task, steps, episodes, seed))
        else:
            raise ValueError(
                f"no raw pybullet reference for {task!r}: expected one of {list(PYBULLET_TASKS)}"
            )
    ours = steps / float(np.min(ours_t, axis=0).sum())
    raw = steps / float(np.min(raw_t, axis=0).sum())
    extra = {}
    if query_t:  # where the time goes: the reads the observation needs, then our Python
        queries = steps / float(np.min(query_t, axis=0).sum())
        extra = {
            "raw_with_queries_steps_per_s": queries,
            "ceiling": queries / raw,
            "ours_vs_queries": ours / queries,
        }
    return {
        "task": task,
        "steps": steps,
        "repeats": repeats,
        "ours_steps_per_s": ours,
        "raw_steps_per_s": raw,
        "ratio": ours / raw,
        "ours_steps_per_s_each": [steps / float(t.sum()) for t in ours_t],
        "raw_steps_per_s_each": [steps / float(t.sum()) for t in raw_t],
        "episodes": len(episodes),
        "mean_episode_length": float(np.mean([length for length, _ in episodes])),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20000, help="steps per task and loop (default 20000)")
    parser.add_argument("--tasks", nargs="*", default=None, help="default: every available pybullet task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternate the two loops this often, keep the best"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    tasks = args.tasks or list(PYBULLET_TASKS)
    out = {}
    print(
        f"{'task':<24} {'ours steps/s':>12} {'raw steps/s':>12} {'ratio':>6} {'mean ep len':>11}", flush=True
    )
    for task in tasks:
        m = measure_env(task, args.steps, args.seed, args.repeats)
        out[task] = m
        print(
            f"{task:<24} {m['ours_steps_per_s']:12.0f} {m['raw_steps_per_s']:12.0f} "
            f"{m['ratio']:6.2f} {m['mean_episode_length']:11.1f}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
