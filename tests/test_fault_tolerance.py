"""Inside a trial: a remote env runner lost in the middle of sampling is brought back and its
share of the M episodes is sampled again; with nothing left to sample from, the iteration
fails with 'sampling stalled' instead of hanging or training on fewer episodes."""

import os
import signal
import threading
import time

import pandas as pd
import pytest

from mrpo_rllib.algorithms import MRPOConfig

M = 40


def _config(tmp_path, **fault_tolerance):
    return (
        MRPOConfig()
        .environment("Hopper")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4)
        .training(selection="dr", episodes_per_iteration=M, num_minibatches=2, num_epochs=1)
        .fault_tolerance(**fault_tolerance)
        .debugging(seed=3)
        .reporting(episode_ledger_dir=str(tmp_path))
    )


def _runner_pids(algo) -> list[int]:
    return algo.env_runner_group.foreach_env_runner(lambda r: os.getpid(), local_env_runner=False)


def _kill_soon(pid: int, delay: float) -> threading.Thread:
    def kill():
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=kill, daemon=True)
    t.start()
    return t


def test_a_runner_killed_mid_sample_is_restored_and_its_share_resampled(ray_local, tmp_path):
    algo = _config(tmp_path).build_algo()
    try:
        algo.train()
        first, second = _runner_pids(algo)
        killer = _kill_soon(second, 0.3)  # while the next iteration samples (Hopper: seconds)
        result = algo.train()
        killer.join()
        # Ray restarts the actor; each iteration brings restarted runners back into service
        later = []
        while len(later) < 5 and (not later or len(_runner_pids(algo)) < 2):
            later.append(algo.train())
        pids = _runner_pids(algo)
    finally:
        algo.stop()
    assert result["mrpo"]["episodes"] == M and all(r["mrpo"]["episodes"] == M for r in later)
    assert len(pids) == 2 and first in pids and second not in pids  # a new runner process
    n = 2 + len(later)
    ledger = pd.read_csv(tmp_path / "episodes.csv")
    assert ledger.groupby("iteration").size().tolist() == [M] * n
    # every episode its own environment: the resampled share did not repeat the lost one's
    assert len(ledger[["density", "friction"]].drop_duplicates()) == n * M
    assert result["mrpo"]["sampled_timesteps"] == ledger.loc[ledger["iteration"] == 2, "length"].sum()


def test_nothing_left_to_sample_from_is_a_clear_error(ray_local, tmp_path):
    algo = _config(tmp_path, restart_failed_env_runners=False, ignore_env_runner_failures=True).build_algo()
    try:
        algo.train()
        for pid in _runner_pids(algo):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        with pytest.raises(Exception, match=r"sampling stalled: 0 of 40 episodes after 3 attempts"):
            algo.train()
    finally:
        algo.stop()
