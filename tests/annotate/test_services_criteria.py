import pytest

from annotate.models import Criterion, CriterionStatusChange, CriterionVersion, GradeCriterion
from annotate.queries import criteria_for_grading
from annotate.services.criteria import (
    CriterionError,
    criterion_create,
    criterion_restore,
    criterion_retire,
    criterion_version_publish,
)
from annotate.services.grades import grade_submit


@pytest.fixture
def graded_criterion(project, owner, annotator, make_outputs):
    criterion = criterion_create(project=project, name="Tone", definition="Polite.", author=owner)
    outputs = make_outputs(n_samples=2)
    for output in outputs[:3]:
        grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"tone": "fail"})
    return criterion


@pytest.mark.django_db
class TestRetireAndRestore:
    def test_retire_hides_from_grading_and_keeps_grades_and_versions(self, graded_criterion, owner, project):
        criterion_retire(criterion=graded_criterion, author=owner, reason="Merged into politeness")

        graded_criterion.refresh_from_db()
        assert graded_criterion.archived is True
        assert [row.key for row in criteria_for_grading(project)] == []
        assert GradeCriterion.objects.filter(criterion=graded_criterion).count() == 3
        assert CriterionVersion.objects.filter(criterion=graded_criterion).count() == 1
        change = CriterionStatusChange.objects.get(criterion=graded_criterion)
        assert (change.archived, change.author, change.reason) == (True, owner, "Merged into politeness")

    def test_restore_brings_it_back_with_its_grades(self, graded_criterion, owner, annotator, project):
        criterion_retire(criterion=graded_criterion, author=owner, reason="Not now")

        criterion_restore(criterion=graded_criterion, author=annotator)

        graded_criterion.refresh_from_db()
        assert graded_criterion.archived is False
        assert [row.key for row in criteria_for_grading(project)] == ["tone"]
        assert GradeCriterion.objects.filter(criterion=graded_criterion).count() == 3
        assert list(
            CriterionStatusChange.objects.filter(criterion=graded_criterion)
            .order_by("id").values_list("archived", "author__username", "reason")
        ) == [(True, "olivia", "Not now"), (False, "arjun", "restored")]

    def test_retire_needs_a_reason(self, graded_criterion, owner):
        with pytest.raises(CriterionError, match="why the criterion is retired"):
            criterion_retire(criterion=graded_criterion, author=owner, reason="  ")

        assert Criterion.objects.get(pk=graded_criterion.pk).archived is False
        assert CriterionStatusChange.objects.count() == 0

    def test_retiring_twice_and_restoring_a_live_one_are_refused(self, graded_criterion, owner):
        with pytest.raises(CriterionError, match="already in use"):
            criterion_restore(criterion=graded_criterion, author=owner)
        criterion_retire(criterion=graded_criterion, author=owner, reason="x")

        with pytest.raises(CriterionError, match="already retired"):
            criterion_retire(criterion=graded_criterion, author=owner, reason="again")

        assert CriterionStatusChange.objects.count() == 1


@pytest.mark.django_db
class TestRefine:
    def test_refine_requires_a_reason(self, graded_criterion, owner):
        with pytest.raises(CriterionError, match="why the definition changes"):
            criterion_version_publish(criterion=graded_criterion, author=owner, definition="Kind.", reason="")

        assert CriterionVersion.objects.filter(criterion=graded_criterion).count() == 1

    def test_refine_adds_a_version_with_its_reason(self, graded_criterion, owner):
        version = criterion_version_publish(
            criterion=graded_criterion, author=owner, definition="Kind and polite.", reason="Too vague",
        )

        assert (version.number, version.reason, version.author) == (2, "Too vague", owner)
