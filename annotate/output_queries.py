"""Reads for the outputs list (one summary row per output of a page) and the output page
(everything known about one output). A fixed number of queries whatever the page holds.

Annotators grade blind: with `viewer` set, only that person's grades and comparisons are read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Max, Q

from annotate.evidence import (
    ChosenVerdicts,
    OutputPairVerdict,
    OutputVerdict,
    load_chosen_verdicts,
    load_output_verdicts,
)
from annotate.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Comparison,
    CriterionVersion,
    Decision,
    Grade,
    GradeCriterion,
    Output,
    OutputAssignee,
    OutputExclusion,
    Project,
    RegradeRequest,
)
from annotate.output_search import HOLISTIC, current_grades
from annotate.statistics import rows_of

CHOSEN_CODES = {1: "pass", 0: "fail", -1: "error"}


@dataclass(frozen=True)
class VerdictCount:
    target: str                      # "holistic" or a criterion key
    counts: tuple[tuple[str, int], ...]

    @property
    def label(self) -> str:
        return " · ".join(f"{n} {verdict}" for verdict, n in self.counts)


@dataclass(frozen=True)
class ChosenVerdict:
    target: str
    validator: str
    verdict: str                     # pass, fail or error


@dataclass
class OutputRow:
    output: Output
    n_grades: int = 0
    human: list[VerdictCount] = field(default_factory=list)
    chosen: list[ChosenVerdict] = field(default_factory=list)
    stale: bool = False
    skipped: bool = False
    regrade: bool = False
    excluded: bool = False
    assignees: list[str] = field(default_factory=list)


def _latest_versions(criterion_ids) -> dict[int, int]:
    return dict(
        CriterionVersion.objects.filter(criterion_id__in=set(criterion_ids))
        .values("criterion_id").annotate(n=Max("number")).values_list("criterion_id", "n")
    )


def chosen_verdicts_of(chosen: ChosenVerdicts | None, output_ids: list[int]) -> dict[int, list[ChosenVerdict]]:
    """output id -> the chosen validators' verdicts on it (holistic first, then by key)."""
    found: dict[int, list[ChosenVerdict]] = defaultdict(list)
    if chosen is None or not chosen.by_criterion or chosen.output_ids.size == 0 or not output_ids:
        return found
    ids = np.asarray(output_ids, dtype=np.int64)
    rows, present = rows_of(chosen.output_ids, ids)
    for key in sorted(chosen.by_criterion, key=lambda k: (k is not None, k or "")):
        _, name, codes = chosen.by_criterion[key]
        for i in np.flatnonzero(present):
            verdict = CHOSEN_CODES.get(int(codes[rows[i]]))
            if verdict:
                found[int(ids[i])].append(ChosenVerdict(key or HOLISTIC, name, verdict))
    return found


def output_rows(project: Project, outputs: list[Output], *, viewer=None, chosen=None) -> list[OutputRow]:
    """One summary row per output: human verdict counts, grades, the chosen validators'
    verdicts and the flags (stale, skipped, waiting for re-grading)."""
    rows = {o.pk: OutputRow(output=o) for o in outputs}
    if not rows:
        return []
    grades = current_grades(project, viewer).filter(output_id__in=rows)
    holistic: dict[int, Counter] = defaultdict(Counter)
    for output_id, verdict in grades.values_list("output_id", "verdict"):
        holistic[output_id][verdict] += 1
        rows[output_id].n_grades += 1
    by_criterion: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    marks = list(
        GradeCriterion.objects.filter(grade__in=grades)
        .values_list("grade__output_id", "criterion_id", "criterion__key", "criterion_version__number", "verdict")
        .order_by("criterion__position", "criterion_id")
    )
    latest = _latest_versions(m[1] for m in marks)
    for output_id, criterion_id, key, number, verdict in marks:
        by_criterion[output_id][key][verdict] += 1
        if number < latest.get(criterion_id, number):
            rows[output_id].stale = True
    for output_id, row in rows.items():
        if holistic[output_id]:
            row.human.append(VerdictCount(HOLISTIC, tuple(sorted(holistic[output_id].items()))))
        row.human += [VerdictCount(key, tuple(sorted(c.items()))) for key, c in by_criterion[output_id].items()]
    for output_id in Assignment.objects.filter(
        output_id__in=rows, status=AssignmentStatus.SKIPPED
    ).values_list("output_id", flat=True).distinct():
        rows[output_id].skipped = True
    for output_id in RegradeRequest.objects.filter(
        output_id__in=rows, cancelled_at__isnull=True
    ).values_list("output_id", flat=True).distinct():
        rows[output_id].regrade = True
    for output_id in OutputExclusion.objects.filter(
        output_id__in=rows, restored_at__isnull=True
    ).values_list("output_id", flat=True):
        rows[output_id].excluded = True
    for output_id, username in OutputAssignee.objects.filter(
        output_id__in=rows, cancelled_at__isnull=True
    ).order_by("annotator__username").values_list("output_id", "annotator__username"):
        rows[output_id].assignees.append(username)
    for output_id, verdicts in chosen_verdicts_of(chosen, list(rows)).items():
        rows[output_id].chosen = verdicts
    return list(rows.values())


# -- one output --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradeMark:
    key: str
    name: str
    verdict: str
    version: int
    latest: int

    @property
    def stale(self) -> bool:
        return self.version != self.latest


@dataclass(frozen=True)
class GradeVersion:
    grade: Grade
    marks: list[GradeMark]
    current: bool


@dataclass(frozen=True)
class AnnotatorHistory:
    annotator: object
    versions: list[GradeVersion]       # newest first

    @property
    def current(self) -> GradeVersion:
        return self.versions[0]


@dataclass(frozen=True)
class ComparisonRow:
    comparison: Comparison
    other: Output
    outcome: str                       # this, other, tie or "" for an undo
    current: bool


@dataclass
class OutputRecord:
    output: Output
    histories: list[AnnotatorHistory]
    adjudications: list[Adjudication]
    regrade_requests: list[RegradeRequest]
    exclusions: list[OutputExclusion]
    assignees: list[OutputAssignee]
    skips: list[Assignment]
    comparisons: list[ComparisonRow]
    decisions: list[Decision]
    verdicts: list[OutputVerdict]
    pair_verdicts: list[OutputPairVerdict]
    chosen: dict[int, list[str]]       # validator id -> the targets the card chose it for
    blind: bool = False

    @property
    def verdict_rows(self) -> list[tuple[OutputVerdict, list[str]]]:
        return [(v, self.chosen.get(v.validator_id, [])) for v in self.verdicts]

    @property
    def n_current_grades(self) -> int:
        return sum(1 for h in self.histories if not h.current.grade.retracted)


def _grade_histories(output: Output, viewer) -> list[AnnotatorHistory]:
    grades = Grade.objects.filter(output=output).select_related("annotator").order_by("-submitted_at", "-id")
    if viewer is not None:
        grades = grades.filter(annotator=viewer)
    grades = list(grades.prefetch_related("criterion_verdicts__criterion", "criterion_verdicts__criterion_version"))
    criterion_ids = {v.criterion_id for g in grades for v in g.criterion_verdicts.all()}
    latest = _latest_versions(criterion_ids) if criterion_ids else {}
    superseded = {g.supersedes_id for g in grades if g.supersedes_id}
    chains: dict[int, list[GradeVersion]] = {}
    annotators = {}
    for grade in grades:
        marks = sorted(
            (GradeMark(v.criterion.key, v.criterion_version.name, v.verdict, v.criterion_version.number,
                       latest.get(v.criterion_id, v.criterion_version.number)) for v in grade.criterion_verdicts.all()),
            key=lambda m: m.key,
        )
        chains.setdefault(grade.annotator_id, []).append(
            GradeVersion(grade=grade, marks=marks, current=grade.pk not in superseded)
        )
        annotators[grade.annotator_id] = grade.annotator
    return [AnnotatorHistory(annotators[pk], versions) for pk, versions in chains.items()]


def _comparisons(output: Output, viewer) -> list[ComparisonRow]:
    comparisons = Comparison.objects.filter(Q(output_a=output) | Q(output_b=output)).select_related(
        "annotator", "output_a", "output_b",
    ).order_by("-submitted_at", "-id")
    if viewer is not None:
        comparisons = comparisons.filter(annotator=viewer)
    comparisons = list(comparisons)
    superseded = {c.supersedes_id for c in comparisons if c.supersedes_id}
    rows = []
    for c in comparisons:
        is_a = c.output_a_id == output.pk
        if c.choice in ("a", "b"):
            outcome = "this" if (c.choice == "a") == is_a else "other"
        else:
            outcome = c.choice
        rows.append(ComparisonRow(
            comparison=c, other=c.output_b if is_a else c.output_a, outcome=outcome,
            current=c.pk not in superseded,
        ))
    return rows


def output_record(project: Project, output: Output, *, viewer=None) -> OutputRecord:
    """Everything known about one output. With `viewer` (an annotator grading blind) only that
    person's grades, skips and comparisons, and no adjudications."""
    blind = viewer is not None
    provider = load_output_verdicts()
    chosen_targets: dict[int, list[str]] = defaultdict(list)
    chosen = load_chosen_verdicts(project)
    for key, (validator_id, _, _) in (chosen.by_criterion.items() if chosen else ()):
        chosen_targets[validator_id].append(key or HOLISTIC)
    return OutputRecord(
        output=output,
        histories=_grade_histories(output, viewer),
        adjudications=[] if blind else list(
            Adjudication.objects.filter(output=output).select_related("criterion", "reviewer", "meeting")
            .order_by("-created_at", "-id")
        ),
        regrade_requests=list(
            RegradeRequest.objects.filter(output=output).select_related("criterion", "requested_by", "decision")
            .order_by("-created_at", "-id")
        ),
        exclusions=list(
            OutputExclusion.objects.filter(output=output).select_related("excluded_by", "restored_by")
            .order_by("-created_at", "-id")
        ),
        assignees=list(
            OutputAssignee.objects.filter(output=output)
            .select_related("annotator", "assigned_by", "cancelled_by").order_by("-created_at", "-id")
        ),
        skips=list(
            Assignment.objects.filter(output=output, status=AssignmentStatus.SKIPPED)
            .select_related("annotator").order_by("-closed_at", "-id")
            .filter(**({"annotator": viewer} if blind else {}))
        ),
        comparisons=_comparisons(output, viewer),
        decisions=list(
            Decision.objects.filter(outputs=output).select_related("meeting", "author").order_by("-created_at")
        ),
        verdicts=provider.verdicts_of(output) if provider else [],
        pair_verdicts=provider.pair_verdicts_of(output) if provider else [],
        chosen=dict(chosen_targets),
        blind=blind,
    )
