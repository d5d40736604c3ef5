"""Environment speed: our pybullet tasks against raw pybullet stepping of the same model.

For each task, ``measure_env`` runs our environment (``gymnasium.make``, random actions
from a seeded generator, a reset whenever an episode ends) and records the episode
lengths; the reference then loads the same MJCF scene with the same physics settings
and does only what any simulator loop must: per step, set the torques and call
``stepSimulation``; per episode (at the same step counts as ours), ``restoreState`` and
reset the joints — for the pendula, whose geometry changes every episode, reload the
MJCF instead (``resetSimulation`` + ``loadMJCF``), since that rebuild is part of the
task. The ratio ours/raw is measured in the same process, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import gymnasium as gym
import numpy as np
import pybullet as pb

import mrpo_rllib  # noqa: F401  (registers the environments)
from mrpo_rllib.envs import get_task

PYBULLET_TASKS = ("Walker2d", "Hopper", "HalfCheetah", "InvertedPendulum", "InvertedDoublePendulum")


def _ours(task: str, steps: int, seed: int) -> tuple[float, list[int]]:
    env = gym.make(get_task(task).env_id)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=seed)
    lengths, length = [], 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        length += 1
        if terminated or truncated:
            lengths.append(length)
            length = 0
            env.reset()
    elapsed = time.perf_counter() - t0
    lengths.append(length)
    raw_env = env.unwrapped
    env.close()
    return steps / elapsed, lengths, raw_env


def _raw(template, steps: int, lengths: list[int], seed: int) -> float:
    """Raw stepping of the model our env loaded: a fresh client with the same settings."""
    env = type(template)(template.task.name)  # same scene, same physics parameters
    env.reset(seed=seed)
    cid, body, joints = env._cid, env._body, list(env._joints)
    gains = getattr(env, "_torque", None)
    if gains is None:
        gains = np.full(len(joints), float(getattr(env, "_gain", 100.0)))
    state = getattr(env, "_state_id", None)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, size=(steps, len(joints)))
    boundaries = set(np.cumsum(lengths[:-1]).tolist())
    zeros = [0.0] * len(joints)
    # Geometry tasks rebuild the model at every reset: the reference reloads the MJCF too.
    reload_path = None
    if hasattr(env, "_xml"):
        reload_path = os.path.join(env._tmpdir, "raw.xml")
        with open(reload_path, "w") as f:
            f.write(env._xml(env._geometry))
    t0 = time.perf_counter()
    for i in range(steps):
        pb.setJointMotorControlArray(
            body, joints, pb.TORQUE_CONTROL, forces=gains * actions[i], physicsClientId=cid
        )
        pb.stepSimulation(physicsClientId=cid)
        if i + 1 in boundaries:
            if reload_path:
                pb.resetSimulation(physicsClientId=cid)
                pb.setPhysicsEngineParameter(enableFileCaching=0, physicsClientId=cid)
                pb.setGravity(0, 0, -9.8, physicsClientId=cid)
                pb.loadMJCF(reload_path, physicsClientId=cid)
                continue
            if state is not None:
                pb.restoreState(state, physicsClientId=cid)
            for j in joints:
                pb.resetJointState(body, j, 0.0, 0.0, physicsClientId=cid)
            pb.setJointMotorControlArray(body, joints, pb.POSITION_CONTROL, forces=zeros, physicsClientId=cid)
    elapsed = time.perf_counter() - t0
    env.close()
    return steps / elapsed


def measure_env(task: str, steps: int = 20000, seed: int = 0) -> dict:
    """Our env's and raw pybullet's steps/s on ``task`` and their ratio (goal ≥ 0.8)."""
    ours, lengths, template = _ours(task, steps, seed)
    raw = _raw(template, steps, lengths, seed)
    return {
        "ours_steps_per_s": ours,
        "raw_steps_per_s": raw,
        "ratio": ours / raw,
        "episodes": len(lengths),
        "mean_episode_length": float(np.mean(lengths)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--tasks", nargs="*", default=list(PYBULLET_TASKS))
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    out = {}
    print(f"{'task':<24} {'ours steps/s':>12} {'raw steps/s':>12} {'ratio':>6} {'mean ep len':>11}")
    for task in args.tasks:
        m = measure_env(task, args.steps)
        out[task] = m
        print(
            f"{task:<24} {m['ours_steps_per_s']:12.0f} {m['raw_steps_per_s']:12.0f} "
            f"{m['ratio']:6.2f} {m['mean_episode_length']:11.1f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0
