"""Bulk actions on chosen outputs: send back for re-grading, assign to annotators (and cancel
that), exclude from sampling (and restore). Owners and reviewers only.

Every action is all-or-nothing: one id of another project, one annotator who cannot grade,
refuses the whole request and writes nothing. History is kept: a cancelled assignment or a
restored exclusion keeps its row with who and when.

Assignment rule. Each output holds `overlap` slots. An output goes to at most as many of the
chosen annotators as it has slots left after its current graders and its open assignees;
annotators who already graded it or already have it are passed over. Among the chosen
annotators the least loaded in this request goes first (ties in the order given), so
assigning 10 outputs to 2 annotators with overlap 1 gives each 5, and with overlap 2 gives
both all 10. While an assignment is open, its slot is held for the assignee
(annotate.services.assignments): nobody else is served the output in their place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from annotate.access import GRADING_ROLES, REVIEW_ROLES, role_in
from annotate.models import (
    Criterion,
    Grade,
    Membership,
    Output,
    OutputAssignee,
    OutputExclusion,
    Project,
    RegradeRequest,
)
from annotate.services.text import unstorable_field

MAX_OUTPUTS_PER_ACTION = 10_000
# Larger than any id the database hands out: a bigger number is refused before the query.
MAX_ID = 2**63 - 1
MAX_REASON = 500
# (action, label, what the reason means for it): the browser's controls and the API's choices.
BULK_ACTIONS = (
    ("regrade", "Send back for re-grading", "required"),
    ("assign", "Assign to annotators", "optional"),
    ("unassign", "Cancel assignments", "unused"),
    ("exclude", "Exclude from sampling", "required"),
    ("include", "Restore to sampling", "unused"),
)


class OutputActionError(ValueError):
    """A refused bulk action; `field` names the form field to blame."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OutputActionResult:
    """What an action did: `changed` outputs (or assignments, for assign), `unchanged` ones
    it left alone (already in that state, or no slot left), and a sentence saying so."""

    changed: int
    unchanged: int
    message: str


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _refuse_unless_reviewer(project: Project, by: AbstractBaseUser) -> None:
    if role_in(project, by) not in REVIEW_ROLES:
        raise PermissionDenied("Only the project's owners and reviewers may act on outputs in bulk.")


def _clean_reason(reason: str | None, *, required: bool) -> str:
    reason = (reason or "").strip()
    if bad := unstorable_field(reason=reason):
        raise OutputActionError(bad[1], "reason")
    if required and not reason:
        raise OutputActionError("Say in one line why (the reason field is required).", "reason")
    if len(reason) > MAX_REASON:
        raise OutputActionError(f"Keep the reason to {MAX_REASON} characters.", "reason")
    return reason


def _lock_outputs(project: Project, output_ids: Iterable[int]) -> list[int]:
    """The ids, sorted and locked in that order; refuses any id not of this project."""
    ids = sorted(set(output_ids))
    if not ids:
        raise OutputActionError("Choose at least one output.", "output")
    if len(ids) > MAX_OUTPUTS_PER_ACTION:
        raise OutputActionError(
            f"Choose at most {MAX_OUTPUTS_PER_ACTION:,} outputs at a time.", "output"
        )
    found = set(
        Output.objects.select_for_update().filter(project=project, pk__in=ids)
        .order_by("pk").values_list("pk", flat=True)
    )
    missing = [pk for pk in ids if pk not in found]
    if missing:
        shown = ", ".join(str(pk) for pk in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise OutputActionError(
            f"{_plural(len(missing), 'chosen output')} not in this project ({shown}); "
            "nothing was changed.", "output",
        )
    return ids


@transaction.atomic
def outputs_send_back(
    *, project: Project, output_ids: Sequence[int], reason: str, by: AbstractBaseUser,
    criterion: Criterion | None = None,
) -> OutputActionResult:
    """Send outputs back for re-grading without a meeting: a RegradeRequest per output, served
    by the queue before anything else exactly like a meeting's (annotate.services.review). A
    new request replaces a still-open one for the same output."""
    _refuse_unless_reviewer(project, by)
    reason = _clean_reason(reason, required=True)
    if criterion is not None and criterion.project_id != project.pk:
        raise OutputActionError("That criterion belongs to another project.", "criterion")
    ids = _lock_outputs(project, output_ids)
    now = timezone.now()
    RegradeRequest.objects.filter(output_id__in=ids, cancelled_at__isnull=True).update(cancelled_at=now)
    RegradeRequest.objects.bulk_create([
        RegradeRequest(
            project=project, output_id=pk, criterion=criterion, reason=reason, requested_by=by,
            created_at=now,
        )
        for pk in ids
    ])
    return OutputActionResult(len(ids), 0, f"{_plural(len(ids), 'output')} sent back for re-grading.")


def _grading_members(project: Project, annotators: Sequence[AbstractBaseUser]) -> list[AbstractBaseUser]:
    unique = list({user.pk: user for user in annotators}.values())
    if not unique:
        raise OutputActionError("Choose at least one annotator.", "annotator")
    can_grade = set(
        Membership.objects.filter(
            project=project, user_id__in=[u.pk for u in unique], role__in=GRADING_ROLES,
            user__is_active=True,
        ).values_list("user_id", flat=True)
    )
    refused = [u for u in unique if u.pk not in can_grade]
    if refused:
        names = ", ".join(u.get_username() for u in refused)
        raise OutputActionError(
            f"Not an annotator or owner of this project: {names}; nothing was changed.", "annotator"
        )
    return unique


@transaction.atomic
def outputs_assign(
    *, project: Project, output_ids: Sequence[int], annotators: Sequence[AbstractBaseUser],
    by: AbstractBaseUser, reason: str = "",
) -> OutputActionResult:
    """Assign outputs to annotators by the rule in the module docstring."""
    _refuse_unless_reviewer(project, by)
    reason = _clean_reason(reason, required=False)
    annotators = _grading_members(project, annotators)
    ids = _lock_outputs(project, output_ids)
    taken: dict[int, set[int]] = {pk: set() for pk in ids}
    for output_id, annotator_id in Grade.objects.filter(
        output_id__in=ids, superseded_by__isnull=True, retracted=False
    ).values_list("output_id", "annotator_id"):
        taken[output_id].add(annotator_id)
    for output_id, annotator_id in OutputAssignee.objects.filter(
        output_id__in=ids, cancelled_at__isnull=True
    ).values_list("output_id", "annotator_id"):
        taken[output_id].add(annotator_id)
    load = {user.pk: 0 for user in annotators}
    order = {user.pk: position for position, user in enumerate(annotators)}
    now = timezone.now()
    rows, full = [], 0
    for pk in ids:
        room = project.overlap - len(taken[pk])
        candidates = sorted(
            (user.pk for user in annotators if user.pk not in taken[pk]),
            key=lambda user_id: (load[user_id], order[user_id]),
        )[:max(room, 0)]
        if not candidates:
            full += 1
        for user_id in candidates:
            load[user_id] += 1
            rows.append(OutputAssignee(
                project=project, output_id=pk, annotator_id=user_id, reason=reason,
                assigned_by=by, created_at=now,
            ))
    OutputAssignee.objects.bulk_create(rows)
    message = f"{_plural(len(ids) - full, 'output')} assigned ({_plural(len(rows), 'assignment')})."
    if full:
        message += (
            f" {_plural(full, 'output')} not assigned: every slot of the overlap "
            f"({project.overlap}) is taken by graders or assignees, or the chosen annotators "
            "already have them."
        )
    return OutputActionResult(len(rows), full, message)


@transaction.atomic
def outputs_unassign(
    *, project: Project, output_ids: Sequence[int], by: AbstractBaseUser,
    annotators: Sequence[AbstractBaseUser] = (),
) -> OutputActionResult:
    """Cancel the open assignments of the outputs (only those of `annotators` when given);
    the rows stay, with who cancelled them and when."""
    _refuse_unless_reviewer(project, by)
    ids = _lock_outputs(project, output_ids)
    open_rows = OutputAssignee.objects.filter(project=project, output_id__in=ids, cancelled_at__isnull=True)
    if annotators:
        open_rows = open_rows.filter(annotator_id__in=[u.pk for u in annotators])
    cancelled = open_rows.update(cancelled_at=timezone.now(), cancelled_by=by)
    return OutputActionResult(cancelled, 0, f"{_plural(cancelled, 'assignment')} cancelled.")


@transaction.atomic
def outputs_exclude(
    *, project: Project, output_ids: Sequence[int], reason: str, by: AbstractBaseUser,
) -> OutputActionResult:
    """Leave outputs out of sampling until restored. Already excluded ones are left as they
    are (their first reason stands)."""
    _refuse_unless_reviewer(project, by)
    reason = _clean_reason(reason, required=True)
    ids = _lock_outputs(project, output_ids)
    already = set(
        OutputExclusion.objects.filter(output_id__in=ids, restored_at__isnull=True)
        .values_list("output_id", flat=True)
    )
    now = timezone.now()
    OutputExclusion.objects.bulk_create([
        OutputExclusion(project=project, output_id=pk, reason=reason, excluded_by=by, created_at=now)
        for pk in ids if pk not in already
    ])
    changed = len(ids) - len(already)
    message = f"{_plural(changed, 'output')} excluded from sampling."
    if already:
        message += f" {_plural(len(already), 'output')} already excluded."
    return OutputActionResult(changed, len(already), message)


@transaction.atomic
def outputs_include(
    *, project: Project, output_ids: Sequence[int], by: AbstractBaseUser,
) -> OutputActionResult:
    """Restore excluded outputs to sampling; the exclusion rows stay as history."""
    _refuse_unless_reviewer(project, by)
    ids = _lock_outputs(project, output_ids)
    restored = OutputExclusion.objects.filter(
        project=project, output_id__in=ids, restored_at__isnull=True
    ).update(restored_at=timezone.now(), restored_by=by)
    message = f"{_plural(restored, 'output')} restored to sampling."
    if restored < len(ids):
        message += f" {_plural(len(ids) - restored, 'output')} were not excluded."
    return OutputActionResult(restored, len(ids) - restored, message)


def _members_by_id(project: Project, annotator_ids: Sequence[int]) -> list[AbstractBaseUser]:
    ids = list(dict.fromkeys(annotator_ids))
    users = {
        user.pk: user
        for user in get_user_model().objects.filter(pk__in=ids, memberships__project=project)
    }
    unknown = [pk for pk in ids if pk not in users]
    if unknown:
        raise OutputActionError(
            "The annotator field names users who are not members of this project "
            f"({', '.join(map(str, unknown[:5]))}); nothing was changed.", "annotator",
        )
    return [users[pk] for pk in ids]


def outputs_bulk_apply(
    *, project: Project, action: str, output_ids: Sequence[int], by: AbstractBaseUser,
    reason: str = "", annotator_ids: Sequence[int] = (),
) -> OutputActionResult:
    """One of BULK_ACTIONS by name, for the browser's form and the API alike. `annotator_ids`
    are user ids: whom to assign to, or whose assignments to cancel (all when empty)."""
    if action not in {name for name, _, _ in BULK_ACTIONS}:
        raise OutputActionError(
            "The action field must be one of " + ", ".join(name for name, _, _ in BULK_ACTIONS) + ".",
            "action",
        )
    if action == "regrade":
        return outputs_send_back(project=project, output_ids=output_ids, reason=reason, by=by)
    if action == "exclude":
        return outputs_exclude(project=project, output_ids=output_ids, reason=reason, by=by)
    if action == "include":
        return outputs_include(project=project, output_ids=output_ids, by=by)
    annotators = _members_by_id(project, annotator_ids)
    if action == "assign":
        return outputs_assign(
            project=project, output_ids=output_ids, annotators=annotators, by=by, reason=reason
        )
    return outputs_unassign(project=project, output_ids=output_ids, annotators=annotators, by=by)
