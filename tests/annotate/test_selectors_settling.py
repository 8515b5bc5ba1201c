"""Settling of a criterion's validator choice (annotate/selectors/settling.py): pure numpy.

Bounds are cross-checked against scipy (Wilson interval, the delta method's derivative) and
scikit-learn (weighted coverage and FFR); their coverage is measured by simulation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.metrics import recall_score

from annotate.selectors.settling import (
    candidate_rates,
    criterion_settling,
    gap_upper_bounds,
    kish_effective_size,
    leader,
    weighted_wilson_interval,
)


def test_kish_effective_size_is_n_for_equal_weights_and_less_for_unequal():
    assert kish_effective_size(np.full(7, 2.5)) == pytest.approx(7.0)
    # (1 + 1 + 4)² / (1 + 1 + 16) = 2
    assert kish_effective_size(np.array([1.0, 1.0, 4.0])) == pytest.approx(2.0)
    assert kish_effective_size(np.array([])) == 0.0


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (37, 120), (120, 120)])
def test_weighted_wilson_with_equal_weights_is_scipys_wilson(k, n):
    successes = np.arange(n) < k
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")

    for weight in (1.0, 3.7):
        low, high = weighted_wilson_interval(successes, np.full(n, weight))

        assert low == pytest.approx(expected.low, abs=1e-12)
        assert high == pytest.approx(expected.high, abs=1e-12)


def test_weighted_wilson_uses_the_weighted_proportion_at_kish_size():
    # Weighted proportion 4 / 6; Kish size 2 (see above): scipy's Wilson for 2 trials at 2/3
    # is the formula at k = 4/3, which binomtest cannot take, so compare with the closed form.
    successes = np.array([False, False, True])
    low, high = weighted_wilson_interval(successes, np.array([1.0, 1.0, 4.0]))
    p, n, z = 4 / 6, 2.0, stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_weighted_wilson_collapses_to_the_estimate_when_every_output_is_labelled():
    successes = np.array([True, False, False, False])
    assert weighted_wilson_interval(successes, np.ones(4), population=4) == (0.25, 0.25)
    assert weighted_wilson_interval(np.array([], bool), np.array([])) is None


def random_candidates(seed, n=400, k=3):
    rng = np.random.default_rng(seed)
    labels_pass = rng.random(n) < 0.6
    verdicts = (rng.random((n, k)) < np.where(labels_pass[:, None], 0.8, 0.35)).astype(float)
    verdicts[rng.random((n, k)) < 0.05] = np.nan
    weights = rng.uniform(0.5, 2.0, n)
    return labels_pass, verdicts, weights


def test_weighted_rates_are_scikit_learns_with_sample_weight():
    labels_pass, verdicts, weights = random_candidates(1)

    rates = candidate_rates(labels_pass, verdicts, weights)

    for k in range(verdicts.shape[1]):
        decided = ~np.isnan(verdicts[:, k])
        human, said = labels_pass[decided].astype(int), verdicts[decided, k].astype(int)
        coverage = recall_score(human, said, pos_label=0, sample_weight=weights[decided])
        keep = recall_score(human, said, pos_label=1, sample_weight=weights[decided])
        assert rates.coverage[k] == pytest.approx(coverage, abs=1e-12)
        assert rates.keep[k] == pytest.approx(keep, abs=1e-12)
        assert rates.alignment[k] == pytest.approx(2 * coverage * keep / (coverage + keep), abs=1e-12)


def test_the_delta_method_uses_the_gap_estimates_derivative_in_each_weight():
    # For a weighted ratio estimator, ψᵢ is ∂(estimate)/∂wᵢ: the linearisation the variance
    # rests on, checked against scipy's finite differences.
    labels_pass, verdicts, weights = random_candidates(2, n=60)

    def gap(w):
        rates = candidate_rates(labels_pass, verdicts, w)
        return rates.alignment[1] - rates.alignment[0]

    rates = candidate_rates(labels_pass, verdicts, weights)
    numeric = optimize.approx_fprime(weights, gap, 1e-7)

    np.testing.assert_allclose(rates.influence[:, 1] - rates.influence[:, 0], numeric, atol=1e-6)


def test_leader_follows_the_report_card_rule():
    labels_pass = np.array([True] * 8 + [False] * 4)
    verdicts = np.array(
        # column 0: catches every failure but fails 4 of 8 passes (FFR 0.5, over the ceiling);
        # column 1: catches 3 of 4, FFR 0.125; column 2: catches 2 of 4, FFR 0.
        [[0, 1, 1]] * 4 + [[0, 0, 1]] * 1 + [[1, 1, 1]] * 3
        + [[0, 0, 0]] * 2 + [[0, 0, 1]] * 1 + [[0, 1, 1]] * 1,
        dtype=float,
    )
    rates = candidate_rates(labels_pass, verdicts, np.ones(12))

    assert leader(rates, ffr_ceiling=0.25, min_labels=3) == 1
    assert leader(rates, ffr_ceiling=0.25, min_labels=5) is None


def near_tie(n_population=2000, gap_rows=12, seed=0):
    """Two candidates on N outputs that differ only on `gap_rows` failing outputs (column 1
    catches them) and as many passing ones split evenly: a small true alignment gap."""
    rng = np.random.default_rng(seed)
    labels_pass = rng.random(n_population) < 0.7
    base = np.where(labels_pass, rng.random(n_population) < 0.85, rng.random(n_population) < 0.4)
    verdicts = np.stack([base, base], axis=1).astype(float)
    fails = np.flatnonzero(~labels_pass & (base == 1))[:gap_rows]
    verdicts[fails, 1] = 0.0
    passes = np.flatnonzero(labels_pass & (base == 1))[: gap_rows // 2]
    verdicts[passes, 1] = 0.0
    return labels_pass, verdicts


def true_gap(labels_pass, verdicts):
    rates = candidate_rates(labels_pass, verdicts, np.ones(labels_pass.size))
    return float(rates.alignment[1] - rates.alignment[0])


def test_a_near_tie_is_open_on_few_labels_and_settled_on_all_of_them():
    labels_pass, verdicts = near_tie()
    gap = true_gap(labels_pass, verdicts)
    assert 0.0 < gap < 0.02
    rng = np.random.default_rng(5)
    few = rng.choice(labels_pass.size, 100, replace=False)

    early = criterion_settling(labels_pass[few], verdicts[few], ffr_ceiling=0.25, min_labels=3,
                               population=labels_pass.size)
    full = criterion_settling(labels_pass, verdicts, ffr_ceiling=0.25, min_labels=3,
                              population=labels_pass.size)

    assert not early.settled
    assert early.pairs and early.worst_gap > 0.02
    assert full.settled
    assert full.leader == 1
    assert full.pairs == ()
    assert full.worst_gap == pytest.approx(-gap)
    assert full.why == "settled: further labels change it by < 0.02 with 95% confidence (2000 labels)"


def test_a_clearly_better_leader_settles_before_every_output_is_labelled():
    rng = np.random.default_rng(11)
    n = 3000
    labels_pass = rng.random(n) < 0.6
    good = np.where(labels_pass, rng.random(n) < 0.9, rng.random(n) < 0.15)
    poor = np.where(labels_pass, rng.random(n) < 0.9, rng.random(n) < 0.6)
    verdicts = np.stack([poor, good], axis=1).astype(float)
    sample = rng.choice(n, 600, replace=False)

    settling = criterion_settling(labels_pass[sample], verdicts[sample], ffr_ceiling=0.25,
                                  min_labels=3, population=n)

    assert settling.settled
    assert settling.leader == 1
    assert settling.worst_gap < -0.1


def test_a_challenger_surely_over_the_ceiling_cannot_keep_a_criterion_open():
    rng = np.random.default_rng(4)
    n = 800
    labels_pass = rng.random(n) < 0.6
    leader_col = np.where(labels_pass, rng.random(n) < 0.9, rng.random(n) < 0.3)
    # Catches every failure but fails 60% of the passing outputs: alignment higher than the
    # leader's, FFR far above 0.25.
    eager = np.where(labels_pass, rng.random(n) < 0.4, 0.0)
    verdicts = np.stack([leader_col, eager], axis=1).astype(float)

    settling = criterion_settling(labels_pass, verdicts, ffr_ceiling=0.25, min_labels=3,
                                  population=4 * n)

    assert settling.leader == 0
    assert settling.settled


def test_no_qualifying_candidate_is_open_without_pairs():
    labels_pass = np.array([True, True, False])
    verdicts = np.array([[1, 0], [1, 1], [0, 0]], dtype=float)

    settling = criterion_settling(labels_pass, verdicts, ffr_ceiling=0.25, min_labels=3)

    assert (settling.settled, settling.leader, settling.pairs) == (False, None, ())
    assert settling.why == "open: no candidate qualifies yet"


def coverage_rate(labels_pass, verdicts, *, n, reps, seed, weighted):
    """Share of samples whose one-sided 95% bound is at or above the true gap."""
    population = labels_pass.size
    truth = true_gap(labels_pass, verdicts)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        if weighted:
            # Importance sampling with replacement: disagreements drawn 4× as often, weighted
            # by 1 / (N p) so the weighted estimates are consistent.
            disagree = verdicts[:, 0] != verdicts[:, 1]
            p = np.where(disagree, 4.0, 1.0)
            p /= p.sum()
            rows = rng.choice(population, n, p=p)
            weights = 1.0 / (population * p[rows])
            pop = None
        else:
            rows = rng.choice(population, n, replace=False)
            weights, pop = np.ones(n), population
        rates = candidate_rates(labels_pass[rows], verdicts[rows], weights)
        _, upper = gap_upper_bounds(rates, weights, labels_pass[rows], 0, population=pop)
        hits += truth <= upper[1]
    return hits / reps


@pytest.mark.parametrize(("n", "weighted"), [(150, False), (600, False), (300, True)])
def test_the_gap_bound_covers_the_true_gap_at_least_95_percent_of_the_time(n, weighted):
    labels_pass, verdicts = near_tie(gap_rows=40, seed=1)

    rate = coverage_rate(labels_pass, verdicts, n=n, reps=400, seed=7, weighted=weighted)

    # 95% nominal; 400 repetitions put a binomial 2-sigma band of ±0.022 around it.
    assert rate >= 0.93
