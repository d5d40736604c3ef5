"""`mrpo tune --logger mlflow|wandb` (mrpo_rllib/tracking.py), offline, on the smoke sweep."""

import glob
import os
import sys

import pandas as pd
import pytest
import yaml

from mrpo_rllib import tracking
from mrpo_rllib.cli import main

TRIAL = "mrpo__CartPole__kappa0.5-2__seed0"
TRACKED = ("return_mean", "return_worst10", "kept_fraction", "kappa", "gradient_steps")


@pytest.fixture(scope="module")
def sweep(ray_local, tmp_path_factory):
    """tune_configs/smoke.yaml cut to one trial of two iterations, tracked by MLflow and W&B."""
    storage = tmp_path_factory.mktemp("tracking")
    cut = ["--set", "budget.iterations=2", "--set", "algorithms=[mrpo]", "--set", "seeds=[0]"]
    args = ["tune", "tune_configs/smoke.yaml", "--storage", str(storage), *cut, "--logger", "mlflow"]
    assert main([*args, "--logger", "wandb"]) == 0
    return storage


def test_mlflow_file_store_holds_the_mrpo_metrics_and_the_experiment(sweep):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri="file://" + os.path.join(sweep, "mlruns"))
    (run,) = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert run.info.run_name == TRIAL and run.info.status == "FINISHED"
    progress = pd.read_csv(os.path.join(sweep, "smoke", TRIAL, "progress.csv"))
    assert list(progress["training_iteration"]) == [1, 2]
    for name in TRACKED:
        history = client.get_metric_history(run.info.run_id, f"mrpo/{name}")
        assert [m.step for m in history] == [1, 2], name
        assert [m.value for m in history] == pytest.approx(list(progress[f"mrpo/{name}"])), name
    assert len(client.get_metric_history(run.info.run_id, "num_env_steps_sampled_lifetime")) == 2
    assert not [k for k in run.data.metrics if not k.startswith("mrpo/") and k not in tracking.EXTRA_METRICS]
    # the experiment file as the run's config: its keys as params, its text as an artifact
    with open(os.path.join(sweep, "smoke", "experiment.yaml")) as f:
        saved = f.read()
    params = run.data.params
    assert params["experiment/task"] == "CartPole" and params["experiment/budget/iterations"] == "2"
    assert params["experiment/algorithms"] == "[mrpo]" and params["trial/name"] == TRIAL
    assert params["trial/seed"] == "0" and params["trial/kappa_start"] == "0.5"
    local = client.download_artifacts(run.info.run_id, "experiment.yaml")
    with open(local) as f:
        assert yaml.safe_load(f.read()) == yaml.safe_load(saved)
    # plain files under <storage>/mlruns, one line per iteration
    (metric_file,) = glob.glob(
        os.path.join(sweep, "mlruns", "*", run.info.run_id, "metrics", "mrpo", "return_mean")
    )
    with open(metric_file) as f:
        assert len(f.read().splitlines()) == 2


def test_wandb_offline_run_holds_the_mrpo_metrics(sweep):
    (record,) = glob.glob(os.path.join(sweep, "smoke", "wandb", "offline-run-*", "run-*.wandb"))
    with open(record, "rb") as f:
        data = f.read()
    for name in TRACKED:  # a history record per iteration, and the summary
        assert data.count(f"mrpo/{name}".encode()) >= 2, name
    assert b"experiment/task" in data and TRIAL.encode() in data
    assert b"episode_return_mean" not in data  # RLlib's own metrics are not tracked


def test_bad_or_missing_logger_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match=r"--logger 'tensorboard': expected one of \['mlflow', 'wandb'\]"):
        tracking.check_loggers(["tensorboard"])
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["tune", "tune_configs/smoke.yaml", "--logger", "tensorboard"])
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["tune", "tune_configs/smoke.yaml", "--storage", str(tmp_path), "--logger", "mlflow"]) == 2
    assert "--logger mlflow needs mlflow" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # nothing written


def test_mrpo_metrics_keeps_mrpo_numbers_only():
    result = {
        "mrpo": {"return_mean": 1.5, "kappa": None, "kept_episodes": 3, "selection": "mrpo"},
        "training_iteration": 4,
        "env_runners": {"episode_return_mean": 2.0},
    }
    out = tracking.mrpo_metrics(result)
    assert set(out) == {"mrpo/return_mean", "mrpo/kappa", "mrpo/kept_episodes", "training_iteration"}
    assert out["mrpo/kappa"] != out["mrpo/kappa"]  # NaN
    assert out["training_iteration"] == 4 and isinstance(out["training_iteration"], int)
