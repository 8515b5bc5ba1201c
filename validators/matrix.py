"""The verdict matrix (outputs × validators) kept in memory as arrays and updated incrementally.

Verdicts are write-once (unique per validator and output, never updated), so after the first
build only rows with a higher id need fetching. Ids from concurrent transactions can commit out
of order, so the refresh starts from a *settled* id: the highest id created more than
SETTLE_SECONDS ago. Verdict batches are inserted and committed within milliseconds, so no
transaction can still add a lower id by then; rows above it are re-read, which is idempotent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Count, Max
from django.utils import timezone

from annotate.models import Output, Project
from validators.models import Validator, VerdictRecord

PASS, FAIL, ERROR, MISSING = 1, 0, -1, -2
OUTCOME_CODES = {"pass": PASS, "fail": FAIL, "error": ERROR}
SETTLE_SECONDS = 10


@dataclass
class VerdictMatrix:
    output_ids: np.ndarray      # (N,) int64 ascending
    validator_ids: np.ndarray   # (M,) int64 ascending
    codes: np.ndarray           # (N, M) int8: 1 pass, 0 fail, -1 error, -2 missing
    scores: np.ndarray          # (N, M) float32, NaN where no numeric score
    last_verdict_id: int
    settled_verdict_id: int
    outputs_signature: tuple[int, int]

    def column(self, validator_id: int) -> int:
        index = int(np.searchsorted(self.validator_ids, validator_id))
        if index >= self.validator_ids.size or self.validator_ids[index] != validator_id:
            raise KeyError(validator_id)
        return index


_lock = threading.Lock()
_matrices: dict[int, VerdictMatrix] = {}


def _outputs_signature(project: Project) -> tuple[int, int]:
    state = Output.objects.filter(project=project).aggregate(n=Count("id"), top=Max("id"))
    return state["n"], state["top"] or 0


def _empty(output_ids: np.ndarray, validator_ids: np.ndarray, signature) -> VerdictMatrix:
    return VerdictMatrix(
        output_ids=output_ids, validator_ids=validator_ids,
        codes=np.full((output_ids.size, validator_ids.size), MISSING, dtype=np.int8),
        scores=np.full((output_ids.size, validator_ids.size), np.nan, dtype=np.float32),
        last_verdict_id=0, settled_verdict_id=0, outputs_signature=signature,
    )


def _place(matrix: VerdictMatrix, rows: list[tuple]) -> None:
    if not rows:
        return
    settle_before = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
    data = np.array([(o, v, OUTCOME_CODES[c], np.nan if s is None else s, i) for o, v, c, s, i, _ in rows],
                    dtype=np.float64)
    settled = [i for *_, i, created in rows if created < settle_before]
    if settled:
        matrix.settled_verdict_id = max(matrix.settled_verdict_id, max(settled))
    out_index = np.searchsorted(matrix.output_ids, data[:, 0].astype(np.int64))
    val_index = np.searchsorted(matrix.validator_ids, data[:, 1].astype(np.int64))
    out_index = np.clip(out_index, 0, max(matrix.output_ids.size - 1, 0))
    val_index = np.clip(val_index, 0, max(matrix.validator_ids.size - 1, 0))
    known = (
        (matrix.output_ids[out_index] == data[:, 0]) & (matrix.validator_ids[val_index] == data[:, 1])
    )
    matrix.codes[out_index[known], val_index[known]] = data[known, 2].astype(np.int8)
    matrix.scores[out_index[known], val_index[known]] = data[known, 3].astype(np.float32)
    matrix.last_verdict_id = max(matrix.last_verdict_id, int(data[:, 4].max()))


def verdict_matrix(project: Project) -> VerdictMatrix:
    """The project's current matrix over its non-archived validators."""
    signature = _outputs_signature(project)
    validator_ids = np.fromiter(
        Validator.objects.filter(project=project, archived=False).order_by("id").values_list("id", flat=True),
        dtype=np.int64,
    )
    with _lock:
        matrix = _matrices.get(project.pk)
        if matrix is not None and matrix.outputs_signature != signature:
            matrix = None
        if matrix is None:
            output_ids = np.fromiter(
                Output.objects.filter(project=project).order_by("id").values_list("id", flat=True),
                dtype=np.int64,
            )
            matrix = _empty(output_ids, validator_ids, signature)
        elif not np.array_equal(matrix.validator_ids, validator_ids):
            matrix = _reshape_columns(matrix, validator_ids)
        since = matrix.settled_verdict_id
        rows = list(
            VerdictRecord.objects.filter(validator__project=project, id__gt=since)
            .values_list("output_id", "validator_id", "outcome", "score", "id", "created_at")
            .order_by()
        )
        _place(matrix, rows)
        _matrices[project.pk] = matrix
        return matrix


def _reshape_columns(matrix: VerdictMatrix, validator_ids: np.ndarray) -> VerdictMatrix:
    """Keep the columns of validators still present; new validators start missing and are
    read in full from the database below."""
    reshaped = _empty(matrix.output_ids, validator_ids, matrix.outputs_signature)
    common, old_index, new_index = np.intersect1d(
        matrix.validator_ids, validator_ids, return_indices=True
    )
    reshaped.codes[:, new_index] = matrix.codes[:, old_index]
    reshaped.scores[:, new_index] = matrix.scores[:, old_index]
    new_columns = np.setdiff1d(validator_ids, common)
    reshaped.last_verdict_id = matrix.last_verdict_id
    reshaped.settled_verdict_id = matrix.settled_verdict_id
    if new_columns.size:
        rows = list(
            VerdictRecord.objects.filter(validator_id__in=new_columns.tolist())
            .values_list("output_id", "validator_id", "outcome", "score", "id", "created_at")
            .order_by()
        )
        _place(reshaped, rows)
        reshaped.last_verdict_id = max(reshaped.last_verdict_id, matrix.last_verdict_id)
    return reshaped


def forget(project_id: int) -> None:
    with _lock:
        _matrices.pop(project_id, None)
