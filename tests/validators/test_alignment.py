"""validators.alignment: every figure against scikit-learn and statsmodels, undefined as None."""

import json
import math
import warnings
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    matthews_corrcoef,
    recall_score,
)
from statsmodels.stats.proportion import proportion_confint

from annotate.statistics import Z_95, majority_labels, wilson_interval
from validators.alignment import (
    AlignmentMetrics,
    alignment_metrics,
    alignment_table,
    confusion_counts,
    metrics_from_counts,
)

TIGHT = {"rel": 1e-12, "abs": 1e-12}


def _random_case(seed: int, n_outputs: int = 400, n_validators: int = 6):
    """Human labels with gaps and verdicts of every code, loosely tied to a hidden label."""
    rng = np.random.default_rng(seed)
    hidden = rng.integers(0, 2, n_outputs)
    human = np.where(rng.random(n_outputs) < 0.7, hidden, -1).astype(np.int8)
    agreement = rng.uniform(0.4, 0.95, n_validators)
    verdicts = np.where(
        rng.random((n_outputs, n_validators)) < agreement, hidden[:, None], 1 - hidden[:, None]
    )
    odd = rng.random((n_outputs, n_validators))
    verdicts[odd < 0.05] = -1
    verdicts[(odd >= 0.05) & (odd < 0.08)] = -2
    return human, verdicts.astype(np.int8)


def _assert_matches_references(metrics: AlignmentMetrics, human, verdicts) -> None:
    """Every figure against scikit-learn/statsmodels on the rows sklearn can see."""
    labelled = human != -1
    judged = labelled & (verdicts >= 0)
    y_true, y_pred = human[judged], verdicts[judged]
    (tp, fn), (fp, tn) = confusion_matrix(y_true, y_pred, labels=[0, 1])
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (tp, fn, fp, tn)
    assert metrics.n_fail == np.count_nonzero(y_true == 0)
    assert metrics.n_pass == np.count_nonzero(y_true == 1)
    assert metrics.n_error == np.count_nonzero(labelled & (verdicts == -1))
    assert metrics.n_missing == np.count_nonzero(labelled & (verdicts == -2))
    assert metrics.skip_rate == pytest.approx(
        metrics.n_error / (metrics.n_pass + metrics.n_fail + metrics.n_error), **TIGHT
    )
    assert metrics.coverage == pytest.approx(
        recall_score(y_true, y_pred, pos_label=0), **TIGHT
    )
    assert metrics.false_failure_rate == pytest.approx(
        1 - recall_score(y_true, y_pred, pos_label=1), **TIGHT
    )
    specificity = 1 - metrics.false_failure_rate
    assert metrics.alignment == pytest.approx(
        2 * metrics.coverage * specificity / (metrics.coverage + specificity), **TIGHT
    )
    assert metrics.accuracy == pytest.approx(accuracy_score(y_true, y_pred), **TIGHT)
    assert metrics.kappa == pytest.approx(
        cohen_kappa_score(y_true, y_pred, labels=[0, 1]), **TIGHT
    )
    assert metrics.mcc == pytest.approx(matthews_corrcoef(y_true, y_pred), **TIGHT)
    assert metrics.coverage_ci == pytest.approx(
        proportion_confint(tp, tp + fn, method="wilson"), **TIGHT
    )
    assert metrics.ffr_ci == pytest.approx(
        proportion_confint(fp, fp + tn, method="wilson"), **TIGHT
    )


# wilson_interval


@pytest.mark.parametrize(
    ("successes", "n"), [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (5, 10), (1, 3), (47, 120)]
)
def test_wilson_interval_matches_statsmodels(successes, n):
    expected = proportion_confint(successes, n, alpha=0.05, method="wilson")

    interval = wilson_interval(successes, n)

    assert interval == pytest.approx(expected, **TIGHT)


def test_wilson_interval_known_value_and_exact_bounds_at_the_edges():
    # Given 5 of 10, 0 of 10 and 10 of 10
    # When the intervals are computed
    # Then the middle one is the textbook value and the edges are exactly 0 and 1
    assert wilson_interval(5, 10) == pytest.approx((0.236593090512564, 0.763406909487436), 1e-12)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


def test_wilson_interval_with_another_z_matches_statsmodels_alpha():
    z_90 = 1.6448536269514722  # norm.isf(0.05)

    assert wilson_interval(7, 20, z=z_90) == pytest.approx(
        proportion_confint(7, 20, alpha=0.10, method="wilson"), **TIGHT
    )


def test_wilson_interval_of_nothing_is_none():
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(("successes", "n"), [(3, 2), (-1, 4), (0, -1)])
def test_wilson_interval_rejects_impossible_counts(successes, n):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)


def test_default_z_is_the_two_sided_95_percent_quantile():
    from scipy.stats import norm

    assert Z_95 == pytest.approx(norm.isf(0.025), rel=1e-15)


# majority_labels


def test_majority_labels_takes_the_majority_and_leaves_ties_and_unsure_out():
    # Given output 0: pass, pass, fail; 1: fail, unsure, unsure; 2: pass, fail (tie);
    # 3: unsure only; 4: no grade; 5: fail, fail, pass, pass, fail
    output_index = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 5, 5, 5, 5, 5])
    labels = np.array([1, 1, 0, 0, 2, 2, 1, 0, 2, 0, 0, 1, 1, 0], dtype=np.int8)

    # When
    majority = majority_labels(output_index, labels, n_outputs=6)

    # Then
    assert majority.dtype == np.int8
    assert majority.tolist() == [1, 0, -1, -1, -1, 0]


def test_majority_labels_with_no_grades_at_all():
    majority = majority_labels(np.array([], dtype=int), np.array([], dtype=np.int8), 3)

    assert majority.tolist() == [-1, -1, -1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_majority_labels_matches_a_counter_per_output(seed):
    rng = np.random.default_rng(seed)
    n_outputs = 50
    output_index = rng.integers(0, n_outputs, 300)
    labels = rng.choice([0, 1, 2], size=300).astype(np.int8)
    expected = []
    for output in range(n_outputs):
        votes = Counter(labels[output_index == output].tolist())
        if votes[1] > votes[0]:
            expected.append(1)
        elif votes[0] > votes[1]:
            expected.append(0)
        else:
            expected.append(-1)

    assert majority_labels(output_index, labels, n_outputs).tolist() == expected


@pytest.mark.parametrize(
    ("output_index", "labels", "message"),
    [([0, 1], [1, 3], "grade codes"), ([0, 3], [1, 0], "output_index"), ([0], [1, 0], "same")],
)
def test_majority_labels_rejects_bad_input(output_index, labels, message):
    with pytest.raises(ValueError, match=message):
        majority_labels(np.array(output_index), np.array(labels), 3)


# alignment_metrics / alignment_table against references


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_alignment_table_matches_sklearn_and_statsmodels_on_random_data(seed):
    # Given random labels and verdicts including errors, missing verdicts and unlabelled rows
    human, verdict_matrix = _random_case(seed)

    # When
    table = alignment_table(human, verdict_matrix)

    # Then every validator's figures equal the reference implementations
    assert len(table) == verdict_matrix.shape[1]
    for column, metrics in enumerate(table):
        _assert_matches_references(metrics, human, verdict_matrix[:, column])


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_table_is_the_same_on_all_rows_or_labelled_rows_only(seed):
    human, verdict_matrix = _random_case(seed)
    labelled = np.flatnonzero(human != -1)

    on_all_rows = alignment_table(human, verdict_matrix)
    on_labelled_rows = alignment_table(human[labelled], verdict_matrix[labelled])

    assert on_all_rows == on_labelled_rows


def test_a_strided_view_counts_like_a_contiguous_copy():
    human, verdict_matrix = _random_case(5, n_validators=8)
    every_other_column = verdict_matrix[:, ::2]
    assert not every_other_column.flags.c_contiguous

    assert alignment_table(human, every_other_column) == alignment_table(
        human, np.ascontiguousarray(every_other_column)
    )


def test_alignment_metrics_is_one_column_of_the_table():
    human, verdict_matrix = _random_case(7)

    table = alignment_table(human, verdict_matrix)

    assert [alignment_metrics(human, verdict_matrix[:, j]) for j in range(6)] == table


def test_alignment_table_accepts_wider_integer_dtypes():
    human, verdict_matrix = _random_case(3)

    assert alignment_table(human.astype(np.int64), verdict_matrix.astype(np.int32)) == (
        alignment_table(human, verdict_matrix)
    )


def test_confusion_counts_on_a_small_hand_made_case():
    # Given 6 outputs (one unlabelled) and two validators
    human = np.array([0, 0, 1, 1, 1, -1], dtype=np.int8)
    verdict_matrix = np.array(
        [[0, -1], [1, 0], [0, -2], [1, 1], [-1, 1], [0, 0]], dtype=np.int8
    )

    # When
    counts = confusion_counts(human, verdict_matrix)

    # Then columns are tp, fn, fp, tn, n_error, n_missing
    assert counts.tolist() == [[1, 1, 1, 1, 1, 0], [1, 0, 0, 2, 1, 1]]


def test_a_hand_made_case_gives_exact_figures():
    # Given tp=3, fn=1, fp=2, tn=4 plus one error and one missing verdict
    human = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1], dtype=np.int8)
    verdicts = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1, -1, -2], dtype=np.int8)

    # When
    metrics = alignment_metrics(human, verdicts)

    # Then
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (3, 1, 2, 4)
    assert (metrics.n_fail, metrics.n_pass, metrics.n_error, metrics.n_missing) == (4, 6, 1, 1)
    assert metrics.n_labelled == 10
    assert metrics.skip_rate == 1 / 11
    assert metrics.coverage == 0.75
    assert metrics.false_failure_rate == 1 / 3
    assert metrics.alignment == pytest.approx(2 * 0.75 * (2 / 3) / (0.75 + 2 / 3), **TIGHT)
    assert metrics.accuracy == 0.7
    # po = 0.7, pe = (4*5 + 6*5) / 100 = 0.5
    assert metrics.kappa == pytest.approx(0.4, **TIGHT)
    assert metrics.mcc == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5), **TIGHT)


# edge cases: exact values, undefined as None


def test_no_human_fails_leaves_coverage_alignment_and_mcc_undefined():
    # Given only passing human labels and a validator that fails one of them
    human = np.array([1, 1, 1, 1], dtype=np.int8)
    verdicts = np.array([0, 1, 1, 1], dtype=np.int8)

    # When
    metrics = alignment_metrics(human, verdicts)

    # Then
    assert metrics.n_fail == 0
    assert metrics.coverage is None
    assert metrics.coverage_ci is None
    assert metrics.alignment is None
    assert metrics.false_failure_rate == 0.25
    assert metrics.ffr_ci == pytest.approx(proportion_confint(1, 4, method="wilson"), **TIGHT)
    assert metrics.accuracy == 0.75
    # Kappa is defined (expected agreement 0.75) and 0, as in sklearn.
    assert metrics.kappa == 0.0
    assert cohen_kappa_score(human, verdicts, labels=[0, 1]) == 0.0
    # MCC is 0/0; sklearn reports 0.0 here and we deliberately report None.
    assert metrics.mcc is None
    assert matthews_corrcoef(human, verdicts) == 0.0


def test_no_human_passes_leaves_ffr_and_alignment_undefined():
    human = np.array([0, 0, 0], dtype=np.int8)
    verdicts = np.array([0, 0, 1], dtype=np.int8)

    metrics = alignment_metrics(human, verdicts)

    assert metrics.n_pass == 0
    assert metrics.false_failure_rate is None
    assert metrics.ffr_ci is None
    assert metrics.alignment is None
    assert metrics.coverage == 2 / 3
    assert metrics.kappa == 0.0
    assert metrics.mcc is None


def test_all_errors_leave_everything_but_the_skip_rate_undefined():
    # Given three labelled outputs on which the validator errored
    human = np.array([0, 1, 1, -1], dtype=np.int8)
    verdicts = np.array([-1, -1, -1, 0], dtype=np.int8)

    # When
    metrics = alignment_metrics(human, verdicts)

    # Then
    assert (metrics.n_pass, metrics.n_fail, metrics.n_error, metrics.n_missing) == (0, 0, 3, 0)
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (0, 0, 0, 0)
    assert metrics.skip_rate == 1.0
    for name in (
        "coverage", "coverage_ci", "false_failure_rate", "ffr_ci", "alignment", "accuracy",
        "kappa", "mcc",
    ):
        assert getattr(metrics, name) is None, name


def test_no_labels_at_all_leave_every_rate_undefined_including_the_skip_rate():
    human = np.array([-1, -1], dtype=np.int8)
    verdicts = np.array([0, -1], dtype=np.int8)

    metrics = alignment_metrics(human, verdicts)

    assert metrics == metrics_from_counts(tp=0, fn=0, fp=0, tn=0)
    assert metrics.skip_rate is None
    assert metrics.accuracy is None


def test_missing_verdicts_are_counted_but_are_not_skips():
    human = np.array([0, 1, 1, 0], dtype=np.int8)
    verdicts = np.array([-2, -2, 1, 0], dtype=np.int8)

    metrics = alignment_metrics(human, verdicts)

    assert metrics.n_missing == 2
    assert metrics.n_error == 0
    assert metrics.skip_rate == 0.0


def test_a_single_label_defines_only_what_one_label_can():
    # Given one failing output that the validator fails
    metrics = alignment_metrics(np.array([0], dtype=np.int8), np.array([0], dtype=np.int8))

    # Then coverage is 1 with a wide interval; FFR, alignment, kappa and MCC are undefined
    assert metrics.coverage == 1.0
    assert metrics.coverage_ci == pytest.approx(proportion_confint(1, 1, method="wilson"), **TIGHT)
    assert metrics.accuracy == 1.0
    assert metrics.false_failure_rate is None
    assert metrics.alignment is None
    assert metrics.kappa is None  # expected agreement is 1
    assert metrics.mcc is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score([0], [0], labels=[0, 1]))


def test_a_validator_that_always_fails():
    # Given mixed human labels and a validator that fails everything
    human = np.array([0, 0, 1, 1, 1], dtype=np.int8)
    verdicts = np.zeros(5, dtype=np.int8)

    # When
    metrics = alignment_metrics(human, verdicts)

    # Then: full coverage, every pass falsely failed, so the harmonic mean is 0 (not None)
    assert metrics.coverage == 1.0
    assert metrics.false_failure_rate == 1.0
    assert metrics.alignment == 0.0
    assert metrics.accuracy == 0.4
    assert metrics.kappa == 0.0
    assert cohen_kappa_score(human, verdicts, labels=[0, 1]) == 0.0
    # The validator's pass column is empty: MCC is 0/0, sklearn says 0.0, we say None.
    assert metrics.mcc is None
    assert matthews_corrcoef(human, verdicts) == 0.0


def test_a_validator_that_always_passes():
    human = np.array([0, 0, 1, 1, 1], dtype=np.int8)
    verdicts = np.ones(5, dtype=np.int8)

    metrics = alignment_metrics(human, verdicts)

    assert metrics.coverage == 0.0
    assert metrics.coverage_ci[0] == 0.0
    assert metrics.false_failure_rate == 0.0
    assert metrics.ffr_ci[0] == 0.0
    assert metrics.alignment == 0.0
    assert metrics.kappa == 0.0
    assert metrics.mcc is None


def test_perfect_agreement():
    human = np.array([0, 1, 0, 1, 1], dtype=np.int8)

    metrics = alignment_metrics(human, human.copy())

    assert (metrics.coverage, metrics.false_failure_rate) == (1.0, 0.0)
    assert (metrics.alignment, metrics.accuracy, metrics.kappa, metrics.mcc) == (1.0, 1.0, 1.0, 1.0)
    assert metrics.coverage_ci[1] == 1.0
    assert metrics.ffr_ci[0] == 0.0


def test_perfect_disagreement():
    human = np.array([0, 1, 0, 1, 1], dtype=np.int8)

    metrics = alignment_metrics(human, (1 - human).astype(np.int8))

    assert (metrics.coverage, metrics.false_failure_rate) == (0.0, 1.0)
    assert metrics.alignment == 0.0
    assert metrics.accuracy == 0.0
    assert metrics.kappa == pytest.approx(
        cohen_kappa_score(human, 1 - human, labels=[0, 1]), **TIGHT
    )
    # 2(tp*tn - fn*fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)) = 2(0 - 6) / (4 + 9)
    assert metrics.kappa == pytest.approx(-12 / 13, **TIGHT)
    assert metrics.mcc == -1.0


def test_kappa_undefined_when_both_raters_say_pass_throughout():
    human = np.ones(4, dtype=np.int8)

    metrics = alignment_metrics(human, human.copy())

    assert metrics.accuracy == 1.0
    assert metrics.kappa is None
    assert metrics.mcc is None
    assert metrics.coverage is None


# metrics_from_counts and to_dict


def test_metrics_from_counts_equals_counting_the_arrays():
    human, verdict_matrix = _random_case(11)

    counts = confusion_counts(human, verdict_matrix)
    table = alignment_table(human, verdict_matrix)

    for row, metrics in zip(counts.tolist(), table, strict=True):
        tp, fn, fp, tn, n_error, n_missing = row
        assert metrics_from_counts(
            tp=tp, fn=fn, fp=fp, tn=tn, n_error=n_error, n_missing=n_missing
        ) == metrics


def test_metrics_from_counts_rejects_negative_counts():
    with pytest.raises(ValueError, match="non-negative"):
        metrics_from_counts(tp=1, fn=-1, fp=0, tn=0)


def test_to_dict_is_json_ready_with_intervals_as_lists_and_none_kept():
    metrics = metrics_from_counts(tp=3, fn=1, fp=0, tn=0, n_error=2)

    as_dict = json.loads(json.dumps(metrics.to_dict()))

    assert as_dict["coverage_ci"] == list(proportion_confint(3, 4, method="wilson"))
    assert as_dict["ffr_ci"] is None
    assert as_dict["false_failure_rate"] is None
    assert as_dict["mcc"] is None
    assert as_dict["skip_rate"] == 2 / 6
    assert set(as_dict) == {
        "n_pass", "n_fail", "n_error", "n_missing", "skip_rate", "tp", "fn", "fp", "tn",
        "coverage", "coverage_ci", "false_failure_rate", "ffr_ci", "alignment", "accuracy",
        "kappa", "mcc",
    }


# bad input


@pytest.mark.parametrize(
    ("human", "verdicts", "message"),
    [
        ([0, 2], [[0], [1]], "human label codes"),
        ([0, 1], [[0], [3]], "verdict codes"),
        ([0, 1], [[0], [-3]], "verdict codes"),
        ([0, 1], [[0]], "verdict matrix"),
        ([[0, 1]], [[0], [1]], "1-D"),
    ],
)
def test_alignment_table_rejects_bad_input(human, verdicts, message):
    with pytest.raises(ValueError, match=message):
        alignment_table(np.array(human), np.array(verdicts))


def test_an_empty_verdict_matrix_gives_an_empty_table():
    assert alignment_table(np.array([0, 1], dtype=np.int8), np.zeros((2, 0), np.int8)) == []
