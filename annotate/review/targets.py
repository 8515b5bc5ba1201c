"""What a review looks at (the holistic verdict, then each live criterion) and the
items x annotators rating matrices over the votes people gave."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotate.agreement import MISSING
from annotate.labels import LabelVotes
from annotate.models import (
    Criterion,
    CriterionVersion,
    Project,
)
from annotate.statistics import LABEL_FAIL, LABEL_PASS, rows_of

HOLISTIC_NAME = "Holistic verdict"

# -- targets and rating matrices ------------------------------------------------------------
@dataclass(frozen=True)
class ReviewTarget:
    criterion_id: int | None
    key: str | None
    name: str
    version: int | None
    definition: str = ""

    @property
    def label(self) -> str:
        return self.name if self.key is None else f"{self.name} (v{self.version})"


def review_targets(project: Project) -> list[ReviewTarget]:
    latest: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).order_by("number"):
        latest[version.criterion_id] = version
    targets = [ReviewTarget(None, None, HOLISTIC_NAME, None)]
    for criterion in Criterion.objects.filter(project=project, archived=False):
        version = latest.get(criterion.pk)
        if version is not None:
            targets.append(
                ReviewTarget(criterion.pk, criterion.key, version.name, version.number, version.definition)
            )
    return targets


def pass_fail_codes(votes: LabelVotes, criterion_id: int | None) -> np.ndarray:
    """Votes people gave as pass/fail codes, MISSING for unsure, stale and inferred."""
    codes = votes.given_codes(criterion_id).astype(np.int64)
    return np.where((codes == LABEL_PASS) | (codes == LABEL_FAIL), codes, MISSING)


def ratings_matrix(votes: LabelVotes, criterion_id: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(output ids, annotator ids, items x annotators matrix of 0 fail / 1 pass / MISSING),
    over outputs with at least one pass/fail vote."""
    codes = pass_fail_codes(votes, criterion_id)
    labelled = codes != MISSING
    output_ids = np.unique(votes.output_ids[labelled])
    annotator_ids = np.unique(votes.annotator_ids[labelled])
    matrix = np.full((output_ids.size, annotator_ids.size), MISSING, dtype=np.int64)
    rows, _ = rows_of(output_ids, votes.output_ids[labelled])
    cols, _ = rows_of(annotator_ids, votes.annotator_ids[labelled])
    matrix[rows, cols] = codes[labelled]
    return output_ids, annotator_ids, matrix


def chosen_for(chosen, key: str | None, output_ids: np.ndarray) -> tuple[str, np.ndarray]:
    """The chosen validator's name and its pass/fail codes aligned to output_ids (MISSING
    where it has no verdict or an error)."""
    reference = np.full(output_ids.size, MISSING, dtype=np.int64)
    if chosen is None or key not in chosen.by_criterion or chosen.output_ids.size == 0:
        return "", reference
    _, name, codes = chosen.by_criterion[key]
    codes = np.asarray(codes, dtype=np.int64)
    rows, found = rows_of(chosen.output_ids, output_ids)
    picked = np.where(found, codes[rows], MISSING)
    reference[:] = np.where((picked == LABEL_PASS) | (picked == LABEL_FAIL), picked, MISSING)
    return name, reference
