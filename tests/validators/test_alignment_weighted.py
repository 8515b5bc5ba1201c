"""validators.alignment under importance weights: scikit-learn with sample_weight, statsmodels'
Wilson interval at Kish's effective size, and an importance-sampling check that the weighted
figures recover the population ones where the unweighted ones do not."""

import dataclasses
import json
import math
import time

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

from annotate.statistics import (
    LABEL_FAIL,
    LABEL_PASS,
    NO_LABEL,
    VERDICT_ERROR,
    VERDICT_FAIL,
    VERDICT_MISSING,
    VERDICT_PASS,
    wilson_interval,
    wilson_interval_float,
)
from validators.alignment import (
    AlignmentMetrics,
    alignment_metrics,
    alignment_table,
    confusion_counts,
    metrics_from_counts,
    metrics_from_weighted_counts,
    weighted_confusion_counts,
)

TIGHT = {"rel": 1e-12, "abs": 1e-12}
# Sums of weights accumulate in a different order than in scikit-learn.
CLOSE = {"rel": 1e-9, "abs": 1e-12}
RATES = ("coverage", "false_failure_rate", "alignment", "accuracy", "kappa", "mcc")
RAW = ("n_pass", "n_fail", "n_error", "n_missing", "skip_rate", "tp", "fn", "fp", "tn")


def _random_case(seed: int, n_outputs: int = 400, n_validators: int = 6):
    """Labels with gaps, verdicts of every code loosely tied to a hidden label, and lognormal
    weights; unlabelled outputs get NaN weights, which must be ignored."""
    rng = np.random.default_rng(seed)
    hidden = rng.integers(0, 2, n_outputs)
    labelled = rng.random(n_outputs) < 0.7
    human = np.where(labelled, hidden, NO_LABEL).astype(np.int8)
    agreement = rng.uniform(0.4, 0.95, n_validators)
    verdicts = np.where(
        rng.random((n_outputs, n_validators)) < agreement, hidden[:, None], 1 - hidden[:, None]
    )
    odd = rng.random((n_outputs, n_validators))
    verdicts[odd < 0.05] = VERDICT_ERROR
    verdicts[(odd >= 0.05) & (odd < 0.08)] = VERDICT_MISSING
    weights = np.where(labelled, rng.lognormal(0.0, 1.0, n_outputs), np.nan)
    return human, verdicts.astype(np.int8), weights


def _kish(weights: np.ndarray) -> float:
    return float(weights.sum() ** 2 / (weights**2).sum()) if weights.size else 0.0


def _assert_matches_weighted_references(metrics: AlignmentMetrics, human, verdicts, weights):
    judged = (human != NO_LABEL) & (verdicts >= 0)
    y_true, y_pred, w = human[judged], verdicts[judged], weights[judged]

    # Raw counts, as in the unweighted confusion matrix.
    unweighted = alignment_metrics(human, verdicts)
    for name in RAW:
        assert getattr(metrics, name) == getattr(unweighted, name), name
    assert metrics.weighted is True

    (w_tp, w_fn), (w_fp, w_tn) = confusion_matrix(y_true, y_pred, labels=[0, 1], sample_weight=w)
    assert metrics.coverage == pytest.approx(w_tp / (w_tp + w_fn), **CLOSE)
    assert metrics.coverage == pytest.approx(
        recall_score(y_true, y_pred, pos_label=LABEL_FAIL, sample_weight=w), **CLOSE
    )
    assert metrics.false_failure_rate == pytest.approx(w_fp / (w_fp + w_tn), **CLOSE)
    assert metrics.false_failure_rate == pytest.approx(
        1 - recall_score(y_true, y_pred, pos_label=LABEL_PASS, sample_weight=w), **CLOSE
    )
    specificity = 1 - metrics.false_failure_rate
    assert metrics.alignment == pytest.approx(
        2 * metrics.coverage * specificity / (metrics.coverage + specificity), **CLOSE
    )
    assert metrics.accuracy == pytest.approx(
        accuracy_score(y_true, y_pred, sample_weight=w), **CLOSE
    )
    assert metrics.kappa == pytest.approx(
        cohen_kappa_score(y_true, y_pred, labels=[0, 1], sample_weight=w), **CLOSE
    )
    assert metrics.mcc == pytest.approx(matthews_corrcoef(y_true, y_pred, sample_weight=w), **CLOSE)

    # Wilson at the weighted proportion with Kish's n_eff as n.
    n_eff_fail = _kish(w[y_true == LABEL_FAIL])
    n_eff_pass = _kish(w[y_true == LABEL_PASS])
    assert metrics.coverage_ci == pytest.approx(
        proportion_confint(metrics.coverage * n_eff_fail, n_eff_fail, method="wilson"), **CLOSE
    )
    assert metrics.ffr_ci == pytest.approx(
        proportion_confint(metrics.false_failure_rate * n_eff_pass, n_eff_pass, method="wilson"),
        **CLOSE,
    )


# against scikit-learn and statsmodels


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_weighted_table_matches_sklearn_sample_weight_and_statsmodels(seed):
    # Given random labels, verdicts with errors and missing ones, and lognormal weights
    human, verdict_matrix, weights = _random_case(seed)

    # When
    table = alignment_table(human, verdict_matrix, weights)

    # Then every validator's figures equal the weighted reference implementations
    assert len(table) == verdict_matrix.shape[1]
    for column, metrics in enumerate(table):
        _assert_matches_weighted_references(metrics, human, verdict_matrix[:, column], weights)


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_confusion_counts_by_hand(seed):
    human, verdict_matrix, weights = _random_case(seed)

    counts, weighted, effective = weighted_confusion_counts(human, verdict_matrix, weights)

    assert counts.dtype == np.int64 and weighted.dtype == effective.dtype == np.float64
    assert counts.shape == (6, 6) and weighted.shape == (6, 4) and effective.shape == (6, 2)
    assert np.array_equal(counts, confusion_counts(human, verdict_matrix))
    fail, passed = human == LABEL_FAIL, human == LABEL_PASS
    for j in range(verdict_matrix.shape[1]):
        v = verdict_matrix[:, j]
        cells = [
            fail & (v == VERDICT_FAIL),
            fail & (v == VERDICT_PASS),
            passed & (v == VERDICT_FAIL),
            passed & (v == VERDICT_PASS),
        ]
        assert weighted[j] == pytest.approx([weights[c].sum() for c in cells], **CLOSE)
        assert effective[j] == pytest.approx(
            [_kish(weights[cells[0] | cells[1]]), _kish(weights[cells[2] | cells[3]])], **CLOSE
        )


def test_kish_effective_size_on_a_hand_made_case():
    # Given three human fails with weights 1, 2, 3 (all judged) and three human passes with
    # weights 4, 4, 8 of which the last errored, plus one unlabelled output
    human = np.array([0, 0, 0, 1, 1, 1, -1], dtype=np.int8)
    verdicts = np.array([[0], [1], [0], [1], [0], [-1], [0]], dtype=np.int8)
    weights = np.array([1.0, 2.0, 3.0, 4.0, 4.0, 8.0, 100.0])

    # When
    counts, weighted, effective = weighted_confusion_counts(human, verdicts, weights)

    # Then n_eff = (Σw)² / Σw² over the judged rows: 36/14 for fails, 64/32 = 2 for passes
    assert counts.tolist() == [[2, 1, 1, 1, 1, 0]]
    assert weighted.tolist() == [[4.0, 2.0, 4.0, 4.0]]
    assert effective[0, 0] == pytest.approx(36 / 14, **TIGHT)
    assert effective[0, 1] == 2.0
    metrics = alignment_metrics(human, verdicts[:, 0], weights)
    assert metrics.coverage == pytest.approx(4 / 6, **TIGHT)
    assert metrics.false_failure_rate == 0.5
    assert metrics.coverage_ci == pytest.approx(wilson_interval_float(4 / 6, 36 / 14), **TIGHT)
    assert metrics.ffr_ci == pytest.approx(wilson_interval(1, 2), **TIGHT)
    assert metrics.skip_rate == 1 / 6


# equal weights are the unweighted figures


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unit_weights_give_exactly_the_unweighted_table(seed):
    human, verdict_matrix, _ = _random_case(seed)

    weighted = alignment_table(human, verdict_matrix, np.ones(human.shape[0]))

    unweighted = alignment_table(human, verdict_matrix)
    assert all(m.weighted for m in weighted)
    assert [dataclasses.replace(m, weighted=False) for m in weighted] == unweighted


@pytest.mark.parametrize("weight", [0.37, 3.0, 1e-3, 2.0**40, 1e150])
def test_equal_weights_give_the_unweighted_table(weight):
    human, verdict_matrix, _ = _random_case(8)
    weights = np.where(human != NO_LABEL, weight, -5.0)  # unlabelled weights are ignored

    counts, _, effective = weighted_confusion_counts(human, verdict_matrix, weights)
    weighted = alignment_table(human, verdict_matrix, weights)

    # n_eff = n, so the intervals agree too
    assert effective == pytest.approx(counts[:, 0:4:2] + counts[:, 1:4:2], **TIGHT)
    for w_metrics, metrics in zip(weighted, alignment_table(human, verdict_matrix), strict=True):
        for name in RAW:
            assert getattr(w_metrics, name) == getattr(metrics, name)
        for name in (*RATES, "coverage_ci", "ffr_ci"):
            assert getattr(w_metrics, name) == pytest.approx(getattr(metrics, name), **TIGHT)


def test_rates_do_not_depend_on_the_scale_of_the_weights():
    human, verdict_matrix, weights = _random_case(9)

    reference = alignment_table(human, verdict_matrix, weights)

    for factor in (1e-200, 1e-7, 1e9, 1e200):
        scaled = alignment_table(human, verdict_matrix, weights * factor)
        for w_metrics, metrics in zip(scaled, reference, strict=True):
            for name in (*RATES, "coverage_ci", "ffr_ci"):
                assert getattr(w_metrics, name) == pytest.approx(getattr(metrics, name), **TIGHT)


# the float Wilson interval


@pytest.mark.parametrize(
    ("count", "nobs"), [(0.0, 2.5), (2.5, 2.5), (3.7, 9.3), (0.4, 1.0), (47.25, 118.6), (1.2, 1.3)]
)
def test_wilson_interval_float_matches_statsmodels_at_non_integer_sizes(count, nobs):
    expected = proportion_confint(count, nobs, alpha=0.05, method="wilson")

    interval = wilson_interval_float(count / nobs, nobs)

    assert interval == pytest.approx(expected, **TIGHT)


def test_wilson_interval_float_by_hand():
    p, n, z = 0.3, 12.5, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))

    assert wilson_interval_float(p, n) == pytest.approx((centre - half, centre + half), **TIGHT)


@pytest.mark.parametrize(("successes", "n"), [(0, 1), (1, 1), (3, 10), (10, 10), (47, 120)])
def test_wilson_interval_float_is_the_integer_one_at_integer_sizes(successes, n):
    assert wilson_interval_float(successes / n, float(n)) == wilson_interval(successes, n)


def test_wilson_interval_float_edges():
    assert wilson_interval_float(0.0, 0.0) is None
    assert wilson_interval_float(0.0, 3.5)[0] == 0.0
    assert wilson_interval_float(1.0, 3.5)[1] == 1.0


@pytest.mark.parametrize(
    ("proportion", "n", "message"),
    [
        (1.5, 3.0, "proportion"),
        (-0.1, 3.0, "proportion"),
        (math.nan, 3.0, "proportion"),
        (0.5, -1.0, "n"),
        (0.5, math.inf, "n"),
        (0.5, math.nan, "n"),
    ],
)
def test_wilson_interval_float_rejects_impossible_input(proportion, n, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval_float(proportion, n)


# metrics_from_weighted_counts


def test_metrics_from_weighted_counts_equals_the_table():
    human, verdict_matrix, weights = _random_case(11)

    counts, weighted, effective = weighted_confusion_counts(human, verdict_matrix, weights)
    table = alignment_table(human, verdict_matrix, weights)

    for row, w_row, eff, metrics in zip(
        counts.tolist(), weighted.tolist(), effective.tolist(), table, strict=True
    ):
        tp, fn, fp, tn, n_error, n_missing = row
        assert (
            metrics_from_weighted_counts(
                tp=tp,
                fn=fn,
                fp=fp,
                tn=tn,
                n_error=n_error,
                n_missing=n_missing,
                w_tp=w_row[0],
                w_fn=w_row[1],
                w_fp=w_row[2],
                w_tn=w_row[3],
                n_eff_fail=eff[0],
                n_eff_pass=eff[1],
            )
            == metrics
        )


def test_weighted_counts_keep_raw_counts_and_weight_the_rates():
    # Given a table whose two fail outputs the validator caught carry little weight
    metrics = metrics_from_weighted_counts(
        tp=2,
        fn=1,
        fp=1,
        tn=3,
        n_error=1,
        n_missing=2,
        w_tp=0.5,
        w_fn=1.5,
        w_fp=2.0,
        w_tn=6.0,
        n_eff_fail=2.5,
        n_eff_pass=3.2,
    )

    # Then counts are raw, rates weighted
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (2, 1, 1, 3)
    assert (metrics.n_fail, metrics.n_pass, metrics.n_labelled) == (3, 4, 7)
    assert (metrics.n_error, metrics.n_missing, metrics.skip_rate) == (1, 2, 1 / 8)
    assert metrics.coverage == 0.25
    assert metrics.false_failure_rate == 0.25
    assert metrics.alignment == pytest.approx(2 * 0.25 * 0.75 / (0.25 + 0.75), **TIGHT)
    assert metrics.accuracy == pytest.approx(6.5 / 10, **TIGHT)
    assert metrics.coverage_ci == pytest.approx(
        proportion_confint(0.25 * 2.5, 2.5, method="wilson"), **TIGHT
    )
    assert metrics.ffr_ci == pytest.approx(
        proportion_confint(0.25 * 3.2, 3.2, method="wilson"), **TIGHT
    )


def test_weighted_undefined_cases_follow_the_unweighted_rules():
    # No human passes: FFR, its interval, alignment and MCC undefined; kappa 0
    only_fails = metrics_from_weighted_counts(
        tp=2,
        fn=1,
        fp=0,
        tn=0,
        w_tp=0.7,
        w_fn=3.1,
        w_fp=0.0,
        w_tn=0.0,
        n_eff_fail=2.2,
        n_eff_pass=0.0,
    )
    assert only_fails.false_failure_rate is None and only_fails.ffr_ci is None
    assert only_fails.alignment is None and only_fails.mcc is None
    assert only_fails.kappa == 0.0
    assert only_fails.coverage == pytest.approx(0.7 / 3.8, **TIGHT)

    # Always fails: coverage 1, FFR 1, alignment exactly 0 (not None), MCC undefined
    always_fails = metrics_from_weighted_counts(
        tp=2,
        fn=0,
        fp=3,
        tn=0,
        w_tp=0.7,
        w_fn=0.0,
        w_fp=5.0,
        w_tn=0.0,
        n_eff_fail=1.8,
        n_eff_pass=2.9,
    )
    assert (always_fails.coverage, always_fails.false_failure_rate) == (1.0, 1.0)
    assert always_fails.alignment == 0.0
    assert always_fails.coverage_ci[1] == 1.0
    assert always_fails.mcc is None

    # A single judged output: kappa undefined (expected agreement 1)
    single = metrics_from_weighted_counts(
        tp=1,
        fn=0,
        fp=0,
        tn=0,
        w_tp=0.3,
        w_fn=0.0,
        w_fp=0.0,
        w_tn=0.0,
        n_eff_fail=1.0,
        n_eff_pass=0.0,
    )
    assert single.kappa is None and single.mcc is None
    assert single.coverage_ci == pytest.approx(wilson_interval(1, 1), **TIGHT)

    # Nothing judged: every rate undefined, skip rate from raw counts
    nothing = metrics_from_weighted_counts(
        tp=0,
        fn=0,
        fp=0,
        tn=0,
        n_error=3,
        w_tp=0.0,
        w_fn=0.0,
        w_fp=0.0,
        w_tn=0.0,
        n_eff_fail=0.0,
        n_eff_pass=0.0,
    )
    assert nothing.skip_rate == 1.0
    for name in (*RATES, "coverage_ci", "ffr_ci"):
        assert getattr(nothing, name) is None, name


def test_a_validator_with_no_judged_labelled_output_under_weights():
    human = np.array([0, 1, 1, -1], dtype=np.int8)
    verdicts = np.array([-1, -2, -1, 0], dtype=np.int8)

    metrics = alignment_metrics(human, verdicts, np.array([2.0, 3.0, 0.5, np.nan]))

    assert metrics == dataclasses.replace(
        metrics_from_counts(tp=0, fn=0, fp=0, tn=0, n_error=2, n_missing=1), weighted=True
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"w_tp": -1.0}, "w_tp must be a finite sum"),
        ({"w_fn": math.nan}, "w_fn must be a finite sum"),
        ({"w_fp": math.inf}, "w_fp must be a finite sum"),
        ({"w_tn": 0.0}, "w_tn=0.0 does not fit tn=3"),
        ({"tp": 0}, "w_tp=0.5 does not fit tp=0"),
        ({"n_eff_fail": 4.0}, "n_eff_fail must be an effective sample size in \\(0, 3\\]"),
        ({"n_eff_pass": 0.0}, "n_eff_pass"),
        ({"n_eff_pass": math.nan}, "n_eff_pass"),
        ({"fn": -1}, "non-negative"),
    ],
)
def test_metrics_from_weighted_counts_rejects_inconsistent_input(change, message):
    arguments = dict(
        tp=2,
        fn=1,
        fp=1,
        tn=3,
        w_tp=0.5,
        w_fn=1.5,
        w_fp=2.0,
        w_tn=6.0,
        n_eff_fail=2.5,
        n_eff_pass=3.2,
    )
    arguments.update(change)

    with pytest.raises(ValueError, match=message):
        metrics_from_weighted_counts(**arguments)


# to_dict and the flag


def test_weighted_flag_in_to_dict_only_for_weighted_metrics():
    human, verdict_matrix, weights = _random_case(3)

    weighted = alignment_table(human, verdict_matrix, weights)[0].to_dict()
    unweighted = alignment_table(human, verdict_matrix)[0].to_dict()

    assert json.loads(json.dumps(weighted))["weighted"] is True
    assert "weighted" not in unweighted
    assert set(weighted) == set(unweighted) | {"weighted"}
    assert metrics_from_counts(tp=1, fn=0, fp=0, tn=1).weighted is False


# bad weights


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, -2.0, 1.0, 1.0], "weights must be > 0 on labelled outputs; output 1 has weight -2"),
        ([1.0, 1.0, 0.0, 1.0], "weights must be > 0 on labelled outputs; output 2 has weight 0"),
        ([np.nan, 1.0, 1.0, 1.0], "weights must be finite on labelled outputs; output 0 has"),
        ([1.0, np.inf, 1.0, 1.0], "weights must be finite on labelled outputs; output 1 has"),
        ([1.0, 1.0, 1.0], "one weight per output \\(n_outputs=4\\), got shape \\(3,\\)"),
        ([[1.0, 1.0, 1.0, 1.0]], "one weight per output"),
        (["a", "b", "c", "d"], "weights must be numbers"),
    ],
)
def test_bad_weights_are_rejected_with_the_problem_named(weights, message):
    human = np.array([0, 1, 1, -1], dtype=np.int8)
    verdicts = np.array([[0], [1], [0], [1]], dtype=np.int8)

    with pytest.raises(ValueError, match=message):
        alignment_table(human, verdicts, np.array(weights))
    with pytest.raises(ValueError, match=message):
        weighted_confusion_counts(human, verdicts, np.array(weights))


def test_weights_of_unlabelled_outputs_are_ignored():
    human = np.array([0, 1, 1, -1, -1], dtype=np.int8)
    verdicts = np.array([[0], [1], [0], [1], [0]], dtype=np.int8)

    with_junk = alignment_table(human, verdicts, np.array([1.0, 2.0, 3.0, -4.0, np.nan]))

    assert with_junk == alignment_table(human, verdicts, np.array([1.0, 2.0, 3.0, 9.0, 9.0]))


# layouts


def test_weighted_table_is_the_same_on_all_rows_labelled_rows_or_a_strided_view():
    human, verdict_matrix, weights = _random_case(5, n_validators=8)
    labelled = np.flatnonzero(human != NO_LABEL)
    every_other_column = verdict_matrix[:, ::2]
    assert not every_other_column.flags.c_contiguous

    table = alignment_table(human, every_other_column, weights)

    assert table == alignment_table(
        human[labelled], every_other_column[labelled], weights[labelled]
    )
    assert table == alignment_table(human, np.ascontiguousarray(every_other_column), weights)
    # One column at a time: BLAS may sum in another order for another number of validators,
    # so the weighted rates may differ in the last bits; the counts are exact.
    for j, metrics in enumerate(table):
        alone = alignment_metrics(human, every_other_column[:, j], weights)
        for name in (*RAW, "weighted"):
            assert getattr(alone, name) == getattr(metrics, name), name
        for name in (*RATES, "coverage_ci", "ffr_ci"):
            assert getattr(alone, name) == pytest.approx(getattr(metrics, name), **TIGHT), name


def test_empty_inputs_under_weights():
    human = np.array([0, 1], dtype=np.int8)
    assert alignment_table(human, np.zeros((2, 0), np.int8), np.ones(2)) == []
    counts, weighted, effective = weighted_confusion_counts(
        np.array([-1, -1], dtype=np.int8), np.zeros((2, 3), np.int8), np.array([np.nan, 0.0])
    )
    assert counts.shape == (3, 6) and not counts.any()
    assert weighted.shape == (3, 4) and not weighted.any()
    assert effective.shape == (3, 2) and not effective.any()


def test_weighted_counts_stay_fast():
    # 50 validators x 10,000 labelled outputs in a few milliseconds (generous bound for CI)
    rng = np.random.default_rng(0)
    human = rng.integers(0, 2, 10_000).astype(np.int8)
    verdicts = rng.choice([1, 0, -1, -2], size=(10_000, 50), p=[0.5, 0.4, 0.05, 0.05])
    verdicts = verdicts.astype(np.int8)
    weights = rng.uniform(0.1, 5.0, 10_000)
    weighted_confusion_counts(human, verdicts, weights)

    timings = []
    for _ in range(5):
        start = time.perf_counter()
        weighted_confusion_counts(human, verdicts, weights)
        timings.append(time.perf_counter() - start)

    assert min(timings) < 0.05


# importance sampling: weighted figures recover the population, unweighted ones do not


def test_importance_weighted_estimates_recover_the_population_figures():
    # Given 20,000 outputs, all labelled, and a validator whose disagreement with the humans
    # grows with a score x the selector can see (P(disagree) = 0.03 + 0.6 x), with a few
    # errors and missing verdicts
    rng = np.random.default_rng(20240611)
    n_population, n_sample, n_draws = 20_000, 2_000, 20
    score = rng.random(n_population)
    human = np.where(rng.random(n_population) < 0.7, LABEL_PASS, LABEL_FAIL).astype(np.int8)
    disagree = rng.random(n_population) < 0.03 + 0.6 * score
    verdicts = np.where(disagree, 1 - human, human).astype(np.int8)
    odd = rng.random(n_population)
    verdicts[odd < 0.02] = VERDICT_ERROR
    verdicts[(odd >= 0.02) & (odd < 0.03)] = VERDICT_MISSING
    population = alignment_metrics(human, verdicts)

    # When an active selector draws 2,000 outputs with probability proportional to the
    # disagreement score (floor 0.3), weighting each by its importance ratio 1 / (N q)
    q = np.maximum(score, 0.3)
    q /= q.sum()
    weighted, unweighted = [], []
    for _ in range(n_draws):
        drawn = rng.choice(n_population, size=n_sample, p=q)
        weights = 1.0 / (n_population * q[drawn])
        weighted.append(alignment_metrics(human[drawn], verdicts[drawn], weights))
        unweighted.append(alignment_metrics(human[drawn], verdicts[drawn]))

    # Then the weighted FFR and coverage are close to the population values on average and
    # the unweighted ones are biased by several times as much
    for name in ("false_failure_rate", "coverage"):
        truth = getattr(population, name)
        weighted_error = abs(np.mean([getattr(m, name) for m in weighted]) - truth)
        unweighted_error = abs(np.mean([getattr(m, name) for m in unweighted]) - truth)
        assert weighted_error < 0.015, (name, truth, weighted_error)
        assert unweighted_error > 0.04, (name, truth, unweighted_error)
    # and the weighted 95% intervals (Wilson at Kish's n_eff) cover the truth in most draws
    covered = [
        m.ffr_ci[0] <= population.false_failure_rate <= m.ffr_ci[1]
        and m.coverage_ci[0] <= population.coverage <= m.coverage_ci[1]
        for m in weighted
    ]
    assert sum(covered) >= 14
