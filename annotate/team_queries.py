"""The team page: per annotator, what they did and how well they agree (DESIGN §4.5).

A fixed number of queries whatever the team's size: aggregates per annotator in the
database, and the timings and agreement as arrays (annotate.team).

* outputs graded: outputs whose current grade by the annotator has a verdict;
* grades given: every grade submitted (a re-grade is work too), undo rows and imported grades
  left out; the same rows give the time per item, the last 7 days and the chart;
* time per item: submitted_at - started_at, median (robust to a tab left open); grades
  without a start time (imported, or from an API client that sent none) are not timed;
* agreement: the holistic verdict, pass/fail only (unsure votes carry no label), as on the
  review page; Cohen's kappa against each other annotator on the outputs both graded, then
  the mean over the partners where kappa is defined (Light 1971).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from annotate.agreement import agreement_with_reference
from annotate.evidence import load_chosen_verdicts
from annotate.labels import load_votes
from annotate.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Grade,
    Membership,
    Project,
    Role,
)
from annotate.queries import current_grades
from annotate.queue_queries import open_assigned_counts
from annotate.review.targets import chosen_for, ratings_matrix
from annotate.team import counts_per_day, mean_kappa_per_rater, median_per_rater

CHART_MAX_DAYS = 60
IMPORTED = "import"


@dataclass(frozen=True)
class AnnotatorRow:
    user_id: int
    username: str
    role: str
    outputs_graded: int
    grades_given: int
    comparisons: int
    skipped: int
    median_seconds: float | None
    timed_grades: int
    last_7_days: int
    kappa_with_others: float | None
    kappa_partners: int
    validator_agreement: float | None
    validator_kappa: float | None
    validator_items: int
    # Outputs assigned by hand to this person and not graded by them yet.
    assigned_open: int = 0


@dataclass(frozen=True)
class TeamReport:
    rows: list[AnnotatorRow]
    validator_name: str
    chart: dict  # {"labels": [iso dates], "series": [{"name", "counts"}]}


def _per_annotator(queryset) -> dict[int, int]:
    return dict(queryset.values("annotator").annotate(n=Count("id")).values_list("annotator", "n"))


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def team_report(project: Project, *, now=None, votes=None, chosen=None) -> TeamReport:
    now = now or timezone.now()
    graded = dict(
        current_grades(project).values("annotator")
        .annotate(n=Count("output", distinct=True)).values_list("annotator", "n")
    )
    comparisons = _per_annotator(
        Comparison.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
    )
    skipped = _per_annotator(
        Assignment.objects.filter(project=project, status=AssignmentStatus.SKIPPED)
    )
    given = list(
        Grade.objects.filter(project=project, retracted=False).exclude(selector=IMPORTED)
        .values_list("annotator_id", "started_at", "submitted_at")
    )
    assigned = open_assigned_counts(project)
    roles = dict(Membership.objects.filter(project=project).values_list("user_id", "role"))
    user_ids = sorted(
        {uid for uid, role in roles.items() if role == Role.ANNOTATOR}
        | set(graded) | set(comparisons) | set(skipped) | {row[0] for row in given} | set(assigned)
    )
    users = dict(
        get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username")
    )
    user_ids = sorted(user_ids, key=lambda uid: users.get(uid, "").lower())
    index = {uid: i for i, uid in enumerate(user_ids)}
    n = len(user_ids)

    rater = np.fromiter((index[row[0]] for row in given), dtype=np.int64, count=len(given))
    submitted = [timezone.localtime(row[2]) for row in given]
    days = np.array([(s.date() - date(1970, 1, 1)).days for s in submitted], dtype=np.int64)
    timed = np.fromiter((row[1] is not None for row in given), dtype=bool, count=len(given))
    seconds = np.array(
        [(row[2] - row[1]).total_seconds() for row in given if row[1] is not None], dtype=float
    )
    medians = median_per_rater(rater[timed], seconds, n)
    timed_counts = np.bincount(rater[timed], minlength=n)
    given_counts = np.bincount(rater, minlength=n)
    week_ago = now - timedelta(days=7)
    recent = np.fromiter((row[2] >= week_ago for row in given), dtype=bool, count=len(given))
    recent_counts = np.bincount(rater[recent], minlength=n)

    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    output_ids, annotator_ids, matrix = ratings_matrix(votes, None)
    kappas, partners = mean_kappa_per_rater(matrix)
    validator_name, reference = chosen_for(chosen, None, output_ids)
    versus = agreement_with_reference(matrix, reference) if matrix.size else None
    column = {int(uid): i for i, uid in enumerate(annotator_ids)}

    rows = []
    for uid in user_ids:
        i, col = index[uid], column.get(uid)
        against = versus.raters[col] if versus is not None and col is not None else None
        rows.append(AnnotatorRow(
            user_id=uid, username=users.get(uid, f"user {uid}"), role=roles.get(uid, "not a member"),
            outputs_graded=graded.get(uid, 0), grades_given=int(given_counts[i]),
            comparisons=comparisons.get(uid, 0), skipped=skipped.get(uid, 0),
            median_seconds=_none_if_nan(medians[i]), timed_grades=int(timed_counts[i]),
            last_7_days=int(recent_counts[i]),
            kappa_with_others=_none_if_nan(kappas[col]) if col is not None else None,
            kappa_partners=int(partners[col]) if col is not None else 0,
            validator_agreement=against.percent_agreement if against else None,
            validator_kappa=against.kappa if against else None,
            validator_items=against.n_items if against else 0,
            assigned_open=assigned.get(uid, 0),
        ))
    return TeamReport(rows=rows, validator_name=validator_name, chart=_chart(days, rater, user_ids, users))


def _chart(days: np.ndarray, rater: np.ndarray, user_ids: list[int], users: dict) -> dict:
    """Grades given per day per annotator, from the first day with a grade to the last (at
    most the last CHART_MAX_DAYS days of it); days without grades are zeros."""
    if days.size == 0:
        return {"labels": [], "series": []}
    last = int(days.max())
    first = max(int(days.min()), last - CHART_MAX_DAYS + 1)
    n_days = last - first + 1
    counts = counts_per_day(rater, days - first, len(user_ids), n_days)
    epoch = date(1970, 1, 1)
    return {
        "labels": [(epoch + timedelta(days=first + d)).isoformat() for d in range(n_days)],
        "series": [
            {"name": users.get(uid, str(uid)), "counts": [int(c) for c in counts[i]]}
            for i, uid in enumerate(user_ids) if counts[i].any()
        ],
    }
