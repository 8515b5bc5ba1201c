"""Human grades and comparisons. Append-only: an edit or an undo is a new row that
supersedes the current one; nothing is updated in place or deleted."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Criterion,
    Grade,
    GradeCriterion,
    Output,
    Scale,
    Verdict,
)
from annotate.services.criteria import current_versions


class GradeError(ValueError):
    """Bad grade input; `field` names what was wrong."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def current_grade(*, output: Output, annotator: AbstractBaseUser) -> Grade | None:
    return (
        Grade.objects.filter(output=output, annotator=annotator, superseded_by__isnull=True)
        .first()
    )


def _clean_criteria(project, criteria: dict[str, str] | None) -> list[tuple[Criterion, str]]:
    if not criteria:
        return []
    known = {c.key: c for c in Criterion.objects.filter(project=project, archived=False)}
    cleaned = []
    for key, verdict in criteria.items():
        if verdict in ("", None):
            continue
        if key not in known:
            raise GradeError(f"Unknown criterion '{key}'.", field=f"criteria.{key}")
        if verdict not in Verdict.values:
            raise GradeError(
                f"Verdict for '{key}' must be pass, fail or unsure, not {verdict!r}.",
                field=f"criteria.{key}",
            )
        cleaned.append((known[key], verdict))
    return cleaned


def _append(model, *, lookup: dict, build) -> object:
    """Append a new row that supersedes the current one for `lookup`; retried once when a
    concurrent submission won the race for the same predecessor."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                previous = (
                    model.objects.select_for_update()
                    .filter(**lookup, superseded_by__isnull=True)
                    .order_by("-id")
                    .first()
                )
                row = build(previous)
                row.save()
                return row
        except IntegrityError:
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def _close_assignment(*, assignment: Assignment | None, annotator, output: Output, now) -> Assignment | None:
    if assignment is None:
        assignment = Assignment.objects.filter(
            project_id=output.project_id, annotator=annotator, output=output,
            status=AssignmentStatus.ACTIVE,
        ).first()
    elif assignment.annotator_id != annotator.pk or assignment.output_id != output.pk:
        raise GradeError("This assignment belongs to another annotator or output.", "assignment")
    if assignment is not None and assignment.status == AssignmentStatus.ACTIVE:
        Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.SUBMITTED, closed_at=now
        )
    return assignment


@transaction.atomic
def grade_submit(
    *, output: Output, annotator: AbstractBaseUser, verdict: str = "",
    criteria: dict[str, str] | None = None, note: str = "", score: float | None = None,
    started_at: datetime | None = None, assignment: Assignment | None = None,
) -> Grade:
    project = output.project
    if project.scale == Scale.RATING:
        if score is None and not verdict:
            raise GradeError("Give a score on the project's scale.", "score")
        if score is not None:
            low, high = project.scale_min, project.scale_max
            if (low is not None and score < low) or (high is not None and score > high):
                raise GradeError(f"The score must lie between {low:g} and {high:g}.", "score")
            verdict = verdict or (Verdict.PASS if score >= project.pass_threshold else Verdict.FAIL)
    if verdict not in Verdict.values:
        raise GradeError("The verdict must be pass, fail or unsure.", "verdict")
    cleaned = _clean_criteria(project, criteria)
    now = timezone.now()
    if started_at is not None and started_at > now:
        started_at = now
    assignment = _close_assignment(assignment=assignment, annotator=annotator, output=output, now=now)

    def build(previous: Grade | None) -> Grade:
        return Grade(
            project=project, output=output, annotator=annotator, verdict=verdict, score=score,
            note=note.strip(), started_at=started_at, submitted_at=now,
            selector=assignment.selector if assignment else "",
            selector_why=assignment.why if assignment else "",
            selector_probability=assignment.probability if assignment else None,
            assignment=assignment, supersedes=previous,
        )

    grade = _append(Grade, lookup={"output": output, "annotator": annotator}, build=build)
    if cleaned:
        versions = current_versions(project)
        GradeCriterion.objects.bulk_create([
            GradeCriterion(
                grade=grade, criterion=criterion, criterion_version=versions[criterion.pk],
                verdict=criterion_verdict,
            )
            for criterion, criterion_verdict in cleaned
        ])
    return grade


@transaction.atomic
def grade_retract(*, grade: Grade, annotator: AbstractBaseUser) -> Grade:
    """Undo: a retraction row supersedes the grade, so the output is ungraded again for this
    annotator while the grade itself stays on record."""
    if grade.annotator_id != annotator.pk:
        raise GradeError("Only the annotator who gave a grade can undo it.")
    if grade.retracted:
        raise GradeError("This grade is already undone.")
    now = timezone.now()

    def build(previous: Grade | None) -> Grade:
        if previous is None or previous.pk != grade.pk:
            raise GradeError("This grade has been replaced since; undo the newer one.")
        return Grade(
            project_id=grade.project_id, output_id=grade.output_id, annotator=annotator,
            retracted=True, verdict="", submitted_at=now, supersedes=previous,
            selector=grade.selector, note="undone",
        )

    return _append(Grade, lookup={"output_id": grade.output_id, "annotator": annotator}, build=build)


def last_undoable_grade(*, project, annotator) -> Grade | None:
    return (
        Grade.objects.filter(
            project=project, annotator=annotator, superseded_by__isnull=True, retracted=False
        )
        .exclude(selector="import")
        .order_by("-submitted_at", "-id")
        .first()
    )


@transaction.atomic
def comparison_submit(
    *, output_a: Output, output_b: Output, annotator: AbstractBaseUser, choice: str,
    note: str = "", started_at: datetime | None = None, swapped: bool = False,
    assignment: Assignment | None = None,
) -> Comparison:
    if choice not in Choice.values:
        raise GradeError("The choice must be a, b or tie.", "choice")
    if output_a.pk == output_b.pk:
        raise GradeError("A comparison needs two different outputs.", "output_b")
    if output_a.sample_id != output_b.sample_id:
        raise GradeError("Both outputs must answer the same input.", "output_b")
    now = timezone.now()
    if assignment is not None:
        if assignment.annotator_id != annotator.pk:
            raise GradeError("This assignment belongs to another annotator.", "assignment")
        Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.SUBMITTED, closed_at=now
        )
    # The chain of a pair is keyed by the unordered pair, whatever side each was shown on.
    low, high = sorted([output_a.pk, output_b.pk])

    def build(previous: Comparison | None) -> Comparison:
        return Comparison(
            project_id=output_a.project_id, sample_id=output_a.sample_id, output_a=output_a,
            output_b=output_b, swapped=swapped, annotator=annotator, choice=choice,
            note=note.strip(), started_at=started_at, submitted_at=now,
            selector=assignment.selector if assignment else "",
            selector_why=assignment.why if assignment else "",
            selector_probability=assignment.probability if assignment else None,
            assignment=assignment, supersedes=previous,
        )

    previous_filter = Comparison.objects.filter(
        annotator=annotator, output_a_id__in=[low, high], output_b_id__in=[low, high]
    )
    for attempt in range(2):
        try:
            with transaction.atomic():
                previous = (
                    previous_filter.select_for_update().filter(superseded_by__isnull=True)
                    .order_by("-id").first()
                )
                row = build(previous)
                row.save()
                return row
        except IntegrityError:
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def comparison_retract(*, comparison: Comparison, annotator: AbstractBaseUser) -> Comparison:
    if comparison.annotator_id != annotator.pk or comparison.retracted:
        raise GradeError("This comparison cannot be undone.")
    if Comparison.objects.filter(supersedes=comparison).exists():
        raise GradeError("This comparison has been replaced since; undo the newer one.")
    return Comparison.objects.create(
        project_id=comparison.project_id, sample_id=comparison.sample_id,
        output_a_id=comparison.output_a_id, output_b_id=comparison.output_b_id,
        swapped=comparison.swapped, annotator=annotator, retracted=True, choice="",
        submitted_at=timezone.now(), supersedes=comparison, note="undone",
    )
