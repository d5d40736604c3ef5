"""Table 2's window in env steps or as a fraction of each run, and the vacuous-comparison
check: expectations written out by hand on a small runs table."""

import pandas as pd
import pytest

from mrpo_rllib.report.stats import Window, last_window, per_seed, vacuous_comparisons


def _runs():
    rows = []
    # run A: 1k-step iterations; run B: 4k-step iterations (the same 8k-step run length)
    for it in range(1, 9):
        rows.append(
            dict(
                run_dir="A",
                algo="mrpo",
                kappa="k1",
                setting="",
                task="Hopper",
                seed=0,
                iteration=it,
                env_steps=1000 * it,
                return_mean=float(it),
                return_worst10=float(it) / 2,
                kept_fraction=0.95,
                complete=True,
            )
        )
    for it in range(1, 3):
        rows.append(
            dict(
                run_dir="B",
                algo="mrpo",
                kappa="k1",
                setting="",
                task="Hopper",
                seed=1,
                iteration=it,
                env_steps=4000 * it,
                return_mean=10.0 * it,
                return_worst10=5.0 * it,
                kept_fraction=0.93,
                complete=True,
            )
        )
    for it in range(1, 5):
        rows.append(
            dict(
                run_dir="C",
                algo="dr",
                kappa="none",
                setting="",
                task="Hopper",
                seed=0,
                iteration=it,
                env_steps=2000 * it,
                return_mean=1.0,
                return_worst10=1.0,
                kept_fraction=1.0,
                complete=True,
            )
        )
    rows.append(
        dict(
            run_dir="D",
            algo="epopt",
            kappa="none",
            setting="",
            task="Hopper",
            seed=0,
            iteration=1,
            env_steps=8000,
            return_mean=1.0,
            return_worst10=1.0,
            kept_fraction=0.1,
            complete=False,
        )
    )
    return pd.DataFrame(rows)  # fmt: skip


def test_window_in_iterations_is_the_old_last_n():
    w = last_window(_runs(), 2)
    assert sorted(w[w.run_dir == "A"]["iteration"]) == [7, 8]
    assert sorted(w[w.run_dir == "B"]["iteration"]) == [1, 2]
    assert "D" not in set(w.run_dir)  # incomplete runs never count
    assert last_window(_runs(), Window(iterations=2)).equals(w)


def test_window_in_env_steps_covers_the_same_span():
    # the last 3000 env steps: iterations ending after step 5000 of 8000
    w = last_window(_runs(), Window(env_steps=3000))
    assert sorted(w[w.run_dir == "A"]["env_steps"]) == [6000, 7000, 8000]
    assert sorted(w[w.run_dir == "B"]["env_steps"]) == [8000]
    assert sorted(w[w.run_dir == "C"]["env_steps"]) == [6000, 8000]
    ps = per_seed(_runs(), Window(env_steps=3000)).set_index(["algo", "seed"])
    assert ps.loc[("mrpo", 0), "avg"] == pytest.approx((6 + 7 + 8) / 3)
    assert ps.loc[("mrpo", 1), "avg"] == pytest.approx(20.0)


def test_window_as_fraction_of_each_run():
    w = last_window(_runs(), Window(fraction=0.5))  # env steps > 4000 of 8000
    assert sorted(w[w.run_dir == "A"]["iteration"]) == [5, 6, 7, 8]
    assert sorted(w[w.run_dir == "B"]["iteration"]) == [2]
    assert str(Window(fraction=0.2)) == "last 20% of its env steps"
    assert str(Window(env_steps=400000)) == "last 400,000 env steps"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "one of iterations, env_steps or fraction; got none"),
        ({"iterations": 5, "fraction": 0.2}, "got {'iterations': 5, 'fraction': 0.2}"),
        ({"fraction": 1.5}, "fraction must be in \\(0, 1\\], got 1.5"),
        ({"env_steps": 0}, "env_steps must be an integer >= 1, got 0"),
    ],
)
def test_bad_windows_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Window(**kwargs)


def test_vacuous_comparison_flags_groups_that_keep_nearly_everything():
    v = vacuous_comparisons(_runs(), Window(env_steps=3000))
    assert list(v["algo"]) == ["mrpo"]  # PPO-DR itself is never flagged; D is incomplete
    assert v.loc[0, "kept_fraction"] == pytest.approx((0.95 + 0.93) / 2) and v.loc[0, "n_seeds"] == 2
    runs = _runs()
    runs.loc[runs.run_dir == "B", "kept_fraction"] = 0.5
    assert vacuous_comparisons(runs, 2).empty  # (0.95 + 0.5) / 2 = 0.725: the rule is exercised
