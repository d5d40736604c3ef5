"""Experiment files: every file in tune_configs/ validates; bad files are clear errors;
a sweep killed with its driver resumes when the same command runs again."""

import glob
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from local_cluster import kill_marked
from mrpo_rllib.experiments import load_experiment
from mrpo_rllib.sweep import trial_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "tune_configs", "**", "*.yaml"), recursive=True))
MRPO = os.path.join(os.path.dirname(sys.executable), "mrpo")
PAPER = ["walker2d", "hopper", "halfcheetah", "invertedpendulum", "inverteddoublependulum", "cartpole"]


def test_the_expected_files_exist():
    names = {os.path.basename(p)[:-5] for p in CONFIGS}
    assert set(PAPER) | {"kappa_hopper", "smoke"} <= names


def _expected_name(path: str) -> str:
    """A file's experiment name: its path under tune_configs/ with '_' for '/' (unique storage)."""
    rel = os.path.relpath(path, os.path.join(ROOT, "tune_configs"))[: -len(".yaml")]
    return rel.replace(os.sep, "_")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_config_validates(path):
    exp = load_experiment(path)
    trials = exp.trials()
    assert len({t.name for t in trials}) == len(trials)
    assert exp.name == _expected_name(path)
    if exp.name in PAPER:  # the paper's sweeps, tune_configs/<task>.yaml
        assert sorted(exp.algorithms) == ["dr", "epopt", "mrpo"] and len(exp.seeds) == 4
        assert exp.training.episodes_per_iteration == 100 and len(trials) == 12
    table = trial_table(exp)
    assert all(t.name in table for t in trials)


def test_kappa_study_spans_the_calibrated_grid_and_the_schedule():
    exp = load_experiment(os.path.join(ROOT, "tune_configs", "kappa_hopper.yaml"))
    labels = {t.kappa_label for t in exp.trials()}
    assert {"0.25", "0.5", "1", "2", "4", "0.5-2"} <= labels


def test_three_parameter_hopper_randomizes_what_it_says(tmp_path):
    """hopper_3d.yaml: the trials' configs randomize friction, torso mass and power, and
    MRPO's normalisation uses those training ranges (widths 0.6, 1.0 and 0.5)."""
    exp = load_experiment(os.path.join(ROOT, "tune_configs", "hopper_3d.yaml"))
    for t in exp.trials():
        spec = exp.trial_config(t).task_spec
        assert spec.param_names == ("friction", "torso_mass", "power")
        assert [p.train for p in spec.params] == [(0.5, 1.1), (0.5, 1.5), (0.75, 1.25)]
        assert [p.test for p in spec.params] == [(0.2, 0.5), (1.5, 2.0), (0.5, 0.75)]
        assert spec.train_widths().tolist() == pytest.approx([0.6, 1.0, 0.5])
    out = subprocess.run(
        [MRPO, "tune", "tune_configs/hopper_3d.yaml", "--dry-run"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "mrpo__Hopper__kappa0.5-2__seed0" in out.stdout, out.stderr


def test_dry_run_prints_the_trials():
    out = subprocess.run(
        [MRPO, "tune", "tune_configs/smoke.yaml", "--dry-run"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "6 trials" in out.stdout and "mrpo__CartPole__kappa0.5-2__seed1" in out.stdout


GOOD = """
name: t
task: CartPole
algorithms: [mrpo]
seeds: [0]
budget: {iterations: 2}
"""


@pytest.mark.parametrize(
    "edit, match",
    [
        (GOOD + "colour: blue\n", r"key 'colour': Extra inputs are not permitted \(value: 'blue'\)"),
        (GOOD.replace("seeds: [0]", "seeds: zero"), r"key 'seeds': .*value: 'zero'"),
        (
            GOOD.replace("seeds: [0]", "seeds: [-1]"),
            r"key 'seeds.0': .*greater than or equal to 0.*value: -1",
        ),
        # algorithm settings: MRPOConfig checks them, the message names the key and the value
        (
            GOOD + "training: {episodes_per_iteration: 0}\n",
            r"key 'training.episodes_per_iteration': episodes_per_iteration must be an integer >= 1, got 0",
        ),
        # M moved under training: the old spelling names the new place
        (
            GOOD + "episodes_per_iteration: 50\n",
            r"key 'episodes_per_iteration': moved under training: .*--set training.episodes_per_iteration=50",
        ),
        (GOOD.replace("task: CartPole", "task: Humanoid"), r"key 'task': .*unknown task 'Humanoid'"),
        (GOOD.replace("[mrpo]", "[mrpo, ppo]"), r"key 'algorithms': .*unknown algorithm\(s\) \['ppo'\]"),
        (
            GOOD + "kappa: [{start: 2, end: 1}]\n",
            r"key 'kappa': kappa_end \(1.0\) must be >= kappa_start \(2.0\)",
        ),
        (GOOD + "kappa: [-3]\n", r"key 'kappa': kappa_start must be a finite number >= 0, got -3"),
        (
            GOOD + "training: {kl_coeff: -1}\n",
            r"key 'training.kl_coeff': kl_coeff must be a number >= 0, got -1",
        ),
        (
            GOOD + "training: {worst_fraction: 1.5}\n",
            r"key 'training.worst_fraction': worst_fraction must be in \(0, 1\], got 1.5",
        ),
        (
            GOOD + "settings: {a: {lr: -0.1}}\n",
            r"trial mrpo__CartPole__kappa0.5-2__seed0__a: key 'settings.a.lr': lr must be a number > 0, got -0.1",
        ),
        (
            GOOD + "training: {num_minibatches: 4, minibatch_size: 64}\n",
            r"num_minibatches \(4\) or minibatch_size \(64\), not both",
        ),
        (GOOD.replace("budget: {iterations: 2}", "budget: {iterations: 2, env_steps: 9}"), "exactly one"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_files_name_file_key_and_value(tmp_path, edit, match):
    path = tmp_path / "bad.yaml"
    path.write_text(edit)
    with pytest.raises(ValueError, match=match) as err:
        load_experiment(path)
    assert str(path) in str(err.value)


def test_missing_file():
    with pytest.raises(ValueError, match="nope.yaml: no such experiment file"):
        load_experiment("nope.yaml")


def _trial_config(path):
    """The config Tune builds for the sweep's first trial: from the param space's dict."""
    from mrpo_rllib.algorithms import MRPOConfig
    from mrpo_rllib.sweep import _param_space

    space = _param_space(load_experiment(path))
    first = space["variant"]["grid_search"][0]
    return MRPOConfig().update_from_dict({**space, "variant": first})


def test_not_given_means_mrpo_configs_default(tmp_path):
    from mrpo_rllib.algorithms import MRPOConfig

    path = tmp_path / "t.yaml"
    path.write_text(GOOD)
    config, default = _trial_config(path), MRPOConfig()
    for name in ("episodes_per_iteration", "num_env_runners", "num_minibatches", "lr", "kappa_end"):
        assert getattr(config, name) == getattr(default, name), name
    (trial,) = load_experiment(path).trials()
    assert (trial.kappa_start, trial.kappa_end, trial.kappa_ramp_iters) == (
        default.kappa_start,
        default.kappa_end,
        default.kappa_ramp_iters,
    )


def test_set_overrides_any_key(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(GOOD)
    exp = load_experiment(
        path, ["training.lr=0.001", "training.episodes_per_iteration=7", "kappa=[{start: 1, end: 3}]"]
    )
    assert (exp.training.lr, exp.training.episodes_per_iteration) == (0.001, 7)
    (trial,) = exp.trials()
    assert (trial.kappa_start, trial.kappa_end) == (1.0, 3.0)
    with pytest.raises(ValueError, match=r"--set 'lr': expected key=value"):
        load_experiment(path, ["lr"])
    with pytest.raises(ValueError, match=r"key 'training.lr': lr must be a number > 0, got -1"):
        load_experiment(path, ["training.lr=-1"])


def test_named_settings_multiply_the_trials_and_reach_their_configs(tmp_path):
    from mrpo_rllib.algorithms import MRPOConfig

    path = tmp_path / "t.yaml"
    path.write_text(GOOD + "training: {num_epochs: 4}\nsettings: {a: {num_minibatches: 1}, b: {lr: 0.001}}\n")
    exp = load_experiment(path)
    names = [t.name for t in exp.trials()]
    assert names == ["mrpo__CartPole__kappa0.5-2__seed0__a", "mrpo__CartPole__kappa0.5-2__seed0__b"]
    configs = [exp.trial_config(t) for t in exp.trials()]
    default = MRPOConfig().num_minibatches
    assert [(c.num_minibatches, c.lr, c.num_epochs) for c in configs] == [(1, 3e-4, 4), (default, 1e-3, 4)]
    path.write_text(GOOD + "settings: {a__b: {lr: 0.1}}\n")
    with pytest.raises(ValueError, match="settings"):
        load_experiment(path)


def test_trials_run_seed_by_seed():
    # a sweep cut short (budget, machine lost) then holds whole seeds of every algorithm
    exp = load_experiment("tune_configs/reproduction/hopper.yaml")
    got = [(t.seed, t.algo) for t in exp.trials()]
    want = [(s, a) for s in exp.seeds for a in exp.algorithms]
    assert got == want


def test_training_overrides_reach_the_trials_config(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(GOOD + "training: {use_kl_loss: true, kl_coeff: 0.3, minibatch_size: 64}\n")
    config = _trial_config(path)
    assert (config.use_kl_loss, config.kl_coeff, config.minibatch_size) == (True, 0.3, 64)
    assert config.num_minibatches is None  # minibatch_size alone: RLlib's way
    path.write_text(GOOD + "training: {vf_clip_param: .inf, grad_clip: 1.0, vf_loss_coeff: 1.0}\n")
    config = _trial_config(path)
    assert (config.vf_clip_param, config.grad_clip, config.vf_loss_coeff) == (float("inf"), 1.0, 1.0)
    path.write_text(GOOD)
    assert _trial_config(path).use_kl_loss is False  # PPO's clipped objective alone unless asked


def _lazy_trials() -> dict:
    # Tune creates trials as slots free up (one pending at a time), so that a killed sweep has
    # trials it never created: the resumed sweep must create them (not only restore the others)
    env = {**os.environ, "TUNE_MAX_PENDING_TRIALS_PG": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def _run_tune(storage, marker, log):
    env = {**_lazy_trials(), "MRPO_TEST_NODE": marker, "RAY_AUTH_MODE": "token"}
    return subprocess.Popen(
        [MRPO, "tune", "tune_configs/smoke.yaml", "--storage", str(storage)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sweep_resumes_after_the_driver_dies(tmp_path):
    exp = load_experiment(os.path.join(ROOT, "tune_configs", "smoke.yaml"))
    storage = tmp_path / "storage"
    marker = f"resume-{os.getpid()}"
    log = open(tmp_path / "first.log", "w")
    proc = _run_tune(storage, marker, log)
    try:
        deadline = time.time() + 300

        def finished_trials():  # progress.csv with a header and one line per iteration
            paths = glob.glob(str(storage / "smoke" / "*" / "progress.csv"))
            return [p for p in paths if len(open(p).read().splitlines()) > exp.budget.iterations]

        # kill once a trial has finished (and others have not: 6 trials, 2 at a time)
        while time.time() < deadline and proc.poll() is None and not finished_trials():
            time.sleep(0.2)
        assert proc.poll() is None, "sweep finished before the driver could be killed"
        created = len(glob.glob(str(storage / "smoke" / "*__seed*")))
        kill_marked(marker)  # the driver and the embedded Ray it started
        proc.wait(timeout=60)
    finally:
        kill_marked(marker)
        log.close()
    # trials that had finished when the driver died: their files, to compare after the resume
    finished = {}
    for t in exp.trials():
        path = storage / "smoke" / t.name / "progress.csv"
        if path.is_file() and len(pd.read_csv(path)) == exp.budget.iterations:
            finished[t.name] = (path.read_bytes(), (path.parent / "episodes.csv").read_bytes())
    second = subprocess.run(
        [MRPO, "tune", "tune_configs/smoke.yaml", "--storage", str(storage)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=_lazy_trials(),
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming sweep smoke" in second.stdout
    assert created < len(exp.trials()), "every trial existed before the kill: the test needs lazy creation"
    iterations = list(range(1, exp.budget.iterations + 1))
    for t in exp.trials():
        trial = storage / "smoke" / t.name
        df = pd.read_csv(trial / "progress.csv")
        # each iteration exactly once, also those redone after the last checkpoint ...
        assert df["training_iteration"].tolist() == iterations, t.name
        # ... in the episode ledger too: M episodes per iteration, once each
        ledger = pd.read_csv(trial / "episodes.csv")
        assert ledger.groupby("iteration").size().to_dict() == {
            i: exp.training.episodes_per_iteration for i in iterations
        }
        assert df["mrpo/kept_episodes"].tolist() == ledger.groupby("iteration")["kept"].sum().tolist(), t.name
    # finished trials were not run again
    assert finished, "no trial had finished when the driver was killed"
    for name, (progress, ledger) in finished.items():
        trial = storage / "smoke" / name
        assert (trial / "progress.csv").read_bytes() == progress, name
        assert (trial / "episodes.csv").read_bytes() == ledger, name


def test_drop_rows_after_trims_progress_and_result_files(tmp_path):
    from mrpo_rllib.sweep import drop_rows_after

    csv_path = tmp_path / "progress.csv"
    csv_path.write_text("a,training_iteration,b\r\n1,1,x\r\n2,2,y\r\n3,3,z\r\n4,2,w\r\n")
    assert drop_rows_after(str(csv_path), 1) == 3
    assert csv_path.read_bytes() == b"a,training_iteration,b\r\n1,1,x\r\n"
    json_path = tmp_path / "result.json"
    json_path.write_text("".join(f'{{"training_iteration": {i}, "v": {i * 10}}}\n' for i in (1, 2, 3)))
    assert drop_rows_after(str(json_path), 2) == 1
    assert [ln for ln in json_path.read_text().splitlines()] == [
        '{"training_iteration": 1, "v": 10}',
        '{"training_iteration": 2, "v": 20}',
    ]
    assert drop_rows_after(str(tmp_path / "missing.csv"), 0) == 0


def test_a_sweep_resumes_only_the_experiment_it_started_with(tmp_path):
    from mrpo_rllib.experiments import dump_experiment
    from mrpo_rllib.sweep import _check_same_experiment

    exp = load_experiment(os.path.join(ROOT, "tune_configs", "smoke.yaml"))
    (tmp_path / "experiment.yaml").write_text(dump_experiment(exp))
    _check_same_experiment(exp, str(tmp_path), remote_storage=False)  # the same: resumes
    changed = load_experiment(os.path.join(ROOT, "tune_configs", "smoke.yaml"), overrides=["seeds=[0, 7]"])
    with pytest.raises(ValueError, match=r"another definition(.|\n)*\n-- 1\n\+- 7"):
        _check_same_experiment(changed, str(tmp_path), remote_storage=False)
    # a definition saved as written (comments, flow style: how earlier versions saved it)
    # holds the same values, and resumes
    (tmp_path / "experiment.yaml").write_text(
        "# a comment\n" + open(os.path.join(ROOT, "tune_configs", "smoke.yaml")).read()
    )
    _check_same_experiment(exp, str(tmp_path), remote_storage=False)
    with pytest.raises(ValueError, match=r"another definition(.|\n)*\n-- 1\n\+- 7"):
        _check_same_experiment(changed, str(tmp_path), remote_storage=False)
