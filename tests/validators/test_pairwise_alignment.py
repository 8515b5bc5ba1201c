"""Pairwise judge metrics and choice, cross-checked against scikit-learn and by hand."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from annotate.statistics import wilson_interval
from validators.pairwise_alignment import (
    WIN_A,
    WIN_B,
    WIN_ERROR,
    WIN_MISSING,
    WIN_TIE,
    PairwiseCandidate,
    cohen_kappa,
    pairwise_metrics,
    select_pairwise_judge,
    winner_codes,
)


def test_codes_from_names():
    np.testing.assert_array_equal(
        winner_codes(["a", "b", "tie", "error", "", None]), [WIN_A, WIN_B, WIN_TIE, WIN_ERROR, WIN_MISSING, WIN_MISSING]
    )


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_and_kappa_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    human = rng.choice([WIN_A, WIN_B, WIN_TIE], size=n, p=[0.45, 0.45, 0.1]).astype(np.int8)
    judge = np.where(rng.random(n) < 0.7, human, rng.choice([WIN_A, WIN_B, WIN_TIE, WIN_ERROR], size=n)).astype(np.int8)
    m = pairwise_metrics(human, judge)
    decided = human != WIN_TIE
    assert m.n_pairs == n and m.n_decided == int(decided.sum())
    assert m.accuracy == pytest.approx(accuracy_score(human[decided], judge[decided]))
    answered = judge >= 0
    expected_kappa = cohen_kappa_score(human[answered], judge[answered], labels=[0, 1, 2])
    if np.isnan(expected_kappa):
        assert m.kappa in (None, 1.0)
    else:
        assert m.kappa == pytest.approx(expected_kappa)
    correct = int((judge[decided] == human[decided]).sum())
    assert m.accuracy_ci == pytest.approx(wilson_interval(correct, int(decided.sum())))
    assert m.error_rate == pytest.approx(np.mean(judge == WIN_ERROR))


def test_ties_as_half_by_hand():
    human = np.array([WIN_A, WIN_TIE, WIN_B, WIN_A, WIN_TIE], np.int8)
    judge = np.array([WIN_A, WIN_A, WIN_TIE, WIN_B, WIN_TIE], np.int8)
    m = pairwise_metrics(human, judge)
    # 1 (same) + ½ (human tie) + ½ (judge tie) + 0 + 1 (both tie) over 5
    assert m.accuracy_ties_half == pytest.approx(3.0 / 5)
    # ties left out: pairs 0, 2, 3 decided by the human; judge right on pair 0 only
    assert m.n_decided == 3 and m.accuracy == pytest.approx(1 / 3)


def test_missing_pairs_are_left_out_and_errors_count_wrong():
    human = np.array([WIN_A, WIN_B, WIN_MISSING, WIN_A], np.int8)
    judge = np.array([WIN_A, WIN_ERROR, WIN_A, WIN_MISSING], np.int8)
    m = pairwise_metrics(human, judge)
    assert (m.n_pairs, m.n_decided, m.n_errors) == (2, 2, 1)
    assert m.accuracy == 0.5 and m.error_rate == 0.5
    # one answered pair, both said a: κ is 0/0; sklearn says nan, we say perfect agreement
    assert m.kappa == 1.0


def test_consistency_and_first_position_rate_by_hand():
    human = np.array([WIN_A, WIN_A, WIN_B, WIN_B], np.int8)
    # first order: a shown first; second order: b shown first, winner mapped back
    first = np.array([WIN_A, WIN_A, WIN_A, WIN_ERROR], np.int8)
    second = np.array([WIN_A, WIN_B, WIN_B, WIN_B], np.int8)
    judge = np.array([WIN_A, WIN_TIE, WIN_TIE, WIN_ERROR], np.int8)
    m = pairwise_metrics(human, judge, first, second)
    assert m.n_both_orders == 3
    assert m.consistency == pytest.approx(1 / 3)
    assert m.consistency_ci == pytest.approx(wilson_interval(1, 3))
    # chose the output shown first: first==a (3 times), second==b (3 times) of 7 a/b answers
    assert m.first_position_rate == pytest.approx(6 / 7)


def test_kappa_edge_cases():
    assert cohen_kappa(np.array([], np.int8), np.array([], np.int8)) is None
    assert cohen_kappa(np.array([0, 0]), np.array([0, 0])) == 1.0
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])) == pytest.approx(
        cohen_kappa_score([0, 1, 0, 1], [1, 0, 1, 0])
    )


def test_shape_and_human_error_refused():
    with pytest.raises(ValueError, match="shape"):
        pairwise_metrics(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="human"):
        pairwise_metrics(np.array([WIN_ERROR]), np.array([0]))


def _candidate(vid, accuracy_hits, n, consistency=None, cost=0.0, name=None):
    human = np.zeros(n, np.int8)
    judge = np.where(np.arange(n) < accuracy_hits, WIN_A, WIN_B).astype(np.int8)
    first = second = None
    if consistency is not None:
        first = judge.copy()
        second = judge.copy()
        flips = int(round((1 - consistency) * n))
        second[:flips] = np.where(second[:flips] == WIN_A, WIN_B, WIN_A)
    return PairwiseCandidate(vid, name or f"judge{vid}", "llm", pairwise_metrics(human, judge, first, second), cost)


def test_selection_highest_accuracy_above_the_floor_and_reasons():
    precise_but_biased = _candidate(1, 19, 20, consistency=0.5)
    good = _candidate(2, 17, 20, consistency=0.9)
    worse = _candidate(3, 15, 20, consistency=0.95)
    selection = select_pairwise_judge([precise_but_biased, good, worse], floor=0.6)
    assert selection.chosen.validator_id == 2
    assert "below the floor" in selection.why_not[1]
    assert "accuracy 0.75 is below judge2's 0.85" == selection.why_not[3]
    assert set(selection.why_not) == {1, 3}


def test_selection_ties_by_consistency_then_cost():
    a = _candidate(1, 18, 20, consistency=0.8, cost=10)
    b = _candidate(2, 18, 20, consistency=0.9, cost=100)
    c = _candidate(3, 18, 20, consistency=0.9, cost=5)
    selection = select_pairwise_judge([a, b, c])
    assert selection.chosen.validator_id == 3
    assert "lower position consistency" in selection.why_not[1]
    assert "costs more" in selection.why_not[2]


def test_selection_needs_comparisons_and_honours_pin_and_exclusion():
    few = _candidate(1, 2, 2, consistency=1.0)
    selection = select_pairwise_judge([few], min_comparisons=5)
    assert selection.chosen is None and "at least 5 needed" in selection.reason
    a, b = _candidate(1, 18, 20, consistency=0.9), _candidate(2, 10, 20, consistency=0.9)
    assert select_pairwise_judge([a, b], pinned=2).chosen.validator_id == 2
    excluded = select_pairwise_judge([a, b], excluded=[1])
    assert excluded.chosen.validator_id == 2 and excluded.why_not[1] == "excluded by an owner"
    assert select_pairwise_judge([]).chosen is None
