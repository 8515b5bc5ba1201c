"""Gold labels: one label per (output, criterion or holistic verdict), streamed in chunks.

How a gold label is made (the export, the review page and the tests share these rules):

* **Votes.** Each annotator's current grade (the latest of the chain, not retracted) gives one
  vote per target. For a criterion, the vote is the grade's verdict for that criterion if it
  was given under the criterion's current version; a verdict given under an older version is
  *stale* and left out unless stale grades are included; a grade without a verdict for the
  criterion gives no vote for it. With the project option "a holistic pass means every
  criterion passed", on an output where no vote for the criterion counts, each grade that
  passed holistically without a verdict for the criterion votes pass, *inferred*. These are
  the rules of `annotate.labels`, applied chunk by chunk so that memory does not grow with the
  project.
* **Human majority.** ``pass`` or ``fail`` by a strict majority of the pass/fail votes;
  ``tie`` when they are level; ``unsure`` when every vote is unsure; empty without votes.
* **Gold.** The latest `Adjudication` for (output, criterion) wins (status ``adjudicated``);
  otherwise the human majority, with status ``majority``, ``tie``, ``unsure`` or
  ``unlabelled``.
* **Agreement.** The share of votes equal to the human majority; for a tie, the share of the
  larger side (0.5 without unsure votes); 1.0 when every vote is unsure; empty without votes.
* **Label source.** ``given`` when the gold label comes from votes people gave or from an
  adjudication, ``inferred`` when it comes from inferred votes, empty without votes.
* **Stale.** True when at least one annotator's verdict for the criterion was given under an
  older version (``n_stale`` of them), whether or not stale votes are counted.
* **Validator.** The report card's chosen validator for the target and its verdict
  (``pass``, ``fail``, ``error``), read through `annotate.evidence`; empty when none.
* **Excluded from sampling.** True while the output is excluded from the grading queue
  (annotate.services.output_actions); it stays in the export with its labels.

File formats (`write_gold`):

* CSV and Parquet: one row per (output, target), columns `GOLD_COLUMNS`, written by pyarrow
  (its CSV writer is several times faster than the csv module and gives both files the same
  typed columns); ``criterion`` and ``criterion_version`` are empty for the holistic verdict.
  With the ``all_grades`` option a ``grades`` column holds every counted vote as a JSON list
  (annotator, verdict, criterion version, stale, submitted_at, note, score) rather than extra
  rows, so that each row stays one gold label and row counts stay comparable between exports.
  In CSV only, text cells that a spreadsheet would evaluate get a leading ``'``
  (`annotate.spreadsheet`); Parquet keeps the exact text.
* JSON Lines: one line per output in the importer's per-output format (`item_id`, `input`,
  `reference`, `context`, `system`, `output`, `metadata`, `human: {label, criteria}`), so that
  ``import_outputs NEW FILE --with-labels`` reproduces every decided (pass/fail) gold label.
  Ties, unsure, unlabelled and inferred targets carry no label in ``human``, so an inferred
  label is never re-imported as given (the importer also skips a ``human.criteria`` entry
  whose ``gold`` entry says ``label_source: inferred``); everything else about each gold label
  sits in a top-level ``gold`` object, which the importer keeps as output metadata. The
  importer turns each line into one grade, so in the new project an undecided target can
  become decided by the usual rules: a line with criterion labels but no holistic one gets a
  holistic verdict derived from them (fail if any fails), and a project with the holistic-pass
  option infers again what the exporting one inferred.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import IO

import numpy as np
from django.db import connection, transaction

from annotate.evidence import load_chosen_verdicts
from annotate.export_formats import EXPORT_FORMATS, unknown_format_message
from annotate.labels import criterion_votes, current_mask, current_versions
from annotate.models import (
    Adjudication,
    Criterion,
    CriterionVersion,
    Grade,
    GradeCriterion,
    Output,
    OutputExclusion,
    Project,
    Sample,
)
from annotate.statistics import (
    LABEL_FAIL,
    LABEL_NAMES,
    LABEL_PASS,
    LABEL_TIE,
    LABEL_UNSURE,
    NO_LABEL,
    OUTCOME_NAMES,
    VERDICT_CODES,
    human_majority,
    majority_codes,
    rows_of,
    sql_case,
    vote_counts,
)

FORMATS = tuple(EXPORT_FORMATS)
OPTIONS = ("all_grades", "include_stale", "labelled_only")
CHUNK_SIZE = 10_000

PASS, FAIL, UNSURE, TIE = "pass", "fail", "unsure", "tie"
STATUS_ADJUDICATED, STATUS_MAJORITY = "adjudicated", "majority"
STATUS_TIE, STATUS_UNSURE, STATUS_UNLABELLED = "tie", "unsure", "unlabelled"

STATUSES = (STATUS_UNLABELLED, STATUS_MAJORITY, STATUS_TIE, STATUS_UNSURE, STATUS_ADJUDICATED)
GIVEN, INFERRED = "given", "inferred"
LABEL_SOURCES = ("", GIVEN, INFERRED)
# ChosenVerdicts codes (annotate.evidence) by name, index code + 2.
VALIDATOR_NAMES = tuple(OUTCOME_NAMES[code] for code in sorted(OUTCOME_NAMES))

GOLD_COLUMNS = (
    "output_id", "item_id", "system", "input", "reference", "output", "criterion",
    "criterion_version", "gold", "gold_status", "label_source", "human_majority",
    "n_annotators", "n_pass", "n_fail", "n_unsure", "agreement", "stale", "n_stale",
    "adjudicated_by", "validator", "validator_verdict", "excluded_from_sampling",
)


# -- the rules, one label at a time (the review page; the tests check the arrays against it) ---
_STATUS_OF_MAJORITY = {
    PASS: STATUS_MAJORITY, FAIL: STATUS_MAJORITY, TIE: STATUS_TIE, UNSURE: STATUS_UNSURE,
    "": STATUS_UNLABELLED,
}


@dataclass(frozen=True)
class GoldLabel:
    gold: str
    status: str
    majority: str
    agreement: float | None
    adjudicated_by: str = ""


def gold_label(
    n_pass: int, n_fail: int, n_unsure: int, *, adjudication: tuple[str, str] | None = None,
) -> GoldLabel:
    """The gold label from vote counts and the latest adjudication (verdict, reviewer)."""
    majority, agreement = human_majority(n_pass, n_fail, n_unsure)
    if adjudication is not None:
        return GoldLabel(adjudication[0], STATUS_ADJUDICATED, majority, agreement, adjudication[1])
    return GoldLabel(majority, _STATUS_OF_MAJORITY[majority], majority, agreement)


# -- the same rules over arrays --------------------------------------------------------------
def status_codes(majority: np.ndarray) -> np.ndarray:
    return np.select(
        [majority == NO_LABEL, (majority == LABEL_PASS) | (majority == LABEL_FAIL),
         majority == LABEL_TIE, majority == LABEL_UNSURE],
        [0, 1, 2, 3], 0,
    ).astype(np.int8)


# -- reading the database chunk by chunk ----------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The holistic verdict (criterion_id None) or one criterion at its current version."""

    criterion_id: int | None
    key: str | None
    version_id: int | None
    version: int | None


def targets_for(project: Project) -> list[Target]:
    criteria = list(
        Criterion.objects.filter(project=project, archived=False).values_list("id", "key")
    )
    current = current_versions(project)
    targets = [Target(None, None, None, None)]
    for criterion_id, key in criteria:
        if criterion_id in current:
            number, version_id = current[criterion_id]
            targets.append(Target(criterion_id, key, version_id, number))
    return targets


@dataclass
class GoldChunk:
    """Gold labels of N consecutive outputs (ascending ids) x T targets, as arrays."""

    targets: list[Target]
    output_ids: np.ndarray            # (N,)
    item_ids: list[str]
    systems: list[str]
    inputs: list[str]
    references: list[str | None]
    texts: list[str]
    contexts: list[str | None]        # the sample's context as JSON text (JSON Lines only)
    metadata: list[str | None]        # the output's metadata as JSON text (JSON Lines only)
    gold: np.ndarray                  # (N, T) label codes
    status: np.ndarray                # (N, T) indexes into STATUSES
    majority: np.ndarray              # (N, T) label codes
    n_pass: np.ndarray
    n_fail: np.ndarray
    n_unsure: np.ndarray
    n_stale: np.ndarray
    agreement: np.ndarray             # (N, T) float, NaN without votes
    adjudicated_by: dict[tuple[int, int], str]
    inferred: np.ndarray              # (N, T) bool: the votes are inferred from holistic passes
    validators: list[str]             # (T,) chosen validator names, "" when none
    validator_codes: np.ndarray       # (N, T) ChosenVerdicts codes
    grades: list[list[list[dict]]] | None = None  # [T][N] counted votes (all_grades)
    excluded: np.ndarray | None = None  # (N,) bool: excluded from sampling now

    def __len__(self) -> int:
        return int(self.output_ids.size)


class _Chosen:
    """The chosen validators' verdicts per target, looked up per chunk."""

    def __init__(self, project: Project, targets: list[Target]):
        chosen = load_chosen_verdicts(project)
        self.output_ids = (
            np.asarray(chosen.output_ids, dtype=np.int64) if chosen else np.zeros(0, np.int64)
        )
        self.columns: list[tuple[str, np.ndarray] | None] = []
        for target in targets:
            entry = chosen.by_criterion.get(target.key) if chosen else None
            self.columns.append(None if entry is None else (entry[1], np.asarray(entry[2])))

    def names(self) -> list[str]:
        return [column[0] if column else "" for column in self.columns]

    def codes(self, output_ids: np.ndarray) -> np.ndarray:
        result = np.full((output_ids.size, len(self.columns)), -2, dtype=np.int8)
        if self.output_ids.size == 0:
            return result
        rows, found = rows_of(self.output_ids, output_ids)
        for t, column in enumerate(self.columns):
            if column is not None:
                result[found, t] = column[1][rows[found]]
        return result


_VERDICT_SQL = sql_case("verdict", VERDICT_CODES, NO_LABEL)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _outputs(project_id: int, after: int, limit: int, with_json: bool) -> list[tuple]:
    # JSON columns come back as text and go into JSON Lines as they are: parsing and
    # re-serialising them would cost more than the rest of a line.
    extra = ", CAST(s.context AS TEXT), CAST(o.metadata AS TEXT)" if with_json else ""
    return _fetch(
        f"SELECT o.id, s.external_id, o.system, s.input_text, s.reference, o.text{extra} "
        f"FROM {Output._meta.db_table} o JOIN {Sample._meta.db_table} s ON s.id = o.sample_id "
        "WHERE o.project_id = %s AND o.id > %s ORDER BY o.id LIMIT %s",
        [project_id, after, limit],
    )


def _grades(project_id: int, low: int, high: int, all_grades: bool) -> list[tuple]:
    extra = ", submitted_at, note, score" if all_grades else ""
    return _fetch(
        f"SELECT id, output_id, annotator_id, {_VERDICT_SQL}, "
        f"CASE WHEN retracted THEN 1 ELSE 0 END, COALESCE(supersedes_id, 0){extra} "
        f"FROM {Grade._meta.db_table} WHERE project_id = %s AND output_id BETWEEN %s AND %s "
        "ORDER BY id",
        [project_id, low, high],
    )


def _criterion_verdicts(project_id: int, low: int, high: int) -> np.ndarray:
    verdict = _VERDICT_SQL.replace("verdict", "gc.verdict")
    if connection.vendor == "postgresql":
        # A lateral subquery the planner cannot flatten: one index probe per grade of the
        # chunk, instead of the hash join over every criterion verdict of the table that
        # PostgreSQL otherwise picks (0.6 s against 0.25 s per 10,000 outputs at 1M grades).
        sql = (
            f"SELECT gc.grade_id, gc.criterion_id, gc.criterion_version_id, {verdict} "
            f"FROM {Grade._meta.db_table} g CROSS JOIN LATERAL (SELECT * FROM "
            f"{GradeCriterion._meta.db_table} x WHERE x.grade_id = g.id OFFSET 0) gc "
            "WHERE g.project_id = %s AND g.output_id BETWEEN %s AND %s"
        )
    else:
        sql = (
            f"SELECT gc.grade_id, gc.criterion_id, gc.criterion_version_id, {verdict} "
            f"FROM {GradeCriterion._meta.db_table} gc JOIN {Grade._meta.db_table} g "
            "ON g.id = gc.grade_id WHERE g.project_id = %s AND g.output_id BETWEEN %s AND %s"
        )
    return np.array(_fetch(sql, [project_id, low, high]), dtype=np.int64).reshape(-1, 4)


def iter_gold(
    project: Project, *, include_stale: bool = False, all_grades: bool = False,
    chunk_size: int = CHUNK_SIZE, with_json: bool = False,
) -> Iterator[GoldChunk]:
    """Gold labels of every output, `chunk_size` outputs at a time in ascending id order.

    Each chunk costs four queries (outputs, grades, criterion verdicts, adjudications) bounded
    by an output id range, and numpy does the counting, so memory is bounded by the chunk and
    time grows linearly with the project."""
    targets = targets_for(project)
    chosen = _Chosen(project, targets)
    validator_names = chosen.names()
    names: dict[int, str] = {}
    version_numbers: dict[int, int] = {}
    if all_grades:
        from django.contrib.auth import get_user_model

        names = dict(get_user_model().objects.values_list("id", "username"))
        version_numbers = dict(
            CriterionVersion.objects.filter(criterion__project=project).values_list("id", "number")
        )
    n_targets = len(targets)
    infer = project.holistic_pass_implies_criteria
    last_id = 0
    while True:
        rows = _outputs(project.pk, last_id, chunk_size, with_json)
        if not rows:
            return
        low, high = rows[0][0], rows[-1][0]
        last_id = high
        columns = list(zip(*rows, strict=True))
        output_ids = np.asarray(columns[0], dtype=np.int64)
        n = output_ids.size

        grade_rows = _grades(project.pk, low, high, all_grades)
        grades = np.array([r[:6] for r in grade_rows], dtype=np.int64).reshape(-1, 6)
        current = current_mask(grades[:, 0], grades[:, 5], grades[:, 4] != 0)
        current_rows = np.flatnonzero(current)
        grade_ids = grades[current, 0]
        output_rows = np.searchsorted(output_ids, grades[current, 1])
        holistic = grades[current, 3]

        verdicts = _criterion_verdicts(project.pk, low, high)
        # Verdicts of current grades only, located by their grade's row.
        position, counted = rows_of(grade_ids, verdicts[:, 0])

        shape = (n, n_targets)
        n_pass, n_fail, n_unsure, n_stale = (np.zeros(shape, np.int32) for _ in range(4))
        inferred = np.zeros(shape, bool)
        per_target_grades: list[list[list[dict]]] | None = [] if all_grades else None
        for t, target in enumerate(targets):
            if target.criterion_id is None:
                codes = holistic
                version_of = np.zeros(grade_ids.size, np.int64)
                stale = inferred_vote = np.zeros(grade_ids.size, bool)
            else:
                votes = criterion_votes(
                    output_ids=output_rows, holistic=holistic, verdicts=verdicts, rows=position,
                    found=counted, criterion_id=target.criterion_id,
                    current_version_id=target.version_id, include_stale=include_stale,
                    infer=infer,
                )
                codes, version_of = votes.codes, votes.version_ids
                stale, inferred_vote = votes.stale, votes.inferred
                n_stale[:, t] = np.bincount(output_rows[stale], minlength=n)
                inferred[:, t] = np.bincount(output_rows[inferred_vote], minlength=n) > 0
            n_pass[:, t], n_fail[:, t], n_unsure[:, t] = vote_counts(output_rows, codes, n)
            if per_target_grades is not None:
                lists: list[list[dict]] = [[] for _ in range(n)]
                for j in np.flatnonzero(codes != NO_LABEL):
                    row = grade_rows[current_rows[j]]
                    lists[output_rows[j]].append({
                        "annotator": names.get(row[2], str(row[2])), "verdict": LABEL_NAMES[codes[j] + 1],
                        "criterion_version": version_numbers.get(int(version_of[j])),
                        "stale": bool(stale[j]),
                        "label_source": INFERRED if inferred_vote[j] else GIVEN,
                        "submitted_at": row[6].isoformat() if row[6] else None, "note": row[7],
                        "score": row[8],
                    })
                per_target_grades.append(lists)

        majority, agreement = majority_codes(n_pass, n_fail, n_unsure)
        gold = majority.copy()
        status = status_codes(majority)
        target_index = {target.criterion_id: t for t, target in enumerate(targets)}
        adjudicated_by: dict[tuple[int, int], str] = {}
        for output_id, criterion_id, verdict, reviewer in Adjudication.objects.filter(
            output__project=project, output_id__gte=low, output_id__lte=high,
        ).order_by("created_at", "id").values_list(
            "output_id", "criterion_id", "verdict", "reviewer__username"
        ):
            t = target_index.get(criterion_id)
            if t is None:
                continue
            row = int(np.searchsorted(output_ids, output_id))
            gold[row, t] = VERDICT_CODES[verdict]
            status[row, t] = STATUSES.index(STATUS_ADJUDICATED)
            adjudicated_by[(row, t)] = reviewer

        yield GoldChunk(
            targets=targets, output_ids=output_ids, item_ids=list(columns[1]),
            systems=list(columns[2]), inputs=list(columns[3]), references=list(columns[4]),
            texts=list(columns[5]),
            contexts=list(columns[6]) if with_json else [None] * n,
            metadata=list(columns[7]) if with_json else [None] * n,
            gold=gold, status=status, majority=majority, n_pass=n_pass, n_fail=n_fail,
            n_unsure=n_unsure, n_stale=n_stale, agreement=agreement,
            adjudicated_by=adjudicated_by, inferred=inferred, validators=validator_names,
            validator_codes=chosen.codes(output_ids), grades=per_target_grades,
            excluded=np.isin(output_ids, np.fromiter(
                OutputExclusion.objects.filter(
                    project=project, restored_at__isnull=True, output_id__gte=low, output_id__lte=high,
                ).values_list("output_id", flat=True), dtype=np.int64,
            )),
        )
        if len(rows) < chunk_size:
            return


# -- writing ---------------------------------------------------------------------------------
@dataclass
class GoldOptions:
    all_grades: bool = False
    include_stale: bool = False
    labelled_only: bool = False

    @classmethod
    def from_dict(cls, options: dict | None) -> GoldOptions:
        options = options or {}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"Unknown export option(s): {', '.join(unknown)}.")
        return cls(**{k: bool(v) for k, v in options.items()})

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in OPTIONS}


def columns(options: GoldOptions) -> list[str]:
    return list(GOLD_COLUMNS) + (["grades"] if options.all_grades else [])


def gold_schema(all_grades: bool):
    import pyarrow as pa

    fields = [
        ("output_id", pa.int64()), ("item_id", pa.string()), ("system", pa.string()),
        ("input", pa.string()), ("reference", pa.string()), ("output", pa.string()),
        ("criterion", pa.string()), ("criterion_version", pa.int32()), ("gold", pa.string()),
        ("gold_status", pa.string()), ("label_source", pa.string()),
        ("human_majority", pa.string()),
        ("n_annotators", pa.int32()), ("n_pass", pa.int32()), ("n_fail", pa.int32()),
        ("n_unsure", pa.int32()), ("agreement", pa.float64()), ("stale", pa.bool_()),
        ("n_stale", pa.int32()), ("adjudicated_by", pa.string()), ("validator", pa.string()),
        ("validator_verdict", pa.string()), ("excluded_from_sampling", pa.bool_()),
    ]
    if all_grades:
        fields.append(("grades", pa.string()))
    return pa.schema(fields)


def label_sources(chunk: GoldChunk) -> np.ndarray:
    """(N, T) indexes into LABEL_SOURCES: an adjudication is given whatever the votes were."""
    unlabelled = chunk.status == STATUSES.index(STATUS_UNLABELLED)
    adjudicated = chunk.status == STATUSES.index(STATUS_ADJUDICATED)
    return np.select([unlabelled, chunk.inferred & ~adjudicated], [0, 2], 1).astype(np.int8)


def chunk_table(chunk: GoldChunk, options: GoldOptions, schema):
    """The chunk as an Arrow table, one row per (output, target), outputs in id order."""
    import pyarrow as pa

    n, n_targets = len(chunk), len(chunk.targets)
    output_index = pa.array(np.repeat(np.arange(n), n_targets))
    target_index = pa.array(np.tile(np.arange(n_targets), n))

    def per_output(values, kind):
        return pa.array(values, type=kind).take(output_index)

    def per_target(values, kind):
        return pa.array(values, type=kind).take(target_index)

    def named(codes: np.ndarray, names: tuple[str, ...], offset: int):
        return pa.array(names, type=pa.string()).take(pa.array(codes.ravel().astype(np.int64) + offset))

    adjudicated = np.full(n * n_targets, "", dtype=object)
    for (row, t), reviewer in chunk.adjudicated_by.items():
        adjudicated[row * n_targets + t] = reviewer
    n_annotators = chunk.n_pass + chunk.n_fail + chunk.n_unsure
    arrays = [
        pa.array(np.repeat(chunk.output_ids, n_targets)),
        per_output(chunk.item_ids, pa.string()), per_output(chunk.systems, pa.string()),
        per_output(chunk.inputs, pa.string()), per_output(chunk.references, pa.string()),
        per_output(chunk.texts, pa.string()),
        per_target([t.key for t in chunk.targets], pa.string()),
        per_target([t.version for t in chunk.targets], pa.int32()),
        named(chunk.gold, LABEL_NAMES, 1), named(chunk.status, STATUSES, 0),
        named(label_sources(chunk), LABEL_SOURCES, 0),
        named(chunk.majority, LABEL_NAMES, 1),
        pa.array(n_annotators.ravel(), pa.int32()), pa.array(chunk.n_pass.ravel(), pa.int32()),
        pa.array(chunk.n_fail.ravel(), pa.int32()), pa.array(chunk.n_unsure.ravel(), pa.int32()),
        pa.array(chunk.agreement.ravel(), pa.float64(), from_pandas=True),
        pa.array(chunk.n_stale.ravel() > 0), pa.array(chunk.n_stale.ravel(), pa.int32()),
        pa.array(adjudicated, pa.string()),
        per_target(chunk.validators, pa.string()),
        named(chunk.validator_codes, VALIDATOR_NAMES, 2),
        per_output(_excluded(chunk), pa.bool_()),
    ]
    if options.all_grades:
        arrays.append(pa.array(
            [json.dumps(chunk.grades[t][row]) for row in range(n) for t in range(n_targets)],
            pa.string(),
        ))
    table = pa.Table.from_arrays(arrays, schema=schema)
    if options.labelled_only:
        keep = chunk.status.ravel() != STATUSES.index(STATUS_UNLABELLED)
        table = table.filter(pa.array(keep))
    return table


def _excluded(chunk: GoldChunk) -> np.ndarray:
    return chunk.excluded if chunk.excluded is not None else np.zeros(len(chunk), bool)


def _importer_label(code: int) -> int | None:
    return {LABEL_PASS: 1, LABEL_FAIL: 0}.get(code)


def _label_entry(
    target: Target, gold: int, status: int, source: int, n_pass: int, n_fail: int, n_unsure: int,
    n_stale: int, adjudicated_by: str, validator: str, validator_code: int,
) -> dict:
    majority, agreement = human_majority(n_pass, n_fail, n_unsure)
    entry = {
        "gold": LABEL_NAMES[gold + 1], "status": STATUSES[status], "label_source": LABEL_SOURCES[source],
        "human_majority": majority,
        "n_annotators": n_pass + n_fail + n_unsure, "n_pass": n_pass, "n_fail": n_fail,
        "n_unsure": n_unsure, "agreement": agreement, "stale": n_stale > 0, "n_stale": n_stale,
        "adjudicated_by": adjudicated_by, "validator": validator,
        "validator_verdict": OUTCOME_NAMES.get(validator_code, ""),
    }
    if target.version is not None:
        entry["version"] = target.version
    return entry


# A JSON string literal with non-ASCII kept as it is (json.dumps(..., ensure_ascii=False)
# without building an encoder per call).
_string = encode_basestring


def _human_json(keys: list[str], gold_row: list[int], source_row: list[int]) -> str:
    """The importer's ``human`` object: decided labels people gave, never inferred ones."""
    label = _importer_label(gold_row[0])
    inferred = LABEL_SOURCES.index(INFERRED)
    criteria = ", ".join(
        f"{keys[t]}: {_importer_label(gold_row[t])}"
        for t in range(1, len(keys))
        if gold_row[t] in (LABEL_PASS, LABEL_FAIL) and source_row[t] != inferred
    )
    text = '{"label": ' + ("null" if label is None else str(label))
    return text + (', "criteria": {' + criteria + "}}" if criteria else "}")


def jsonl_lines(chunk: GoldChunk, options: GoldOptions) -> list[str]:
    """One line per output in the importer's per-output format (module docstring). Label
    objects repeat a lot (a few annotators give few distinct counts), so each distinct one is
    serialised once per chunk."""
    dumps = json.dumps
    keys = [dumps(t.key) for t in chunk.targets]
    humans: dict[tuple, str] = {}
    gold, status = chunk.gold.tolist(), chunk.status.tolist()
    sources = label_sources(chunk).tolist()
    n_pass, n_fail, n_unsure = chunk.n_pass.tolist(), chunk.n_fail.tolist(), chunk.n_unsure.tolist()
    n_stale, validator = chunk.n_stale.tolist(), chunk.validator_codes.tolist()
    unlabelled = STATUSES.index(STATUS_UNLABELLED)
    excluded = _excluded(chunk).tolist()
    targets = range(len(chunk.targets))
    cache: dict[tuple, str] = {}
    lines = []
    for row in range(len(chunk)):
        if options.labelled_only and all(s == unlabelled for s in status[row]):
            continue
        labels = []
        for t in targets:
            if options.all_grades:
                entry = _label_entry(
                    chunk.targets[t], gold[row][t], status[row][t], sources[row][t], n_pass[row][t],
                    n_fail[row][t], n_unsure[row][t], n_stale[row][t],
                    chunk.adjudicated_by.get((row, t), ""), chunk.validators[t], validator[row][t],
                )
                entry["grades"] = chunk.grades[t][row]
                labels.append(dumps(entry, ensure_ascii=False))
                continue
            key = (t, gold[row][t], status[row][t], sources[row][t], n_pass[row][t],
                   n_fail[row][t], n_unsure[row][t], n_stale[row][t],
                   chunk.adjudicated_by.get((row, t), ""), validator[row][t])
            text = cache.get(key)
            if text is None:
                text = cache[key] = dumps(
                    _label_entry(chunk.targets[t], *key[1:9], chunk.validators[t], key[9]),
                    ensure_ascii=False,
                )
            labels.append(text)
        criteria = ", ".join(f"{keys[t]}: {labels[t]}" for t in targets if t)
        golds = (tuple(gold[row]), tuple(sources[row]))
        human = humans.get(golds)
        if human is None:
            human = humans[golds] = _human_json(keys, gold[row], sources[row])
        reference = chunk.references[row]
        lines.append(
            '{"item_id": ' + _string(chunk.item_ids[row])
            + ', "input": ' + _string(chunk.inputs[row])
            + ', "reference": ' + ("null" if reference is None else _string(reference))
            + ', "context": ' + (chunk.contexts[row] or "null")
            + ', "system": ' + _string(chunk.systems[row])
            + ', "output": ' + _string(chunk.texts[row])
            + ', "metadata": ' + (chunk.metadata[row] or "{}")
            + ', "human": ' + human
            + ', "gold": {"output_id": ' + str(int(chunk.output_ids[row]))
            + ', "excluded_from_sampling": ' + ("true" if excluded[row] else "false")
            + ', "holistic": ' + labels[0] + ', "criteria": {' + criteria + "}}}"
        )
    return lines


@contextmanager
def _snapshot():
    """One consistent snapshot for the whole export on PostgreSQL (grades keep arriving while
    it runs, chunk after chunk); a plain transaction elsewhere."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # Each chunk's queries are short; compiling them costs more than it saves.
                cursor.execute("SET LOCAL jit = off")
        yield


def write_gold(
    project: Project, fmt: str, stream: IO[bytes], *, options: GoldOptions | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write the project's gold labels to a binary stream; returns the number of rows
    (lines for JSON Lines). Memory stays bounded by `chunk_size` outputs."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(unknown_format_message(fmt))
    export_format = EXPORT_FORMATS[fmt]
    options = options or GoldOptions()
    with _snapshot():
        chunks = iter_gold(
            project, include_stale=options.include_stale, all_grades=options.all_grades,
            chunk_size=chunk_size, with_json=export_format.needs_json,
        )
        return export_format.write(chunks, stream, options)
