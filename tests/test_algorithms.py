"""MRPO / EPOpt / DR on real RLlib (embedded Ray), CartPole, M = 20."""

import math

import numpy as np
import pandas as pd
import pytest

from mrpo_rllib.algorithms import MRPO, MRPOConfig

M = 20


def _config(selection, ledger_dir, seed=1, **training):
    return (
        MRPOConfig()
        .environment("CartPole")
        .env_runners(num_env_runners=2)
        .training(selection=selection, episodes_per_iteration=M, **training)
        .debugging(seed=seed)
        .reporting(episode_ledger_dir=str(ledger_dir))
    )


def _run(config, iterations):
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(iterations)]
    finally:
        algo.stop()
    return results


EPOCHS = 2
KAPPAS = [0.5, 2.25, 4.0]  # kappa_start 0.5 -> kappa_end 4.0 over 2 iterations
# CartPole's training ranges, written out here (paper Table 1), not read from the task table
CARTPOLE_WIDTHS = {"force_mag": 20.0 - 1.0, "pole_length": 1.0 - 0.05, "pole_mass": 1.0 - 0.01}


@pytest.fixture(scope="module")
def runs(ray_local, tmp_path_factory):
    """Three iterations of each rule with one full-batch step per epoch (num_minibatches=1),
    so RLlib's trained-rows counter is exact: num_epochs x (kept timesteps + one bootstrap
    row per kept episode)."""
    out = {}
    for selection in ("dr", "epopt", "mrpo"):
        ledger = tmp_path_factory.mktemp(selection)
        cfg = _config(
            selection,
            ledger,
            num_minibatches=1,
            num_epochs=EPOCHS,
            kappa_start=KAPPAS[0],
            kappa_end=KAPPAS[-1],
            kappa_ramp_iters=2,
        )
        out[selection] = (_run(cfg, 3), pd.read_csv(ledger / "episodes.csv"))
    return out


@pytest.mark.parametrize("selection", ["dr", "epopt", "mrpo"])
def test_ledger_has_m_distinct_parameter_vectors_per_iteration(runs, selection):
    results, ledger = runs[selection]
    assert len(ledger) == 3 * M
    assert ledger["iteration"].tolist() == [1] * M + [2] * M + [3] * M
    params = ledger[["force_mag", "pole_length", "pole_mass"]].to_numpy()
    assert len({tuple(p) for p in params}) == 3 * M  # every episode its own environment
    for r, (_, rows) in zip(results, ledger.groupby("iteration"), strict=True):
        m = r["mrpo"]
        assert m["episodes"] == M
        assert m["kept_episodes"] == rows["kept"].sum()
        assert m["kept_timesteps"] == rows.loc[rows["kept"] == 1, "length"].sum()
        assert m["sampled_timesteps"] == rows["length"].sum() == r["env_runners"]["num_env_steps_sampled"]
        assert m["return_mean"] == pytest.approx(rows["return"].mean())
        assert m["return_min"] == rows["return"].min()
        assert m["return_worst10"] == pytest.approx(rows["return"].nsmallest(2).mean())


@pytest.mark.parametrize("selection", ["dr", "epopt", "mrpo"])
def test_learner_trained_on_exactly_the_kept_timesteps(runs, selection):
    results, _ = runs[selection]
    for r in results:
        m = r["mrpo"]
        trained = r["learners"]["default_policy"]["num_module_steps_trained"]
        assert trained == EPOCHS * (m["kept_timesteps"] + m["kept_episodes"])
        assert m["gradient_steps"] == EPOCHS  # one full-batch step per epoch


def test_dr_keeps_all(runs):
    for r in runs["dr"][0]:
        assert r["mrpo"]["kept_episodes"] == M and r["mrpo"]["kept_fraction"] == 1.0


def test_epopt_keeps_the_alpha_percentile(runs):
    _, ledger = runs["epopt"]
    for _, rows in ledger.groupby("iteration"):
        threshold = np.percentile(rows["return"], 10)
        assert (rows["kept"] == (rows["return"] <= threshold)).all()
        assert 1 <= rows["kept"].sum() <= 0.25 * M  # ~10%, more only for ties


def test_epopt_warmup_keeps_everything_first(ray_local, tmp_path):
    cfg = _config("epopt", tmp_path, epopt_warmup_iters=2, num_minibatches=1, num_epochs=1)
    cfg = cfg.env_runners(num_env_runners=0)
    _run(cfg, 3)
    ledger = pd.read_csv(tmp_path / "episodes.csv")
    kept = ledger.groupby("iteration")["kept"].sum().tolist()
    assert kept[:2] == [M, M]  # iterations 1 and 2: the warm-up
    last = ledger[ledger["iteration"] == 3]
    assert (last["kept"] == (last["return"] <= np.percentile(last["return"], 10))).all() and kept[2] < M


def _expected_mrpo_mask(returns, params, kappa, standardise=True):
    """MRPO's rule written out again, from its definition: W = returns <= the 2nd lowest
    (k = ceil(0.1 * 20)); i outside W kept iff z_i - kappa * ||p~_i - p~_k|| >= z_k for all k in W,
    z the batch-standardised returns, p~ the parameters over CartPole's training-range widths."""
    z = (returns - returns.mean()) / returns.std() if standardise else returns
    p = params / np.array(list(CARTPOLE_WIDTHS.values()))
    w = [k for k in range(len(z)) if returns[k] <= sorted(returns)[1]]
    keep = []
    for i in range(len(z)):
        ok = i in w or all(z[i] - kappa * math.dist(p[i], p[k]) >= z[k] for k in w)
        keep.append(ok)
    return np.array(keep)


def test_mrpo_mask_is_the_rule_at_the_scheduled_kappa(runs):
    """The κ in force, the return standardisation and the parameter normalisation all reach
    the mask: the ledger's kept column equals the rule recomputed here, and differs from what
    the rule gives on raw returns (so the check is not satisfied by chance)."""
    results, ledger = runs["mrpo"]
    differs_from_raw = False
    for r, kappa, (_, rows) in zip(results, KAPPAS, ledger.groupby("iteration"), strict=True):
        assert r["mrpo"]["kappa"] == kappa
        returns = rows["return"].to_numpy()
        params = rows[list(CARTPOLE_WIDTHS)].to_numpy()
        expected = _expected_mrpo_mask(returns, params, kappa)
        np.testing.assert_array_equal(rows["kept"].to_numpy().astype(bool), expected)
        differs_from_raw |= not np.array_equal(expected, _expected_mrpo_mask(returns, params, kappa, False))
    assert differs_from_raw
    kept = [r["mrpo"]["kept_episodes"] for r in results]
    assert kept[0] > kept[-1] >= 2  # rising kappa keeps fewer
    assert any(2 < k < M for k in kept)  # some iteration keeps more than W and less than all


def test_mrpo_with_a_huge_kappa_keeps_exactly_w(ray_local, tmp_path):
    """κ so large that nothing outside W can pass: T must be W, computed here from the raw
    returns, every iteration, and the learner must train on exactly W's timesteps."""
    cfg = _config("mrpo", tmp_path, num_minibatches=1, num_epochs=1, kappa_start=1e6, kappa_end=1e6)
    results = _run(cfg, 2)
    ledger = pd.read_csv(tmp_path / "episodes.csv")
    for r, (_, rows) in zip(results, ledger.groupby("iteration"), strict=True):
        returns = rows["return"].to_numpy()
        w = returns <= np.sort(returns)[1]  # ties with the 2nd lowest included
        np.testing.assert_array_equal(rows["kept"].to_numpy().astype(bool), w)
        w_steps = int(rows.loc[w, "length"].sum())
        trained = r["learners"]["default_policy"]["num_module_steps_trained"]
        assert trained == w_steps + int(w.sum())  # + one bootstrap row per episode, one epoch


def test_equal_optimiser_effort_whatever_is_kept(ray_local, tmp_path):
    """num_minibatches fixes the gradient steps per iteration for every rule, although DR
    keeps ~10x the data EPOpt keeps; each step's minibatch is ceil(rows / num_minibatches)."""
    steps = {}
    for selection in ("dr", "epopt"):
        # 32 minibatches of a few rows each: exactly 2 × 32 steps, which epochs over the batch
        # alone would not give (e.g. 40 rows in minibatches of 2: 40 steps cover 2 epochs)
        cfg = _config(selection, tmp_path / selection, num_minibatches=32, num_epochs=2)
        (r,) = _run(cfg, 1)
        m, learner = r["mrpo"], r["learners"]["default_policy"]
        rows = m["kept_timesteps"] + m["kept_episodes"]
        assert m["gradient_steps"] == 2 * 32
        assert learner["num_module_steps_trained"] == 2 * 32 * math.ceil(rows / 32)
        assert math.ceil(2 * rows / math.ceil(rows / 32)) < 2 * 32  # the case above: not by epochs
        steps[selection] = m["kept_timesteps"]
    assert steps["dr"] > 4 * steps["epopt"]
    # RLlib's way, a fixed minibatch size: the step count follows the amount of data
    cfg = _config("dr", tmp_path / "mbs", minibatch_size=64, num_epochs=2)
    (r,) = _run(cfg, 1)
    rows = r["mrpo"]["kept_timesteps"] + r["mrpo"]["kept_episodes"]
    assert r["mrpo"]["gradient_steps"] == math.ceil(2 * rows / 64)


def test_same_seed_same_parameter_sequence(ray_local, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(_config("dr", a, seed=7), 2)
    _run(_config("dr", b, seed=7), 2)
    la, lb = pd.read_csv(a / "episodes.csv"), pd.read_csv(b / "episodes.csv")
    cols = ["force_mag", "pole_length", "pole_mass"]
    np.testing.assert_array_equal(la[cols].to_numpy(), lb[cols].to_numpy())
    _run(_config("dr", tmp_path / "c", seed=8), 2)
    lc = pd.read_csv(tmp_path / "c" / "episodes.csv")
    assert not np.array_equal(lc[cols].to_numpy(), la[cols].to_numpy())


def test_kappa_schedule_rises_and_is_capped():
    cfg = MRPOConfig().training(kappa_start=0.5, kappa_end=2.5, kappa_ramp_iters=4)
    assert [cfg.kappa_at(i) for i in range(7)] == [0.5, 1.0, 1.5, 2.0, 2.5, 2.5, 2.5]
    assert MRPOConfig().training(kappa_start=3.0, kappa_end=3.0).kappa_at(1000) == 3.0


def test_kappa_restored_from_checkpoint(ray_local, tmp_path):
    cfg = _config("mrpo", tmp_path, kappa_start=0.0, kappa_end=1.0, kappa_ramp_iters=4)
    algo = cfg.build_algo()
    try:
        first = [algo.train()["mrpo"]["kappa"] for _ in range(2)]
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = MRPO.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        nxt = restored.train()["mrpo"]["kappa"]
    finally:
        restored.stop()
    assert first == [0.0, 0.25] and nxt == 0.5


@pytest.mark.parametrize(
    "training, match",
    [
        ({"selection": "ppo"}, "selection must be one of"),
        ({"kappa_start": -1.0}, "kappa_start must be a finite number >= 0, got -1.0"),
        ({"kappa_start": 2.0, "kappa_end": 1.0}, r"kappa_end \(1.0\) must be >= kappa_start \(2.0\)"),
        ({"worst_fraction": 1.5}, r"worst_fraction must be in \(0, 1\], got 1.5"),
        ({"epopt_alpha": 0.0}, r"epopt_alpha must be in \(0, 1\], got 0.0"),
        ({"episodes_per_iteration": 0}, "episodes_per_iteration must be an integer >= 1, got 0"),
        ({"kappa_ramp_iters": -3}, "kappa_ramp_iters must be an integer >= 0, got -3"),
        ({"num_minibatches": 0}, r"num_minibatches must be an integer >= 1 or None, got 0"),
        (
            {"num_minibatches": 4, "minibatch_size": 128},
            r"num_minibatches \(4\) or minibatch_size \(128\), not both",
        ),
    ],
)
def test_config_validation(training, match):
    with pytest.raises(ValueError, match=match):
        MRPOConfig().training(**training).validate()


def test_minibatch_size_alone_switches_to_rllibs_mode():
    cfg = MRPOConfig().training(minibatch_size=128)
    assert cfg.num_minibatches is None and cfg.minibatch_size == 128
    cfg.validate()
    assert MRPOConfig().num_minibatches >= 1 and MRPOConfig().minibatch_size is None


def test_ppo_settings_of_the_papers_code():
    cfg = MRPOConfig()
    assert cfg.vf_clip_param == float("inf")  # RLlib's default 10 clamps the squared value error
    assert (cfg.vf_loss_coeff, cfg.grad_clip, cfg.grad_clip_by) == (0.5, 0.5, "global_norm")
    assert (cfg.entropy_coeff, cfg.use_kl_loss, cfg.clip_param, cfg.lr) == (0.0, False, 0.2, 3e-4)
    assert (cfg.gamma, cfg.lambda_, cfg.num_epochs) == (0.99, 0.95, 10)
    mc = cfg.environment("Hopper").model_config
    assert (mc["fcnet_hiddens"], mc["fcnet_activation"]) == ([64, 64], "tanh")
    assert mc["free_log_std"] is True and mc["vf_share_layers"] is False
    # RLlib's free log-std exists for Gaussian policies only: not for CartPole's discrete actions
    assert MRPOConfig().environment("CartPole").model_config["free_log_std"] is False


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task 'Humanoid'"):
        MRPOConfig().environment(env_config={"task": "Humanoid"}).validate()
