"""Videos of a trained policy: one episode filmed at chosen environment parameters.

A checkpoint's policy is restored with :func:`mrpo_rllib.evaluate.load_policy` and acts as in
``mrpo evaluate``: the env-to-module pipeline (frozen observation normalisation), the module's
``forward_inference`` (deterministic: the distribution's mode) or ``forward_exploration``
(``deterministic=False``: a sample), then the module-to-env pipeline. The environment is the
policy's task with the run's ``randomize``, made with ``render_mode="rgb_array"``; one frame
is taken after the reset and after every step (episode length + 1 frames).

Seeds: the episode filmed at grid point ``g`` of an evaluation with seed ``s`` resets with
:func:`~mrpo_rllib.evaluate.episode_seed` ``(s, g, 0)``, the seed of that point's first
evaluated episode, so with deterministic actions the film *is* that episode (same initial
state, same actions, same return). ``mrpo worst-case`` evaluates every point with the seeds
of point index 0; its films (worst point and nominal point) use the first of them, so both
start from the same initial state. With sampled actions the torch seed is evaluation's, but
the evaluation samples a batch of E episodes at once, so the film matches its first episode
only when E = 1.

Files (:func:`write_video`): MP4 (H.264 through ``imageio`` and ``imageio-ffmpeg``), a GIF
when no ffmpeg is found; at the task's ``render_fps`` (real time). Names carry the task, the
label, the parameters, the seed and the return:
``InvertedPendulum_worst_cart_size=0.025_pole_length=0.25_seed0_return23.0.mp4``.
``mrpo worst-case --video`` writes one file with the worst point and the nominal point side by
side (:func:`side_by_side`; the shorter episode holds its last frame).

``imageio`` and ``imageio-ffmpeg`` are the optional extra ``[video]``
(``requirements-extras.txt``, installed by ``make install``); without them
:func:`require_video` raises ``ModuleNotFoundError`` naming the extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

VIDEO_POINTS = ("worst", "nominal", "all")
EXTRA_HINT = (
    "videos need the optional extra [video] (imageio, imageio-ffmpeg): "
    "pip install -r requirements-extras.txt, or pip install 'mrpo_rllib[video]'"
)
SEPARATOR_PX = 16  # white columns between the two films (2 x 320 + 16: a multiple of 16, as H.264 wants)


def require_video():
    """``imageio``'s v2 and v3 APIs, or ``ModuleNotFoundError`` naming the extra to install."""
    try:
        import imageio.v2 as iio2
        import imageio.v3 as iio3
    except ImportError:
        raise ModuleNotFoundError(EXTRA_HINT) from None
    return iio2, iio3


def has_ffmpeg() -> bool:
    """Whether ``imageio-ffmpeg`` is installed and finds an ffmpeg binary (its own or the system's)."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError, OSError):
        return False
    return True


@dataclass
class Clip:
    """One filmed episode."""

    task: str
    params: dict[str, float]  # what the environment reported running with
    seed: int  # the reset seed
    episode_return: float
    length: int
    fps: float
    frames: list[np.ndarray] = field(repr=False, default_factory=list)


def film_episode(policy, params: dict, seed: int, point_index: int = 0, deterministic: bool = True) -> Clip:
    """Film one episode of ``policy`` (a :class:`~mrpo_rllib.evaluate.Policy`) at ``params``,
    reset with ``episode_seed(seed, point_index, 0)`` (see the module docstring)."""
    import gymnasium as gym
    import torch
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from mrpo_rllib.envs import get_task, register_envs
    from mrpo_rllib.evaluate import episode_seed

    register_envs()
    explore = not deterministic
    if explore:  # as evaluate.rollout_point: a stream of its own for the sampled actions
        ss = np.random.SeedSequence([int(seed), int(point_index), 0, 1])
        torch.manual_seed(int(ss.generate_state(1, dtype=np.uint32)[0]))
    env = gym.make(get_task(policy.task).env_id, randomize=policy.randomize, render_mode="rgb_array")
    try:
        reset_seed = episode_seed(seed, point_index, 0)
        obs, info = env.reset(seed=reset_seed, options={"env_params": dict(params)})
        ran = dict(info["env_params"])
        frames = [env.render()]
        ep = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
        ep.add_env_reset(observation=obs, infos=info)
        total, done = 0.0, False
        while not done:
            shared: dict = {}
            batch = policy.env_to_module(
                rl_module=policy.module, batch={}, episodes=[ep], explore=explore, shared_data=shared
            )
            with torch.no_grad():
                out = (
                    policy.module.forward_exploration(batch)
                    if explore
                    else policy.module.forward_inference(batch)
                )
            out = policy.module_to_env(
                rl_module=policy.module, batch=out, episodes=[ep], explore=explore, shared_data=shared
            )
            actions = out["actions"]
            to_env = out.get("actions_for_env", actions)
            obs, reward, terminated, truncated, info = env.step(to_env[0])
            total += float(reward)
            ep.add_env_step(
                observation=obs,
                action=actions[0],
                reward=float(reward),
                infos=info,
                terminated=terminated,
                truncated=truncated,
            )
            frames.append(env.render())
            done = terminated or truncated
        fps = float(env.unwrapped.metadata["render_fps"])
    finally:
        env.close()
    return Clip(policy.task, ran, reset_seed, total, len(frames) - 1, fps, frames)


def clip_name(clip: Clip, label: str) -> str:
    """``<task>_<label>_<name>=<value>_..._seed<seed>_return<return>`` (no extension)."""
    params = "_".join(f"{k}={v:.4g}" for k, v in clip.params.items())
    return f"{clip.task}_{label}_{params}_seed{clip.seed}_return{clip.episode_return:.1f}"


def write_video(frames: list[np.ndarray], path_stem: str, fps: float) -> str:
    """Write ``frames`` (H×W×3 uint8) to ``path_stem.mp4`` (``.gif`` without ffmpeg); returns the
    path."""
    iio2, iio3 = require_video()
    os.makedirs(os.path.dirname(os.path.abspath(path_stem)), exist_ok=True)
    if has_ffmpeg():
        path = path_stem + ".mp4"
        iio2.mimwrite(
            path,
            frames,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            macro_block_size=16,
            ffmpeg_log_level="error",
        )
    else:
        path = path_stem + ".gif"
        iio3.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def side_by_side(left: list[np.ndarray], right: list[np.ndarray]) -> list[np.ndarray]:
    """The two films next to each other, a white band between them; the shorter one holds its
    last frame until the longer one ends."""
    n = max(len(left), len(right))
    band = np.full((left[0].shape[0], SEPARATOR_PX, 3), 255, np.uint8)
    return [
        np.concatenate([left[min(i, len(left) - 1)], band, right[min(i, len(right) - 1)]], axis=1)
        for i in range(n)
    ]


def nominal_point(spec) -> dict[str, float]:
    """The nominal value of every randomized parameter of ``spec`` (a TaskSpec)."""
    return {p.name: float(p.nominal) for p in spec.params}


def evaluation_points(df, spec, which: str) -> list[tuple[str, int, dict[str, float]]]:
    """(label, point index, parameters) to film from an evaluation table ``df`` (one row per
    grid point, in grid order): ``worst`` the point of lowest mean return, ``nominal`` the
    nominal parameters (point index ``len(df)``, one past the grid), ``all`` every point."""
    if which not in VIDEO_POINTS:
        raise ValueError(f"video points must be one of {list(VIDEO_POINTS)}, got {which!r}")
    names = list(spec.param_names)
    row = lambda i: {k: float(df.iloc[i][k]) for k in names}  # noqa: E731
    if which == "worst":
        i = int(np.argmin(df["return_mean"].to_numpy()))
        return [("worst", i, row(i))]
    if which == "nominal":
        return [("nominal", len(df), nominal_point(spec))]
    return [(f"point{i}", i, row(i)) for i in range(len(df))]


def film_evaluation(
    checkpoint: str, df, out_dir: str, which: str = "worst", seed: int = 0, deterministic: bool = True
) -> list[str]:
    """Film the ``which`` points (:func:`evaluation_points`) of ``mrpo evaluate``'s table ``df``
    of ``checkpoint`` (evaluated with ``seed``) into ``out_dir``; returns the files written."""
    from mrpo_rllib.evaluate import load_policy

    require_video()
    policy = load_policy(checkpoint)
    paths = []
    for label, index, params in evaluation_points(df, policy.spec, which):
        clip = film_episode(policy, params, seed, index, deterministic)
        paths.append(write_video(clip.frames, os.path.join(out_dir, clip_name(clip, label)), clip.fps))
    return paths


def film_worst_case(checkpoint: str, result, out_dir: str) -> str:
    """The worst point ``mrpo worst-case`` found (a :class:`~mrpo_rllib.worst_case.WorstCase`)
    next to the nominal point, both from the search's first episode seed; returns the file."""
    from mrpo_rllib.evaluate import load_policy

    require_video()
    policy = load_policy(checkpoint)
    worst = film_episode(policy, {**result.worst_point, **result.fixed}, result.seed, 0, True)
    nominal = film_episode(policy, nominal_point(policy.spec), result.seed, 0, True)
    stem = f"{clip_name(worst, 'worst')}_vs_{clip_name(nominal, 'nominal').split('_', 1)[1]}"
    return write_video(side_by_side(worst.frames, nominal.frames), os.path.join(out_dir, stem), worst.fps)


def _at_point(df, params: dict[str, float]) -> np.ndarray:
    """The rows of an evaluation table at the grid point ``params`` (a boolean mask)."""
    return np.logical_and.reduce([np.isclose(df[k].to_numpy(), v) for k, v in params.items()])


def report_worst_clips(evals, out_dir: str, kind: str = "final", mode: str = "deterministic", seed: int = 0):
    """One clip per (task, algorithm group) for the report: the test-grid point where the
    group's mean return over seeds (its ``kind`` checkpoints evaluated in ``mode``) is
    lowest, played by the seed whose return there is closest to that mean (a typical
    policy of the group, not its luckiest or unluckiest one), filmed as the evaluation ran
    that point (``seed``: the evaluation's seed). ``evals`` is the report's evaluation
    table (``eval_test.csv``). Returns one row per clip: task, algo, kappa, setting, seed,
    mean_return (over seeds at that point), the parameters, and ``file``."""
    import pandas as pd

    from mrpo_rllib.evaluate import checkpoint_spec, load_policy

    require_video()
    group = ["task", "algo", "kappa", "setting"]
    e = evals[(evals["checkpoint_kind"] == kind) & (evals["mode"] == mode)].copy()
    e["setting"] = e["setting"].fillna("")
    rows = []
    for key, g in e.groupby(group, sort=True):
        names = list(checkpoint_spec(g["checkpoint"].iloc[0]).param_names)
        by_point = g.groupby(names, sort=True)["return_mean"].mean()
        worst = by_point.idxmin()
        worst = worst if isinstance(worst, tuple) else (worst,)
        params = dict(zip(names, (float(v) for v in worst), strict=True))
        at = g[_at_point(g, params)]
        pick = at.iloc[int(np.argmin(np.abs(at["return_mean"].to_numpy() - by_point.min())))]
        # the grid point's index in the evaluation (its reset seeds), as mrpo evaluate numbered it
        run_points = g[g["checkpoint"] == pick["checkpoint"]]
        index = int(np.flatnonzero(_at_point(run_points, params))[0])
        policy = load_policy(pick["checkpoint"])
        clip = film_episode(policy, params, seed, index, mode == "deterministic")
        label = f"{'_'.join(str(k) for k in key[1:] if k)}_worst"
        path = write_video(clip.frames, os.path.join(out_dir, clip_name(clip, label)), clip.fps)
        rows.append(
            dict(zip(group, key, strict=True))
            | {
                "seed": int(pick["seed"]),
                "mean_return": float(by_point.min()),
                "clip_return": clip.episode_return,
            }
            | params
            | {"file": path}
        )
    return pd.DataFrame(rows)
