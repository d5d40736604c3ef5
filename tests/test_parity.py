"""The parity study's harness: both sides run for real (tiny budget), one tidy table, the
window measures computed by hand here."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from mrpo_rllib import parity


def test_study_is_the_registered_design():
    study = parity.study()
    assert [e["task"] for e in study] == ["Hopper", "Walker2d", "HalfCheetah"]
    assert [len(e["seeds"]) for e in study] == [5, 3, 3]
    assert {e["env_steps"] for e in study} == {2_000_000}
    for e in study:
        data = yaml.safe_load(open(e["path"]))
        assert data["training"]["episodes_per_iteration"] == 8 and data["algorithms"] == ["dr"]
    assert parity.SB3_SETTINGS["batch_size"] * 32 == parity.SB3_ENVS * parity.SB3_STEPS == 8192


def _table():
    rows = []
    # ours: iterations of 8 episodes; sb3: updates with varying episode counts
    for it, (steps, ret, length) in enumerate(
        [(50_000, 100.0, 100.0), (120_000, 300.0, 200.0), (150_000, 500.0, 250.0)]
    ):
        rows.append(
            dict(
                side="ours",
                task="Hopper",
                seed=0,
                iteration=it + 1,
                env_steps=steps,
                episodes=8,
                return_mean=ret,
                length_mean=length,
                time_s=60.0 * (it + 1),
            )
        )
    for it, (steps, n, ret, length) in enumerate(
        [(60_000, 4, 10.0, 10.0), (130_000, 2, 2000.0, 1000.0), (150_000, 0, np.nan, np.nan)]
    ):
        rows.append(
            dict(
                side="sb3",
                task="Hopper",
                seed=0,
                iteration=it + 1,
                env_steps=steps,
                episodes=n,
                return_mean=ret,
                length_mean=length,
                time_s=30.0 * (it + 1),
            )
        )
    return pd.DataFrame(rows)  # fmt: skip


def test_window_measures_by_hand(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "hopper.yaml").write_text(
        "name: p\ntask: Hopper\nalgorithms: [dr]\nseeds: [0]\nbudget: {env_steps: 150000}\n"
    )
    evals = pd.DataFrame([dict(side="sb3", task="Hopper", seed=0, eval_mean=42.0)])
    summary = parity.summarize(_table(), evals, str(configs)).set_index("side")
    # window = env steps > 150k - 100k = 50k: ours' iterations 2 and 3 (8 episodes each)
    assert summary.loc["ours", "window_return"] == pytest.approx((300 + 500) / 2)
    assert summary.loc["ours", "window_reward_per_step"] == pytest.approx(800 / 450)
    assert summary.loc["ours", "hops"] and summary.loc["ours", "complete"]
    assert np.isnan(summary.loc["ours", "eval_mean"])
    # sb3: updates 1 (4 episodes) and 2 (2 episodes) in the window, update 3 has none
    assert summary.loc["sb3", "window_return"] == pytest.approx((4 * 10 + 2 * 2000) / 6)
    assert summary.loc["sb3", "window_reward_per_step"] == pytest.approx((40 + 4000) / (40 + 2000))
    assert summary.loc["sb3", "eval_mean"] == 42.0 and summary.loc["sb3", "wall_min"] == pytest.approx(1.5)


def test_both_sides_run_and_report(ray_local, tmp_path):
    """A tiny study (Hopper, one seed, one SB3 update): our run through `mrpo tune`'s code,
    SB3's, one table, a deterministic evaluation of each on the same 10 environments."""
    from mrpo_rllib.experiments import load_experiment
    from mrpo_rllib.sweep import run_sweep

    configs = tmp_path / "configs"
    configs.mkdir()
    data = yaml.safe_load(open(os.path.join(parity.CONFIG_DIR, "hopper.yaml")))
    data.update(seeds=[0], budget={"env_steps": 600}, checkpoint_every=100)
    (configs / "hopper.yaml").write_text(yaml.safe_dump(data))
    storage = tmp_path / "parity"
    run_sweep(load_experiment(str(configs / "hopper.yaml")), str(storage / "ours"), echo=lambda *a: None)
    parity.train_sb3("Hopper", 0, 600, str(storage))
    out = tmp_path / "report"
    summary = parity.report(str(storage), str(out), str(configs)).set_index("side")
    assert set(summary.index) == {"ours", "sb3"} and summary["complete"].all()
    assert summary.loc["sb3", "env_steps"] == 8192  # SB3 learns whole updates
    runs = pd.read_csv(out / "runs.csv")
    ours = runs[runs.side == "ours"]
    assert (ours["episodes"] == 8).all() and ours["env_steps"].is_monotonic_increasing
    for side in ("ours", "sb3"):
        assert np.isfinite(summary.loc[side, "eval_mean"]) and summary.loc[side, "eval_mean"] > 0
    ev = json.load(open(storage / "sb3" / "Hopper__seed0" / "eval.json"))
    assert len(ev["returns"]) == parity.EVAL_EPISODES
    assert (out / "parity_Hopper.png").stat().st_size > 5000
    assert "| Hopper | ours | 1 |" in (out / "parity.md").read_text()


def test_same_environments_on_both_sides():
    """The evaluation's episode j has the same parameters whoever acts."""
    seen = []

    def act(obs):
        return np.zeros(3, dtype=np.float32)

    import gymnasium as gym

    original = gym.make

    def recording_make(*args, **kwargs):
        env = original(*args, **kwargs)
        reset = env.reset

        def rec(**kw):
            obs, info = reset(**kw)
            seen.append(info["env_params"])
            return obs, info

        env.reset = rec
        return env

    gym.make = recording_make
    try:
        a = parity.evaluate_deterministic(act, "Hopper", episodes=3)
        first = list(seen)
        b = parity.evaluate_deterministic(act, "Hopper", episodes=3)
    finally:
        gym.make = original
    assert a == b and seen[3:] == first and len({json.dumps(p) for p in first}) == 3
