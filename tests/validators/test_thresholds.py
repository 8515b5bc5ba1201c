"""The threshold sweep of scored validators, cross-checked by brute force and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from annotate.statistics import LABEL_FAIL, LABEL_PASS, VERDICT_ERROR, VERDICT_MISSING
from validators.alignment import alignment_metrics
from validators.thresholds import candidate_thresholds, threshold_sweep, verdicts_at

SCORED = VERDICT_MISSING  # a score stored without a verdict sits in the matrix as missing


def brute_force_pick(human, scores, ceiling, min_labels):
    """The EvalGen rule written out as a loop over every distinct score."""
    best = None
    for t in sorted(set(scores.tolist())):
        fails = scores < t
        tp = int(np.sum(fails & (human == LABEL_FAIL)))
        fp = int(np.sum(fails & (human == LABEL_PASS)))
        n_fail, n_pass = int(np.sum(human == LABEL_FAIL)), int(np.sum(human == LABEL_PASS))
        if n_fail < min_labels or n_pass < min_labels:
            continue
        coverage, ffr = tp / n_fail, fp / n_pass
        if ffr > ceiling or coverage == 0:
            continue
        alignment = 2 * coverage * (1 - ffr) / (coverage + 1 - ffr)
        if alignment == 0:
            continue
        key = (-alignment, ffr, t)
        if best is None or key < best[0]:
            best = (key, t)
    return None if best is None else best[1]


def test_given_ten_scores_when_swept_then_the_rule_picks_0_4_with_sklearns_numbers():
    human = np.array([LABEL_FAIL] * 4 + [LABEL_PASS] * 6, dtype=np.int8)
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9, 0.95, 0.4])
    codes = np.full(10, SCORED, dtype=np.int8)

    sweep = threshold_sweep(human, codes, scores, ffr_ceiling=0.25, min_labels=3)

    assert sweep.threshold == 0.4 and sweep.qualified
    assert sweep.reason == "threshold picked: 0.4 (alignment 0.86, FFR 0.00; 10 thresholds tried)"
    m = sweep.metrics_at_threshold
    # Fail is the positive class: sklearn's labels=[fail, pass] puts tp first.
    (tp, fn), (fp, tn) = confusion_matrix(human == LABEL_FAIL, scores < 0.4, labels=[True, False])
    assert (m.tp, m.fn, m.fp, m.tn) == (tp, fn, fp, tn) == (3, 1, 0, 6)
    assert m.coverage == tp / (tp + fn) == 0.75
    assert m.false_failure_rate == 0.0
    assert m.kappa == pytest.approx(cohen_kappa_score(human == LABEL_FAIL, scores < 0.4))
    assert sweep.curve()["thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert sweep.curve()["chosen"] == 0.4


@pytest.mark.parametrize("seed", range(12))
def test_given_random_scores_when_swept_then_the_pick_matches_brute_force_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 60
    human = rng.choice([LABEL_FAIL, LABEL_PASS], size=n).astype(np.int8)
    # Failing outputs score lower on average, with overlap and repeated values.
    scores = np.round(np.where(human == LABEL_FAIL, rng.normal(3, 1.5, n), rng.normal(6, 1.5, n)), 0)
    codes = np.full(n, SCORED, dtype=np.int8)

    sweep = threshold_sweep(human, codes, scores, ffr_ceiling=0.25, min_labels=3)

    expected = brute_force_pick(human, scores, 0.25, 3)
    assert sweep.threshold == expected
    if expected is not None:
        m = sweep.metrics_at_threshold
        reference = alignment_metrics(human, np.where(scores >= expected, 1, 0).astype(np.int8))
        assert m == reference
        (tp, fn), (fp, tn) = confusion_matrix(human == LABEL_FAIL, scores < expected, labels=[True, False])
        assert (m.tp, m.fn, m.fp, m.tn) == (tp, fn, fp, tn)
        assert m.false_failure_rate == pytest.approx(fp / (fp + tn))


def test_given_errors_and_missing_scores_when_thresholded_then_they_stay_as_they_were():
    codes = np.array([SCORED, VERDICT_ERROR, SCORED, SCORED], dtype=np.int8)
    scores = np.array([0.2, np.nan, np.nan, 0.9])

    verdicts = verdicts_at(codes, scores, np.array([0.5, 0.95]))

    assert verdicts.tolist() == [[0, 0], [VERDICT_ERROR, VERDICT_ERROR], [SCORED, SCORED], [1, 0]]


def test_given_more_distinct_scores_than_the_cap_then_quantiles_of_real_scores_are_tried():
    scores = np.arange(1000, dtype=np.float64) / 7

    thresholds = candidate_thresholds(scores, cap=200)

    assert thresholds.size == 200
    assert np.isin(thresholds, scores).all()
    assert (thresholds[0], thresholds[-1]) == (scores[0], scores[-1])


def test_given_float32_scores_then_a_score_equal_to_the_threshold_passes_and_reads_as_typed():
    human = np.array([LABEL_FAIL] * 3 + [LABEL_PASS] * 3, dtype=np.int8)
    scores = np.array([0.1, 0.3, 0.5, 0.7, 0.7, 0.9], dtype=np.float32)

    sweep = threshold_sweep(human, np.full(6, SCORED, np.int8), scores, ffr_ceiling=0.25, min_labels=3)

    assert sweep.threshold == 0.7
    assert sweep.metrics_at_threshold.coverage == 1.0 and sweep.metrics_at_threshold.false_failure_rate == 0.0


def test_given_no_scores_or_no_qualifying_threshold_then_the_reason_says_so():
    human = np.array([LABEL_FAIL, LABEL_PASS], dtype=np.int8)
    empty = threshold_sweep(human, np.full(2, SCORED, np.int8), np.full(2, np.nan), ffr_ceiling=0.25, min_labels=1)
    # Scores ordered against the labels: any threshold that catches the failure fails the pass.
    upside_down = threshold_sweep(
        np.array([LABEL_FAIL, LABEL_PASS, LABEL_PASS], np.int8), np.full(3, SCORED, np.int8),
        np.array([0.9, 0.1, 0.95]), ffr_ceiling=0.25, min_labels=1,
    )

    assert (empty.threshold, empty.reason) == (None, "no score on a graded output yet")
    assert upside_down.qualified is False
    assert upside_down.threshold == 0.95
    assert upside_down.reason.startswith("no threshold qualifies (")
