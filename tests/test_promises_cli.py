"""Every flag of every ``mrpo`` command reaches what it sets (docs/cli.md).

Each command is run through ``mrpo_rllib.cli.main`` with every optional flag at a value other
than its default; the function the command hands its work to (``run_sweep``, ``evaluate``,
``search_worst_case``, ``report``, ...) is replaced by a recorder, and the values it receives
are compared with the ones written here. No Ray, a few seconds. Mutants: tools/mutants.py
``flag-*`` (each flag ignored) and ``eval-modes-swapped`` (docs/testing_mutants.md).
"""

from __future__ import annotations

import inspect
import types

import pandas as pd
import pytest

from mrpo_rllib.cli import build_parser, main
from mrpo_rllib.report.stats import Window


class Recorder:
    """A stand-in function: keeps each call's arguments, returns ``value``."""

    def __init__(self, value=None):
        self.calls, self.value = [], value

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.value(*args, **kwargs) if callable(self.value) else self.value

    @property
    def one(self):
        (call,) = self.calls
        return call


def _effective(func, call) -> dict:
    """The arguments ``func`` runs with for a recorded ``call``: those the command passed, and
    ``func``'s own defaults for the rest (the command passes an option left out not at all)."""
    args, kwargs = call
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _flags(command: str) -> set[str]:
    (subs,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    return {a.dest for a in subs.choices[command]._actions if a.dest != "help"}


# -- mrpo train ---------------------------------------------------------------------------------
def _fake_sweep(tmp_path):
    def run(exp, storage, **kw):
        metrics = {
            "training_iteration": 1,
            "num_env_steps_sampled_lifetime": 10,
            "mrpo": {"return_mean": 1.0, "return_worst10": 1.0},
        }
        return [types.SimpleNamespace(error=None, path=str(tmp_path), metrics=metrics)]

    return Recorder(run)


TRAIN = [
    "--task", "Hopper", "--algo", "dr", "--seed", "7", "--checkpoint-every", "2", "--name", "nm",
    "--resume", "--verbose", "--set", "training.episodes_per_iteration=9", "--set", "training.lr=0.002",
]  # fmt: skip


@pytest.mark.parametrize("budget", [["--iterations", "3"], ["--env-steps", "5000"]])
def test_train_flags_reach_the_experiment_and_the_sweep(tmp_path, monkeypatch, budget):
    import mrpo_rllib.report
    import mrpo_rllib.sweep

    sweep = _fake_sweep(tmp_path)
    monkeypatch.setattr(mrpo_rllib.sweep, "run_sweep", sweep)
    monkeypatch.setattr(mrpo_rllib.report, "write_run_summary", Recorder())
    out = tmp_path / "out"
    assert main(["train", *TRAIN, *budget, "--out", str(out)]) == 0
    (exp, storage), kw = sweep.one
    assert (exp.task, exp.algorithms, exp.seeds, exp.name) == ("Hopper", ["dr"], [7], "nm")
    assert exp.checkpoint_every == 2
    assert (exp.training.episodes_per_iteration, exp.training.lr) == (9, 0.002)
    assert exp.budget.stop() == (
        {"training_iteration": 3} if budget[0] == "--iterations" else {"num_env_steps_sampled_lifetime": 5000}
    )
    assert storage == str(out)
    assert (kw["resume"], kw["verbose"]) == (True, True)
    assert set(_flags("train")) == {
        "task",
        "algo",
        "seed",
        "iterations",
        "env_steps",
        "checkpoint_every",
        "out",
        "name",
        "resume",
        "verbose",
        "set",
    }  # fmt: skip  -- a new flag needs its line above


def test_train_defaults(tmp_path, monkeypatch):
    import mrpo_rllib.report
    import mrpo_rllib.sweep

    sweep = _fake_sweep(tmp_path)
    monkeypatch.setattr(mrpo_rllib.sweep, "run_sweep", sweep)
    monkeypatch.setattr(mrpo_rllib.report, "write_run_summary", Recorder())
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 0
    (exp, storage), kw = sweep.one
    assert (exp.task, exp.algorithms, exp.seeds, exp.checkpoint_every) == ("CartPole", ["mrpo"], [0], 10)
    assert exp.budget.stop() == {"training_iteration": 20} and storage == "results"
    assert exp.name.startswith("train-") and (kw["resume"], kw["verbose"]) == (False, False)


# -- mrpo tune ----------------------------------------------------------------------------------
GOOD = "name: t\ntask: CartPole\nalgorithms: [mrpo]\nseeds: [0]\nbudget: {iterations: 2}\n"


def test_tune_flags_reach_the_sweep(tmp_path, monkeypatch, capsys):
    import mrpo_rllib.sweep

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    sweep = Recorder([])
    monkeypatch.setattr(mrpo_rllib.sweep, "run_sweep", sweep)
    f = tmp_path / "t.yaml"
    f.write_text(GOOD)
    storage = str(tmp_path / "s")
    import mrpo_rllib.tracking

    checked = Recorder()
    monkeypatch.setattr(mrpo_rllib.tracking, "check_loggers", checked)
    args = ["tune", str(f), "--storage", storage, "--resume", "--verbose", "--set", "seeds=[4, 6]"]
    assert main([*args, "--logger", "mlflow", "--logger", "wandb"]) == 0
    (exp, got), kw = sweep.one
    assert (got, exp.seeds, kw["resume"], kw["verbose"]) == (storage, [4, 6], True, True)
    assert kw["loggers"] == ["mlflow", "wandb"] and checked.one == ((["mlflow", "wandb"],), {})
    # --dry-run: the trial table, nothing run
    capsys.readouterr()
    assert main(["tune", str(f), "--storage", storage, "--dry-run", "--set", "seeds=[4, 6]"]) == 0
    assert len(sweep.calls) == 1
    out = capsys.readouterr().out
    assert "mrpo__CartPole__kappa0.5-2__seed4" in out and "mrpo__CartPole__kappa0.5-2__seed6" in out
    assert set(_flags("tune")) == {"file", "storage", "dry_run", "resume", "verbose", "set", "logger"}


def test_tune_flags_reach_a_submitted_job(tmp_path, monkeypatch):
    import mrpo_rllib.jobs

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:1")
    submit = Recorder(0)
    monkeypatch.setattr(mrpo_rllib.jobs, "submit_sweep", submit)
    assert (
        main(
            [
                "tune",
                "f.yaml",
                "--storage",
                "s3://b/x",
                "--resume",
                "--set",
                "seeds=[4]",
                "--logger",
                "mlflow",
            ]
        )
        == 0
    )
    assert submit.one == (
        ("f.yaml",),
        {"overrides": ["seeds=[4]"], "storage": "s3://b/x", "resume": True, "loggers": ["mlflow"]},
    )


# -- mrpo evaluate ------------------------------------------------------------------------------
def _fake_evaluate():
    import mrpo_rllib.evaluate

    real = mrpo_rllib.evaluate.evaluate

    def run(checkpoint, **kw):
        df = pd.DataFrame({"return_mean": [1.0]})
        used = _effective(real, ((checkpoint,), kw))  # as the real one records them
        df.attrs.update(task="CartPole", checkpoint=checkpoint, grid=used["grid"], seed=used["seed"])
        return df

    return Recorder(run)


@pytest.mark.parametrize("stochastic", [False, True])
def test_evaluate_flags_reach_the_evaluation(tmp_path, monkeypatch, stochastic):
    """``--stochastic`` samples actions; without it they are deterministic (docs/cli.md)."""
    import mrpo_rllib.evaluate
    import mrpo_rllib.video

    ev = _fake_evaluate()
    monkeypatch.setattr(mrpo_rllib.evaluate, "evaluate", ev)
    film = Recorder([])
    monkeypatch.setattr(mrpo_rllib.video, "film_evaluation", film)
    monkeypatch.setattr(mrpo_rllib.video, "require_video", Recorder())
    csv = tmp_path / "e.csv"
    args = ["evaluate", "ck", "--grid", "train", "--points", "2", "--episodes", "4", "--seed", "9"]
    video = ["--video", str(tmp_path / "v"), "--video-points", "nominal"]
    assert main([*args, *(["--stochastic"] if stochastic else []), "--out", str(csv), *video]) == 0
    (ck, df, directory, which, seed, deterministic), _ = film.one
    assert (ck, directory, which, seed, deterministic) == (
        "ck",
        str(tmp_path / "v"),
        "nominal",
        9,
        not stochastic,
    )
    assert df["return_mean"].tolist() == [1.0]
    assert ev.one == (
        ("ck",),
        {"grid": "train", "points": 2, "episodes": 4, "seed": 9, "deterministic": not stochastic},
    )
    assert pd.read_csv(csv)["return_mean"].tolist() == [1.0]
    assert set(_flags("evaluate")) == {
        "checkpoint",
        "grid",
        "points",
        "episodes",
        "seed",
        "stochastic",
        "out",
        "video",
        "video_points",
    }


def test_evaluate_defaults(monkeypatch):
    import mrpo_rllib.evaluate

    real = mrpo_rllib.evaluate.evaluate
    ev = _fake_evaluate()
    monkeypatch.setattr(mrpo_rllib.evaluate, "evaluate", ev)
    assert main(["evaluate", "ck"]) == 0
    assert _effective(real, ev.one) == {
        "checkpoint": "ck",
        "grid": "test",
        "points": 5,
        "episodes": 3,
        "seed": 0,
        "deterministic": True,
    }


# -- mrpo worst-case ----------------------------------------------------------------------------
def test_worst_case_flags_reach_the_search(tmp_path, monkeypatch, capsys):
    import mrpo_rllib.evaluate
    import mrpo_rllib.worst_case
    import mrpo_rllib.worst_case_study

    monkeypatch.setattr(mrpo_rllib.evaluate, "checkpoint_task", lambda c: "Hopper")
    search, compare = Recorder(object()), Recorder()
    monkeypatch.setattr(mrpo_rllib.worst_case, "search_worst_case", search)
    monkeypatch.setattr(mrpo_rllib.worst_case_study, "compare_samplers", compare)
    monkeypatch.setattr(mrpo_rllib.worst_case, "describe", lambda r: "")
    import mrpo_rllib.video

    film = Recorder("clip.mp4")
    monkeypatch.setattr(mrpo_rllib.video, "film_worst_case", film)
    monkeypatch.setattr(mrpo_rllib.video, "require_video", Recorder())
    out = str(tmp_path / "wc")
    args = ["worst-case", "ck", "--range", "train", "--budget", "7", "--episodes", "2", "--seed", "3"]
    more = ["--sampler", "random", "--reeval-episodes", "11", "--grid-points", "4", "--task", "Hopper"]
    assert main([*args, *more, "--out", out, "--video", str(tmp_path / "v")]) == 0
    assert film.one == (("ck", search.value, str(tmp_path / "v")), {})
    assert search.one == (
        ("ck",),
        {
            "which": "train",
            "budget": 7,
            "episodes": 2,
            "seed": 3,
            "sampler": "random",
            "reeval_episodes": 11,
            "grid_points": 4,
            "out": out,
        },
    )
    # --task refuses a checkpoint of another task
    assert main(["worst-case", "ck", "--task", "CartPole"]) == 2
    assert "is of task Hopper, not CartPole" in capsys.readouterr().err
    # --compare-samplers: every sampler with these search seeds
    assert main([*args, "--compare-samplers", "1", "2", "--out", out]) == 0
    assert compare.one == (("ck", "train", 7, 2, (1, 2)), {"out": out})
    assert len(search.calls) == 1
    assert set(_flags("worst-case")) == {
        "checkpoint", "range", "budget", "episodes", "seed", "sampler", "reeval_episodes", "grid_points",
        "task", "compare_samplers", "out", "video",
    }  # fmt: skip


def test_worst_case_default_out_names_task_range_sampler_seed(monkeypatch):
    import mrpo_rllib.evaluate
    import mrpo_rllib.worst_case

    monkeypatch.setattr(mrpo_rllib.evaluate, "checkpoint_task", lambda c: "Hopper")
    real = mrpo_rllib.worst_case.search_worst_case
    search = Recorder(object())
    monkeypatch.setattr(mrpo_rllib.worst_case, "search_worst_case", search)
    monkeypatch.setattr(mrpo_rllib.worst_case, "describe", lambda r: "")
    assert main(["worst-case", "ck"]) == 0
    kw = _effective(real, search.one)
    assert (kw["which"], kw["budget"], kw["episodes"], kw["seed"], kw["sampler"]) == ("test", 60, 5, 0, "tpe")
    assert (kw["reeval_episodes"], kw["grid_points"]) == (None, 10)
    assert kw["out"] == "results/worst_case/Hopper_test_tpe_seed0"


# -- mrpo report --------------------------------------------------------------------------------
def test_report_flags_reach_the_report(tmp_path, monkeypatch):
    import mrpo_rllib.report
    import mrpo_rllib.report.learner

    rep, study = Recorder(), Recorder()
    monkeypatch.setattr(mrpo_rllib.report, "report", rep)
    monkeypatch.setattr(mrpo_rllib.report.learner, "learner_study", study)
    args = ["report", "runs", "--out", "o", "--eval-points", "2", "--eval-episodes", "3", "--no-eval"]
    argv = [*args, "--last", "7", "--worst-case-budget", "5", "--worst-case-episodes", "4"]
    assert main(argv) == 0
    (runs, out), kw = rep.one
    assert (runs, out) == ("runs", "o")
    assert {k: kw[k] for k in kw if k != "argv"} == {
        "eval_points": 2,
        "eval_episodes": 3,
        "evaluate": False,
        "videos": False,
        "last": Window(iterations=7),
        "worst_case_budget": 5,
        "worst_case_episodes": 4,
    }
    assert kw["argv"] == ["mrpo", *argv]
    for flags, window in (
        (["--window-steps", "40000"], Window(env_steps=40000)),
        (["--window-fraction", "0.2"], Window(fraction=0.2)),
    ):
        assert main(["report", "runs", "--out", "o", "--videos", *flags]) == 0
        assert rep.calls[-1][1]["last"] == window and rep.calls[-1][1]["videos"] is True
    assert main(["report", "runs", "--out", "o", "--study", "learner"]) == 0
    assert study.one == (("runs", "o"), {}) and len(rep.calls) == 3
    assert set(_flags("report")) == {
        "runs_dir", "out", "eval_points", "eval_episodes", "no_eval", "last", "window_steps",
        "window_fraction", "videos", "worst_case_budget", "worst_case_episodes", "study",
    }  # fmt: skip


def test_report_defaults(monkeypatch):
    import mrpo_rllib.report

    real = mrpo_rllib.report.report
    rep = Recorder()
    monkeypatch.setattr(mrpo_rllib.report, "report", rep)
    assert main(["report", "runs", "--out", "o"]) == 0
    kw = _effective(real, rep.one)
    assert (kw["eval_points"], kw["eval_episodes"], kw["evaluate"], kw["last"]) == (None, None, True, 50)
    assert kw["videos"] is False
    assert (kw["worst_case_budget"], kw["worst_case_episodes"]) == (0, 3)
