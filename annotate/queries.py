"""Reads used by more than one view or endpoint."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max

from annotate.labels import grade_heads
from annotate.models import (
    Comparison,
    Criterion,
    CriterionVersion,
    Grade,
    GradeCriterion,
    Membership,
    Output,
    Project,
    Role,
    Sample,
)


@dataclass(frozen=True)
class ProjectCounts:
    samples: int
    outputs: int
    systems: int
    criteria: int
    grades: int
    graded_outputs: int
    comparisons: int
    target: int

    @property
    def progress_percent(self) -> float:
        return 0.0 if not self.target else min(100.0, 100.0 * self.graded_outputs / self.target)


# The project's output ids, kept per process. Outputs are only ever added (imports) and ids
# only grow, so one indexed probe for an id above the cached maximum tells whether the array
# is still complete; loading 100,000 ids costs tens of milliseconds, counting them about as
# much, the probe well under one. Ids of outputs deleted since (a whole project or sample
# deleted in the admin) would only cost a failed claim attempt: the insert checks the row.
_output_ids: dict[int, tuple[object, np.ndarray, float]] = {}
_output_ids_lock = threading.Lock()


def project_output_ids(project: Project, *, max_age: float = 0.0) -> np.ndarray:
    """All output ids of the project, ascending (a read-only array shared between requests).
    `max_age` seconds: how old the last check for new outputs may be (0: check now)."""
    cached = _output_ids.get(project.pk)
    now = time.monotonic()
    if cached is not None and cached[0] == project.created_at:
        ids = cached[1]
        if now - cached[2] <= max_age:
            return ids
        newest = int(ids[-1]) if ids.size else 0
        if not Output.objects.filter(project=project, pk__gt=newest).exists():
            with _output_ids_lock:
                _output_ids[project.pk] = (project.created_at, ids, now)
            return ids
    ids = np.fromiter(
        Output.objects.filter(project=project).order_by("id").values_list("id", flat=True),
        dtype=np.int64,
    )
    ids.setflags(write=False)
    with _output_ids_lock:
        _output_ids[project.pk] = (project.created_at, ids, now)
    return ids


def graded_totals(project: Project, user, *, max_age: float = 0.0) -> tuple[int, int]:
    """(outputs with at least one verdict, outputs the user has a verdict on). `max_age`
    seconds: how old the last read of new grades may be (0: read them now)."""
    with grade_heads(project, max_age=max_age) as heads:
        return len(heads.graders), len(heads.by_annotator.get(user.pk, ()))


def graded_counts(project: Project, user, ids: np.ndarray) -> tuple[np.ndarray, frozenset[int]]:
    """Annotators with a verdict per output of `ids` (a private copy), and the outputs the
    user has a verdict on; new grades are read first."""
    with grade_heads(project) as heads:
        return heads.counts_along(ids).copy(), frozenset(heads.by_annotator.get(user.pk, ()))


def current_graders(project: Project, output_id: int, *, max_age: float = 1.0) -> frozenset[int]:
    """Annotators whose current grade of the output has a verdict."""
    with grade_heads(project, max_age=max_age) as heads:
        return frozenset(heads.graders.get(output_id, ()))


def current_grades(project: Project):
    return Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)


def project_counts(project: Project) -> ProjectCounts:
    outputs = Output.objects.filter(project=project)
    output_count = outputs.count()
    current = current_grades(project)
    return ProjectCounts(
        samples=Sample.objects.filter(project=project).count(),
        outputs=output_count,
        systems=outputs.values("system").distinct().count(),
        criteria=Criterion.objects.filter(project=project, archived=False).count(),
        grades=current.count(),
        graded_outputs=current.values("output_id").distinct().count(),
        comparisons=Comparison.objects.filter(
            project=project, superseded_by__isnull=True, retracted=False
        ).count(),
        target=output_count,
    )


def annotator_progress(project: Project, user) -> int:
    return current_grades(project).filter(annotator=user).count()


def systems_summary(project: Project) -> list[dict]:
    return list(
        Output.objects.filter(project=project).values("system").annotate(n=Count("id")).order_by("system")
    )


# -- grading pages ---------------------------------------------------------------------------
# Letters a criterion toggle may use: none of the page's other keys (n, s, u, a, b, t, ?).
CRITERION_HOTKEYS = "qwerdfgjklzxcvyiopmh"


@dataclass(frozen=True)
class CriterionRow:
    criterion: Criterion
    version: CriterionVersion
    hotkey: str

    @property
    def key(self) -> str:
        return self.criterion.key


def criteria_for_grading(project: Project) -> list[CriterionRow]:
    """The project's live criteria with their latest versions and the letter that toggles them."""
    latest: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).select_related("criterion").order_by("number"):
        latest[version.criterion_id] = version
    versions = sorted(latest.values(), key=lambda v: (v.criterion.position, v.criterion_id))
    return [
        CriterionRow(v.criterion, v, CRITERION_HOTKEYS[i] if i < len(CRITERION_HOTKEYS) else "")
        for i, v in enumerate(versions)
    ]


@dataclass(frozen=True)
class GradingProgress:
    outputs: int
    graded_outputs: int
    mine: int
    share: int

    @property
    def project_percent(self) -> float:
        return 0.0 if not self.outputs else min(100.0, 100.0 * self.graded_outputs / self.outputs)

    @property
    def mine_percent(self) -> float:
        return 0.0 if not self.share else min(100.0, 100.0 * self.mine / self.share)


_graders_count: dict[int, tuple[object, int, float]] = {}
GRADERS_COUNT_SECONDS = 30.0


def _grading_members(project: Project) -> int:
    # Accounts that cannot log in (the importer of labelled files) do not share the work.
    cached = _graders_count.get(project.pk)
    now = time.monotonic()
    if cached is not None and cached[0] == project.created_at and now - cached[2] < GRADERS_COUNT_SECONDS:
        return cached[1]
    count = Membership.objects.filter(
        project=project, role__in=[Role.OWNER, Role.ANNOTATOR]
    ).exclude(user__password__startswith="!").count()
    _graders_count[project.pk] = (project.created_at, count, now)
    return count


def grading_progress(project: Project, user) -> GradingProgress:
    """Outputs with at least one current grade, and the user's grades against a fair share
    (outputs × overlap spread over the people who grade). Read right after a claim, the state
    that claim refreshed is reused."""
    graded_outputs, mine = graded_totals(project, user, max_age=0.5)
    outputs = project_output_ids(project, max_age=5.0).size
    return GradingProgress(
        outputs=outputs,
        graded_outputs=graded_outputs,
        mine=mine,
        share=-(-outputs * project.overlap // max(_grading_members(project), 1)),
    )


@dataclass(frozen=True)
class PairProgress:
    comparisons: int
    mine: int


def pairwise_progress(project: Project, user) -> PairProgress:
    current = Comparison.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
    return PairProgress(comparisons=current.count(), mine=current.filter(annotator=user).count())


@dataclass(frozen=True)
class CriterionMark:
    key: str
    name: str
    verdict: str
    graded_under: int
    latest: int

    @property
    def stale(self) -> bool:
        return self.graded_under != self.latest


def criterion_marks(grades: list[Grade]) -> dict[int, list[CriterionMark]]:
    """grade id -> its per-criterion verdicts, each with the version it was given under and the
    criterion's latest version (stale when they differ)."""
    if not grades:
        return {}
    verdicts = list(
        GradeCriterion.objects.filter(grade__in=grades)
        .select_related("criterion", "criterion_version")
        .order_by("criterion__position", "criterion_id")
    )
    latest = dict(
        CriterionVersion.objects.filter(criterion_id__in={v.criterion_id for v in verdicts})
        .values("criterion_id").annotate(n=Max("number")).values_list("criterion_id", "n")
    )
    marks: dict[int, list[CriterionMark]] = {grade.pk: [] for grade in grades}
    for v in verdicts:
        marks[v.grade_id].append(CriterionMark(
            key=v.criterion.key, name=v.criterion_version.name, verdict=v.verdict,
            graded_under=v.criterion_version.number, latest=latest[v.criterion_id],
        ))
    return marks


@dataclass(frozen=True)
class HistoryRow:
    grade: Grade
    marks: list[CriterionMark]

    @property
    def stale(self) -> list[CriterionMark]:
        return [mark for mark in self.marks if mark.stale]

    @property
    def time_on_task(self) -> str:
        grade = self.grade
        if grade.retracted or grade.started_at is None:
            return ""
        seconds = max(0, round((grade.submitted_at - grade.started_at).total_seconds()))
        return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


def annotator_history(project: Project, user, limit: int = 50) -> list[HistoryRow]:
    """The user's own latest grades (one per output, undone ones included), newest first.
    Blind grading: nobody else's grades are read."""
    grades = list(
        Grade.objects.filter(project=project, annotator=user, superseded_by__isnull=True)
        .exclude(selector="import")
        .select_related("output__sample")
        .order_by("-submitted_at", "-id")[:limit]
    )
    # An undone grade shows what was undone: the row it superseded.
    undone = {g.supersedes_id: g for g in grades if g.retracted and g.supersedes_id}
    shown = {g.pk: g for g in Grade.objects.filter(pk__in=undone)} if undone else {}
    marks = criterion_marks([g for g in grades if not g.retracted] + list(shown.values()))
    rows = []
    for grade in grades:
        source = shown.get(grade.supersedes_id, grade) if grade.retracted else grade
        rows.append(HistoryRow(grade=grade, marks=marks.get(source.pk, [])))
    return rows


def own_current_grade(output: Output, user) -> tuple[Grade | None, list[CriterionMark]]:
    """The user's current grade of this output (or the grade they last undid), for a reopened
    item. Never anyone else's (blind grading)."""
    head = (
        Grade.objects.filter(output=output, annotator=user, superseded_by__isnull=True)
        .select_related("supersedes").first()
    )
    if head is None:
        return None, []
    grade = head.supersedes if head.retracted else head
    if grade is None:
        return None, []
    return grade, criterion_marks([grade]).get(grade.pk, [])
