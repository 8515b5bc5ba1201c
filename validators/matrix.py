"""The verdict matrix (outputs × validators) kept in memory as arrays and updated incrementally.

Verdicts are write-once (unique per validator and output, never updated; a retried error is
deleted and stored again as a new row), so after the first build only rows with a higher id
need fetching. Ids from concurrent transactions can commit out
of order, so the refresh starts from a *settled* id: the highest id created more than
SETTLE_SECONDS ago. Verdict batches are inserted and committed within milliseconds, so no
transaction can still add a lower id by then; rows above it are re-read, which is idempotent.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone
from pyarrow import csv as pa_csv

from annotate.models import Output, Project
from annotate.statistics import OUTCOME_CODES, VERDICT_ERROR, VERDICT_MISSING, sql_case
from validators.models import Validator

SETTLE_SECONDS = 10
# A score stored without a threshold is no verdict until the report card picks a threshold
# (validators.report_card reads the score column for it).
MATRIX_OUTCOME_CODES = {**OUTCOME_CODES, "score": VERDICT_MISSING}


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
# Keyed by (pk, created_at): SQLite reuses the row ids of deleted projects.
_matrices: dict[tuple[int, object], VerdictMatrix] = {}


def _outputs_signature(project: Project) -> tuple[int, int]:
    state = Output.objects.filter(project=project).aggregate(n=Count("id"), top=Max("id"))
    return state["n"], state["top"] or 0


def _empty(output_ids: np.ndarray, validator_ids: np.ndarray, signature) -> VerdictMatrix:
    return VerdictMatrix(
        output_ids=output_ids, validator_ids=validator_ids,
        codes=np.full((output_ids.size, validator_ids.size), VERDICT_MISSING, dtype=np.int8),
        scores=np.full((output_ids.size, validator_ids.size), np.nan, dtype=np.float32),
        last_verdict_id=0, settled_verdict_id=0, outputs_signature=signature,
    )


_VERDICT_QUERY = (
    "SELECT output_id, validator_id, "
    f"{sql_case('outcome', MATRIX_OUTCOME_CODES, VERDICT_ERROR)}, score, id, {{epoch}} "
    "FROM validators_verdict WHERE id > %s AND validator_id IN ({ids})"
)
_EPOCH = {
    "postgresql": "EXTRACT(EPOCH FROM created_at)",
    "sqlite": "(julianday(created_at) - 2440587.5) * 86400.0",
}

_COPY_COLUMNS = ["output", "validator", "code", "score", "id", "created"]
_COPY_READ = pa_csv.ReadOptions(column_names=_COPY_COLUMNS)
_COPY_CONVERT = pa_csv.ConvertOptions(column_types=dict.fromkeys(_COPY_COLUMNS, pa.float64()))


def _fetch(validator_ids: np.ndarray, since: int) -> np.ndarray:
    """Verdicts above `since` as rows of (output, validator, code, score, id, created epoch).
    On PostgreSQL through COPY into pyarrow's CSV reader: a full build of millions of rows in
    seconds."""
    if validator_ids.size == 0:
        return np.zeros((0, 6))
    query = _VERDICT_QUERY.format(
        ids=",".join(str(int(v)) for v in validator_ids),
        epoch=_EPOCH.get(connection.vendor, "0"),
    )
    if connection.vendor == "postgresql":
        buffer = io.BytesIO()
        with connection.cursor() as cursor:
            sql = query.replace("%s", str(int(since)))
            with cursor.connection.cursor().copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
        if buffer.getbuffer().nbytes == 0:
            return np.zeros((0, 6))
        buffer.seek(0)
        table = pa_csv.read_csv(buffer, read_options=_COPY_READ, convert_options=_COPY_CONVERT)
        # An empty field is a NULL score: NaN, as the SQLite branch below gives.
        return np.column_stack([column.to_numpy(zero_copy_only=False) for column in table.columns])
    with connection.cursor() as cursor:
        cursor.execute(query, [since])
        rows = cursor.fetchall()
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def _place(matrix: VerdictMatrix, data: np.ndarray) -> None:
    if data.shape[0] == 0:
        return
    settle_before = (timezone.now() - timedelta(seconds=SETTLE_SECONDS)).timestamp()
    settled = data[data[:, 5] < settle_before, 4]
    if settled.size:
        matrix.settled_verdict_id = max(matrix.settled_verdict_id, int(settled.max()))
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
        key = (project.pk, project.created_at)
        matrix = _matrices.get(key)
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
        _place(matrix, _fetch(matrix.validator_ids, since))
        _matrices[key] = matrix
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
        _place(reshaped, _fetch(new_columns, 0))
        reshaped.last_verdict_id = max(reshaped.last_verdict_id, matrix.last_verdict_id)
    return reshaped


def forget() -> None:
    with _lock:
        _matrices.clear()
