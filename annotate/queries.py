"""Reads used by more than one view or endpoint."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max

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
_output_ids: dict[int, tuple[object, np.ndarray]] = {}
_output_ids_lock = threading.Lock()


def project_output_ids(project: Project) -> np.ndarray:
    """All output ids of the project, ascending (a read-only array shared between requests)."""
    cached = _output_ids.get(project.pk)
    if cached is not None and cached[0] == project.created_at:
        ids = cached[1]
        newest = int(ids[-1]) if ids.size else 0
        if not Output.objects.filter(project=project, pk__gt=newest).exists():
            return ids
    ids = np.fromiter(
        Output.objects.filter(project=project).order_by("id").values_list("id", flat=True),
        dtype=np.int64,
    )
    ids.setflags(write=False)
    with _output_ids_lock:
        _output_ids[project.pk] = (project.created_at, ids)
    return ids


# The current grade of every (output, annotator), kept per process. Grades are append-only
# and a chain's head is its highest id, so a refresh reads only rows above the ids seen (plus
# a margin for transactions that commit out of id order) instead of scanning every grade of
# the project on each request; a full reload every minute bounds any drift. The claim itself
# never trusts this view: slots and unique constraints decide (annotate.services.assignments).
HEAD_RESCAN_IDS = 200
HEAD_FULL_RELOAD_SECONDS = 60.0


class GradeHeads:
    def __init__(self, key: tuple) -> None:
        self.key = key
        self.loaded_at = time.monotonic()
        self.high_water = 0
        self.heads: dict[tuple[int, int], tuple[int, bool]] = {}
        self.taken: dict[int, int] = {}
        self.by_annotator: dict[int, set[int]] = {}

    def apply(self, rows) -> None:
        for pk, output_id, annotator_id, retracted in rows:
            pair = (output_id, annotator_id)
            previous = self.heads.get(pair)
            if previous is not None and previous[0] >= pk:
                continue
            self.heads[pair] = (pk, retracted)
            self.high_water = max(self.high_water, pk)
            counted = previous is not None and not previous[1]
            if counted and retracted:
                self.taken[output_id] -= 1
                if not self.taken[output_id]:
                    del self.taken[output_id]
                self.by_annotator[annotator_id].discard(output_id)
            elif not counted and not retracted:
                self.taken[output_id] = self.taken.get(output_id, 0) + 1
                self.by_annotator.setdefault(annotator_id, set()).add(output_id)


@dataclass(frozen=True)
class GradedSnapshot:
    taken: dict[int, int]     # output id -> annotators whose current grade has a verdict
    mine: frozenset[int]      # outputs the user's current grade has a verdict for

    @property
    def graded_outputs(self) -> int:
        return len(self.taken)


_grade_heads: dict[int, GradeHeads] = {}
_grade_heads_lock = threading.Lock()


def graded_snapshot(project: Project, user) -> GradedSnapshot:
    """Who currently holds a verdict on which output, read incrementally (see GradeHeads)."""
    key = (project.pk, project.created_at)
    with _grade_heads_lock:
        heads = _grade_heads.get(project.pk)
        stale = heads is None or heads.key != key or (
            time.monotonic() - heads.loaded_at > HEAD_FULL_RELOAD_SECONDS
        )
        rows = Grade.objects.filter(project=project)
        if stale:
            heads = GradeHeads(key)
            _grade_heads[project.pk] = heads
        else:
            rows = rows.filter(pk__gt=heads.high_water - HEAD_RESCAN_IDS)
        heads.apply(
            rows.order_by("pk").values_list("pk", "output_id", "annotator_id", "retracted")
        )
        return GradedSnapshot(
            taken=dict(heads.taken), mine=frozenset(heads.by_annotator.get(user.pk, ()))
        )


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
    criteria = list(Criterion.objects.filter(project=project, archived=False))
    latest: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(
        criterion__in=criteria
    ).select_related("author").order_by("number"):
        latest[version.criterion_id] = version
    rows = [c for c in criteria if c.pk in latest]
    return [
        CriterionRow(c, latest[c.pk], CRITERION_HOTKEYS[i] if i < len(CRITERION_HOTKEYS) else "")
        for i, c in enumerate(rows)
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


def grading_progress(project: Project, user) -> GradingProgress:
    """Outputs with at least one current grade, and the user's grades against a fair share
    (outputs × overlap spread over the people who grade)."""
    graded = graded_snapshot(project, user)
    outputs = project_output_ids(project).size
    # Accounts that cannot log in (the importer of labelled files) do not share the work.
    graders = Membership.objects.filter(
        project=project, role__in=[Role.OWNER, Role.ANNOTATOR]
    ).exclude(user__password__startswith="!").count()
    return GradingProgress(
        outputs=outputs,
        graded_outputs=graded.graded_outputs,
        mine=len(graded.mine),
        share=-(-outputs * project.overlap // max(graders, 1)),
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
