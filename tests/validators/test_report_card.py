"""The report card read from the database: labels, candidates, settings and the suite."""

import pytest

from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit
from tests.factories import UserFactory
from validators.matrix import forget
from validators.models import CriterionSetting, Validator, VerdictRecord
from validators.report_card import HOLISTIC, report_card


def validator(project, name, criterion=None, kind="code"):
    return Validator.objects.create(project=project, name=name, kind=kind, source="def check(output, input, reference, meta):\n    return True", criterion=criterion)


def verdicts(validator_, outputs, outcomes):
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=validator_, output=o, outcome=c) for o, c in zip(outputs, outcomes, strict=True)
    ])


@pytest.fixture(autouse=True)
def fresh_matrix_cache(project):
    forget()
    yield
    forget()


@pytest.fixture
def graded(project, annotator, make_outputs):
    """Ten outputs: the first four fail (holistically and on 'grounded'), the rest pass."""
    outputs = make_outputs(n_samples=5, systems=("alpha", "beta"))
    grounded = criterion_create(project=project, key="grounded", definition="Supported by the article.")
    for index, output in enumerate(outputs):
        verdict = "fail" if index < 4 else "pass"
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={"grounded": verdict})
    return outputs, grounded


def card_for(card, key):
    return next(c for c in card.criteria if c.key == key)


@pytest.mark.django_db
def test_best_aligned_validator_is_chosen_with_exact_counts(project, graded):
    outputs, grounded = graded
    perfect = validator(project, "perfect", grounded)
    sloppy = validator(project, "sloppy", grounded)
    verdicts(perfect, outputs, ["fail"] * 4 + ["pass"] * 6)
    verdicts(sloppy, outputs, ["fail", "fail", "pass", "pass"] + ["fail"] + ["pass"] * 5)

    card = report_card(project)

    entry = card_for(card, "grounded")
    assert entry.selection.chosen.validator_id == perfect.pk
    assert (entry.n_human_pass, entry.n_human_fail) == (6, 4)
    ranked = {r.candidate.name: r for r in entry.selection.ranked}
    assert ranked["perfect"].candidate.metrics.coverage == 1.0
    assert ranked["sloppy"].candidate.metrics.coverage == 0.5
    assert ranked["sloppy"].candidate.metrics.false_failure_rate == pytest.approx(1 / 6)
    assert ranked["sloppy"].status == "lower_alignment"
    assert card.suite.coverage == 1.0 and card.suite.false_failure_rate == 0.0
    assert card.chosen_validator_ids == [perfect.pk]


@pytest.mark.django_db
def test_ffr_ceiling_from_criterion_setting_rules_out_a_candidate(project, graded):
    outputs, grounded = graded
    eager = validator(project, "eager", grounded)
    verdicts(eager, outputs, ["fail"] * 4 + ["fail", "fail"] + ["pass"] * 4)  # FFR 2/6
    CriterionSetting.objects.create(project=project, criterion=grounded, ffr_ceiling=0.5)

    assert card_for(report_card(project), "grounded").selection.chosen.validator_id == eager.pk

    CriterionSetting.objects.filter(criterion=grounded).update(ffr_ceiling=0.25)
    entry = card_for(report_card(project), "grounded")

    assert entry.selection.chosen is None
    assert entry.selection.ranked[0].status == "ffr_above_ceiling"


@pytest.mark.django_db
def test_too_few_failing_grades_says_how_many_are_missing(project, annotator, make_outputs):
    outputs = make_outputs(n_samples=3, systems=("alpha", "beta"))
    for index, output in enumerate(outputs):
        grade_submit(output=output, annotator=annotator, verdict="fail" if index < 2 else "pass")
    check = validator(project, "check")
    verdicts(check, outputs, ["fail", "fail", "pass", "pass", "pass", "pass"])

    entry = card_for(report_card(project), HOLISTIC)

    assert entry.selection.chosen is None
    assert "2 failing grades so far; 3 needed" in entry.selection.reason


@pytest.mark.django_db
def test_majority_of_annotators_and_ties_left_out(project, annotator, owner, make_outputs):
    outputs = make_outputs(n_samples=1, systems=("alpha", "beta"))
    third = UserFactory(username="third")
    from annotate.services.projects import membership_set

    membership_set(project=project, user=third, role="annotator")
    # alpha: fail, fail, pass -> fail. beta: pass, fail -> tie -> no label.
    for user, verdict in [(annotator, "fail"), (owner, "fail"), (third, "pass")]:
        grade_submit(output=outputs[0], annotator=user, verdict=verdict)
    grade_submit(output=outputs[1], annotator=annotator, verdict="pass")
    grade_submit(output=outputs[1], annotator=owner, verdict="fail")

    entry = card_for(report_card(project), HOLISTIC)

    assert (entry.n_human_pass, entry.n_human_fail) == (0, 1)


@pytest.mark.django_db
def test_stale_criterion_verdicts_are_left_out_unless_included(project, graded, owner):
    outputs, grounded = graded
    check = validator(project, "check", grounded)
    verdicts(check, outputs, ["fail"] * 4 + ["pass"] * 6)
    criterion_version_publish(criterion=grounded, author=owner, definition="Stricter.", reason="drift")

    entry = card_for(report_card(project), "grounded")
    assert (entry.n_human_pass, entry.n_human_fail) == (0, 0)

    CriterionSetting.objects.create(project=project, criterion=grounded, include_stale=True)
    entry = card_for(report_card(project), "grounded")
    assert (entry.n_human_pass, entry.n_human_fail) == (6, 4)


@pytest.mark.django_db
def test_a_holistic_verdict_is_no_criterion_label(project, annotator, make_outputs):
    # DESIGN §4.1 (changed): a criterion's labels are only the verdicts given for it.
    outputs = make_outputs(n_samples=2, systems=("alpha",))
    criterion_create(project=project, key="tone")
    grade_submit(output=outputs[0], annotator=annotator, verdict="fail")
    grade_submit(output=outputs[1], annotator=annotator, verdict="fail", criteria={"tone": "pass"})

    entry = card_for(report_card(project), "tone")

    assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (1, 0, 0)


@pytest.mark.django_db
def test_pinned_validator_wins_and_excluded_never_does(project, graded):
    outputs, grounded = graded
    perfect = validator(project, "perfect", grounded)
    other = validator(project, "other", grounded)
    verdicts(perfect, outputs, ["fail"] * 4 + ["pass"] * 6)
    verdicts(other, outputs, ["fail"] * 3 + ["pass"] * 7)
    setting = CriterionSetting.objects.create(project=project, criterion=grounded, pinned=other)

    assert card_for(report_card(project), "grounded").selection.chosen.validator_id == other.pk

    setting.pinned = None
    setting.save()
    setting.excluded.add(perfect)
    assert card_for(report_card(project), "grounded").selection.chosen.validator_id == other.pk


@pytest.mark.django_db
def test_error_verdicts_count_as_skips_not_as_fails(project, graded):
    outputs, grounded = graded
    flaky = validator(project, "flaky", grounded)
    verdicts(flaky, outputs, ["error"] * 2 + ["fail"] * 2 + ["pass"] * 6)

    ranked = card_for(report_card(project), "grounded").selection.ranked[0]

    assert ranked.candidate.metrics.n_error == 2
    assert ranked.candidate.metrics.skip_rate == pytest.approx(0.2)
    assert (ranked.candidate.metrics.n_fail, ranked.candidate.metrics.coverage) == (2, 1.0)


@pytest.mark.django_db
def test_new_verdicts_and_new_validators_reach_a_cached_matrix(project, graded):
    outputs, grounded = graded
    first = validator(project, "first", grounded)
    verdicts(first, outputs[:5], ["fail"] * 4 + ["pass"])
    assert card_for(report_card(project), "grounded").selection.ranked[0].candidate.metrics.n_missing == 5

    verdicts(first, outputs[5:], ["pass"] * 5)
    second = validator(project, "second", grounded)
    verdicts(second, outputs, ["pass"] * 10)

    ranked = {r.candidate.name: r.candidate.metrics for r in card_for(report_card(project), "grounded").selection.ranked}
    assert ranked["first"].n_missing == 0 and ranked["first"].coverage == 1.0
    assert ranked["second"].coverage == 0.0


@pytest.mark.django_db
def test_grades_chosen_by_an_active_selector_are_reweighted_by_their_chance(project, annotator, make_outputs):
    """validator_choice draws where the candidates disagree more often; the card weighs each
    grade by 1 / (pool × probability), so its rates estimate the whole project."""
    import numpy as np

    from annotate.models import Grade
    from annotate.services.assignments import assignment_claim_next
    from validators.alignment import alignment_table

    outputs = make_outputs(n_samples=20, systems=("alpha", "beta"))
    strict = validator(project, "strict")
    lenient = validator(project, "lenient")
    # They disagree on every third output; strict fails those, lenient passes them.
    verdicts(strict, outputs, ["fail" if i % 3 == 0 or i % 5 == 0 else "pass" for i in range(40)])
    verdicts(lenient, outputs, ["fail" if i % 5 == 0 else "pass" for i in range(40)])
    truth = {o.pk: ("fail" if i % 5 == 0 or i % 6 == 0 else "pass") for i, o in enumerate(outputs)}
    for step in range(24):
        claim = assignment_claim_next(
            project=project, annotator=annotator, selector="validator_choice",
            rng=np.random.default_rng(step),
        )
        grade_submit(output=claim.output, annotator=annotator, verdict=truth[claim.output_id], assignment=claim)
        forget()

    grades = list(Grade.objects.filter(project=project).order_by("output_id"))
    assert all(g.selector_pool_size and g.selector_probability for g in grades)
    assert {g.selector_pool_size for g in grades} >= {40 - 23, 40}  # the pool shrank as grades came
    card = report_card(project)
    assert card.weighted
    ratios = np.array([1 / (g.selector_pool_size * g.selector_probability) for g in grades])
    assert len(set(np.round(ratios, 9))) > 1  # the draws were not uniform
    # LURE: 40 outputs, 24 graded; v = 1 + (N - M) / (pool - 1) * (ratio - 1).
    pools = np.array([g.selector_pool_size for g in grades], float)
    weights = 1 + np.minimum((40 - 24) / (pools - 1), 1) * (ratios - 1)
    by_output = {o.pk: i for i, o in enumerate(outputs)}
    codes = {"fail": 0, "pass": 1}
    strict_codes = ["fail" if i % 3 == 0 or i % 5 == 0 else "pass" for i in range(40)]
    human = np.array([codes[g.verdict] for g in grades])
    verdict_codes = np.array([[codes[strict_codes[by_output[g.output_id]]]] for g in grades])
    expected = alignment_table(human, verdict_codes, weights=weights)[0]
    entry = card_for(card, HOLISTIC)
    got = next(r.candidate.metrics for r in entry.selection.ranked if r.candidate.name == "strict")
    assert got.weighted
    assert got.false_failure_rate == pytest.approx(expected.false_failure_rate)
    assert got.coverage == pytest.approx(expected.coverage)
    assert card.effective_grades == pytest.approx(weights.sum() ** 2 / (weights**2).sum())
    assert card.to_dict()["weighted"] is True


@pytest.mark.django_db
def test_uniformly_chosen_grades_leave_the_card_unweighted(project, graded):
    outputs, _ = graded
    verdicts(validator(project, "plain"), outputs, ["fail"] * 5 + ["pass"] * 5)

    card = report_card(project)

    assert not card.weighted and card.effective_grades is None
    (ranked,) = card_for(card, HOLISTIC).selection.ranked
    assert not ranked.candidate.metrics.weighted
    assert ranked.candidate.metrics.false_failure_rate == pytest.approx(1 / 6)
