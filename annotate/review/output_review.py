"""Everything a meeting looks at for one output."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from annotate.evidence import load_chosen_verdicts
from annotate.models import (
    Adjudication,
    Grade,
    GradeCriterion,
    Output,
)
from annotate.review.targets import ReviewTarget, chosen_for, review_targets
from annotate.statistics import LABEL_FAIL, LABEL_PASS


@dataclass(frozen=True)
class VoteView:
    annotator: str
    verdict: str
    stale: bool
    version: int | None
    note: str
    # Counted as a pass because the grade passed holistically (a project option).
    inferred: bool = False


@dataclass(frozen=True)
class TargetView:
    target: ReviewTarget
    votes: list[VoteView]
    majority: str
    agreement: float | None
    validator: str
    validator_verdict: str
    adjudication: Adjudication | None

    @property
    def split(self) -> bool:
        verdicts = {v.verdict for v in self.votes if not v.stale}
        return {"pass", "fail"} <= verdicts

    @property
    def inferred(self) -> bool:
        return any(v.inferred for v in self.votes)


def output_review(output: Output, *, chosen=None) -> list[TargetView]:
    """Everything a meeting looks at for one output, per target: each annotator's current
    vote (stale ones shown, not counted; inferred ones marked, by the rules of
    `annotate.labels`), the majority, the chosen validator, the latest adjudication."""
    from annotate.gold import gold_label

    project = output.project
    targets = review_targets(project)
    grades = list(
        Grade.objects.filter(output=output, superseded_by__isnull=True, retracted=False)
        .select_related("annotator").order_by("annotator__username")
    )
    verdicts = defaultdict(dict)
    for gc in GradeCriterion.objects.filter(grade__in=grades).select_related("criterion_version"):
        verdicts[gc.grade_id][gc.criterion_id] = gc
    adjudications = {}
    for adjudication in Adjudication.objects.filter(output=output).select_related(
        "reviewer", "meeting"
    ).order_by("created_at", "id"):
        adjudications[adjudication.criterion_id] = adjudication
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    views = []
    for target in targets:
        votes = []
        for grade in grades:
            if target.criterion_id is None:
                votes.append(VoteView(grade.annotator.username, grade.verdict, False, None, grade.note))
                continue
            given = verdicts[grade.pk].get(target.criterion_id)
            if given is not None:
                number = given.criterion_version.number
                votes.append(VoteView(
                    grade.annotator.username, given.verdict, number != target.version, number,
                    grade.note,
                ))
        if target.criterion_id is not None and project.holistic_pass_implies_criteria and not any(
            not v.stale for v in votes
        ):
            votes += [
                VoteView(grade.annotator.username, "pass", False, None, grade.note, inferred=True)
                for grade in grades
                if grade.verdict == "pass" and target.criterion_id not in verdicts[grade.pk]
            ]
            votes.sort(key=lambda v: v.annotator)
        counted = Counter(v.verdict for v in votes if not v.stale)
        label = gold_label(counted["pass"], counted["fail"], counted["unsure"])
        name, reference = chosen_for(chosen, target.key, np.array([output.pk], dtype=np.int64))
        verdict = {LABEL_PASS: "pass", LABEL_FAIL: "fail"}.get(int(reference[0]), "")
        views.append(TargetView(
            target, votes, label.majority, label.agreement, name, verdict,
            adjudications.get(target.criterion_id),
        ))
    return views
