from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    CriterionVersion,
    Grade,
    GradeCriterion,
    Project,
    Role,
)
from annotate.queries import annotator_history, criterion_marks, own_current_grade
from annotate.services.assignments import assignment_claim_next
from annotate.services.criteria import (
    CriterionError,
    criterion_create,
    criterion_version_publish,
    may_edit_criteria,
)
from annotate.services.grades import (
    GradeError,
    comparison_retract,
    comparison_submit,
    comparison_undo_last,
    grade_reopen,
    grade_retract,
    grade_submit,
    grade_undo_last,
)
from tests.factories import OutputFactory, SampleFactory


@pytest.mark.django_db
class TestGradeSubmit:
    def test_stores_verdict_criteria_note_and_time_on_task(self, project, annotator, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        started = timezone.now() - timedelta(seconds=42)

        grade = grade_submit(
            output=output, annotator=annotator, verdict="fail", criteria={"grounded": "fail"},
            note="  invents a refund policy  ", started_at=started,
        )

        grade.refresh_from_db()
        assert (grade.verdict, grade.note, grade.started_at) == ("fail", "invents a refund policy", started)
        assert grade.submitted_at >= started + timedelta(seconds=42)
        verdicts = list(GradeCriterion.objects.filter(grade=grade).values_list(
            "criterion__key", "verdict", "criterion_version__number"))
        assert verdicts == [("grounded", "fail", 1)]

    def test_started_in_the_future_is_clamped_to_submission(self, project, annotator, make_outputs):
        output = make_outputs(n_samples=1)[0]

        grade = grade_submit(
            output=output, annotator=annotator, verdict="pass",
            started_at=timezone.now() + timedelta(hours=1),
        )

        assert grade.started_at == grade.submitted_at

    def test_without_started_at_the_claim_time_is_used(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)

        grade = grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)

        assert grade.started_at == claim.claimed_at

    @pytest.mark.parametrize("verdict", ["", "maybe", "PASS"])
    def test_bad_verdict_is_refused(self, project, annotator, make_outputs, verdict):
        output = make_outputs(n_samples=1)[0]

        with pytest.raises(GradeError, match="Choose pass, fail or unsure"):
            grade_submit(output=output, annotator=annotator, verdict=verdict)

        assert Grade.objects.count() == 0

    def test_unknown_criterion_is_refused_and_nothing_is_written(self, project, annotator, make_outputs):
        output = make_outputs(n_samples=1)[0]

        with pytest.raises(GradeError, match="Unknown criterion 'tone'") as caught:
            grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"tone": "pass"})

        assert caught.value.field == "criteria.tone"
        assert Grade.objects.count() == 0

    def test_empty_criterion_verdicts_are_left_out(self, project, annotator, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]

        grade = grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"grounded": ""})

        assert GradeCriterion.objects.filter(grade=grade).count() == 0

    def test_second_grade_supersedes_the_first(self, project, annotator, make_outputs):
        output = make_outputs(n_samples=1)[0]
        first = grade_submit(output=output, annotator=annotator, verdict="pass")

        second = grade_submit(output=output, annotator=annotator, verdict="fail")

        assert second.supersedes_id == first.pk
        assert list(Grade.objects.filter(superseded_by__isnull=True).values_list("pk", "verdict")) == [
            (second.pk, "fail")
        ]

    def test_closes_the_claim_and_records_the_selector(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)

        grade = grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)

        claim.refresh_from_db()
        assert claim.status == AssignmentStatus.SUBMITTED
        assert (grade.selector, grade.selector_why, grade.selector_probability) == (
            "random", "chosen at random from 2 items", 0.5
        )

    def test_resubmitting_under_one_claim_returns_the_first_grade(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)
        first = grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)

        again = grade_submit(output=claim.output, annotator=annotator, verdict="fail", assignment=claim)

        assert again.pk == first.pk
        assert Grade.objects.count() == 1

    def test_someone_elses_claim_is_refused(self, project, annotator, owner, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=owner)

        with pytest.raises(GradeError, match="another annotator"):
            grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)

        assert Grade.objects.count() == 0
        claim.refresh_from_db()
        assert claim.status == AssignmentStatus.ACTIVE

    def test_a_late_grade_on_an_expired_claim_is_kept_and_retakes_its_slot(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)
        Assignment.objects.filter(pk=claim.pk).update(status=AssignmentStatus.EXPIRED)
        claim.refresh_from_db()

        grade = grade_submit(output=claim.output, annotator=annotator, verdict="unsure", assignment=claim)

        claim.refresh_from_db()
        assert grade.verdict == "unsure"
        assert claim.status == AssignmentStatus.SUBMITTED

    def test_rating_scale_derives_the_verdict_from_the_score(self, owner, make_outputs):
        rated = Project.objects.create(
            name="Rated", slug="rated", scale="rating", scale_min=1, scale_max=5, pass_threshold=4,
        )
        output = make_outputs(n_samples=1, target=rated)[0]

        low = grade_submit(output=output, annotator=owner, score=2)
        high = grade_submit(output=output, annotator=owner, score=4)

        assert (low.verdict, high.verdict) == ("fail", "pass")
        with pytest.raises(GradeError, match="between 1 and 5"):
            grade_submit(output=output, annotator=owner, score=9)
        assert Grade.objects.filter(project=rated).count() == 2


@pytest.mark.django_db
class TestUndo:
    def test_retract_appends_a_row_and_gives_the_slot_back(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)
        grade = grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)

        retraction = grade_retract(grade=grade, annotator=annotator)

        assert (retraction.retracted, retraction.verdict, retraction.supersedes_id) == (True, "", grade.pk)
        assert (retraction.selector, retraction.selector_probability) == ("random", 0.5)
        assert Grade.objects.filter(pk=grade.pk).exists()
        claim.refresh_from_db()
        assert claim.status == AssignmentStatus.RELEASED

    def test_only_the_author_can_retract(self, project, annotator, owner, make_outputs):
        output = make_outputs(n_samples=1)[0]
        grade = grade_submit(output=output, annotator=owner, verdict="pass")

        with pytest.raises(GradeError, match="Only the annotator"):
            grade_retract(grade=grade, annotator=annotator)

        assert Grade.objects.count() == 1

    def test_a_replaced_grade_cannot_be_retracted(self, project, annotator, make_outputs):
        output = make_outputs(n_samples=1)[0]
        first = grade_submit(output=output, annotator=annotator, verdict="pass")
        grade_submit(output=output, annotator=annotator, verdict="fail")

        with pytest.raises(GradeError, match="replaced since"):
            grade_retract(grade=first, annotator=annotator)

        assert Grade.objects.count() == 2

    def test_undo_last_reopens_the_output_for_the_annotator(self, project, annotator, make_outputs):
        make_outputs(n_samples=2)
        claim = assignment_claim_next(project=project, annotator=annotator)
        grade_submit(output=claim.output, annotator=annotator, verdict="fail", assignment=claim)
        waiting = assignment_claim_next(project=project, annotator=annotator)

        undone, reopened = grade_undo_last(project=project, annotator=annotator)

        assert undone.verdict == "fail" and undone.output_id == claim.output_id
        assert (reopened.output_id, reopened.status, reopened.selector, reopened.slot) == (
            claim.output_id, AssignmentStatus.ACTIVE, "reopened", 0
        )
        waiting.refresh_from_db()
        assert waiting.status == AssignmentStatus.RELEASED

    def test_regrade_after_undo_keeps_the_original_selection(self, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)
        grade_submit(output=claim.output, annotator=annotator, verdict="fail", assignment=claim)
        _, reopened = grade_undo_last(project=project, annotator=annotator)

        regrade = grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=reopened)

        assert (regrade.selector, regrade.selector_why, regrade.selector_probability) == (
            "random", "chosen at random from 2 items", 0.5
        )
        assert Grade.objects.filter(output=claim.output).count() == 3

    def test_nothing_to_undo(self, project, annotator):
        assert grade_undo_last(project=project, annotator=annotator) is None

    def test_reopen_needs_an_own_grade(self, project, annotator, owner, make_outputs):
        output = make_outputs(n_samples=1)[0]
        grade_submit(output=output, annotator=owner, verdict="pass")

        with pytest.raises(GradeError, match="not graded this output"):
            grade_reopen(project=project, annotator=annotator, output=output)

        assert Assignment.objects.filter(annotator=annotator).count() == 0
        claim = grade_reopen(project=project, annotator=owner, output=output)
        assert (claim.output_id, claim.status, claim.why) == (
            output.pk, AssignmentStatus.ACTIVE, "reopened from your history"
        )


@pytest.mark.django_db
class TestCriteriaDrift:
    def test_refinement_makes_old_verdicts_stale_but_keeps_them(self, project, annotator, owner, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        grade = grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"grounded": "fail"})

        version = criterion_version_publish(
            criterion=grounded, author=owner, definition="Every claim is in the article.",
            reason="'supported' was read loosely",
        )

        assert (version.number, version.name, version.reason) == (2, "Grounded", "'supported' was read loosely")
        [mark] = criterion_marks([grade])[grade.pk]
        assert (mark.key, mark.verdict, mark.graded_under, mark.latest, mark.stale) == (
            "grounded", "fail", 1, 2, True
        )
        assert GradeCriterion.objects.filter(grade=grade).count() == 1

    def test_new_grades_use_the_latest_version(self, project, annotator, owner, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        grade = grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})

        [mark] = criterion_marks([grade])[grade.pk]
        assert (mark.graded_under, mark.latest, mark.stale) == (2, 2, False)

    def test_a_verdict_is_recorded_under_the_version_the_annotator_saw(self, project, annotator, owner, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        shown = grounded.versions.get()
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        grade = grade_submit(
            output=output, annotator=annotator, verdict="pass", criteria={"grounded": "fail"},
            criterion_versions={"grounded": shown.pk},
        )

        [mark] = criterion_marks([grade])[grade.pk]
        assert (mark.verdict, mark.graded_under, mark.latest, mark.stale) == ("fail", 1, 2, True)

    def test_a_shown_version_of_another_criterion_is_ignored(self, project, annotator, owner, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        helpful = criterion_create(project=project, key="helpful", reason="rubric", author=owner)
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        grade = grade_submit(
            output=output, annotator=annotator, verdict="pass", criteria={"grounded": "pass"},
            criterion_versions={"grounded": helpful.versions.get().pk},
        )

        assert list(GradeCriterion.objects.filter(grade=grade).values_list(
            "criterion__key", "criterion_version__criterion__key", "criterion_version__number"
        )) == [("grounded", "grounded", 2)]

    def test_history_shows_stale_marks_and_never_other_annotators(self, project, annotator, owner, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
        grade_submit(output=output, annotator=owner, verdict="fail", note="owner's view")
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        rows = annotator_history(project, annotator)

        assert [(r.grade.annotator_id, r.grade.verdict) for r in rows] == [(annotator.pk, "pass")]
        assert [(m.graded_under, m.latest) for m in rows[0].stale] == [(1, 2)]

    def test_history_shows_time_on_task(self, project, annotator, make_outputs):
        first, second = make_outputs(n_samples=1)
        now = timezone.now()
        grade_submit(output=first, annotator=annotator, verdict="pass", started_at=now - timedelta(seconds=41))
        grade_submit(output=second, annotator=annotator, verdict="fail", started_at=now - timedelta(seconds=185))

        rows = annotator_history(project, annotator)

        assert [(r.grade.output_id, r.time_on_task) for r in rows] == [
            (second.pk, "3 min 5 s"), (first.pk, "41 s")
        ]

    def test_own_current_grade_of_an_undone_output_is_the_undone_grade(self, project, annotator, make_outputs, grounded):
        output = make_outputs(n_samples=1)[0]
        grade = grade_submit(output=output, annotator=annotator, verdict="fail", criteria={"grounded": "fail"})
        grade_retract(grade=grade, annotator=annotator)

        shown, marks = own_current_grade(output, annotator)

        assert shown.pk == grade.pk
        assert [(m.key, m.verdict) for m in marks] == [("grounded", "fail")]

    def test_refinement_needs_a_reason_and_a_change(self, owner, grounded):
        with pytest.raises(CriterionError, match="why the definition changes"):
            criterion_version_publish(criterion=grounded, author=owner, definition="New.", reason=" ")
        with pytest.raises(CriterionError, match="unchanged"):
            criterion_version_publish(
                criterion=grounded, author=owner, definition="Every claim is supported.", reason="x"
            )
        assert CriterionVersion.objects.filter(criterion=grounded).count() == 1

    def test_create_makes_the_key_from_the_name(self, project, annotator):
        criterion = criterion_create(
            project=project, name="No personal data", definition="Leaks no emails.",
            reason="seen a leak", author=annotator,
        )

        version = criterion.versions.get()
        assert (criterion.key, version.number, version.name, version.reason, version.author) == (
            "no_personal_data", 1, "No personal data", "seen a leak", annotator
        )

    def test_create_refuses_a_duplicate(self, project, grounded):
        with pytest.raises(CriterionError, match="already exists"):
            criterion_create(project=project, name="Grounded", reason="again")
        assert project.criteria.count() == 1

    def test_who_may_edit_criteria(self, project):
        assert may_edit_criteria(project=project, role=Role.OWNER) is True
        assert may_edit_criteria(project=project, role=Role.ANNOTATOR) is True
        assert may_edit_criteria(project=project, role=Role.REVIEWER) is False
        project.annotators_may_edit_criteria = False
        assert may_edit_criteria(project=project, role=Role.ANNOTATOR) is False
        assert may_edit_criteria(project=project, role=Role.OWNER) is True


@pytest.mark.django_db
class TestComparisons:
    @pytest.fixture
    def pair(self, project):
        sample = SampleFactory(project=project, external_id="q1")
        return (
            OutputFactory(sample=sample, project=project, system="alpha"),
            OutputFactory(sample=sample, project=project, system="beta"),
        )

    def test_stores_the_shown_order(self, annotator, pair):
        low, high = pair

        shown_high_first = comparison_submit(output_a=high, output_b=low, annotator=annotator, choice="a")

        assert (shown_high_first.output_a_id, shown_high_first.output_b_id) == (high.pk, low.pk)
        assert (shown_high_first.choice, shown_high_first.swapped) == ("a", True)

    def test_a_second_choice_supersedes_whatever_side_was_shown(self, annotator, pair):
        low, high = pair
        first = comparison_submit(output_a=low, output_b=high, annotator=annotator, choice="a")

        second = comparison_submit(output_a=high, output_b=low, annotator=annotator, choice="tie")

        assert second.supersedes_id == first.pk
        assert Comparison.objects.filter(superseded_by__isnull=True).count() == 1

    @pytest.mark.parametrize("choice", ["", "left", "A"])
    def test_bad_choice_is_refused(self, annotator, pair, choice):
        with pytest.raises(GradeError, match="Choose A, B or tie"):
            comparison_submit(output_a=pair[0], output_b=pair[1], annotator=annotator, choice=choice)
        assert Comparison.objects.count() == 0

    def test_outputs_of_different_inputs_are_refused(self, project, annotator, pair):
        other = OutputFactory(sample=SampleFactory(project=project), project=project)

        with pytest.raises(GradeError, match="same input"):
            comparison_submit(output_a=pair[0], output_b=other, annotator=annotator, choice="a")

        assert Comparison.objects.count() == 0

    def test_undo_last_shows_the_same_pair_on_the_same_sides(self, project, annotator, pair):
        low, high = pair
        comparison = comparison_submit(output_a=high, output_b=low, annotator=annotator, choice="b")

        undone, claim = comparison_undo_last(project=project, annotator=annotator)

        assert undone.pk == comparison.pk
        assert (claim.output_id, claim.output_b_id, claim.status) == (high.pk, low.pk, "active")
        assert Comparison.objects.filter(retracted=True, supersedes=comparison).count() == 1

    def test_retracting_twice_is_refused(self, annotator, pair):
        comparison = comparison_submit(output_a=pair[0], output_b=pair[1], annotator=annotator, choice="a")
        comparison_retract(comparison=comparison, annotator=annotator)

        with pytest.raises(GradeError, match="replaced since"):
            comparison_retract(comparison=comparison, annotator=annotator)

        assert Comparison.objects.count() == 2
