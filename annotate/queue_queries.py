"""Reads of the queue controls (exclusions from sampling, outputs assigned by hand) for the claim
path, the bulk actions and the team page."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Exists, OuterRef, Value

from annotate.access import GRADING_ROLES
from annotate.labels import grade_heads
from annotate.models import Grade, Membership, OutputAssignee, OutputExclusion, Project
from annotate.review.agenda import open_regrade_requests


def excluded_output_ids(project: Project) -> np.ndarray:
    """Ids of the project's outputs excluded from sampling now, ascending."""
    return np.fromiter(
        OutputExclusion.objects.filter(project=project, restored_at__isnull=True)
        .order_by("output_id").values_list("output_id", flat=True),
        dtype=np.int64,
    )


def _open_assignee_rows(project: Project):
    # A plain IN over the project's grading members: one subquery, not one per row.
    graders = Membership.objects.filter(
        project=project, role__in=GRADING_ROLES, user__is_active=True
    ).values("user_id")
    return OutputAssignee.objects.filter(
        project=project, cancelled_at__isnull=True, annotator_id__in=graders
    )


def open_assignees(project: Project) -> list[tuple[int, int]]:
    """(output_id, annotator_id) of every assignment not cancelled whose annotator can still
    grade in the project, oldest first. An assignee who left the project or lost the grading
    role holds no slot, or an output could wait for them forever."""
    return list(
        _open_assignee_rows(project).order_by("id").values_list("output_id", "annotator_id")
    )


@dataclass(frozen=True)
class QueueControls:
    excluded: np.ndarray                  # output ids excluded from sampling, ascending
    assignees: list[tuple[int, int]]      # as open_assignees
    regrade_requested: bool               # some re-grading request is still open


_EXCLUSION, _ASSIGNEE, _REGRADE = 0, 1, 2


def queue_controls(project: Project) -> QueueControls:
    """`excluded_output_ids`, `open_assignees` and whether any re-grading request is open, in
    one query: the claim path asks on every next item, and all three are usually empty."""
    exclusions = (
        OutputExclusion.objects.filter(project=project, restored_at__isnull=True)
        .annotate(annotator=Value(0), kind=Value(_EXCLUSION)).order_by()
        .values_list("id", "output_id", "annotator", "kind")
    )
    assignments = (
        _open_assignee_rows(project).annotate(kind=Value(_ASSIGNEE)).order_by()
        .values_list("id", "output_id", "annotator_id", "kind")
    )
    regrades = (
        open_regrade_requests(project).annotate(annotator=Value(0), kind=Value(_REGRADE))
        .order_by().values_list("id", "output_id", "annotator", "kind")
    )
    # Row ids follow creation (assignments of one action share created_at), so sorting by id
    # gives the oldest first without reading and comparing datetimes.
    rows = sorted(exclusions.union(assignments, regrades, all=True))
    return QueueControls(
        excluded=np.array(sorted(row[1] for row in rows if row[3] == _EXCLUSION), dtype=np.int64),
        assignees=[(row[1], row[2]) for row in rows if row[3] == _ASSIGNEE],
        regrade_requested=any(row[3] == _REGRADE for row in rows),
    )


def graders_of(project: Project, output_ids) -> dict[int, frozenset[int]]:
    """Per output, the annotators whose current grade of it has a verdict."""
    with grade_heads(project, max_age=1.0) as heads:
        return {o: frozenset(heads.graders.get(o, ())) for o in output_ids}


def open_assigned_counts(project: Project) -> dict[int, int]:
    """Per annotator, the outputs assigned to them that they have not graded yet (an assignment
    is done once its annotator holds a current grade of the output; undoing that grade opens it
    again)."""
    graded = Grade.objects.filter(
        output_id=OuterRef("output_id"), annotator_id=OuterRef("annotator_id"),
        superseded_by__isnull=True, retracted=False,
    )
    rows = (
        OutputAssignee.objects.filter(project=project, cancelled_at__isnull=True)
        .filter(~Exists(graded)).order_by().values("annotator_id").annotate(n=Count("id"))
    )
    return {row["annotator_id"]: row["n"] for row in rows}

