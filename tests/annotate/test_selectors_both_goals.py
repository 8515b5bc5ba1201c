"""The both-goals selector (annotate/selectors/both_goals.py): gains, goal balance, mixture."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.forms import ProjectSettingsForm
from annotate.models import Project
from annotate.selection import selector_for_project
from annotate.selectors import (
    SELECTOR_CHOICES,
    SELECTORS,
    SelectionContext,
    choose_many,
    clear_cache,
    get_selector,
)
from annotate.selectors.both_goals import (
    BothGoalsSelector,
    as_distribution,
    goal_shares,
    mixture,
)
from annotate.services.assignments import assignment_claim_next
from annotate.services.projects import project_create

NAN = np.nan


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def context(*, systems, human, evidence, criteria, by_criterion=None, candidate=None):
    human = np.asarray(human, np.float32)
    n = human.shape[0]
    return SelectionContext(
        candidate_mask=np.isnan(human) if candidate is None else np.asarray(candidate, bool),
        system_codes=np.asarray(systems, np.int32),
        sample_codes=np.arange(n, dtype=np.int32),
        evidence=np.asarray(evidence, np.float32),
        evidence_scores=None,
        validator_criteria=np.asarray(criteria, np.int32),
        human=human,
        human_by_criterion=None if by_criterion is None else np.asarray(by_criterion, np.float32),
        embeddings=None,
        n_labelled=int((~np.isnan(human)).sum()),
    )


def settled_ranking() -> SelectionContext:
    """Two systems with every output graded (all pass vs all fail), each output open to a
    second annotator; criterion 0 has two fail grades so far, one short of the three a
    validator needs (DESIGN §4.2)."""
    by_criterion = np.ones((12, 1), np.float32)
    by_criterion[[0, 6], 0] = 0.0
    evidence = np.array([[1, 0], [1, 1], [0, 1], [1, 1], [1, 0], [1, 1]] * 2, np.float32)
    return context(
        systems=[0] * 6 + [1] * 6, human=[1] * 6 + [0] * 6, evidence=evidence, criteria=[0, 0],
        by_criterion=by_criterion, candidate=np.ones(12, bool),
    )


def settled_validators() -> SelectionContext:
    """Two systems, five and three grades (4 of 5 pass vs 0 of 3): the ranking is open. The
    two holistic candidates agree on every output, so no grade can change which is better."""
    human = np.full(20, NAN, np.float32)
    human[[0, 1, 2, 3, 4]] = [1, 1, 1, 0, 1]
    human[[10, 11, 12]] = [0, 0, 0]
    column = np.array([1, 1, 0, 0, 1] * 4, np.float32)
    return context(
        systems=[0] * 10 + [1] * 10, human=human, evidence=np.stack([column, column], axis=1),
        criteria=[-1, -1],
    )


def both_open() -> SelectionContext:
    """4 systems × 30 samples, 6 validators over the holistic verdict and two criteria, 40
    grades: both goals have open questions."""
    rng = np.random.default_rng(5)
    n = 120
    evidence = (rng.random((n, 6)) < 0.6).astype(np.float32)
    human = np.full(n, NAN, np.float32)
    labelled = rng.choice(n, 40, replace=False)
    human[labelled] = rng.random(40) < 0.5
    by_criterion = np.full((n, 2), NAN, np.float32)
    by_criterion[labelled] = rng.random((40, 2)) < 0.6
    return context(
        systems=np.repeat(np.arange(4), 30), human=human, evidence=evidence,
        criteria=[-1, -1, 0, 0, 1, 1], by_criterion=by_criterion,
    )


def own_draw(name: str, ctx: SelectionContext) -> np.ndarray:
    """A single-goal selector's own distribution over the pool, as the chooser draws it."""
    selector = get_selector(name)
    scored = selector.score(ctx, np.random.default_rng(0))
    return as_distribution(scored.scores, getattr(selector, "sampling", "best") == "proportional")


# ---------------------------------------------------------------------------------------------
# Gains


def test_a_settled_ranking_gives_all_the_chosen_share_to_the_validator_choice():
    ctx = settled_ranking()

    plan = BothGoalsSelector().plan(ctx, np.random.default_rng(0))

    assert plan.ranking_gain == 0.0
    # 12 grades with 2 fails: a grade is a fail with smoothed chance 3/14, and it supplies
    # the one fail still missing.
    assert plan.validator_gain == pytest.approx(3 / 14, rel=1e-12)
    assert [(o.criterion, o.open_probability) for o in plan.outlooks] == [(0, 1.0)]
    assert plan.shares == (0.0, 1.0)
    np.testing.assert_allclose(
        plan.probability, 0.1 / 12 + 0.9 * own_draw("validator_choice", ctx), rtol=0, atol=1e-15
    )


def test_settled_validators_give_all_the_chosen_share_to_the_ranking():
    ctx = settled_validators()

    plan = BothGoalsSelector().plan(ctx, np.random.default_rng(0))

    assert plan.validator_gain == 0.0
    assert plan.ranking_gain > 0.0
    assert plan.shares == (1.0, 0.0)
    # ranking_uncertainty grades the less known system: its 7 pool outputs share 0.9.
    favoured = ctx.system_codes[ctx.pool] == 1
    np.testing.assert_allclose(plan.probability[favoured], 0.1 / 12 + 0.9 / 7, rtol=1e-12)
    np.testing.assert_allclose(plan.probability[~favoured], 0.1 / 12, rtol=1e-12)


def test_goal_shares_follow_the_weighted_gains():
    assert goal_shares(0.02, 0.01, 0.5) == pytest.approx((2 / 3, 1 / 3), rel=1e-12)
    # β = 0.8 weighs the ranking's gain four times the validator's.
    assert goal_shares(0.01, 0.04, 0.8) == pytest.approx((0.5, 0.5), rel=1e-12)
    # Nothing to gain on either side: the balance itself.
    assert goal_shares(0.0, 0.0, 0.3) == (0.3, 0.7)
    with pytest.raises(ValueError, match="goal_balance must lie in"):
        goal_shares(0.1, 0.1, 1.2)


# ---------------------------------------------------------------------------------------------
# The goal balance


def test_balance_one_is_ranking_uncertainty_plus_the_uniform_share():
    ctx = both_open()
    ranking = get_selector("ranking_uncertainty").score(ctx, np.random.default_rng(0)).scores

    plan = BothGoalsSelector(goal_balance=1.0).plan(ctx, np.random.default_rng(0))

    size = ctx.pool.shape[0]
    assert plan.shares == (1.0, 0.0)
    top = ranking == ranking.max()
    np.testing.assert_array_equal(plan.probability == plan.probability.max(), top)
    np.testing.assert_allclose(plan.probability[top], 0.1 / size + 0.9 / top.sum(), rtol=1e-12)
    np.testing.assert_allclose(plan.probability[~top], 0.1 / size, rtol=1e-12)


def test_balance_zero_is_validator_choice_plus_the_uniform_share():
    ctx = both_open()
    validator = get_selector("validator_choice").score(ctx, np.random.default_rng(0)).scores

    plan = BothGoalsSelector(goal_balance=0.0).plan(ctx, np.random.default_rng(0))

    size = ctx.pool.shape[0]
    assert plan.shares == (0.0, 1.0)
    np.testing.assert_array_equal(
        np.argsort(-plan.probability, kind="stable"), np.argsort(-validator, kind="stable")
    )
    np.testing.assert_allclose(
        plan.probability, 0.1 / size + 0.9 * own_draw("validator_choice", ctx), rtol=1e-12
    )


def test_an_even_balance_mixes_both_goals_by_their_gains():
    ctx = both_open()

    plan = BothGoalsSelector(goal_balance=0.5).plan(ctx, np.random.default_rng(0))

    assert plan.ranking_gain > 0.0 and plan.validator_gain > 0.0
    total = plan.ranking_gain + plan.validator_gain
    assert plan.shares == pytest.approx(
        (plan.ranking_gain / total, plan.validator_gain / total), rel=1e-12
    )
    np.testing.assert_allclose(
        plan.probability,
        mixture(plan.ranking_draw, plan.validator_draw, plan.shares, 0.1),
        rtol=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# Probabilities


@pytest.mark.parametrize("balance", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("build", [settled_ranking, settled_validators, both_open])
def test_probabilities_sum_to_one_and_keep_the_uniform_floor(balance, build):
    ctx = build()
    size = ctx.pool.shape[0]

    scored = BothGoalsSelector(goal_balance=balance).score(ctx, np.random.default_rng(1))

    np.testing.assert_array_equal(scored.indices, ctx.pool)
    assert scored.scores.sum() == pytest.approx(1.0, abs=1e-12)
    assert scored.scores.min() >= 0.1 / size - 1e-15


def test_the_chooser_records_the_mixture_probability():
    ctx = both_open()
    selector = get_selector("both_goals")
    expected = selector.score(ctx, np.random.default_rng(2)).scores
    by_row = dict(zip(ctx.pool.tolist(), expected.tolist(), strict=True))

    choices = choose_many(selector, ctx, k=1, epsilon=0.0, rng=np.random.default_rng(2))

    assert choices[0].selector == "both_goals"
    assert choices[0].probability == pytest.approx(by_row[choices[0].row], rel=1e-12)
    assert choices[0].pool_size == 80
    assert "of the chosen share" in choices[0].why


def test_with_epsilon_every_item_keeps_both_floors():
    ctx = both_open()
    size = ctx.pool.shape[0]

    choices = choose_many(
        get_selector("both_goals"), ctx, k=1, epsilon=0.1, rng=np.random.default_rng(3)
    )

    assert choices[0].probability >= (0.1 + 0.9 * 0.1) / size - 1e-15


def test_an_empty_pool_scores_nothing():
    ctx = replace(both_open(), candidate_mask=np.zeros(120, bool))

    scored = BothGoalsSelector().score(ctx, np.random.default_rng(0))

    assert scored.indices.shape == (0,)


# ---------------------------------------------------------------------------------------------
# Registry, settings form, API


def test_the_registry_lists_it():
    cls = SELECTORS["both_goals"]

    assert cls is BothGoalsSelector
    assert (cls.pairwise, cls.sampling, cls.project_settings) == (
        False, "proportional", ("goal_balance",)
    )
    assert ("both_goals", "Ranking and validator choice") in SELECTOR_CHOICES
    assert get_selector("both_goals", goal_balance=0.2).goal_balance == 0.2
    # A project without a setting of its own and the selector built bare agree.
    assert Project._meta.get_field("goal_balance").default == BothGoalsSelector.goal_balance == 0.7
    # Not the default: on summeval_dev.jsonl its card needs 1.03× random's labels (30 seeds;
    # README, label efficiency), and issue 14 asks for ≤ 1.0× on both goals on every dev file.
    assert Project._meta.get_field("default_selector").default == "random"


@pytest.fixture
def owner_api(owner, project):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.django_db
class TestGoalBalanceSetting:
    def test_the_services_pass_the_projects_balance(self, project):
        project.goal_balance = 0.8
        project.save(update_fields=["goal_balance"])

        selector = selector_for_project(project, "both_goals")

        assert (selector.name, selector.goal_balance) == ("both_goals", 0.8)
        assert selector_for_project(project, "variance").name == "variance"

    def test_a_project_that_chooses_it_claims_through_it(self, owner, make_outputs):
        fresh = project_create(name="Fresh", owner=owner, random_mix=0.0, default_selector="both_goals")
        make_outputs(n_samples=4, target=fresh)

        claim = assignment_claim_next(project=fresh, annotator=owner)

        # No grades yet, so both systems are equally open and the draw is uniform over the 8
        # outputs; no validators, so nothing to gain on the validator side.
        assert (fresh.default_selector, fresh.goal_balance) == ("both_goals", 0.7)
        assert (claim.selector, claim.probability, claim.pool_size) == ("both_goals", 0.125, 8)
        assert claim.why.endswith(
            "(chance 50%) (ranking 100% / validator choice 0% of the chosen share)"
        )

    def test_the_settings_form_offers_it_with_help(self, project):
        form = ProjectSettingsForm(instance=project)

        assert form["goal_balance"].value() == 0.7
        assert "1 spends grades only on the system ranking" in form.fields["goal_balance"].help_text
        assert "both_goals" in dict(form.fields["default_selector"].choices)

    def test_the_owner_sets_it_in_the_form(self, client, project, owner):
        client.force_login(owner)
        data = {
            "name": "Support bot", "default_selector": "both_goals", "overlap": 1,
            "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1,
            "goal_balance": 0.75, "scale": "binary",
        }

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 302
        project.refresh_from_db()
        assert (project.default_selector, project.goal_balance) == ("both_goals", 0.75)

    def test_a_form_without_it_keeps_the_stored_balance(self, client, project, owner):
        project.goal_balance = 0.25
        project.save(update_fields=["goal_balance"])
        client.force_login(owner)
        data = {
            "name": "Support bot", "default_selector": "random", "overlap": 2,
            "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1,
            "scale": "binary",
        }

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 302
        project.refresh_from_db()
        assert (project.overlap, project.goal_balance) == (2, 0.25)

    def test_the_api_reads_and_writes_it(self, owner_api, project):
        answer = owner_api.patch(
            "/api/projects/support-bot/", {"settings": {"goal_balance": 0.9}}, format="json"
        )

        assert answer.status_code == 200
        assert answer.json()["settings"]["goal_balance"] == 0.9
        project.refresh_from_db()
        assert project.goal_balance == 0.9

    def test_the_api_refuses_a_balance_outside_zero_to_one(self, owner_api, project):
        answer = owner_api.patch(
            "/api/projects/support-bot/", {"settings": {"goal_balance": 1.5}}, format="json"
        )

        assert answer.status_code == 400
        assert answer.json()["errors"] == [{
            "field": "settings.goal_balance",
            "message": "Ensure this value is less than or equal to 1.0.",
        }]
        project.refresh_from_db()
        assert project.goal_balance == 0.7
