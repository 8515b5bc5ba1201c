"""Human labels as arrays: each annotator's current verdicts, and the majority per output.

The per-criterion label of one grade is its verdict for that criterion if given under the
criterion's current version, else the grade's holistic verdict (DESIGN §4.1). A verdict given
under an older version is stale: left out unless the caller includes stale verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from annotate.models import CriterionVersion, Grade, GradeCriterion, Project

LABEL_FAIL, LABEL_PASS, LABEL_UNSURE, NO_LABEL = 0, 1, 2, -1
VERDICT_CODES = {"fail": LABEL_FAIL, "pass": LABEL_PASS, "unsure": LABEL_UNSURE}


@dataclass(frozen=True)
class LabelVotes:
    """One row per current grade (output, annotator)."""

    grade_ids: np.ndarray
    output_ids: np.ndarray
    annotator_ids: np.ndarray
    holistic: np.ndarray                       # int8 codes
    criteria: dict[int, np.ndarray] = field(default_factory=dict)  # criterion id -> int8 codes
    stale: dict[int, np.ndarray] = field(default_factory=dict)     # criterion id -> bool

    def codes(self, criterion_id: int | None) -> np.ndarray:
        if criterion_id is None:
            return self.holistic
        return self.criteria.get(criterion_id, self.holistic)


def current_version_ids(project: Project) -> dict[int, int]:
    latest: dict[int, tuple[int, int]] = {}
    for criterion_id, number, version_id in CriterionVersion.objects.filter(
        criterion__project=project
    ).values_list("criterion_id", "number", "id"):
        if criterion_id not in latest or number > latest[criterion_id][0]:
            latest[criterion_id] = (number, version_id)
    return {c: v for c, (_, v) in latest.items()}


def load_votes(project: Project, *, include_stale: bool | set[int] = False) -> LabelVotes:
    rows = list(
        Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
        .order_by("id").values_list("id", "output_id", "annotator_id", "verdict")
    )
    grade_ids = np.array([r[0] for r in rows], dtype=np.int64)
    holistic = np.array([VERDICT_CODES[r[3]] for r in rows], dtype=np.int8)
    votes = LabelVotes(
        grade_ids=grade_ids,
        output_ids=np.array([r[1] for r in rows], dtype=np.int64),
        annotator_ids=np.array([r[2] for r in rows], dtype=np.int64),
        holistic=holistic,
    )
    current = current_version_ids(project)
    for criterion_id in current:
        votes.criteria[criterion_id] = holistic.copy()
        votes.stale[criterion_id] = np.zeros(grade_ids.size, dtype=bool)
    per_criterion = GradeCriterion.objects.filter(
        grade__project=project, grade__superseded_by__isnull=True, grade__retracted=False
    ).values_list("grade_id", "criterion_id", "criterion_version_id", "verdict")
    for grade_id, criterion_id, version_id, verdict in per_criterion:
        if criterion_id not in current:
            continue
        row = int(np.searchsorted(grade_ids, grade_id))
        if row >= grade_ids.size or grade_ids[row] != grade_id:
            continue
        is_stale = version_id != current[criterion_id]
        votes.stale[criterion_id][row] = is_stale
        keep = not is_stale or include_stale is True or (
            isinstance(include_stale, set) and criterion_id in include_stale
        )
        votes.criteria[criterion_id][row] = VERDICT_CODES[verdict] if keep else NO_LABEL
    return votes


def majority(target_output_ids: np.ndarray, vote_output_ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Majority of pass/fail votes per target output (ascending ids); ties, `unsure` and
    outputs without votes give NO_LABEL."""
    n = target_output_ids.size
    rows = np.searchsorted(target_output_ids, vote_output_ids)
    rows = np.clip(rows, 0, max(n - 1, 0))
    known = (n > 0) & (target_output_ids[rows] == vote_output_ids) if n else np.zeros(0, bool)
    rows, codes = rows[known], codes[known]
    passes = np.bincount(rows[codes == LABEL_PASS], minlength=n)
    fails = np.bincount(rows[codes == LABEL_FAIL], minlength=n)
    result = np.full(n, NO_LABEL, dtype=np.int8)
    result[passes > fails] = LABEL_PASS
    result[fails > passes] = LABEL_FAIL
    return result
