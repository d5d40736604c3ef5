"""The selection rules on hand-computed cases and as properties (no Ray)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mrpo_rllib.selection import (
    scale_returns,
    select,
    select_dr,
    select_epopt,
    select_mrpo,
    worst_count,
    worst_mean,
    worst_set,
)


def test_dr_keeps_everything():
    assert select_dr([3.0, -1.0, 2.0]).tolist() == [True, True, True]


def test_epopt_percentile_hand_computed():
    r = np.arange(1.0, 11.0)  # 10th percentile of 1..10 = 1.9
    assert np.flatnonzero(select_epopt(r, 0.1)).tolist() == [0]
    assert np.flatnonzero(select_epopt(r, 0.5)).tolist() == [0, 1, 2, 3, 4]  # <= 5.5
    assert select_epopt(r, 1.0).all()


def test_epopt_ties_at_threshold_are_all_kept():
    # sorted [1, 1, 2, 3]; 25th percentile = 1 -> both ones kept
    assert select_epopt([3.0, 1.0, 1.0, 2.0], 0.25).tolist() == [False, True, True, False]


def test_epopt_identical_returns_keep_all():
    assert select_epopt([2.0] * 7, 0.1).all()


def test_mrpo_hand_computed_one_parameter():
    # M=4, worst_fraction 0.25 -> W = {0}; kappa 4:
    # ep1: 10 - 4*1 = 6 >= 0 keep; ep2: 10 - 4*3 = -2 drop; ep3: 5 - 4*0.5 = 3 keep
    r = [0.0, 10.0, 10.0, 5.0]
    p = [0.0, 1.0, 3.0, 0.5]
    assert select_mrpo(r, p, 4.0, 0.25).tolist() == [True, True, False, True]


def test_mrpo_condition_holds_for_every_member_of_w():
    # M=5, worst_fraction 0.4 -> W = {0, 1} (returns 0 and 1)
    r = np.array([0.0, 1.0, 6.0, 6.0, 3.0])
    p = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [3.0, 4.0], [0.0, 0.0]])
    # ep2: vs k=0: 6 - 1*1 = 5 >= 0 ok; vs k=1: dist=sqrt(9+9)=4.24 -> 1.76 >= 1 ok -> keep
    # ep3: vs k=0: dist 5 -> 1 >= 0 ok; vs k=1: dist 0 -> 6 >= 1 ok -> keep
    # ep4: vs k=0: dist 0 -> 3 >= 0 ok; vs k=1: dist 5 -> -2 < 1 -> drop
    assert select_mrpo(r, p, 1.0, 0.4).tolist() == [True, True, True, True, False]


def test_ties_at_the_kth_value_all_belong_to_w():
    # M=4, k=1: the lowest return is 1.0 and three episodes have it -> W = {0, 1, 2}
    r = [1.0, 1.0, 1.0, 5.0]
    assert worst_set(r, 0.25).tolist() == [0, 1, 2]
    # ep3 against each member of W: 5 - 1*0.1 = 4.9, 5 - 1*0.1 = 4.9, 5 - 1*0.9 = 4.1, all >= 1
    p = [0.0, 0.0, 1.0, 0.1]
    assert select_mrpo(r, p, 1.0, 0.25).tolist() == [True, True, True, True]
    # kappa 5: 5 - 5*0.9 = 0.5 < 1 against episode 2 -> dropped
    assert select_mrpo(r, p, 5.0, 0.25).tolist() == [True, True, True, False]


def test_ties_in_the_middle_of_the_batch():
    # M=10, k=2: sorted returns 0, 3, 3, 3, 7, ... -> the 2nd lowest is 3 -> W = the 0 and all 3s
    r = np.array([7.0, 3.0, 9.0, 0.0, 3.0, 8.0, 3.0, 10.0, 9.5, 7.5])
    assert worst_set(r, 0.2).tolist() == [1, 3, 4, 6]
    assert worst_mean(r, 0.2) == 1.5  # the mean of the k = 2 lowest, (0 + 3) / 2: ties do not change it


def test_saturated_batch_keeps_everything():
    # CartPole at its ceiling: 19 episodes at 1000, one fall. k = 2 and the 2nd lowest is 1000, so
    # W holds every 1000 and nothing is left to reject, at any kappa. (A W of exactly k episodes
    # would hold one arbitrary 1000, and every other 1000 would fail 1000 - kappa*d >= 1000.)
    r = np.array([1000.0] * 19 + [430.0])
    p = np.linspace(0.0, 1.0, 20)[:, None]
    assert len(worst_set(r, 0.1)) == 20
    assert select_mrpo(r, p, 50.0, 0.1).all()
    assert worst_mean(r, 0.1) == (1000.0 + 430.0) / 2


def test_without_ties_w_is_exactly_the_k_lowest():
    r = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 8.0, 7.0, 6.0, 0.5])
    assert worst_set(r, 0.3).tolist() == [1, 3, 9]  # returns 1, 2, 0.5
    p = np.array([0.9, 0.0, 0.5, 0.3, 0.4, 1.0, 0.2, 0.7, 0.6, 0.1])
    # W members (return, p): (1, 0.0), (2, 0.3), (0.5, 0.1). kappa 1: every other episode keeps
    # at least 1.4 above each member (e.g. ep4: 3 - {0.4, 0.1, 0.3} = {2.6, 2.9, 2.7} >= {1, 2, 0.5})
    assert select_mrpo(r, p, 1.0, 0.3).all()
    # kappa 6: ep0: 5 - 6*0.9 = -0.4 < 1 drop; ep2: 4 - 3 = 1 >= 1, 4 - 1.2 = 2.8 >= 2, 4 - 2.4 = 1.6
    # >= 0.5 keep; ep4: 3 - 2.4 = 0.6 < 1 drop; ep5: 9 - 6 = 3, 9 - 4.2, 9 - 5.4 keep; ep6: 8 - 1.2,
    # 8 - 0.6, 8 - 0.6 keep; ep7: 7 - 4.2 = 2.8, 7 - 2.4, 7 - 3.6 keep; ep8: 6 - 3.6, 6 - 1.8, 6 - 3 keep
    expected = [False, True, True, True, False, True, True, True, True, True]
    assert select_mrpo(r, p, 6.0, 0.3).tolist() == expected


def test_mrpo_identical_returns_keep_everything():
    # every return ties with the k-th lowest: W is the whole batch
    r = [2.0] * 10
    p = np.linspace(0, 1, 10)
    assert worst_set(r, 0.1).tolist() == list(range(10))
    assert select_mrpo(r, p, 0.5, 0.1).all()


def test_select_standardises_returns_for_mrpo_only():
    # raw returns 0, 100, 200, 300 (std 111.8): standardised, consecutive episodes are 0.894 apart
    r = [0.0, 100.0, 200.0, 300.0]
    p = np.array([[0.0], [0.5], [1.0], [1.5]])
    # raw scale, kappa 150: ep1: 100 - 75 = 25 >= 0 keep. standardised: 0.894 - 75 < 0 drop
    assert select_mrpo(r, p, 150.0, 0.25)[1]
    assert select("mrpo", r, p, kappa=150.0, worst_fraction=0.25).tolist() == [True, False, False, False]
    # kappa 1.5, standardised: ep1: 0.894 - 0.75 = 0.144 >= 0; ep2: 1.789 - 1.5 = 0.289; ep3: 2.683 - 2.25
    assert select("mrpo", r, p, kappa=1.5, worst_fraction=0.25).all()
    # kappa 1.9: ep1: 0.894 - 0.95 < 0; ep2: 1.789 - 1.9 < 0; ep3: 2.683 - 2.85 < 0
    assert select("mrpo", r, p, kappa=1.9, worst_fraction=0.25).tolist() == [True, False, False, False]
    assert select("epopt", r, alpha=0.25).tolist() == select_epopt(r, 0.25).tolist()


def test_mrpo_small_batches():
    assert worst_set([3.0, 1.0, 2.0], 0.1).tolist() == [1]  # ceil(0.3) = 1
    assert select_mrpo([5.0], [[0.3, 0.2]], 10.0).tolist() == [True]
    assert len(worst_set(np.arange(30.0), 0.1)) == 3  # 0.1 * 30 is 3.0000000000000004 in floats
    assert len(worst_set(np.arange(31.0), 0.1)) == 4
    assert [worst_count(m, 0.1) for m in (1, 9, 10, 11, 30, 100)] == [1, 1, 1, 2, 3, 10]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: select_mrpo([1.0, np.nan], [0.0, 1.0], 1.0), "finite"),
        (lambda: select_mrpo([1.0, 2.0], [0.0, np.inf], 1.0), "params must be finite"),
        (lambda: select_mrpo([1.0, 2.0], [[0.0], [1.0], [2.0]], 1.0), r"shape \(M=2"),
        (lambda: select_mrpo([], np.zeros((0, 1)), 1.0), "empty"),
        (lambda: select_mrpo([1.0, 2.0], [0.0, 1.0], -0.5), "kappa must be .* got -0.5"),
        (lambda: select_mrpo([1.0, 2.0], [0.0, 1.0], 1.0, worst_fraction=0.0), r"worst_fraction .* got 0.0"),
        (lambda: select_epopt([1.0, 2.0], alpha=1.5), r"alpha must be in \(0, 1\], got 1.5"),
        (lambda: select_epopt([1.0, np.inf]), "finite"),
        (lambda: select_dr([[1.0], [2.0]]), "1-D"),
        (lambda: select("ppo", [1.0]), "unknown selection 'ppo'"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scale_returns():
    scaled, std = scale_returns([1.0, 2.0, 3.0, 4.0])
    assert abs(scaled.mean()) < 1e-12 and abs(scaled.std() - 1.0) < 1e-12
    assert std == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]))
    scaled, std = scale_returns([7.0, 7.0])
    assert scaled.tolist() == [0.0, 0.0] and std == 1.0


batches = st.integers(1, 40).flatmap(
    lambda m: st.tuples(
        arrays(np.float64, m, elements=st.floats(-1e3, 1e3)),
        arrays(np.float64, (m, 2), elements=st.floats(0, 5)),
    )
)


@settings(max_examples=150, deadline=None)
@given(batches, st.floats(0, 50), st.floats(0, 50), st.sampled_from([0.1, 0.25, 0.5, 1.0]))
def test_mrpo_properties(batch, k1, k2, frac):
    r, p = batch
    lo, hi = sorted((k1, k2))
    m_lo, m_hi = select_mrpo(r, p, lo, frac), select_mrpo(r, p, hi, frac)
    w = worst_set(r, frac)
    assert m_lo[w].all() and m_hi[w].all()  # W always kept
    assert not (m_hi & ~m_lo).any()  # larger kappa never keeps more
    assert select_mrpo(r, p, 0.0, frac).all()  # kappa = 0 keeps all
    k = worst_count(r.size, frac)
    kth = np.sort(r)[k - 1]
    assert w.tolist() == [i for i in range(r.size) if r[i] <= kth]  # ties at the k-th value in W
    if len(np.unique(r)) == r.size:
        assert sorted(w.tolist()) == sorted(np.argsort(r)[:k].tolist())  # no ties: the k lowest


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e3, 1e3)), st.floats(0.01, 1.0))
def test_epopt_keeps_the_worst_and_nothing_above_the_percentile(r, alpha):
    mask = select_epopt(r, alpha)
    assert mask[np.argmin(r)]
    assert (r[mask] <= np.percentile(r, 100 * alpha)).all()
