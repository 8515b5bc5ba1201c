"""Criteria-drift review meetings: start one (its agenda is built from the data and frozen),
adjudicate outputs, publish criterion versions, send outputs back for re-grading, record
decisions, end it. Grades are never edited: an adjudication is its own record, and a
re-grade is a new grade that supersedes the old one.

Re-grading: `meeting_send_back` opens a RegradeRequest per output. `regrade_candidates` is
what the assignment queue asks first, before any selector (see its docstring).
"""

from __future__ import annotations

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotate.access import GRADING_ROLES
from annotate.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Criterion,
    CriterionVersion,
    Decision,
    DecisionKind,
    Grade,
    Membership,
    Output,
    Project,
    RegradeRequest,
    ReviewAgendaItem,
    ReviewMeeting,
    Verdict,
)
from annotate.review.agenda import open_regrade_requests, previous_meeting, review_agenda
from annotate.services.criteria import CriterionError, criterion_create, criterion_version_publish
from annotate.services.text import unstorable_field


class ReviewError(ValueError):
    """A refused meeting action; `field` names what was wrong, when one field is to blame."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _refuse_unstorable(**texts: str | None) -> None:
    if bad := unstorable_field(**texts):
        raise ReviewError(bad[1], bad[0])


def _open_meeting(meeting: ReviewMeeting) -> ReviewMeeting:
    """The meeting row, locked; refuses a meeting that has ended."""
    locked = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
    if locked.ended_at is not None:
        raise ReviewError("This meeting has ended; start a new one to record more decisions.")
    return locked


def _attend(meeting: ReviewMeeting, user: AbstractBaseUser | None) -> None:
    if user is not None:
        meeting.attendees.add(user)


@transaction.atomic
def meeting_start(*, project: Project, started_by: AbstractBaseUser, title: str = "") -> ReviewMeeting:
    """Start a meeting, or join the one already open (one open meeting per project). The
    agenda is built from the data since the previous meeting started, then frozen."""
    _refuse_unstorable(title=title)
    Project.objects.select_for_update().get(pk=project.pk)
    current = ReviewMeeting.objects.filter(project=project, ended_at__isnull=True).first()
    if current is not None:
        _attend(current, started_by)
        return current
    title = title.strip() or f"Review {timezone.localdate():%Y-%m-%d}"
    if len(title) > 200:
        raise ReviewError("Keep the title under 200 characters.")
    previous = previous_meeting(project)
    meeting = ReviewMeeting.objects.create(project=project, title=title, created_by=started_by)
    _attend(meeting, started_by)
    agenda = review_agenda(project, since=previous.started_at if previous else None)
    ReviewAgendaItem.objects.bulk_create([
        ReviewAgendaItem(
            meeting=meeting, position=position, kind=entry.kind, output_id=entry.output_id,
            criterion_id=entry.criterion_id, title=entry.title[:300], detail=entry.detail,
        )
        for position, entry in enumerate(agenda, start=1)
    ])
    return meeting


@transaction.atomic
def meeting_end(
    *, meeting: ReviewMeeting, ended_by: AbstractBaseUser, notes: str | None = None,
) -> ReviewMeeting:
    """End the meeting, with its final notes if given. Ending it twice is harmless."""
    _refuse_unstorable(notes=notes)
    locked = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
    if locked.ended_at is not None:
        return locked
    if notes is not None:
        locked.notes = notes.strip()
    locked.ended_at = timezone.now()
    locked.save(update_fields=["notes", "ended_at"])
    _attend(locked, ended_by)
    return locked


@transaction.atomic
def meeting_notes_save(*, meeting: ReviewMeeting, notes: str, author: AbstractBaseUser) -> ReviewMeeting:
    """Keep the meeting's running notes (the page saves them as they are typed)."""
    _refuse_unstorable(notes=notes)
    meeting = _open_meeting(meeting)
    if len(notes) > 20000:
        raise ReviewError("Keep the notes under 20,000 characters.")
    meeting.notes = notes.strip()
    meeting.save(update_fields=["notes"])
    _attend(meeting, author)
    return meeting


def _check_output(project_id: int, output: Output) -> None:
    if output.project_id != project_id:
        raise ReviewError("That output belongs to another project.")


def _check_criterion(project_id: int, criterion: Criterion | None) -> None:
    if criterion is not None and criterion.project_id != project_id:
        raise ReviewError("That criterion belongs to another project.")


@transaction.atomic
def adjudication_record(
    *, output: Output, verdict: str, reviewer: AbstractBaseUser, criterion: Criterion | None = None,
    reason: str = "", meeting: ReviewMeeting | None = None,
) -> Adjudication:
    """The reviewer's gold label for (output, criterion or holistic). The latest one wins in
    the gold export; the grades themselves stay as they are."""
    if verdict not in Verdict.values:
        raise ReviewError("Choose pass, fail or unsure.", "verdict")
    _refuse_unstorable(reason=reason)
    _check_criterion(output.project_id, criterion)
    if meeting is not None:
        meeting = _open_meeting(meeting)
        _check_output(meeting.project_id, output)
        _attend(meeting, reviewer)
    return Adjudication.objects.create(
        output=output, criterion=criterion, verdict=verdict, reason=reason.strip(),
        reviewer=reviewer, meeting=meeting,
    )


@transaction.atomic
def meeting_publish_version(
    *, meeting: ReviewMeeting, criterion: Criterion, definition: str, reason: str,
    author: AbstractBaseUser, name: str = "",
) -> CriterionVersion:
    """A new version of `criterion` decided in the meeting (grades under older versions
    become stale), with its Decision."""
    meeting = _open_meeting(meeting)
    _check_criterion(meeting.project_id, criterion)
    try:
        version = criterion_version_publish(
            criterion=criterion, author=author, definition=definition, reason=reason, name=name,
            decided_in=meeting,
        )
    except CriterionError as exc:
        raise ReviewError(str(exc), exc.field) from exc
    Decision.objects.create(
        meeting=meeting, kind=DecisionKind.NEW_VERSION, criterion_version=version, author=author,
        text=f"{criterion.key} v{version.number}: {version.reason}",
    )
    _attend(meeting, author)
    return version


@transaction.atomic
def meeting_create_criterion(
    *, meeting: ReviewMeeting, name: str, definition: str, reason: str,
    author: AbstractBaseUser, key: str = "",
) -> Criterion:
    """A criterion the meeting decided the project needs, with its first version."""
    meeting = _open_meeting(meeting)
    if not reason.strip():
        raise ReviewError("Say in one line why the project needs this criterion.")
    try:
        criterion = criterion_create(
            project=meeting.project, key=key, name=name, definition=definition, reason=reason,
            author=author, decided_in=meeting,
        )
    except CriterionError as exc:
        raise ReviewError(str(exc), exc.field) from exc
    version = criterion.versions.get()
    Decision.objects.create(
        meeting=meeting, kind=DecisionKind.NEW_VERSION, criterion_version=version, author=author,
        text=f"new criterion {criterion.key}: {version.reason}",
    )
    _attend(meeting, author)
    return criterion


@transaction.atomic
def meeting_send_back(
    *, meeting: ReviewMeeting, outputs: list[Output], reason: str, author: AbstractBaseUser,
    criterion: Criterion | None = None,
) -> Decision:
    """Send outputs back for re-grading: a Decision and one RegradeRequest per output. A new
    request replaces a still-open one for the same output."""
    _refuse_unstorable(reason=reason)
    meeting = _open_meeting(meeting)
    if not outputs:
        raise ReviewError("Choose at least one output to send back.")
    reason = reason.strip()
    if not reason:
        raise ReviewError("Say in one line what the annotators should look at again.")
    if len(reason) > 500:
        raise ReviewError("Keep the reason to 500 characters.")
    for output in outputs:
        _check_output(meeting.project_id, output)
    _check_criterion(meeting.project_id, criterion)
    now = timezone.now()
    decision = Decision.objects.create(
        meeting=meeting, kind=DecisionKind.REGRADE, text=reason, author=author,
    )
    decision.outputs.set(outputs)
    output_ids = sorted({o.pk for o in outputs})
    RegradeRequest.objects.filter(
        output_id__in=output_ids, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    RegradeRequest.objects.bulk_create([
        RegradeRequest(
            project_id=meeting.project_id, output_id=output_id, criterion=criterion,
            decision=decision, reason=reason, requested_by=author, created_at=now,
        )
        for output_id in output_ids
    ])
    _attend(meeting, author)
    return decision


@transaction.atomic
def meeting_record_decision(*, meeting: ReviewMeeting, text: str, author: AbstractBaseUser) -> Decision:
    _refuse_unstorable(decision=text)
    meeting = _open_meeting(meeting)
    if not text.strip():
        raise ReviewError("Write the decision down first.")
    _attend(meeting, author)
    return Decision.objects.create(
        meeting=meeting, kind=DecisionKind.NOTE, text=text.strip(), author=author
    )


@transaction.atomic
def regrade_request_cancel(*, request: RegradeRequest) -> bool:
    return bool(
        RegradeRequest.objects.filter(pk=request.pk, cancelled_at__isnull=True)
        .update(cancelled_at=timezone.now())
    )


def regrade_candidates(project: Project, annotator: AbstractBaseUser) -> list[int]:
    """Output ids the annotator should be given before any other item, oldest request first.

    An open request's output goes back to the annotators who graded it before the request
    (their new grade supersedes the old one). If none of them can still grade (no longer a
    member with a grading role, or an account that cannot log in, such as the import
    account), any grading member may take it. Either way an output is offered only while its
    fresh grades plus other annotators' live claims on it stay below the project's overlap,
    and never to someone who has already re-graded it."""
    requests = list(open_regrade_requests(project).values_list("output_id", "created_at", "fresh"))
    if not requests:
        return []
    output_ids = {output_id for output_id, _, _ in requests}
    grades = list(
        Grade.objects.filter(
            output_id__in=output_ids, superseded_by__isnull=True, retracted=False
        ).values_list("output_id", "annotator_id", "submitted_at")
    )
    graders = set(
        Membership.objects.filter(project=project, role__in=GRADING_ROLES, user__is_active=True)
        .exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .values_list("user_id", flat=True)
    )
    claims: dict[int, int] = {}
    for output_id in Assignment.objects.filter(
        output_id__in=output_ids, output_b__isnull=True, status=AssignmentStatus.ACTIVE,
    ).exclude(annotator=annotator).values_list("output_id", flat=True):
        claims[output_id] = claims.get(output_id, 0) + 1
    candidates: list[int] = []
    for output_id, created_at, fresh in requests:
        if output_id in candidates or fresh + claims.get(output_id, 0) >= project.overlap:
            continue
        earlier = {a for o, a, at in grades if o == output_id and at < created_at}
        again = {a for o, a, at in grades if o == output_id and at >= created_at}
        if annotator.pk in again:
            continue
        if annotator.pk in earlier or not (earlier & graders):
            candidates.append(output_id)
    return candidates


def regrade_reason(*, project: Project, output_id: int) -> str:
    """The `why` shown to the annotator for a re-grade."""
    request = (
        RegradeRequest.objects.filter(project=project, output_id=output_id, cancelled_at__isnull=True)
        .select_related("criterion").order_by("-created_at", "-id").first()
    )
    if request is None:
        return ""
    scope = f" (look again at {request.criterion.key})" if request.criterion else ""
    source = "a review meeting" if request.decision_id else "a reviewer"
    return f"sent back for re-grading by {source}{scope}: {request.reason}"[:300]
