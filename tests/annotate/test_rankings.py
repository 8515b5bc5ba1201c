import json
import time

import numpy as np
import pytest
from scipy.optimize import brentq, minimize
from scipy.special import expit, log_expit
from scipy.stats import kendalltau, norm
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.proportion import proportion_confint

from annotate.rankings import (
    DEFAULT_PRIOR_PRECISION,
    Z_RANKINGS,
    SystemEstimate,
    bradley_terry,
    elo,
    kendall_tau,
    pass_rates,
    pass_rates_control_variate,
    pass_rates_ipw,
)
from annotate.statistics import wilson_interval

Z_95 = norm.ppf(0.975)


def simulated_comparisons(seed, strengths, n_comparisons, tie_rate=0.0):
    rng = np.random.default_rng(seed)
    n_systems = len(strengths)
    first = rng.integers(0, n_systems, n_comparisons)
    second = (first + rng.integers(1, n_systems, n_comparisons)) % n_systems
    first_wins = rng.random(n_comparisons) < expit(strengths[first] - strengths[second])
    ties = rng.random(n_comparisons) < tie_rate
    winners = np.where(first_wins, first, second)
    losers = np.where(first_wins, second, first)
    return winners, losers, ties


def penalised_negative_log_likelihood(scores, winners, losers, ties, prior_precision):
    """The same model written per comparison: a tie is half a win each way."""
    difference = scores[winners] - scores[losers]
    credit = np.where(ties, 0.5, 1.0)
    log_likelihood = np.sum(credit * log_expit(difference))
    log_likelihood += np.sum(np.where(ties, 0.5, 0.0) * log_expit(-difference))
    return -log_likelihood + 0.5 * prior_precision * np.sum(scores**2)


def penalised_negative_log_likelihood_gradient(scores, winners, losers, ties, prior_precision):
    # d/dd [c log sigmoid(d) + t log sigmoid(-d)] = c (1 - sigmoid(d)) - t sigmoid(d)
    difference = scores[winners] - scores[losers]
    credit, tie_credit = np.where(ties, 0.5, 1.0), np.where(ties, 0.5, 0.0)
    slope = credit * (1 - expit(difference)) - tie_credit * expit(difference)
    gradient = np.zeros_like(scores)
    np.add.at(gradient, winners, slope)
    np.add.at(gradient, losers, -slope)
    return -gradient + prior_precision * scores


class TestBradleyTerry:
    def test_recovers_the_order_of_known_strengths(self):
        # given 6 systems with well separated strengths and 6000 comparisons
        strengths = np.array([1.5, -0.5, 0.8, -1.2, 0.1, 2.2])
        winners, losers, ties = simulated_comparisons(0, strengths, 6000)
        # when
        result = bradley_terry(winners, losers, ties, 6, n_bootstrap=0)
        # then
        assert result.ranking() == [5, 0, 2, 4, 1, 3]
        np.testing.assert_allclose(result.scores, strengths - strengths.mean(), atol=0.12)
        assert result.scores.sum() == pytest.approx(0.0, abs=1e-12)

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_matches_direct_minimisation_of_the_penalised_likelihood(self, seed):
        # given comparisons with ties, and a prior strong enough to matter
        strengths = np.array([0.3, -0.4, 1.0, 0.0, -0.9])
        winners, losers, ties = simulated_comparisons(seed, strengths, 300, tie_rate=0.2)
        # when
        result = bradley_terry(winners, losers, ties, 5, n_bootstrap=0, prior_precision=0.5)
        # then
        direct = minimize(
            penalised_negative_log_likelihood,
            np.zeros(5),
            args=(winners, losers, ties, 0.5),
            jac=penalised_negative_log_likelihood_gradient,
            method="L-BFGS-B",
            options={"gtol": 1e-12, "ftol": 1e-15},
        )
        assert direct.success
        np.testing.assert_allclose(result.scores, direct.x - direct.x.mean(), atol=1e-6)

    def test_matches_l2_logistic_regression_on_score_differences(self):
        # given comparisons written as rows e_i - e_j (i < j) with label "i won"; a tie is
        # two half-weight rows, one per outcome
        strengths = np.array([0.5, -0.2, 0.9, -1.1])
        winners, losers, ties = simulated_comparisons(4, strengths, 400, tie_rate=0.15)
        first, second = np.minimum(winners, losers), np.maximum(winners, losers)
        design = np.zeros((winners.size, 4))
        design[np.arange(winners.size), first] = 1.0
        design[np.arange(winners.size), second] = -1.0
        first_won = (winners == first).astype(int)
        features = np.vstack([design, design[ties]])
        labels = np.concatenate([np.where(ties, 1, first_won), np.zeros(ties.sum(), int)])
        weights = np.concatenate([np.where(ties, 0.5, 1.0), np.full(ties.sum(), 0.5)])
        # sklearn minimises ||beta||^2 / 2 + C * loss, i.e. prior precision 1 / C
        model = LogisticRegression(
            C=1.0 / 0.2, fit_intercept=False, solver="newton-cholesky", tol=1e-12, max_iter=500
        ).fit(features, labels, sample_weight=weights)
        # when
        result = bradley_terry(winners, losers, ties, 4, n_bootstrap=0, prior_precision=0.2)
        # then
        np.testing.assert_allclose(result.scores, model.coef_[0] - model.coef_[0].mean(), atol=1e-6)

    def test_an_undefeated_system_stays_finite_through_the_prior(self):
        # given A beats B three times and nothing else happens; by symmetry scores are +-t
        # with the stationarity condition 3 (1 - sigmoid(2t)) = prior_precision * t
        winners, losers, ties = np.array([0, 0, 0]), np.array([1, 1, 1]), np.zeros(3, bool)
        expected = brentq(lambda t: 3 * (1 - expit(2 * t)) - DEFAULT_PRIOR_PRECISION * t, 0, 50)
        # when
        result = bradley_terry(winners, losers, ties, 2, n_bootstrap=50)
        # then
        assert result.scores == pytest.approx([expected, -expected], abs=1e-9)
        assert 2.0 < expected < 3.0
        assert result.systems[0].win_probability == pytest.approx(expit(expected))
        assert result.systems[0].wins == 3.0 and result.systems[1].wins == 0.0

    def test_a_tie_is_half_a_win_for_each_side(self):
        # given A beats B once and they tie once: A has 1.5 wins of 2, so
        # 1.5 - 2 sigmoid(2t) = prior_precision * t
        winners, losers, ties = np.array([0, 1]), np.array([1, 0]), np.array([False, True])
        expected = brentq(lambda t: 1.5 - 2 * expit(2 * t) - DEFAULT_PRIOR_PRECISION * t, 0, 5)
        # when
        result = bradley_terry(winners, losers, ties, 2, n_bootstrap=0)
        # then
        assert result.scores == pytest.approx([expected, -expected], abs=1e-9)
        assert expected == pytest.approx(np.log(3) / 2, abs=0.01)
        assert [system.wins for system in result.systems] == [1.5, 0.5]

    def test_only_ties_give_equal_scores(self):
        result = bradley_terry(np.array([0, 2]), np.array([1, 0]), np.array([True, True]), 3)
        assert result.scores == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)

    def test_disconnected_groups_are_each_centred_by_the_prior(self):
        # given {0, 1} and {2, 3} never meet and show the same record
        winners, losers = np.array([0, 0, 1, 2, 2, 3]), np.array([1, 1, 0, 3, 3, 2])
        # when
        result = bradley_terry(winners, losers, np.zeros(6, bool), 4, n_bootstrap=0)
        # then
        assert result.scores[0] == pytest.approx(result.scores[2], abs=1e-12)
        assert result.scores[1] == pytest.approx(result.scores[3], abs=1e-12)
        assert result.scores[0] == pytest.approx(-result.scores[1], abs=1e-12)

    def test_a_system_without_comparisons_sits_at_zero_without_interval(self):
        # when
        result = bradley_terry(np.array([0, 1, 0]), np.array([1, 0, 1]), np.zeros(3, bool), 3)
        # then
        absent = result.systems[2]
        assert (absent.n_comparisons, absent.ci_low, absent.ci_high) == (0, None, None)
        assert absent.score == pytest.approx(0.0, abs=1e-12)
        assert result.systems[0].n_comparisons == 3

    def test_bootstrap_intervals_are_reproducible_and_cover_the_estimate(self):
        # given
        strengths = np.array([0.0, 0.5, 1.0])
        winners, losers, ties = simulated_comparisons(5, strengths, 900, tie_rate=0.1)
        # when
        first = bradley_terry(winners, losers, ties, 3, seed=7)
        again = bradley_terry(winners, losers, ties, 3, seed=7)
        other = bradley_terry(winners, losers, ties, 3, seed=8)
        # then
        assert first == again
        assert first.systems[0].ci_low != other.systems[0].ci_low
        for system in first.systems:
            assert system.ci_low < system.score < system.ci_high

    def test_bootstrap_width_agrees_with_the_fisher_information(self):
        # given
        strengths = np.array([0.4, -0.3, 0.0, 0.9, -1.0])
        winners, losers, ties = simulated_comparisons(6, strengths, 3000)
        # when
        result = bradley_terry(winners, losers, ties, 5, n_bootstrap=1000, seed=1)
        # then the percentile width is close to 2 * 1.96 * the asymptotic standard error of the
        # centred scores, from the inverse of the penalised observed information
        scores = result.scores
        counts = np.zeros((5, 5))
        np.add.at(counts, (winners, losers), 1.0)
        encounters = counts + counts.T
        probability = expit(scores[:, None] - scores[None, :])
        information = encounters * probability * (1 - probability)
        curvature = np.diag(information.sum(axis=1)) - information + DEFAULT_PRIOR_PRECISION * np.eye(5)
        centring = np.eye(5) - 1 / 5
        covariance = centring @ np.linalg.inv(curvature) @ centring
        expected_width = 2 * Z_95 * np.sqrt(np.diag(covariance))
        width = np.array([system.ci_high - system.ci_low for system in result.systems])
        np.testing.assert_allclose(width, expected_width, rtol=0.12)

    def test_two_hundred_resamples_of_ten_thousand_comparisons_take_well_under_a_second(self):
        # given
        strengths = np.linspace(-1.5, 1.5, 14)
        winners, losers, ties = simulated_comparisons(9, strengths, 10_000, tie_rate=0.1)
        # when
        started = time.perf_counter()
        result = bradley_terry(winners, losers, ties, 14, n_bootstrap=200)
        elapsed = time.perf_counter() - started
        # then
        assert elapsed < 0.5
        assert result.n_comparisons == 10_000 and result.n_bootstrap == 200

    def test_no_comparisons_at_all(self):
        empty = np.array([], dtype=int)
        result = bradley_terry(empty, empty, np.array([], dtype=bool), 2)
        assert result.scores.tolist() == [0.0, 0.0]
        assert [(s.ci_low, s.ci_high, s.win_probability) for s in result.systems] == [
            (None, None, 0.5), (None, None, 0.5)
        ]

    def test_serialises_to_json(self):
        result = bradley_terry(np.array([0, 1]), np.array([1, 2]), np.array([False, True]), 3)
        payload = json.loads(json.dumps(result.to_dict()))
        assert payload["n_comparisons"] == 2
        assert payload["prior_precision"] == DEFAULT_PRIOR_PRECISION
        assert [system["system"] for system in payload["systems"]] == [0, 1, 2]
        assert payload["systems"][1] == result.systems[1].to_dict()

    @pytest.mark.parametrize(
        ("winners", "losers", "ties"),
        [
            ([0, 1], [1, 1], [False, False]),
            ([0, 3], [1, 0], [False, False]),
            ([0, 1], [1], [False, False]),
        ],
    )
    def test_invalid_comparisons_are_rejected(self, winners, losers, ties):
        with pytest.raises(ValueError):
            bradley_terry(np.array(winners), np.array(losers), np.array(ties), 3)


class TestElo:
    def test_hand_computed_sequence(self):
        # given A beats B, B ties C, C beats A, all starting at 1000 with K = 4:
        # 1) E_A = 0.5, A +2 -> A 1002, B 998
        # 2) E_B = 1 / (1 + 10^(2/400)) = 0.4971218004, B +4 * (0.5 - E_B) = +0.0115127983
        # 3) E_C = 1 / (1 + 10^((1002 - 999.9884872017) / 400)) = 0.4971052327,
        #    C +4 * (1 - E_C) = +2.0115790691
        ratings = elo(np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([False, True, False]), 3)
        # then
        np.testing.assert_allclose(
            ratings, [999.9884209309, 998.0115127983, 1002.0000662708], atol=1e-9
        )

    def test_is_zero_sum_and_depends_on_order(self):
        winners, losers, ties = simulated_comparisons(3, np.array([0.0, 1.0, -1.0]), 200, 0.1)
        forward = elo(winners, losers, ties, 3)
        backward = elo(winners[::-1], losers[::-1], ties[::-1], 3)
        assert forward.sum() == pytest.approx(3000.0, abs=1e-9)
        assert not np.allclose(forward, backward)

    def test_k_and_initial_rating(self):
        ratings = elo(np.array([1]), np.array([0]), np.array([False]), 2, k=32, initial=1500)
        np.testing.assert_allclose(ratings, [1484.0, 1516.0])


class TestWilsonInterval:
    @pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (10, 10), (1, 1), (57, 211)])
    def test_matches_statsmodels(self, successes, n):
        expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
        assert wilson_interval(successes, n, z=Z_95) == pytest.approx(expected, abs=1e-12)

    def test_zero_successes_by_hand(self):
        # upper bound (z^2 / n) / (1 + z^2 / n) with z = 1.96, n = 10
        assert wilson_interval(0, 10, z=Z_RANKINGS) == pytest.approx((0.0, 0.2775401687666165), abs=1e-15)

    def test_no_observations_has_no_interval(self):
        assert wilson_interval(0, 0) is None

    def test_more_successes_than_trials_is_rejected(self):
        with pytest.raises(ValueError):
            wilson_interval(5, 4)


def population_draws(seed, n_draws, population_size):
    """Validator verdicts s and human verdicts h that agree 90% of the time."""
    rng = np.random.default_rng(seed)
    validator = (rng.random((n_draws, population_size)) < 0.5).astype(float)
    agrees = rng.random((n_draws, population_size)) < 0.9
    human = np.where(agrees, validator, 1.0 - validator)
    return rng, human, validator


def flat(values_by_draw, chosen):
    draw, item = np.nonzero(chosen)
    return draw, values_by_draw[draw, item]


class TestPassRates:
    def test_plain_pass_rates_with_wilson_intervals(self):
        # given system 0 passes 3 of 4, system 1 fails both, system 2 has no labels
        estimates = pass_rates(np.array([0, 0, 1, 0, 1, 0]), np.array([1, 1, 0, 0, 0, 1]), 3)
        # then
        assert [(e.system, e.n, e.pass_rate) for e in estimates] == [
            (0, 4, 0.75), (1, 2, 0.0), (2, 0, None)
        ]
        assert (estimates[0].ci_low, estimates[0].ci_high) == pytest.approx(
            proportion_confint(3, 4, method="wilson"), abs=1e-4
        )
        assert estimates[2] == SystemEstimate(2, 0, None, None, None)
        assert json.loads(json.dumps(estimates[1].to_dict()))["pass_rate"] == 0.0

    def test_ipw_by_hand(self):
        # given a pass picked with probability 1/2 and a fail with probability 1/4:
        # weights 2 and 4, so the Hájek estimate is 2 / 6
        estimates = pass_rates_ipw(np.array([0, 0]), np.array([True, False]), [0.5, 0.25], 1)
        assert estimates[0].pass_rate == pytest.approx(1 / 3, abs=1e-15)
        assert estimates[0].n == 2

    def test_ipw_with_equal_probabilities_is_the_plain_estimate(self):
        rng = np.random.default_rng(0)
        systems, human = rng.integers(0, 4, 200), rng.random(200) < 0.3
        plain = pass_rates(systems, human, 5)
        weighted = pass_rates_ipw(systems, human, np.full(200, 0.1), 5)
        for expected, actual in zip(plain, weighted, strict=True):
            assert actual.n == expected.n
            if expected.n == 0:
                assert actual == expected
                continue
            assert actual.pass_rate == pytest.approx(expected.pass_rate, abs=1e-12)
            assert actual.ci_low == pytest.approx(expected.ci_low, abs=1e-9)
            assert actual.ci_high == pytest.approx(expected.ci_high, abs=1e-9)

    def test_ipw_removes_the_bias_of_an_informative_selector(self):
        # given 400 independent labelling rounds over a population of 2000 outputs, where a
        # selector picks outputs the validator passes four times as often (Poisson sampling,
        # about 200 labels a round)
        rng, human, validator = population_draws(1, 400, 2000)
        probability = np.where(validator == 1.0, 0.16, 0.04)
        chosen = rng.random(human.shape) < probability
        draw, labels = flat(human, chosen)
        _, chosen_probability = flat(probability, chosen)
        truth = human.mean(axis=1)
        # when each round is estimated as its own "system"
        weighted = pass_rates_ipw(draw, labels, chosen_probability, 400)
        naive = pass_rates(draw, labels, 400)
        # then
        weighted_error = np.array([e.pass_rate for e in weighted]) - truth
        naive_error = np.array([e.pass_rate for e in naive]) - truth
        # Hájek's ratio keeps an O(1/n) bias, about 0.003 here, far below the selection bias
        assert abs(weighted_error.mean()) < 0.008
        assert naive_error.mean() > 0.2
        covered = np.mean([e.ci_low <= t <= e.ci_high for e, t in zip(weighted, truth, strict=True)])
        assert 0.92 <= covered <= 0.98

    def test_control_variate_by_hand(self):
        # given h = 1,1,0,0 and s = 1,1,1,0 with E[s] = 0.5 over all outputs:
        # Cov(h, s) = 0.125, Var(s) = 0.1875, alpha = 2/3, mu = 0.5 - 2/3 * (0.75 - 0.5) = 1/3
        estimates = pass_rates_control_variate(
            np.array([0, 0, 0, 0]), np.array([1, 1, 0, 0]), np.array([1, 1, 1, 0]), [0.5]
        )
        assert estimates[0].pass_rate == pytest.approx(1 / 3, abs=1e-15)
        assert estimates[0].ci_low < 1 / 3 < estimates[0].ci_high

    def test_control_variate_falls_back_to_the_plain_mean_where_alpha_is_undefined(self):
        # given system 0 with a constant validator, system 1 without a known E[s]
        systems = np.array([0, 0, 0, 1, 1, 1])
        human = np.array([1, 0, 1, 1, 1, 0])
        validator = np.array([1, 1, 1, 1, 0, 0])
        # when
        estimates = pass_rates_control_variate(systems, human, validator, [0.2, np.nan, 0.5])
        # then
        plain = pass_rates(systems, human, 3)
        assert estimates[0].pass_rate == pytest.approx(2 / 3, abs=1e-15)
        assert estimates[1].pass_rate == pytest.approx(2 / 3, abs=1e-15)
        assert estimates[0].ci_low == pytest.approx(plain[0].ci_low, abs=1e-12)
        assert estimates[2] == SystemEstimate(2, 0, None, None, None)

    def test_control_variate_is_unbiased_and_beats_the_plain_mean(self):
        # given 2000 rounds, each labelling a simple random sample of 100 of 2000 outputs
        n_draws = 2000
        rng, human, validator = population_draws(2, n_draws, 2000)
        sample = np.argsort(rng.random(human.shape), axis=1)[:, :100]
        chosen = np.zeros(human.shape, bool)
        np.put_along_axis(chosen, sample, True, axis=1)
        draw, labels = flat(human, chosen)
        _, verdicts = flat(validator, chosen)
        truth = human.mean(axis=1)
        # when
        controlled = pass_rates_control_variate(draw, labels, verdicts, validator.mean(axis=1))
        plain = pass_rates(draw, labels, n_draws)
        # then: with corr(h, s) = 0.8 the variance should drop to about 1 - 0.8^2 = 0.36
        controlled_error = np.array([e.pass_rate for e in controlled]) - truth
        plain_error = np.array([e.pass_rate for e in plain]) - truth
        assert abs(controlled_error.mean()) < 0.002
        assert controlled_error.var() / plain_error.var() < 0.45
        covered = np.mean([e.ci_low <= t <= e.ci_high for e, t in zip(controlled, truth, strict=True)])
        assert 0.92 <= covered <= 0.98

    def test_control_variate_with_selection_probabilities_is_unbiased(self):
        # given the informative selector of the IPW test, plus the validator's mean
        rng, human, validator = population_draws(3, 400, 2000)
        probability = np.where(validator == 1.0, 0.08, 0.02)
        chosen = rng.random(human.shape) < probability
        draw, labels = flat(human, chosen)
        _, verdicts = flat(validator, chosen)
        _, chosen_probability = flat(probability, chosen)
        truth = human.mean(axis=1)
        # when
        estimates = pass_rates_control_variate(
            draw, labels, verdicts, validator.mean(axis=1), probability=chosen_probability
        )
        weighted_only = pass_rates_ipw(draw, labels, chosen_probability, 400)
        # then
        error = np.array([e.pass_rate for e in estimates]) - truth
        weighted_error = np.array([e.pass_rate for e in weighted_only]) - truth
        assert abs(error.mean()) < 0.004
        assert error.var() < 0.5 * weighted_error.var()

    @pytest.mark.parametrize("probability", [[0.5, 0.0], [0.5, 1.5], [0.5]])
    def test_invalid_probabilities_are_rejected(self, probability):
        with pytest.raises(ValueError):
            pass_rates_ipw(np.array([0, 0]), np.array([1, 0]), probability, 1)

    def test_invalid_grades_are_rejected(self):
        with pytest.raises(ValueError):
            pass_rates(np.array([0, 3]), np.array([1, 0]), 2)
        with pytest.raises(ValueError):
            pass_rates(np.array([0, 1]), np.array([1, 2]), 2)


class TestKendallTau:
    def test_hand_computed(self):
        # (1,2,3) vs (1,3,2): 2 concordant pairs, 1 discordant, no ties -> 1/3
        assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3, abs=1e-15)

    @pytest.mark.parametrize("seed", range(3))
    def test_matches_scipy_tau_b_with_ties(self, seed):
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, 4, 12), rng.integers(0, 4, 12)
        assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-15)

    def test_missing_scores_are_dropped(self):
        assert kendall_tau([1, None, 3, 2], [1, 5, np.nan, 2]) == 1.0

    def test_undefined_cases(self):
        assert kendall_tau([1, 1, 1], [1, 2, 3]) is None
        assert kendall_tau([1], [1]) is None
        assert kendall_tau([1, np.nan], [1, 2]) is None
