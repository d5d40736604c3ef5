"""Videos of a checkpoint's policy (mrpo_rllib/video.py) and `mrpo evaluate --video`."""

import os
import re
import sys
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest

from mrpo_rllib import video
from mrpo_rllib.cli import main
from mrpo_rllib.envs.base import RENDER_HEIGHT, RENDER_WIDTH
from mrpo_rllib.evaluate import evaluate, load_policy
from sweeps import run_experiment

TRIAL = "dr__InvertedPendulum__kappanone__seed0"


@pytest.fixture(scope="module")
def run_dir(ray_local, tmp_path_factory):
    """A real InvertedPendulum run of one iteration (its policy balances for a few dozen steps)."""
    exp = run_experiment(
        tmp_path_factory.mktemp("video_runs"),
        "videorun",
        task="InvertedPendulum",
        algorithms=["dr"],
        seeds=[0],
        budget={"iterations": 1},
        checkpoint_every=1,
    )
    return os.path.join(exp, TRIAL)


def _return_in_name(path):
    return float(re.search(r"_return(-?[0-9.]+)\.(mp4|gif)$", path).group(1))


@pytest.mark.parametrize("stochastic", [False, True])
def test_evaluate_video_is_the_evaluated_episode(run_dir, tmp_path, capsys, stochastic):
    """`mrpo evaluate --video`: the worst grid point, filmed with its first episode's seed, is
    that episode: the same return; one frame per step plus the reset's."""
    args = ["evaluate", run_dir, "--points", "2", "--episodes", "1", "--seed", "3", "--video", str(tmp_path)]
    assert main(args + (["--stochastic"] if stochastic else [])) == 0
    df = evaluate(run_dir, "test", points=2, episodes=1, seed=3, deterministic=not stochastic)
    worst = df.iloc[int(np.argmin(df["return_mean"]))]
    (path,) = [str(p) for p in tmp_path.iterdir()]
    assert f"wrote {path}" in capsys.readouterr().out
    name = os.path.basename(path)
    assert name.startswith("InvertedPendulum_worst_") and name.endswith(".mp4")
    assert f"cart_size={worst['cart_size']:.4g}_pole_length={worst['pole_length']:.4g}_" in name
    assert _return_in_name(path) == pytest.approx(worst["return_mean"], abs=0.05)
    frames = np.stack(list(iio.imiter(path)))
    assert frames.shape == (int(worst["length_mean"]) + 1, RENDER_HEIGHT, RENDER_WIDTH, 3)
    assert frames.dtype == np.uint8


def test_nominal_and_all_points(run_dir, tmp_path):
    df = evaluate(run_dir, "test", points=2, episodes=1, seed=0)
    paths = video.film_evaluation(run_dir, df, str(tmp_path / "all"), "all", seed=0)
    assert [re.search(r"_point(\d)_", p).group(1) for p in paths] == ["0", "1", "2", "3"]
    for p, ret in zip(paths, df["return_mean"], strict=True):
        assert _return_in_name(p) == pytest.approx(ret, abs=0.05)
    (nominal,) = video.film_evaluation(run_dir, df, str(tmp_path / "nominal"), "nominal", seed=0)
    assert "_nominal_cart_size=0.1_pole_length=0.6_" in nominal
    with pytest.raises(ValueError, match="video points must be one of .* got 'best'"):
        video.film_evaluation(run_dir, df, str(tmp_path), "best")


def test_worst_case_video_is_worst_and_nominal_side_by_side(run_dir, tmp_path):
    policy = load_policy(run_dir)
    result = SimpleNamespace(worst_point={"cart_size": 0.025, "pole_length": 0.25}, fixed={}, seed=0)
    path = video.film_worst_case(run_dir, result, str(tmp_path))
    worst = video.film_episode(policy, result.worst_point, 0)
    nominal = video.film_episode(policy, {"cart_size": 0.1, "pole_length": 0.6}, 0)
    name = os.path.basename(path)
    assert name == (
        f"InvertedPendulum_worst_cart_size=0.025_pole_length=0.25_seed{worst.seed}_return{worst.episode_return:.1f}"
        f"_vs_nominal_cart_size=0.1_pole_length=0.6_seed{nominal.seed}_return{nominal.episode_return:.1f}.mp4"
    )
    frames = np.stack(list(iio.imiter(path)))
    assert frames.shape == (max(worst.length, nominal.length) + 1, RENDER_HEIGHT, 2 * RENDER_WIDTH + 16, 3)
    # left half: the worst point's film; right half: the nominal one's (lossy codec: close, not equal)
    for k in (0, min(worst.length, nominal.length)):
        left, right = frames[k, :, :RENDER_WIDTH].astype(int), frames[k, :, -RENDER_WIDTH:].astype(int)
        assert np.abs(left - worst.frames[k]).mean() < np.abs(left - nominal.frames[k]).mean()
        assert np.abs(right - nominal.frames[k]).mean() < np.abs(right - worst.frames[k]).mean()


def test_gif_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "has_ffmpeg", lambda: False)
    frames = [np.full((RENDER_HEIGHT, RENDER_WIDTH, 3), i * 40, np.uint8) for i in range(5)]
    path = video.write_video(frames, str(tmp_path / "clip"), fps=50)
    assert path.endswith("clip.gif")
    back = np.stack(list(iio.imiter(path)))
    assert back.shape[0] == 5 and back.shape[1:3] == (RENDER_HEIGHT, RENDER_WIDTH)


def test_missing_extra_is_named_before_any_work(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v2", None)
    with pytest.raises(ModuleNotFoundError, match=r"optional extra \[video\]"):
        video.require_video()
    # the checkpoint is not even looked at: the missing extra is reported first
    assert main(["evaluate", "/nonexistent/run", "--video", "/tmp/x"]) == 2
    assert "extra [video]" in capsys.readouterr().err
    assert main(["worst-case", "/nonexistent/run", "--video", "/tmp/x", "--compare-samplers", "0"]) == 2
    assert "does not go with --compare-samplers" in capsys.readouterr().err
