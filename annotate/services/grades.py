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
    CriterionVersion,
    Grade,
    GradeCriterion,
    Output,
    Project,
    Scale,
    Verdict,
)
from annotate.services.assignments import REOPENED, AssignmentError, assignment_claim_output
from annotate.services.text import unstorable_field


class GradeError(ValueError):
    """Bad grade input; `field` names what was wrong."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _clean_criteria(
    project, criteria: dict[str, str] | None, shown: dict[str, int | CriterionVersion] | None
) -> list[tuple[CriterionVersion, str]]:
    """(version, verdict) per criterion given a verdict. The version is the one the annotator
    was shown when `shown` names it, else the latest: a definition refined while someone was
    grading leaves their verdict stale, as it was given under the older text. Versions passed
    as objects (read by the caller in this request) spare the query when they cover all."""
    given = {key: verdict for key, verdict in (criteria or {}).items() if verdict not in ("", None)}
    if not given:
        return []
    for key, verdict in given.items():
        if verdict not in Verdict.values:
            raise GradeError(
                f"Verdict for '{key}' must be pass, fail or unsure, not {verdict!r}.",
                field=f"criteria.{key}",
            )
    passed = {
        key: version for key, version in (shown or {}).items()
        if isinstance(version, CriterionVersion) and version.criterion.key == key
        and version.criterion.project_id == project.pk and not version.criterion.archived
    }
    if all(key in passed for key in given):
        return [(passed[key], verdict) for key, verdict in given.items()]
    shown = {k: (v.pk if isinstance(v, CriterionVersion) else v) for k, v in (shown or {}).items()}
    latest: dict[str, CriterionVersion] = {}
    by_id: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).select_related("criterion").order_by("number"):
        latest[version.criterion.key] = version
        by_id[version.pk] = version
    cleaned = []
    for key, verdict in given.items():
        if key not in latest:
            raise GradeError(f"Unknown criterion '{key}'.", field=f"criteria.{key}")
        version = by_id.get(shown.get(key))
        if version is None or version.criterion.key != key:
            version = latest[key]
        cleaned.append((version, verdict))
    return cleaned


def _append(model, *, chain, build, serialised: bool = False):
    """Append a row that supersedes the current head of `chain` (a queryset of one chain).

    The head is locked; when a concurrent submission appended first, the insert breaks a
    unique constraint (one start per chain, `supersedes` one-to-one) and is retried once
    against the new head. `serialised`: the caller holds a lock that already orders every
    writer of this chain (a live claim's row: one per output and annotator), so neither the
    head lock nor the savepoint for the retry is needed.
    """
    if serialised:
        # Rows are only ever appended, so the head of a chain is its newest row.
        row = build(chain.order_by("-id").first())
        row.save()
        return row
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


def _close_assignment(
    *, assignment: Assignment | None, annotator, output: Output, now
) -> tuple[Assignment | None, Grade | None, bool]:
    """Mark the claim submitted. Returns it; the grade already stored under it when this is a
    resubmission (a double click, a resent form); and whether this transaction now holds the
    live claim's row lock (the UPDATE's), which orders every writer of the chain."""
    if assignment is None:
        assignment = Assignment.objects.filter(
            project_id=output.project_id, annotator=annotator, output=output,
            output_b__isnull=True, status=AssignmentStatus.ACTIVE,
        ).first()
        if assignment is None:
            return None, None, False
    elif assignment.annotator_id != annotator.pk or assignment.output_id != output.pk:
        raise GradeError("This assignment belongs to another annotator or output.", "assignment")
    if Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.SUBMITTED, closed_at=now
    ):
        return assignment, None, True
    earlier = Grade.objects.filter(assignment=assignment, annotator=annotator).first()
    if earlier is not None:
        return assignment, earlier, False
    # A late grade (the claim expired, was released or skipped) is kept; it takes its slot
    # back when nobody has taken it meanwhile.
    try:
        with transaction.atomic():
            Assignment.objects.filter(pk=assignment.pk).update(
                status=AssignmentStatus.SUBMITTED, closed_at=now
            )
    except IntegrityError:
        pass
    return assignment, None, False


def _origin(assignment: Assignment | None, previous: Grade | Comparison | None) -> dict:
    """Which selector chose the item. A reopened item keeps the original choice, so estimates
    weighted by selection probability stay right after an undo or an edit."""
    if assignment is not None and assignment.selector != REOPENED:
        return {"selector": assignment.selector, "selector_why": assignment.why,
                "selector_probability": assignment.probability,
                "selector_pool_size": assignment.pool_size}
    if previous is not None:
        return {"selector": previous.selector, "selector_why": previous.selector_why,
                "selector_probability": previous.selector_probability,
                "selector_pool_size": previous.selector_pool_size}
    if assignment is not None:
        return {"selector": assignment.selector, "selector_why": assignment.why,
                "selector_probability": None, "selector_pool_size": None}
    return {"selector": "", "selector_why": "", "selector_probability": None,
            "selector_pool_size": None}


def _clamp_started(started_at: datetime | None, now: datetime, assignment) -> datetime | None:
    if started_at is None:
        return assignment.claimed_at if assignment is not None else None
    return min(started_at, now)


@transaction.atomic
def grade_submit(
    *, output: Output, annotator: AbstractBaseUser, verdict: str = "",
    criteria: dict[str, str] | None = None, note: str = "", score: float | None = None,
    started_at: datetime | None = None, assignment: Assignment | None = None,
    criterion_versions: dict[str, int] | None = None,
) -> Grade:
    """Append the annotator's grade of `output`. Submitting twice under one assignment (a
    double click, a resent form) returns the first grade instead of appending another.
    `criterion_versions` maps criterion keys to the CriterionVersion ids the annotator saw."""
    project = output.project
    if bad := unstorable_field(note=note):
        raise GradeError(bad[1], bad[0])
    if project.scale == Scale.RATING:
        if score is None and not verdict:
            raise GradeError("Give a score on the project's scale.", "score")
        if score is not None:
            low, high = project.scale_min, project.scale_max
            if (low is not None and score < low) or (high is not None and score > high):
                raise GradeError(f"The score must lie between {low:g} and {high:g}.", "score")
            verdict = verdict or Verdict.for_score(score, project.pass_threshold)
    if verdict not in Verdict.values:
        raise GradeError("Choose pass, fail or unsure.", "verdict")
    cleaned = _clean_criteria(project, criteria, criterion_versions)
    now = timezone.now()
    assignment, earlier, serialised = _close_assignment(
        assignment=assignment, annotator=annotator, output=output, now=now
    )
    if earlier is not None:
        return earlier
    started_at = _clamp_started(started_at, now, assignment)

    def build(previous: Grade | None) -> Grade:
        return Grade(
            project=project, output=output, annotator=annotator, verdict=verdict, score=score,
            note=note.strip(), started_at=started_at, submitted_at=now,
            assignment=assignment, supersedes=previous, **_origin(assignment, previous),
        )

    grade = _append(
        Grade, chain=Grade.objects.filter(output=output, annotator=annotator), build=build,
        serialised=serialised,
    )
    if cleaned:
        GradeCriterion.objects.bulk_create([
            GradeCriterion(
                grade=grade, criterion_id=version.criterion_id, criterion_version=version,
                verdict=criterion_verdict,
            )
            for version, criterion_verdict in cleaned
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
            selector_pool_size=grade.selector_pool_size,
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
    if bad := unstorable_field(note=note):
        raise GradeError(bad[1], bad[0])
    if output_a.pk == output_b.pk:
        raise GradeError("A comparison needs two different outputs.", "output_b")
    if output_a.sample_id != output_b.sample_id:
        raise GradeError("Both outputs must answer the same input.", "output_b")
    if assignment is not None:
        assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
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
        selector_pool_size=comparison.selector_pool_size,
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
