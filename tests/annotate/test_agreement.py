import json
import warnings
from fractions import Fraction

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from annotate.agreement import (
    MISSING,
    PairKappa,
    agreement_summary,
    agreement_with_reference,
    cohen_kappa_pairs,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha_nominal,
    mean_cohen_kappa,
    percent_agreement,
)

# Gwet, Handbook of Inter-Rater Reliability (4th ed.), dataset "cac.raw4raters" of the irrCAC
# R package: 4 raters, 12 subjects, categories 1..5 (here 0..4), no rater rated every subject.
_ = MISSING
GWET_FOUR_RATERS = np.array(
    [
        [0, 0, _, 0],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [2, 2, 2, 2],
        [1, 1, 1, 1],
        [0, 1, 2, 3],
        [3, 3, 3, 3],
        [0, 0, 1, 0],
        [1, 1, 1, 1],
        [_, 4, 4, 4],
        [_, _, 0, 0],
        [_, _, 2, _],
    ]
)
# Published by irrCAC (README) to 5 decimals.
GWET_FOUR_RATERS_AC1 = 0.77544
GWET_FOUR_RATERS_FLEISS = 0.76117
GWET_FOUR_RATERS_ALPHA = 0.74342


def random_ratings(seed: int, n_items: int, n_raters: int, n_categories: int, missing: float):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_categories, size=n_items)
    noisy = rng.integers(0, n_categories, size=(n_items, n_raters))
    ratings = np.where(rng.random((n_items, n_raters)) < 0.6, truth[:, None], noisy)
    return np.where(rng.random((n_items, n_raters)) < missing, MISSING, ratings)


def as_krippendorff_data(ratings: np.ndarray) -> np.ndarray:
    return np.where(ratings == MISSING, np.nan, ratings).T.astype(float)


def handbook_prevalence_and_agreement(ratings, n_categories):
    """Gwet's Handbook formulas for r raters with missing ratings, written out item by item."""
    rated, paired_agreement = [], []
    for row in ratings.tolist():
        labels = [label for label in row if label != MISSING]
        if not labels:
            continue
        counts = [labels.count(k) for k in range(n_categories)]
        rated.append([count / len(labels) for count in counts])
        if len(labels) >= 2:
            agreeing = sum(count * (count - 1) for count in counts)
            paired_agreement.append(agreeing / (len(labels) * (len(labels) - 1)))
    prevalence = [sum(item[k] for item in rated) / len(rated) for k in range(n_categories)]
    return prevalence, sum(paired_agreement) / len(paired_agreement)


def handbook_ac1(ratings, n_categories):
    prevalence, observed = handbook_prevalence_and_agreement(ratings, n_categories)
    chance = sum(p * (1 - p) for p in prevalence) / (n_categories - 1)
    return (observed - chance) / (1 - chance)


def handbook_fleiss(ratings, n_categories):
    prevalence, observed = handbook_prevalence_and_agreement(ratings, n_categories)
    chance = sum(p * p for p in prevalence)
    return (observed - chance) / (1 - chance)


class TestGwetHandbookExample:
    def test_percent_agreement_is_nine_of_eleven_multiply_rated_subjects(self):
        # given the handbook data: subjects 2 and 8 agree on 3 of 6 pairs, subject 6 on none,
        # subject 12 has one rating and does not count
        # when / then
        assert percent_agreement(GWET_FOUR_RATERS) == pytest.approx(9 / 11, abs=1e-15)

    def test_gwet_ac1_matches_irrcac(self):
        assert gwet_ac1(GWET_FOUR_RATERS, n_categories=5) == pytest.approx(
            GWET_FOUR_RATERS_AC1, abs=5e-6
        )

    def test_fleiss_kappa_with_missing_ratings_matches_irrcac(self):
        assert fleiss_kappa(GWET_FOUR_RATERS) == pytest.approx(GWET_FOUR_RATERS_FLEISS, abs=5e-6)

    def test_krippendorff_alpha_matches_irrcac_and_krippendorff_package(self):
        # when
        alpha = krippendorff_alpha_nominal(GWET_FOUR_RATERS)
        # then
        assert alpha == pytest.approx(GWET_FOUR_RATERS_ALPHA, abs=5e-6)
        reference = krippendorff.alpha(
            reliability_data=as_krippendorff_data(GWET_FOUR_RATERS),
            level_of_measurement="nominal",
        )
        assert alpha == pytest.approx(reference, abs=1e-12)

    def test_summary_gathers_everything_and_serialises(self):
        # when
        summary = agreement_summary(GWET_FOUR_RATERS, n_categories=5)
        # then
        assert (summary.n_items, summary.n_raters, summary.n_ratings) == (12, 4, 41)
        assert summary.n_items_multiply_rated == 11
        assert summary.percent_agreement == pytest.approx(9 / 11)
        assert summary.gwet_ac1 == pytest.approx(GWET_FOUR_RATERS_AC1, abs=5e-6)
        assert summary.fleiss_kappa == pytest.approx(GWET_FOUR_RATERS_FLEISS, abs=5e-6)
        assert summary.krippendorff_alpha == pytest.approx(GWET_FOUR_RATERS_ALPHA, abs=5e-6)
        assert len(summary.cohen_kappa_pairs) == 6
        assert summary.mean_cohen_kappa == pytest.approx(
            np.mean([pair.kappa for pair in cohen_kappa_pairs(GWET_FOUR_RATERS)])
        )
        payload = json.loads(json.dumps(summary.to_dict()))
        assert payload["cohen_kappa_pairs"][0] == cohen_kappa_pairs(GWET_FOUR_RATERS)[0].to_dict()
        assert payload["n_items"] == 12


class TestTwoRaterHighAgreementParadox:
    # Two raters, 125 items: 118 both pass, 5 (pass, fail), 2 (fail, pass), 0 both fail.
    # By hand: pa = 118/125; marginals of pass 123/125 and 120/125.
    # Cohen: pe = 123*120/125^2 + 2*5/125^2 = 0.94528, kappa = -0.00128/0.05472 = -4/171.
    # Gwet AC1: pi = (123 + 120)/250 = 0.972, pe = 2 * 0.972 * 0.028 = 0.054432,
    #           AC1 = 0.889568 / 0.945568 = 27799/29549.
    ratings = np.array([[1, 1]] * 118 + [[1, 0]] * 5 + [[0, 1]] * 2)

    def test_cohen_kappa_is_slightly_negative(self):
        # when
        [pair] = cohen_kappa_pairs(self.ratings)
        # then
        assert pair == PairKappa(0, 1, 125, pytest.approx(-4 / 171, abs=1e-14))
        assert pair.kappa == pytest.approx(cohen_kappa_score(self.ratings[:, 0], self.ratings[:, 1]))

    def test_gwet_ac1_stays_high(self):
        expected = float(Fraction(27799, 29549))
        assert gwet_ac1(self.ratings) == pytest.approx(expected, abs=1e-14)
        assert expected == pytest.approx(0.9407763376)

    def test_percent_agreement(self):
        assert percent_agreement(self.ratings) == pytest.approx(118 / 125, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
class TestAgainstReferenceImplementations:
    def test_cohen_kappa_pairs_match_scikit_learn_on_overlapping_items(self, seed):
        # given
        ratings = random_ratings(seed, n_items=80, n_raters=4, n_categories=3, missing=0.3)
        # when
        pairs = cohen_kappa_pairs(ratings)
        # then
        assert [(pair.rater_a, pair.rater_b) for pair in pairs] == [
            (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
        ]
        for pair in pairs:
            both = (ratings[:, pair.rater_a] != MISSING) & (ratings[:, pair.rater_b] != MISSING)
            assert pair.n_items == both.sum()
            expected = cohen_kappa_score(ratings[both, pair.rater_a], ratings[both, pair.rater_b])
            assert pair.kappa == pytest.approx(expected, abs=1e-12)
        assert mean_cohen_kappa(ratings) == pytest.approx(np.mean([p.kappa for p in pairs]))

    def test_fleiss_kappa_matches_statsmodels_on_complete_ratings(self, seed):
        # given
        ratings = random_ratings(seed, n_items=60, n_raters=5, n_categories=4, missing=0.0)
        table, _ = aggregate_raters(ratings, n_cat=4)
        # when / then
        assert fleiss_kappa(ratings) == pytest.approx(statsmodels_fleiss_kappa(table), abs=1e-12)

    def test_fleiss_kappa_with_missing_matches_handbook_formula(self, seed):
        ratings = random_ratings(seed, n_items=60, n_raters=5, n_categories=4, missing=0.4)
        assert fleiss_kappa(ratings) == pytest.approx(handbook_fleiss(ratings, 4), abs=1e-12)

    @pytest.mark.parametrize("missing", [0.0, 0.3, 0.8])
    def test_krippendorff_alpha_matches_krippendorff_package(self, seed, missing):
        # given
        ratings = random_ratings(seed, n_items=70, n_raters=4, n_categories=3, missing=missing)
        # when
        alpha = krippendorff_alpha_nominal(ratings)
        # then
        expected = krippendorff.alpha(
            reliability_data=as_krippendorff_data(ratings), level_of_measurement="nominal"
        )
        assert alpha == pytest.approx(expected, abs=1e-12)

    @pytest.mark.parametrize("missing", [0.0, 0.5])
    def test_gwet_ac1_matches_handbook_formula(self, seed, missing):
        ratings = random_ratings(seed, n_items=50, n_raters=6, n_categories=3, missing=missing)
        assert gwet_ac1(ratings, n_categories=3) == pytest.approx(
            handbook_ac1(ratings, 3), abs=1e-12
        )

    def test_gwet_ac1_two_raters_matches_gwet_2008_two_rater_form(self, seed):
        # given two complete raters; Gwet (2008): pe = sum_k pi_k (1 - pi_k) / (q - 1),
        # pi_k = mean of the two raters' marginal shares of k
        ratings = random_ratings(seed, n_items=90, n_raters=2, n_categories=3, missing=0.0)
        shares = [np.bincount(ratings[:, rater], minlength=3) / 90 for rater in (0, 1)]
        prevalence = (shares[0] + shares[1]) / 2
        chance = np.sum(prevalence * (1 - prevalence)) / 2
        observed = np.mean(ratings[:, 0] == ratings[:, 1])
        # when / then
        assert gwet_ac1(ratings, n_categories=3) == pytest.approx(
            (observed - chance) / (1 - chance), abs=1e-12
        )

    def test_percent_agreement_on_two_raters_is_share_of_equal_labels(self, seed):
        ratings = random_ratings(seed, n_items=90, n_raters=2, n_categories=3, missing=0.2)
        both = (ratings != MISSING).all(axis=1)
        assert percent_agreement(ratings) == pytest.approx(
            np.mean(ratings[both, 0] == ratings[both, 1]), abs=1e-15
        )


class TestUndefinedCases:
    def test_everyone_agrees_on_one_category_leaves_kappas_and_alpha_undefined(self):
        # given three raters who all say "pass" (1) on every item
        ratings = np.ones((10, 3), dtype=int)
        # when
        summary = agreement_summary(ratings, n_categories=2)
        # then expected agreement is 1, so the kappas and alpha are 0/0
        assert summary.percent_agreement == 1.0
        assert [pair.kappa for pair in summary.cohen_kappa_pairs] == [None, None, None]
        assert summary.mean_cohen_kappa is None
        assert summary.fleiss_kappa is None
        assert summary.krippendorff_alpha is None
        # and AC1's chance agreement is 0 on a two-category scale, so it is defined
        assert summary.gwet_ac1 == 1.0

    def test_gwet_ac1_is_undefined_on_a_one_category_scale(self):
        # codes are all 0, so the inferred scale has a single category
        assert gwet_ac1(np.zeros((5, 2), dtype=int)) is None
        assert gwet_ac1(np.zeros((5, 2), dtype=int), n_categories=2) == 1.0

    def test_raters_on_disjoint_single_categories_have_kappa_zero_not_none(self):
        # given rater 0 always fails and rater 1 always passes: chance agreement is 0
        ratings = np.array([[0, 1]] * 6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = cohen_kappa_score(ratings[:, 0], ratings[:, 1])
        # when / then
        assert cohen_kappa_pairs(ratings)[0].kappa == 0.0 == expected

    def test_single_rater_has_no_agreement(self):
        # given
        ratings = np.array([[0], [1], [1]])
        # when
        summary = agreement_summary(ratings)
        # then
        assert summary.cohen_kappa_pairs == ()
        assert summary.n_items_multiply_rated == 0
        assert (
            summary.percent_agreement,
            summary.mean_cohen_kappa,
            summary.fleiss_kappa,
            summary.krippendorff_alpha,
            summary.gwet_ac1,
        ) == (None, None, None, None, None)

    def test_raters_who_never_overlap_have_no_kappa(self):
        # given rater 0 labelled the first two items and rater 1 the last two
        ratings = np.array([[0, _], [1, _], [_, 0], [_, 1]])
        # when / then
        assert cohen_kappa_pairs(ratings) == [PairKappa(0, 1, 0, None)]
        assert percent_agreement(ratings) is None
        assert krippendorff_alpha_nominal(ratings) is None
        assert fleiss_kappa(ratings) is None

    def test_no_items(self):
        summary = agreement_summary(np.empty((0, 3), dtype=int))
        assert summary.n_items == 0
        assert summary.percent_agreement is None
        assert summary.mean_cohen_kappa is None

    def test_missing_heavy_data_keeps_only_the_pairable_item(self):
        # given one item rated twice, with different labels, and the rest rated once
        ratings = np.array([[0, 1, _], [_, _, 1], [0, _, _], [_, 1, _]])
        # when / then only the pairable item counts: its two values coincide as (0, 1) and
        # (1, 0), so observed and expected disagreement are both 1 and alpha = 1 - 1/1 = 0
        assert percent_agreement(ratings) == 0.0
        expected = krippendorff.alpha(
            reliability_data=as_krippendorff_data(ratings), level_of_measurement="nominal"
        )
        assert krippendorff_alpha_nominal(ratings) == pytest.approx(expected, abs=1e-12)
        assert krippendorff_alpha_nominal(ratings) == 0.0

    @pytest.mark.parametrize(
        "bad",
        [np.array([0, 1, 1]), np.array([[0, -2]]), np.array([[0.5, 1.0]])],
    )
    def test_invalid_ratings_are_rejected(self, bad):
        with pytest.raises(ValueError):
            percent_agreement(bad)

    def test_scale_smaller_than_an_observed_code_is_rejected(self):
        with pytest.raises(ValueError):
            gwet_ac1(np.array([[0, 2]]), n_categories=2)


class TestAgreementWithReference:
    def test_each_annotator_and_pooled_against_the_validator(self):
        # given two annotators and a validator's verdicts (1 = pass)
        ratings = np.array([[1, 1], [1, 0], [0, 0], [0, _], [1, 1], [_, 1]])
        validator = np.array([1, 1, 0, 1, 0, _])
        # when
        result = agreement_with_reference(ratings, validator)
        # then annotator 0 agrees on items 0, 1, 2 of 0..4: 3/5;
        # annotator 1 on items 0, 2 of {0, 1, 2, 4}: 2/4; pooled 5/9
        assert [(r.rater, r.n_items) for r in result.raters] == [(0, 5), (1, 4)]
        assert result.raters[0].percent_agreement == pytest.approx(3 / 5)
        assert result.raters[1].percent_agreement == pytest.approx(2 / 4)
        assert result.n_pairs == 9
        assert result.percent_agreement == pytest.approx(5 / 9)
        # annotator 0: labels 1,1,0,0,1 vs 1,1,0,1,0 -> pe = 3/5*3/5 + 2/5*2/5 = 13/25
        assert result.raters[0].kappa == pytest.approx((3 / 5 - 13 / 25) / (12 / 25))
        pooled_labels = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1])
        pooled_validator = np.array([1, 1, 0, 1, 0, 1, 1, 0, 0])
        assert result.kappa == pytest.approx(
            cohen_kappa_score(pooled_labels, pooled_validator), abs=1e-12
        )
        assert result.raters[1].kappa == pytest.approx(
            cohen_kappa_score([1, 0, 0, 1], [1, 1, 0, 0]), abs=1e-12
        )
        assert json.loads(json.dumps(result.to_dict()))["raters"][1]["n_items"] == 4

    def test_annotator_without_overlap_has_undefined_agreement(self):
        ratings = np.array([[1, _], [0, _]])
        result = agreement_with_reference(ratings, np.array([1, 1]))
        assert result.raters[1].to_dict() == {
            "rater": 1, "n_items": 0, "percent_agreement": None, "kappa": None
        }
        assert result.raters[0].percent_agreement == 0.5
        assert result.raters[0].kappa == 0.0

    def test_reference_of_wrong_length_is_rejected(self):
        with pytest.raises(ValueError):
            agreement_with_reference(np.array([[1, 1]]), np.array([1, 0]))
