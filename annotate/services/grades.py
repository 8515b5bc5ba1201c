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
    Project,
    Scale,
    Verdict,
)
from annotate.services.assignments import REOPENED, AssignmentError, assignment_claim_output
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


def _append(model, *, chain, build):
    """Append a row that supersedes the current head of `chain` (a queryset of one chain).

    The head is locked; when a concurrent submission appended first, the insert breaks a
    unique constraint (one start per chain, `supersedes` one-to-one) and is retried once
    against the new head.
    """
    for attempt in range(2):
        try:
            with transaction.atomic():
                previous = (
                    chain.select_for_update(of=("self",))
                    .filter(superseded_by__isnull=True)
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


def _lock_assignment(assignment: Assignment | None) -> Assignment | None:
    if assignment is None:
        return None
    return Assignment.objects.select_for_update().get(pk=assignment.pk)


def _close_assignment(*, assignment: Assignment | None, annotator, output: Output, now) -> Assignment | None:
    if assignment is None:
        assignment = Assignment.objects.filter(
            project_id=output.project_id, annotator=annotator, output=output,
            output_b__isnull=True, status=AssignmentStatus.ACTIVE,
        ).first()
        if assignment is None:
            return None
    elif assignment.annotator_id != annotator.pk or assignment.output_id != output.pk:
        raise GradeError("This assignment belongs to another annotator or output.", "assignment")
    if assignment.status == AssignmentStatus.ACTIVE:
        Assignment.objects.filter(pk=assignment.pk).update(
            status=AssignmentStatus.SUBMITTED, closed_at=now
        )
    elif assignment.status != AssignmentStatus.SUBMITTED:
        # A late grade is kept; it takes its slot back when nobody has taken it meanwhile.
        try:
            with transaction.atomic():
                Assignment.objects.filter(pk=assignment.pk).update(
                    status=AssignmentStatus.SUBMITTED, closed_at=now
                )
        except IntegrityError:
            pass
    return assignment


def _origin(assignment: Assignment | None, previous: Grade | Comparison | None) -> dict:
    """Which selector chose the item. A reopened item keeps the original choice, so estimates
    weighted by selection probability stay right after an undo or an edit."""
    if assignment is not None and assignment.selector != REOPENED:
        return {"selector": assignment.selector, "selector_why": assignment.why,
                "selector_probability": assignment.probability}
    if previous is not None:
        return {"selector": previous.selector, "selector_why": previous.selector_why,
                "selector_probability": previous.selector_probability}
    if assignment is not None:
        return {"selector": assignment.selector, "selector_why": assignment.why,
                "selector_probability": None}
    return {"selector": "", "selector_why": "", "selector_probability": None}


def _clamp_started(started_at: datetime | None, now: datetime, assignment) -> datetime | None:
    if started_at is None:
        return assignment.claimed_at if assignment is not None else None
    return min(started_at, now)


@transaction.atomic
def grade_submit(
    *, output: Output, annotator: AbstractBaseUser, verdict: str = "",
    criteria: dict[str, str] | None = None, note: str = "", score: float | None = None,
    started_at: datetime | None = None, assignment: Assignment | None = None,
) -> Grade:
    """Append the annotator's grade of `output`. Submitting twice under one assignment (a
    double click, a resent form) returns the first grade instead of appending another."""
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
        raise GradeError("Choose pass, fail or unsure.", "verdict")
    cleaned = _clean_criteria(project, criteria)
    assignment = _lock_assignment(assignment)
    if assignment is not None:
        earlier = Grade.objects.filter(assignment=assignment, annotator=annotator).first()
        if earlier is not None:
            return earlier
    now = timezone.now()
    assignment = _close_assignment(assignment=assignment, annotator=annotator, output=output, now=now)
    started_at = _clamp_started(started_at, now, assignment)

    def build(previous: Grade | None) -> Grade:
        return Grade(
            project=project, output=output, annotator=annotator, verdict=verdict, score=score,
            note=note.strip(), started_at=started_at, submitted_at=now,
            assignment=assignment, supersedes=previous, **_origin(assignment, previous),
        )

    grade = _append(
        Grade, chain=Grade.objects.filter(output=output, annotator=annotator), build=build
    )
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
    annotator while the grade itself stays on record. The claim slot the grade held is given
    back, so the output can be graded again (by this annotator or, once released, another)."""
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
            retracted=True, verdict="", submitted_at=now, supersedes=previous, note="undone",
            selector=grade.selector, selector_why=grade.selector_why,
            selector_probability=grade.selector_probability,
        )

    retraction = _append(
        Grade, chain=Grade.objects.filter(output_id=grade.output_id, annotator=annotator),
        build=build,
    )
    Assignment.objects.filter(
        output_id=grade.output_id, annotator=annotator, output_b__isnull=True,
        status=AssignmentStatus.SUBMITTED,
    ).update(status=AssignmentStatus.RELEASED, closed_at=now)
    return retraction


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
def grade_undo_last(*, project: Project, annotator: AbstractBaseUser) -> tuple[Grade, Assignment] | None:
    """Undo the annotator's latest grade and put that output back in front of them.
    Returns (the undone grade, the new claim), or None when there is nothing to undo."""
    grade = last_undoable_grade(project=project, annotator=annotator)
    if grade is None:
        return None
    grade_retract(grade=grade, annotator=annotator)
    claim = assignment_claim_output(
        project=project, annotator=annotator, output=grade.output,
        why="you undid your grade; grade it again or skip it",
    )
    return grade, claim


@transaction.atomic
def grade_reopen(*, project: Project, annotator: AbstractBaseUser, output: Output) -> Assignment:
    """Put an output the annotator graded before back in front of them, to grade it again."""
    if not Grade.objects.filter(project=project, output=output, annotator=annotator).exists():
        raise GradeError("You have not graded this output, so there is nothing to reopen.")
    try:
        return assignment_claim_output(
            project=project, annotator=annotator, output=output,
            why="reopened from your history",
        )
    except AssignmentError as exc:
        raise GradeError(str(exc)) from exc


def _lock_pair(a: int, b: int) -> None:
    # Serialises submissions on one pair: comparisons have no unique start per chain.
    list(
        Output.objects.select_for_update().filter(pk__in=[a, b]).order_by("pk")
        .values_list("pk", flat=True)
    )


def _pair_chain(annotator, a: int, b: int):
    return Comparison.objects.filter(
        annotator=annotator, output_a_id__in=[a, b], output_b_id__in=[a, b]
    )


@transaction.atomic
def comparison_submit(
    *, output_a: Output, output_b: Output, annotator: AbstractBaseUser, choice: str,
    note: str = "", started_at: datetime | None = None, swapped: bool | None = None,
    assignment: Assignment | None = None,
) -> Comparison:
    """Append the annotator's choice between `output_a` (shown left) and `output_b` (right).

    `swapped` records whether the shown order differs from the canonical one (ascending ids);
    left unset, it is derived from the ids.
    """
    if choice not in Choice.values:
        raise GradeError("Choose A, B or tie.", "choice")
    if output_a.pk == output_b.pk:
        raise GradeError("A comparison needs two different outputs.", "output_b")
    if output_a.sample_id != output_b.sample_id:
        raise GradeError("Both outputs must answer the same input.", "output_b")
    assignment = _lock_assignment(assignment)
    if assignment is not None:
        if assignment.annotator_id != annotator.pk or {assignment.output_id, assignment.output_b_id} != {
            output_a.pk, output_b.pk
        }:
            raise GradeError("This assignment belongs to another annotator or pair.", "assignment")
        earlier = Comparison.objects.filter(assignment=assignment, annotator=annotator).first()
        if earlier is not None:
            return earlier
    now = timezone.now()
    if assignment is not None and assignment.status == AssignmentStatus.ACTIVE:
        Assignment.objects.filter(pk=assignment.pk).update(
            status=AssignmentStatus.SUBMITTED, closed_at=now
        )
    if swapped is None:
        swapped = output_a.pk > output_b.pk
    _lock_pair(output_a.pk, output_b.pk)
    previous = (
        _pair_chain(annotator, output_a.pk, output_b.pk)
        .filter(superseded_by__isnull=True).order_by("-id").first()
    )
    return Comparison.objects.create(
        project_id=output_a.project_id, sample_id=output_a.sample_id, output_a=output_a,
        output_b=output_b, swapped=swapped, annotator=annotator, choice=choice,
        note=note.strip(), started_at=_clamp_started(started_at, now, assignment),
        submitted_at=now, assignment=assignment, supersedes=previous,
        **_origin(assignment, previous),
    )


@transaction.atomic
def comparison_retract(*, comparison: Comparison, annotator: AbstractBaseUser) -> Comparison:
    if comparison.annotator_id != annotator.pk or comparison.retracted:
        raise GradeError("This comparison cannot be undone.")
    _lock_pair(comparison.output_a_id, comparison.output_b_id)
    if Comparison.objects.filter(supersedes=comparison).exists():
        raise GradeError("This comparison has been replaced since; undo the newer one.")
    return Comparison.objects.create(
        project_id=comparison.project_id, sample_id=comparison.sample_id,
        output_a_id=comparison.output_a_id, output_b_id=comparison.output_b_id,
        swapped=comparison.swapped, annotator=annotator, retracted=True, choice="",
        submitted_at=timezone.now(), supersedes=comparison, note="undone",
        selector=comparison.selector, selector_why=comparison.selector_why,
        selector_probability=comparison.selector_probability,
    )


def last_undoable_comparison(*, project: Project, annotator: AbstractBaseUser) -> Comparison | None:
    return (
        Comparison.objects.filter(
            project=project, annotator=annotator, superseded_by__isnull=True, retracted=False
        )
        .exclude(selector="import")
        .order_by("-submitted_at", "-id")
        .first()
    )


@transaction.atomic
def comparison_undo_last(
    *, project: Project, annotator: AbstractBaseUser
) -> tuple[Comparison, Assignment] | None:
    """Undo the annotator's latest comparison and show the same pair again, same sides."""
    comparison = last_undoable_comparison(project=project, annotator=annotator)
    if comparison is None:
        return None
    comparison_retract(comparison=comparison, annotator=annotator)
    claim = assignment_claim_output(
        project=project, annotator=annotator, output=comparison.output_a,
        output_b=comparison.output_b, why="you undid your choice; choose again or skip it",
    )
    return comparison, claim
