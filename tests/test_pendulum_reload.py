"""A pendulum geometry change reloads the body in place (mrpo_rllib/envs/pendulum.py).

The body is swapped with ``removeBody`` + ``loadMJCF``; the world is rebuilt with
``resetSimulation`` only every ``RELOADS_PER_WORLD`` loads. Trajectories must be bit for bit
those of a world rebuilt at every load (what the env did before), and the world must hold
one body.
"""

import numpy as np
import pybullet as pb
import pytest

from mrpo_rllib.envs import pendulum
from mrpo_rllib.envs.pendulum import PendulumEnv

TASKS = ["InvertedPendulum", "InvertedDoublePendulum"]
EPISODES = 10


def _trajectory(env, seed):
    """Bytes of the observations, rewards and ends of one episode of seeded random actions."""
    obs, _ = env.reset(seed=seed)
    out = [obs.tobytes()]
    for a in np.random.default_rng(seed).uniform(-1.5, 1.5, (300, 1)).astype(np.float32):
        obs, r, term, _, _ = env.step(a)
        out.append(obs.tobytes() + np.float64(r).tobytes() + bytes([term]))
        if term:
            break
    return b"".join(out)


@pytest.mark.parametrize("task", TASKS)
def test_reload_in_place_matches_a_new_world_every_time(task, monkeypatch):
    # the reference: a new world at every load (resetSimulation + loadMJCF, as before)
    monkeypatch.setattr(pendulum, "RELOADS_PER_WORLD", 1)
    env = PendulumEnv(task)
    reference = [_trajectory(env, seed) for seed in range(EPISODES)]
    env.close()

    monkeypatch.setattr(pendulum, "RELOADS_PER_WORLD", 4)
    worlds = []
    real = pb.resetSimulation
    monkeypatch.setattr(pb, "resetSimulation", lambda *a, **k: worlds.append(1) or real(*a, **k))
    env = PendulumEnv(task)
    for seed in range(EPISODES):  # every episode a new geometry: 1 + 10 loads
        assert _trajectory(env, seed) == reference[seed], seed
        assert pb.getNumBodies(physicsClientId=env._cid) == 1  # the old body was removed
    # a new world at the first load, then after every 4 loads (the 5th and the 9th)
    assert len(worlds) == 3
    assert env._loads_in_world == 3
    env.close()
