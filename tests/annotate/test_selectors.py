"""Active selectors and the chooser (DESIGN §4.3): pure numpy, no database."""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.proportion import proportion_confint

from annotate.embeddings_math import embed_texts
from annotate.models import Project
from annotate.selectors import (
    EMBEDDING_SELECTORS,
    PAIRWISE_SELECTORS,
    SELECTOR_CHOICES,
    SELECTORS,
    ScoredPool,
    SelectionContext,
    choose,
    choose_many,
    clear_cache,
    get_selector,
    selector_choices,
)
from annotate.selectors import base as base_module
from annotate.selectors.base import derived
from annotate.selectors.embedding_based import NearestLabelled
from annotate.selectors.evidence_based import (
    MadValidatorsSelector,
    VarianceSelector,
    alignment_scores,
    output_metric,
    sample_metric_variance,
)
from annotate.selectors.model_based import fit_irt_2pl, fit_logistic
from annotate.selectors.ranking import PRIOR_GRADES, system_standing
from annotate.statistics import wilson_intervals

NAN = np.nan


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def make_context(
    evidence,
    *,
    systems=None,
    samples=None,
    human=None,
    candidate=None,
    criteria=None,
    human_by_criterion=None,
    embeddings=None,
    evidence_scores=None,
    n_labelled=None,
    **names,
) -> SelectionContext:
    evidence = np.asarray(evidence, dtype=np.float32)
    n = evidence.shape[0]
    human = np.full(n, NAN, np.float32) if human is None else np.asarray(human, np.float32)
    return SelectionContext(
        candidate_mask=np.isnan(human) if candidate is None else np.asarray(candidate, bool),
        system_codes=np.zeros(n, np.int32) if systems is None else np.asarray(systems, np.int32),
        sample_codes=np.arange(n, dtype=np.int32) if samples is None else np.asarray(
            samples, np.int32
        ),
        evidence=evidence,
        evidence_scores=evidence_scores,
        validator_criteria=(
            np.full(evidence.shape[1], -1, np.int32) if criteria is None
            else np.asarray(criteria, np.int32)
        ),
        human=human,
        human_by_criterion=human_by_criterion,
        embeddings=None if embeddings is None else np.asarray(embeddings, np.float32),
        n_labelled=int((~np.isnan(human)).sum()) if n_labelled is None else n_labelled,
        **names,
    )


def scores_by_row(scored: ScoredPool) -> dict[int, float]:
    return dict(zip(scored.indices.tolist(), scored.scores.tolist(), strict=True))


# ---------------------------------------------------------------------------------------------
# Every selector


def busy_project() -> SelectionContext:
    """4 systems × 30 samples, 6 validators over two criteria, 30 labels, 10 claimed rows."""
    rng = np.random.default_rng(3)
    n_systems, n_samples = 4, 30
    n = n_systems * n_samples
    evidence = (rng.random((n, 6)) < 0.6).astype(np.float32)
    evidence[rng.random((n, 6)) < 0.1] = NAN
    scores = np.where(rng.random((n, 6)) < 0.5, rng.normal(size=(n, 6)), NAN).astype(np.float32)
    human = np.full(n, NAN, np.float32)
    labelled = rng.choice(n, 30, replace=False)
    human[labelled] = rng.random(30) < 0.5
    candidate = np.isnan(human)
    candidate[rng.choice(np.flatnonzero(candidate), 10, replace=False)] = False
    by_criterion = np.full((n, 2), NAN, np.float32)
    by_criterion[labelled] = rng.random((30, 2)) < 0.6
    embeddings = rng.normal(size=(n, 5)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return make_context(
        evidence,
        systems=np.repeat(np.arange(n_systems), n_samples),
        samples=np.tile(np.arange(n_samples), n_systems),
        human=human,
        candidate=candidate,
        criteria=[-1, -1, 0, 0, 1, 1],
        human_by_criterion=by_criterion,
        embeddings=embeddings,
        evidence_scores=scores,
        n_labelled=30,
    )


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_scores_exactly_the_pool(name):
    ctx = busy_project()
    selector = get_selector(name)

    scored = selector.score(ctx, np.random.default_rng(0))

    pool = set(np.flatnonzero(ctx.candidate_mask).tolist())
    assert scored.indices.dtype == np.int64
    assert scored.scores.shape == scored.indices.shape
    assert np.isfinite(scored.scores).all()
    assert set(scored.indices.tolist()) <= pool
    if selector.pairwise:
        assert scored.partners is not None
        assert set(scored.partners.tolist()) <= pool
        np.testing.assert_array_equal(
            ctx.sample_codes[scored.indices], ctx.sample_codes[scored.partners]
        )
        assert (ctx.system_codes[scored.indices] != ctx.system_codes[scored.partners]).all()
    else:
        assert scored.partners is None
        assert sorted(scored.indices.tolist()) == sorted(pool)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_only_ever_chooses_pool_rows(name):
    ctx = busy_project()
    selector = get_selector(name)
    pool = set(np.flatnonzero(ctx.candidate_mask).tolist())

    choices = [choose(selector, ctx, epsilon=0.3, rng=np.random.default_rng(s)) for s in range(40)]

    assert all(choice.row in pool for choice in choices)
    assert all(choice.why for choice in choices)
    assert all(0 < choice.probability <= 1 for choice in choices)
    if selector.pairwise:
        assert all(choice.row_b in pool for choice in choices)
    else:
        assert all(choice.row_b is None for choice in choices)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_is_deterministic_under_a_seeded_rng(name):
    ctx = busy_project()

    first = choose_many(get_selector(name), ctx, k=5, epsilon=0.2, rng=np.random.default_rng(11))
    clear_cache()
    cold_again = choose_many(
        get_selector(name), replace(ctx), k=5, epsilon=0.2, rng=np.random.default_rng(11)
    )
    warm_again = choose_many(
        get_selector(name), replace(ctx), k=5, epsilon=0.2, rng=np.random.default_rng(11)
    )

    assert len(first) == 5
    assert first == cold_again == warm_again


@pytest.mark.parametrize("name", ["uncertainty", "irt"])
def test_warm_started_fits_agree_with_a_fit_from_scratch(name):
    ctx = busy_project()
    human = ctx.human.copy()
    human[np.flatnonzero(ctx.labelled_mask)[-1]] = NAN
    get_selector(name).score(replace(ctx, human=human), np.random.default_rng(0))

    warm = get_selector(name).score(ctx, np.random.default_rng(0))
    clear_cache()
    cold = get_selector(name).score(ctx, np.random.default_rng(0))

    np.testing.assert_allclose(warm.scores, cold.scores, atol=1e-3)


def test_registry_names_match_the_project_setting_choices():
    assert list(SELECTORS) == [
        "random", "evalgen", "variance", "metric_var", "mad_validators", "mad_systems",
        "judge_choice", "uncertainty", "diversity", "irt", "ranking_uncertainty", "validator_choice",
        "both_goals",
    ]
    assert SELECTOR_CHOICES == [
        ("random", "Random"),
        ("evalgen", "EvalGen priority"),
        ("variance", "Validator disagreement"),
        ("metric_var", "Metric variance across systems"),
        ("mad_validators", "MAD between validators"),
        ("mad_systems", "MAD between systems (pairwise)"),
        ("judge_choice", "Judge choice (pairwise)"),
        ("uncertainty", "Uncertainty"),
        ("diversity", "Diversity (k-center)"),
        ("irt", "IRT (Fisher information)"),
        ("ranking_uncertainty", "Ranking uncertainty"),
        ("validator_choice", "Validator choice (sampled disagreement)"),
        ("both_goals", "Ranking and validator choice"),
    ]
    assert list(Project._meta.get_field("default_selector").choices) == SELECTOR_CHOICES
    assert [name for name, cls in SELECTORS.items() if cls.pairwise] == ["mad_systems", "judge_choice"]
    assert PAIRWISE_SELECTORS == {"mad_systems", "judge_choice"}
    assert EMBEDDING_SELECTORS == {"diversity", "mad_systems"}


def test_a_new_selector_needs_no_migration():
    # The field records the registry's callable, not a copy of the list.
    field = Project._meta.get_field("default_selector")
    assert field.deconstruct()[3]["choices"] is selector_choices


def test_get_selector_passes_parameters_and_rejects_unknown_names():
    assert get_selector("mad_systems", diversity_weight=0.2).diversity_weight == 0.2
    with pytest.raises(ValueError, match="unknown selector 'entropy'"):
        get_selector("entropy")


def test_context_rejects_misaligned_arrays():
    with pytest.raises(ValueError, match="human must have shape"):
        SelectionContext(
            candidate_mask=np.ones(3, bool), system_codes=np.zeros(3, np.int32),
            sample_codes=np.arange(3, dtype=np.int32), evidence=np.ones((3, 1), np.float32),
            evidence_scores=None, validator_criteria=np.array([-1], np.int32),
            human=np.full(2, NAN, np.float32), human_by_criterion=None, embeddings=None,
            n_labelled=0,
        )


# ---------------------------------------------------------------------------------------------
# Each selector on a context whose right answer is known


def test_random_ties_every_pool_row_so_each_has_probability_one_over_p():
    ctx = make_context(np.ones((5, 1)), human=[1, NAN, NAN, NAN, NAN])

    choice = choose(get_selector("random"), ctx, epsilon=0.1, rng=np.random.default_rng(0))

    assert choice.probability == pytest.approx(0.25, abs=1e-15)


def evalgen_context(n_labelled: int) -> SelectionContext:
    # Pass rates over all five outputs: 0.8, 0.5 (one missing), 0.4.
    evidence = [[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, NAN, 1], [1, 0, 0]]
    return make_context(evidence, human=[NAN, NAN, NAN, NAN, 0], n_labelled=n_labelled)


def test_evalgen_priority_sums_the_pass_rates_of_failing_validators():
    scored = get_selector("evalgen").score(evalgen_context(0), np.random.default_rng(0))

    assert scored.indices.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(scored.scores, [0.4, 0.9, 0.8, 0.0], atol=1e-6)


def test_evalgen_alternates_between_likely_bad_and_likely_good():
    picks = [
        choose(get_selector("evalgen"), evalgen_context(n), epsilon=0.0,
               rng=np.random.default_rng(n))
        for n in range(4)
    ]

    assert [choice.row for choice in picks] == [1, 3, 1, 3]
    assert picks[0].why == "EvalGen: likely bad (fails 2 validators with pass rates 0.50, 0.40)"
    assert picks[1].why == "EvalGen: likely good (fails no validator)"


def test_variance_picks_the_output_where_validators_split_evenly():
    evidence = [[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 1, 0], [1, NAN, NAN, NAN], [0, 0, 0, 1]]
    ctx = make_context(evidence)

    scored = get_selector("variance").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("variance"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    np.testing.assert_allclose(scored.scores, [0.0, 3 / 16, 0.25, 0.0, 3 / 16])
    assert choice.row == 2
    assert choice.why == "validators disagree most here (2 pass, 2 fail)"
    assert choice.probability == 1.0


def test_variance_can_restrict_to_the_least_settled_criterion():
    # Criterion "facts" (code 1) has no failing grade yet; "tone" (code 0) has one.
    evidence = [[1, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    by_criterion = np.array(
        [[NAN, NAN], [NAN, NAN], [NAN, NAN], [1, 1], [0, 1], [1, 1]], np.float32
    )
    ctx = make_context(
        evidence, human=[NAN, NAN, NAN, 1, 0, 1], criteria=[0, 0, 1, 1],
        human_by_criterion=by_criterion, criterion_names=("tone", "facts"),
    )

    plain = VarianceSelector().score(ctx, np.random.default_rng(0))
    restricted = VarianceSelector(least_settled_criterion=True).score(
        ctx, np.random.default_rng(0)
    )

    np.testing.assert_allclose(plain.scores, [3 / 16, 3 / 16, 0.0])
    np.testing.assert_allclose(restricted.scores, [0.0, 0.25, 0.0])
    assert restricted.explain(1) == "validators disagree most here on facts (1 pass, 1 fail)"


def metric_var_context() -> SelectionContext:
    # Row = 3·system + sample. Per-output metric (mean of two verdicts):
    # sample 0 → 1, 0, 0.5; sample 1 → 1, 1, 1; sample 2 → 0, 0.5, 0.5 over systems 0, 1, 2.
    evidence = [
        [1, 1], [1, 1], [0, 0],
        [0, 0], [1, 1], [1, 0],
        [1, 0], [1, 1], [0, 1],
    ]
    # Grades so far: system 0 has two (rows 1, 2), system 1 one (row 4), system 2 none.
    human = [NAN, 1, 0, NAN, 1, NAN, NAN, NAN, NAN]
    return make_context(
        evidence, systems=np.repeat(np.arange(3), 3), samples=np.tile(np.arange(3), 3),
        human=human, system_names=("alpha", "beta", "gamma"),
    )


def test_metric_var_matches_subset2evaluate_definition_by_hand():
    ctx = metric_var_context()

    metric = output_metric(ctx.evidence, None)
    variance = sample_metric_variance(metric, ctx.sample_codes, 3)

    np.testing.assert_allclose(metric, [1, 1, 0, 0, 1, 0.5, 0.5, 1, 0.5])
    # subset2evaluate methods.metric_var: np.var over the systems' scores of each item.
    np.testing.assert_allclose(variance, [1 / 6, 0.0, 1 / 18], atol=1e-12)
    by_sample = [np.var(metric[ctx.sample_codes == i]) for i in range(3)]
    np.testing.assert_allclose(variance, by_sample, atol=1e-12)


def test_metric_var_picks_the_most_varied_sample_then_the_least_graded_system():
    ctx = metric_var_context()

    scored = get_selector("metric_var").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("metric_var"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    # Rank of the sample's variance × 3 slots + (2 − grades of the system).
    assert scores_by_row(scored) == {0: 6.0, 3: 7.0, 5: 4.0, 6: 8.0, 7: 2.0, 8: 5.0}
    assert choice.row == 6
    assert choice.why == (
        "systems' validator scores vary most on this input (variance 0.167); "
        "gamma has the fewest grades (0)"
    )


def test_metric_scales_numeric_validator_scores_to_unit_range():
    evidence = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    scores = np.array([[NAN, 0.0], [NAN, 10.0], [NAN, 5.0]], np.float32)

    metric = output_metric(evidence, scores)

    np.testing.assert_allclose(metric, [0.5, 0.5, 0.75])


def mad_validators_context(**overrides) -> SelectionContext:
    labelled = [
        # exact, fuzzy, coin; human label
        ([1, 0, 1], 1), ([1, 1, 0], 1), ([1, 1, 1], 1), ([1, 1, 0], 1),
        ([0, 0, 1], 0), ([0, 0, 0], 0), ([0, 0, 1], 0), ([0, 0, 0], 0),
    ]
    pool = [[1, 0, 1], [1, 1, 0], [0, NAN, 1], [0, 1, 0]]
    evidence = [row for row, _ in labelled] + pool
    human = [label for _, label in labelled] + [NAN] * len(pool)
    arguments = dict(human=human, validator_names=("exact", "fuzzy", "coin"))
    arguments.update(overrides)
    return make_context(evidence, **arguments)


def test_alignment_scores_are_the_smoothed_harmonic_mean_of_coverage_and_one_minus_ffr():
    ctx = mad_validators_context()
    labelled = np.arange(8)

    alignment = alignment_scores(ctx.evidence[labelled], ctx.human[labelled] >= 0.5)

    np.testing.assert_allclose(alignment, [5 / 6, 20 / 27, 1 / 2], rtol=1e-12)


def test_mad_validators_picks_where_the_two_closest_validators_disagree():
    ctx = mad_validators_context()

    scored = get_selector("mad_validators").score(ctx, np.random.default_rng(0))
    choice = choose(
        get_selector("mad_validators"), ctx, epsilon=0.0, rng=np.random.default_rng(0)
    )

    assert scores_by_row(scored) == {8: 1.0, 9: 0.0, 10: 0.0, 11: 1.0}
    assert choice.row in {8, 11}
    assert choice.probability == 0.5
    assert MadValidatorsSelector().score(ctx, np.random.default_rng(0)).explain(8) == (
        "the two best validators for the holistic verdict are closest (alignment gap 0.093) "
        "and disagree here: exact passes, fuzzy fails"
    )


def test_mad_validators_moves_to_the_next_criterion_when_the_closest_pair_agrees_everywhere():
    base = mad_validators_context()
    # Column 3 and 4 belong to criterion 0: identical on labelled rows except one → wider gap.
    extra = np.zeros((12, 2), np.float32)
    extra[:8, 0] = base.human[:8]
    extra[:8, 1] = [1, 1, 1, 1, 0, 0, 1, 1]
    extra[8:] = [[1, 0], [1, 1], [0, 0], [1, 1]]
    evidence = np.hstack([base.evidence, extra])
    evidence[8:, :2] = [[1, 1], [0, 0], [1, 1], [0, 0]]
    ctx = make_context(evidence, human=base.human, criteria=[-1, -1, -1, 0, 0])

    scored = MadValidatorsSelector().score(ctx, np.random.default_rng(0))

    assert scores_by_row(scored) == {8: 1.0, 9: 0.0, 10: 0.0, 11: 0.0}


def test_mad_validators_falls_back_to_variance_before_any_grade():
    ctx = mad_validators_context(human=[NAN] * 12)

    scored = MadValidatorsSelector().score(ctx, np.random.default_rng(0))
    variance = VarianceSelector().score(ctx, np.random.default_rng(0))

    np.testing.assert_array_equal(scored.scores, variance.scores)
    assert scored.explain(0).startswith("no validator pair to separate yet; validators disagree")


def unit_circle(degrees) -> np.ndarray:
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def test_diversity_picks_the_point_farthest_from_everything_labelled():
    embeddings = unit_circle([0, 10, 90, 170, 60])
    ctx = make_context(np.ones((5, 1)), human=[1, NAN, NAN, NAN, NAN], embeddings=embeddings)

    scored = get_selector("diversity").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("diversity"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    expected = 1 - np.cos(np.deg2rad([10, 90, 170, 60]))
    np.testing.assert_allclose(scored.scores, expected, atol=1e-6)
    assert choice.row == 3
    assert choice.why == (
        "farthest from everything graded so far (closest graded item has cosine -0.98 on "
        "embeddings)"
    )


def test_diversity_updates_incrementally_and_matches_a_fresh_computation():
    embeddings = unit_circle([0, 10, 90, 170, 60])
    first = make_context(np.ones((5, 1)), human=[1, NAN, NAN, NAN, NAN], embeddings=embeddings)
    get_selector("diversity").score(first, np.random.default_rng(0))
    second = replace(first, human=np.array([1, NAN, NAN, 0, NAN], np.float32),
                     candidate_mask=np.array([0, 1, 1, 0, 1], bool))

    warm = get_selector("diversity").score(second, np.random.default_rng(0))
    clear_cache()
    fresh = get_selector("diversity").score(second, np.random.default_rng(0))

    np.testing.assert_array_equal(warm.scores, fresh.scores)
    # Nearest labelled item: 0° for 10° and 60°, 170° for 90°.
    np.testing.assert_allclose(warm.scores, 1 - np.cos(np.deg2rad([10, 80, 60])), atol=1e-6)


def test_nearest_labelled_rebuilds_when_a_label_is_withdrawn():
    features = unit_circle([0, 90, 180])
    nearest = NearestLabelled(3)
    rows = np.arange(3)

    both = nearest.max_similarity(features, np.array([True, True, False]), rows)
    undone = nearest.max_similarity(features, np.array([False, True, False]), rows)

    np.testing.assert_allclose(both, [1, 1, 0], atol=1e-6)
    np.testing.assert_allclose(undone, [0, 1, 0], atol=1e-6)


def test_nearest_labelled_gives_the_same_answer_one_label_at_a_time_or_all_at_once():
    rng = np.random.default_rng(8)
    features = rng.normal(size=(300, 6)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    chosen = np.zeros(300, bool)
    chosen[rng.choice(300, 40, replace=False)] = True
    rows = np.arange(300)

    at_once = NearestLabelled(300).max_similarity(features, chosen, rows)
    one_by_one = NearestLabelled(300)
    growing = np.zeros(300, bool)
    for row in np.flatnonzero(chosen):
        growing[row] = True
        step = one_by_one.max_similarity(features, growing, rows)

    expected = (features @ features[chosen].T).max(axis=1)
    np.testing.assert_allclose(at_once, expected, atol=1e-6)
    np.testing.assert_allclose(step, expected, atol=1e-6)


def test_diversity_without_embeddings_spreads_over_validator_patterns():
    evidence = [[1, 1], [1, 1], [0, 0], [1, 0]]
    ctx = make_context(evidence, human=[1, NAN, NAN, NAN])

    choice = choose(get_selector("diversity"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    assert choice.row == 2
    assert choice.why.endswith("on validator verdicts)")


def uncertainty_context(**overrides) -> SelectionContext:
    # Symmetric under (swap validators) and (flip every verdict and label), so the fitted logit
    # of a (1, 0) output is exactly 0.
    labelled = (
        [([1, 1], 1)] * 3 + [([0, 0], 0)] * 3
        + [([1, 0], 1), ([1, 0], 0), ([0, 1], 1), ([0, 1], 0)]
    )
    pool = [[1, 1], [0, 0], [1, 0]]
    arguments = dict(human=[label for _, label in labelled] + [NAN] * 3)
    arguments.update(overrides)
    return make_context([row for row, _ in labelled] + pool, **arguments)


def test_uncertainty_picks_the_output_with_pass_probability_one_half():
    ctx = uncertainty_context()

    scored = get_selector("uncertainty").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("uncertainty"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    assert scored.indices.tolist() == [10, 11, 12]
    features = ctx.evidence[:10].astype(np.float64)
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000).fit(features, ctx.human[:10])
    p_pass = reference.predict_proba(ctx.evidence[10:].astype(np.float64))[:, 1]
    np.testing.assert_allclose(scored.scores, -np.abs(p_pass - 0.5), atol=1e-6)
    assert scored.scores[2] == pytest.approx(0.0, abs=1e-9)
    assert choice.row == 12
    assert choice.why == (
        "the model from validator verdicts is least sure here (P(pass) = 0.50, fitted on 10 "
        "grades)"
    )


def test_logistic_fit_matches_scikit_learn():
    rng = np.random.default_rng(5)
    features = (rng.random((200, 4)) < 0.5).astype(np.float64)
    labels = (features @ [1.5, -1.0, 0.5, 0.0] + rng.normal(0, 1, 200) > 0.3).astype(float)

    weights = fit_logistic(features, labels, l2=2.0, steps=25)
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=1000).fit(features, labels)

    np.testing.assert_allclose(weights[0], reference.intercept_[0], atol=1e-5)
    np.testing.assert_allclose(weights[1:], reference.coef_[0], atol=1e-5)


def test_uncertainty_falls_back_to_variance_before_two_labels_of_each_class():
    ctx = uncertainty_context(human=[1, 1, 1, 0] + [NAN] * 9)

    scored = get_selector("uncertainty").score(ctx, np.random.default_rng(0))
    variance = VarianceSelector().score(ctx, np.random.default_rng(0))

    np.testing.assert_array_equal(scored.scores, variance.scores)
    assert scored.explain(12).startswith(
        "3 passing and 1 failing grades so far; need 2 of each: validators disagree"
    )


def irt_context() -> SelectionContext:
    # Two systems of equal strength; samples 0..4 pass 4, 3, 2, 1, 0 of the four validators.
    per_sample = [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    return make_context(
        per_sample * 2, systems=np.repeat([0, 1], 5), samples=np.tile(np.arange(5), 2)
    )


def test_irt_prefers_the_sample_whose_difficulty_matches_the_abilities():
    ctx = irt_context()

    scored = get_selector("irt").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("irt"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    # Priors θ = logit(0.5) = 0, b_i = −logit(pass fraction clipped to [0.02, 0.98]); a = 1.
    information = [0.98 * 0.02, 0.75 * 0.25, 0.25, 0.75 * 0.25, 0.98 * 0.02]
    np.testing.assert_allclose(scored.scores, information * 2, atol=1e-12)
    assert ctx.sample_codes[choice.row] == 2
    assert choice.probability == 0.5


def test_irt_grades_move_information_toward_samples_matching_the_new_ability():
    # System 1 passes every graded output, so its ability rises: its harder open samples
    # (3 and 4) now sit nearer its ability and carry more information than before.
    ctx = irt_context()
    human = np.full(10, NAN, np.float32)
    human[[5, 6, 7]] = 1
    graded = replace(ctx, human=human, candidate_mask=np.isnan(human), n_labelled=3)

    before = scores_by_row(get_selector("irt").score(ctx, np.random.default_rng(0)))
    after = scores_by_row(get_selector("irt").score(graded, np.random.default_rng(0)))

    assert after[8] > before[8] == pytest.approx(0.75 * 0.25)
    assert after[9] > before[9] == pytest.approx(0.98 * 0.02)


def test_irt_fit_recovers_simulated_abilities_and_difficulties():
    rng = np.random.default_rng(2)
    ability, difficulty = rng.normal(0, 1, 30), rng.normal(0, 1, 200)
    systems = np.repeat(np.arange(30), 200)
    samples = np.tile(np.arange(200), 30)
    outcomes = (rng.random(6000) < 1 / (1 + np.exp(-(ability[systems] - difficulty[samples]))))

    fitted = fit_irt_2pl(
        systems, samples, outcomes.astype(float), prior_ability=np.zeros(30),
        prior_difficulty=np.zeros(200), steps=60,
    )

    assert stats.spearmanr(fitted.ability, ability).statistic > 0.95
    assert stats.spearmanr(fitted.difficulty, difficulty).statistic > 0.8


def mad_systems_context(**overrides) -> SelectionContext:
    """3 systems × 4 samples in 6-d. Sample k lies along e_k; on samples 2 and 3 systems 0 and 1
    lean to opposite sides (±45° along e_4, ±30° along e_5), so their cosine distances are 1 and
    0.5, while each sample's mean stays on e_k."""
    eye = np.eye(6)
    rows = []
    for system in range(3):
        for sample in range(4):
            vector = eye[sample].copy()
            if sample >= 2 and system < 2:
                angle = np.deg2rad(45 if sample == 2 else 30)
                side = 1 if system == 0 else -1
                vector = np.cos(angle) * eye[sample] + side * np.sin(angle) * eye[sample + 2]
            rows.append(vector)
    arguments = dict(
        systems=np.repeat(np.arange(3), 4), samples=np.tile(np.arange(4), 3),
        embeddings=np.array(rows), system_names=("ape", "bee", "cat"), n_labelled=0,
    )
    arguments.update(overrides)
    return make_context(np.ones((12, 1)), **arguments)


def test_mad_systems_returns_the_most_dissimilar_pair_of_one_sample():
    ctx = mad_systems_context()

    scored = get_selector("mad_systems").score(ctx, np.random.default_rng(0))
    choice = choose(get_selector("mad_systems"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    assert scored.indices.tolist() == [0, 1, 2, 3]
    assert scored.partners.tolist() == [4, 5, 6, 7]
    np.testing.assert_allclose(scored.scores, [0, 0, 1, 0.5], atol=1e-6)
    assert (choice.row, choice.row_b) == (2, 6)
    assert choice.why == (
        "ape vs bee (system pair 1 of 3): their outputs differ most on this input (cosine "
        "distance 1.00 on embeddings; no input chosen yet)"
    )


def test_mad_systems_visits_system_pairs_round_robin():
    pairs = []
    for n_labelled in range(4):
        ctx = mad_systems_context(n_labelled=n_labelled)
        choice = choose(
            get_selector("mad_systems"), ctx, epsilon=0.0, rng=np.random.default_rng(0)
        )
        pairs.append((int(ctx.system_codes[choice.row]), int(ctx.system_codes[choice.row_b])))

    assert pairs == [(0, 1), (0, 2), (1, 2), (0, 1)]


def test_mad_systems_penalises_inputs_already_chosen():
    human = np.full(12, NAN, np.float32)
    human[10] = 1  # cat's output on sample 2
    ctx = mad_systems_context(human=human, n_labelled=3)

    scored = get_selector("mad_systems", diversity_weight=0.6).score(
        ctx, np.random.default_rng(0)
    )

    np.testing.assert_allclose(scored.scores, [0, 0, 1 - 0.6, 0.5], atol=1e-6)


def test_mad_systems_never_offers_a_pair_already_compared():
    ctx = mad_systems_context(compared_pairs=np.array([[6, 2]]))

    scored = get_selector("mad_systems").score(ctx, np.random.default_rng(0))

    assert scored.indices.tolist() == [0, 1, 3]
    # Sample 2 is also "already chosen" now, which does not matter to samples 0, 1, 3.
    np.testing.assert_allclose(scored.scores, [0, 0, 0.5], atol=1e-6)


def test_mad_systems_skips_to_the_next_pair_with_open_samples():
    candidate = np.ones(12, bool)
    candidate[4:8] = False  # every output of bee is claimed
    ctx = mad_systems_context(candidate=candidate, n_labelled=0)

    choice = choose(get_selector("mad_systems"), ctx, epsilon=0.0, rng=np.random.default_rng(0))

    assert (ctx.system_codes[choice.row], ctx.system_codes[choice.row_b]) == (0, 2)


def ranking_context() -> SelectionContext:
    # Graded so far: ape 95 / 100, bee 5 / 10, cat 4 / 10; then five open outputs each.
    systems = [0] * 100 + [1] * 10 + [2] * 10 + [0] * 5 + [1] * 5 + [2] * 5
    human = [1] * 95 + [0] * 5 + [1] * 5 + [0] * 5 + [1] * 4 + [0] * 6 + [NAN] * 15
    return make_context(
        np.ones((135, 1)), systems=systems, human=human, system_names=("ape", "bee", "cat")
    )


def test_wilson_interval_matches_statsmodels():
    successes, trials = np.array([95, 5, 4, 0, 10]), np.array([100, 10, 10, 7, 10])

    lower, upper = wilson_intervals(successes, trials)

    reference = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    np.testing.assert_allclose(lower, reference[0], atol=1e-12)
    np.testing.assert_allclose(upper, reference[1], atol=1e-12)


def test_ranking_uncertainty_picks_the_close_systems_and_skips_the_separated_one():
    ctx = ranking_context()

    scored = get_selector("ranking_uncertainty").score(ctx, np.random.default_rng(0))
    picks = {
        int(ctx.system_codes[choose(get_selector("ranking_uncertainty"), ctx, epsilon=0.0,
                                    rng=np.random.default_rng(seed)).row])
        for seed in range(30)
    }

    by_row = scores_by_row(scored)
    ape, bee, cat = by_row[120], by_row[125], by_row[130]
    assert ape < 0.01 * min(bee, cat)
    assert bee > 0 and cat > 0
    assert picks <= {1, 2}
    assert scored.explain(125).startswith("ranking still open: bee (0.50 ± ")
    assert "10 of 15 graded) may swap places with cat (0.40" in scored.explain(125)
    assert scored.explain(120).endswith("is clearly separated from the other systems")


def test_ranking_uncertainty_standing_matches_a_by_hand_finite_population_computation():
    standing = system_standing(ranking_context())

    values = np.array([1] * 95 + [0] * 5 + [1] * 5 + [0] * 5 + [1] * 4 + [0] * 6, float)
    pooled = values.var(ddof=1)
    bee_var = (10 * 0.25 + PRIOR_GRADES * pooled) / (9 + PRIOR_GRADES)
    cat_var = (10 * 0.24 + PRIOR_GRADES * pooled) / (9 + PRIOR_GRADES)
    bee_se = np.sqrt(bee_var / 10 * (15 - 10) / 14)
    cat_se = np.sqrt(cat_var / 10 * (15 - 10) / 14)
    np.testing.assert_allclose(standing.estimate, [0.95, 0.5, 0.4])
    np.testing.assert_allclose(standing.standard_error[1:], [bee_se, cat_se], rtol=1e-12)
    np.testing.assert_allclose(
        standing.swap_probability[1, 2], stats.norm.sf(0.1 / np.hypot(bee_se, cat_se)), rtol=1e-9
    )


def test_ranking_uncertainty_gives_nothing_to_a_fully_graded_system():
    # bee's every output is graded: its pass rate is known, however close cat is.
    systems = [0] * 4 + [1] * 4 + [1] * 4
    human = [1, 0, 1, 0] + [1, 1, 0, 0] + [NAN] * 4
    ctx = make_context(np.ones((12, 1)), systems=systems, human=human, system_names=("a", "b"))

    assert system_standing(ctx).standard_error[0] == 0.0
    scored = get_selector("ranking_uncertainty").score(ctx, np.random.default_rng(0))
    assert scored.scores.min() > 0  # only b's outputs are in the pool, and b is open


# ---------------------------------------------------------------------------------------------
# The chooser


@dataclass(frozen=True)
class FixedScores:
    scores: tuple[float, ...]
    partners: tuple[int, ...] | None = None
    name: ClassVar[str] = "fixed"
    pairwise: ClassVar[bool] = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        return ScoredPool(
            ctx.pool, np.array(self.scores, np.float64), lambda row: f"fixed score of {row}",
            None if self.partners is None else np.array(self.partners, np.int64),
        )


def open_context(n: int) -> SelectionContext:
    return make_context(np.ones((n, 1)))


def test_chooser_without_exploration_always_takes_a_best_item():
    selector = FixedScores((1, 3, 3, 2))

    choices = [
        choose(selector, open_context(4), epsilon=0.0, rng=np.random.default_rng(s))
        for s in range(100)
    ]

    assert {choice.row for choice in choices} == {1, 2}
    assert {choice.probability for choice in choices} == {0.5}
    assert {choice.selector for choice in choices} == {"fixed"}
    assert choices[0].why == f"fixed score of {choices[0].row}"


def test_chooser_with_full_exploration_is_uniform():
    rng = np.random.default_rng(1234)
    selector = FixedScores((0, 5, 1, 2, 9))

    choices = [choose(selector, open_context(5), epsilon=1.0, rng=rng) for _ in range(5000)]

    counts = np.bincount([choice.row for choice in choices], minlength=5)
    chi_square = stats.chisquare(counts).statistic
    assert chi_square < stats.chi2.ppf(0.99, df=4)
    assert {choice.selector for choice in choices} == {"random"}
    assert {choice.why for choice in choices} == {
        "chosen at random (ε = 1) so estimates stay unbiased"
    }
    assert {choice.probability for choice in choices} == {0.2}


def test_chooser_probability_is_the_mixture_probability():
    rng = np.random.default_rng(99)
    selector = FixedScores((1, 3, 3, 2))

    choices = [choose(selector, open_context(4), epsilon=0.2, rng=rng) for _ in range(8000)]

    probability = {choice.row: choice.probability for choice in choices}
    # ε/P + (1 − ε)·[among the ties]/n_ties
    assert probability == pytest.approx({0: 0.05, 1: 0.45, 2: 0.45, 3: 0.05}, abs=1e-15)
    frequency = np.bincount([choice.row for choice in choices], minlength=4) / 8000
    np.testing.assert_allclose(frequency, [0.05, 0.45, 0.45, 0.05], atol=0.02)
    random_tags = [c for c in choices if c.selector == "random"]
    assert random_tags[0].why == "chosen at random (ε = 0.2) so estimates stay unbiased"


def test_chooser_returns_nothing_for_an_empty_pool():
    ctx = make_context(np.ones((3, 1)), human=[1, 0, 1])

    assert choose(get_selector("variance"), ctx, epsilon=0.1, rng=np.random.default_rng(0)) is None
    assert choose_many(
        get_selector("variance"), ctx, k=3, epsilon=0.1, rng=np.random.default_rng(0)
    ) == []
    assert choose(
        get_selector("mad_systems"), ctx, epsilon=0.1, rng=np.random.default_rng(0)
    ) is None


def test_chooser_respects_excluded_rows():
    choice = choose(
        FixedScores((1, 3, 3, 2)), open_context(4), epsilon=0.0, rng=np.random.default_rng(0),
        exclude_rows={1, 2},
    )

    assert choice.row == 3
    assert choice.probability == 1.0


def test_choose_many_ranks_without_replacement_with_exact_probabilities():
    selector = FixedScores((1, 3, 3, 2))

    ranked = choose_many(selector, open_context(4), k=4, epsilon=0.0, rng=np.random.default_rng(0))
    first = choose(selector, open_context(4), epsilon=0.0, rng=np.random.default_rng(0))

    assert ranked[0] == first
    assert sorted(c.row for c in ranked[:2]) == [1, 2]
    assert [c.row for c in ranked[2:]] == [3, 0]
    assert [c.probability for c in ranked] == [0.5, 1.0, 1.0, 1.0]


def test_choose_many_drops_pairs_that_share_an_output_with_an_earlier_pair():
    selector = FixedScores((3, 2, 1), partners=(3, 3, 4))
    ctx = make_context(np.ones((5, 1)), candidate=[1, 1, 1, 0, 0])

    ranked = choose_many(selector, ctx, k=3, epsilon=0.0, rng=np.random.default_rng(0))

    assert [(c.row, c.row_b) for c in ranked] == [(0, 3), (2, 4)]


@dataclass(frozen=True)
class ProportionalScores(FixedScores):
    name: ClassVar[str] = "proportional"
    sampling: ClassVar[str] = "proportional"


def test_proportional_chooser_draws_in_proportion_to_scores_with_exact_probabilities():
    rng = np.random.default_rng(7)
    selector = ProportionalScores((1, 3, 0, 4))

    choices = [choose(selector, open_context(4), epsilon=0.2, rng=rng) for _ in range(10000)]

    expected = 0.2 / 4 + 0.8 * np.array([1, 3, 0, 4]) / 8
    probability = {choice.row: choice.probability for choice in choices}
    assert probability == pytest.approx(dict(enumerate(expected)), abs=1e-15)
    frequency = np.bincount([choice.row for choice in choices], minlength=4) / len(choices)
    np.testing.assert_allclose(frequency, expected, atol=0.015)
    assert {choice.pool_size for choice in choices} == {4}


def test_proportional_choose_many_renormalises_over_what_is_left():
    ranked = choose_many(
        ProportionalScores((1, 3, 0, 4)), open_context(4), k=3, epsilon=0.0,
        rng=np.random.default_rng(3),
    )

    remaining = {0: 1.0, 1: 3.0, 2: 0.0, 3: 4.0}
    for choice in ranked:
        assert choice.probability == pytest.approx(remaining[choice.row] / sum(remaining.values()))
        assert choice.pool_size == len(remaining)
        del remaining[choice.row]


def test_proportional_chooser_refuses_negative_scores():
    with pytest.raises(ValueError, match="must not be negative"):
        choose(ProportionalScores((1, -1)), open_context(2), epsilon=0.1,
               rng=np.random.default_rng(0))


def test_chooser_rejects_an_epsilon_outside_the_unit_interval():
    with pytest.raises(ValueError, match="epsilon"):
        choose(FixedScores((1,)), open_context(1), epsilon=1.5, rng=np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# Shared cache and embeddings


def test_derived_values_are_keyed_by_the_identity_of_live_arrays():
    calls = []
    array = np.arange(3.0)
    twin = array.copy()

    def compute():
        calls.append(1)
        return len(calls)

    assert derived("probe", (array,), compute) == 1
    assert derived("probe", (array,), compute) == 1
    assert derived("probe", (twin,), compute) == 2


def test_derived_values_are_dropped_with_their_arrays():
    array = np.arange(3.0)
    derived("probe", (array,), lambda: "value")
    entries = len(base_module._cache)

    del array
    gc.collect()

    assert len(base_module._cache) == entries - 1


def test_embed_texts_gives_unit_float32_rows_of_a_fixed_width():
    texts = ["the cat sat on the mat", "the cat sat on the mat", "stock markets fell", "", "!!"]

    embeddings = embed_texts(texts, dimensions=8)
    again = embed_texts(texts, dimensions=8)

    assert embeddings.shape == (5, 8)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), [1, 1, 1, 0, 0], atol=1e-6)
    assert float(embeddings[0] @ embeddings[1]) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(embeddings, again)
    # Five texts leave room for at most 4 SVD components; the other columns stay 0.
    np.testing.assert_array_equal(embeddings[:, 4:], 0)


def test_embed_texts_handles_texts_without_words():
    np.testing.assert_array_equal(embed_texts(["", "..."], dimensions=4), np.zeros((2, 4)))
    assert embed_texts([], dimensions=4).shape == (0, 4)
