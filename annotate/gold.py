"""Gold labels: one label per (output, criterion or holistic verdict), streamed in chunks.

How a gold label is made (the export, the review page and the tests share these rules):

* **Votes.** Each annotator's current grade (the latest of the chain, not retracted) gives one
  vote per target. For a criterion, the vote is the grade's verdict for that criterion if it
  was given under the criterion's current version; a verdict given under an older version is
  *stale* and left out unless stale grades are included; a grade without a verdict for the
  criterion votes with its holistic verdict. These are the rules of `annotate.labels`, applied
  chunk by chunk so that memory does not grow with the project.
* **Human majority.** ``pass`` or ``fail`` by a strict majority of the pass/fail votes;
  ``tie`` when they are level; ``unsure`` when every vote is unsure; empty without votes.
* **Gold.** The latest `Adjudication` for (output, criterion) wins (status ``adjudicated``);
  otherwise the human majority, with status ``majority``, ``tie``, ``unsure`` or
  ``unlabelled``.
* **Agreement.** The share of votes equal to the human majority; for a tie, the share of the
  larger side (0.5 without unsure votes); 1.0 when every vote is unsure; empty without votes.
* **Stale.** True when at least one annotator's verdict for the criterion was given under an
  older version (``n_stale`` of them), whether or not stale votes are counted.
* **Validator.** The report card's chosen validator for the target and its verdict
  (``pass``, ``fail``, ``error``), read through `annotate.evidence`; empty when none.

File formats (`write_gold`):

* CSV and Parquet: one row per (output, target), columns `GOLD_COLUMNS`; ``criterion`` is
  empty (CSV) or null (Parquet) for the holistic verdict. With the ``all_grades`` option a
  ``grades`` column holds every counted vote as a JSON list of objects (annotator, verdict,
  criterion version, stale, submitted_at, note) rather than extra rows, so that each row stays
  one gold label and row counts stay comparable between exports.
* JSON Lines: one line per output in the importer's per-output format (`item_id`, `input`,
  `reference`, `context`, `system`, `output`, `metadata`, `human: {label, criteria}`), so that
  ``import_outputs NEW FILE --with-labels`` reproduces every decided (pass/fail) gold label.
  Ties, unsure and unlabelled targets carry no label in ``human``; everything else about each
  gold label sits in a top-level ``gold`` object, which the importer keeps as output metadata.
  One caveat of the importer: an output whose holistic gold is undecided but which has decided
  criterion labels is re-imported with a holistic verdict derived from them (fail if any fails).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from django.db import connection, transaction

from annotate.evidence import load_chosen_verdicts
from annotate.models import (
    Adjudication,
    Criterion,
    CriterionVersion,
    Grade,
    GradeCriterion,
    Output,
    Project,
)

FORMATS = ("csv", "jsonl", "parquet")
OPTIONS = ("all_grades", "include_stale", "labelled_only")
CHUNK_SIZE = 5000

PASS, FAIL, UNSURE = "pass", "fail", "unsure"
TIE = "tie"
STATUS_ADJUDICATED, STATUS_MAJORITY = "adjudicated", "majority"
STATUS_TIE, STATUS_UNSURE, STATUS_UNLABELLED = "tie", "unsure", "unlabelled"
# ChosenVerdicts codes (annotate.evidence): 1 pass, 0 fail, -1 error, -2 missing.
VALIDATOR_VERDICTS = {1: PASS, 0: FAIL, -1: "error", -2: ""}

GOLD_COLUMNS = (
    "output_id", "item_id", "system", "input", "reference", "output", "criterion",
    "criterion_version", "gold", "gold_status", "human_majority", "n_annotators", "n_pass",
    "n_fail", "n_unsure", "agreement", "stale", "n_stale", "adjudicated_by", "validator",
    "validator_verdict",
)


# -- the rules, on plain values ----------------------------------------------------------------
def human_majority(n_pass: int, n_fail: int, n_unsure: int) -> tuple[str, float | None]:
    """(majority, agreement) from vote counts; see the module docstring."""
    n = n_pass + n_fail + n_unsure
    if n == 0:
        return "", None
    if n_pass > n_fail:
        return PASS, n_pass / n
    if n_fail > n_pass:
        return FAIL, n_fail / n
    if n_pass:
        return TIE, n_pass / n
    return UNSURE, 1.0


_STATUS_OF_MAJORITY = {
    PASS: STATUS_MAJORITY, FAIL: STATUS_MAJORITY, TIE: STATUS_TIE, UNSURE: STATUS_UNSURE,
    "": STATUS_UNLABELLED,
}


@dataclass(slots=True)
class GoldLabel:
    gold: str
    status: str
    majority: str
    n_pass: int
    n_fail: int
    n_unsure: int
    agreement: float | None
    n_stale: int
    adjudicated_by: str = ""
    version: int | None = None
    validator: str = ""
    validator_verdict: str = ""
    grades: list[dict] | None = None

    @property
    def n_annotators(self) -> int:
        return self.n_pass + self.n_fail + self.n_unsure

    @property
    def decided(self) -> bool:
        return self.gold in (PASS, FAIL)


def gold_label(
    n_pass: int, n_fail: int, n_unsure: int, *, n_stale: int = 0,
    adjudication: tuple[str, str] | None = None,
) -> GoldLabel:
    """The gold label from vote counts and the latest adjudication (verdict, reviewer)."""
    majority, agreement = human_majority(n_pass, n_fail, n_unsure)
    if adjudication is not None:
        return GoldLabel(
            adjudication[0], STATUS_ADJUDICATED, majority, n_pass, n_fail, n_unsure, agreement,
            n_stale, adjudicated_by=adjudication[1],
        )
    return GoldLabel(
        majority, _STATUS_OF_MAJORITY[majority], majority, n_pass, n_fail, n_unsure, agreement,
        n_stale,
    )


# -- reading the database chunk by chunk ----------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The holistic verdict (criterion_id None) or one criterion at its current version."""

    criterion_id: int | None
    key: str | None
    version_id: int | None
    version: int | None


@dataclass(slots=True)
class GoldOutput:
    output_id: int
    item_id: str
    system: str
    input: str
    reference: str | None
    output: str
    context: Any
    metadata: dict
    labels: list[GoldLabel] = field(default_factory=list)  # aligned with the targets


def targets_for(project: Project) -> list[Target]:
    criteria = list(
        Criterion.objects.filter(project=project, archived=False).values_list("id", "key")
    )
    current: dict[int, tuple[int, int]] = {}
    for criterion_id, number, version_id in CriterionVersion.objects.filter(
        criterion__project=project
    ).values_list("criterion_id", "number", "id"):
        if criterion_id not in current or number > current[criterion_id][0]:
            current[criterion_id] = (number, version_id)
    targets = [Target(None, None, None, None)]
    for criterion_id, key in criteria:
        if criterion_id in current:
            number, version_id = current[criterion_id]
            targets.append(Target(criterion_id, key, version_id, number))
    return targets


@dataclass
class _ChosenColumns:
    output_ids: np.ndarray
    by_target: list[tuple[str, np.ndarray] | None]

    def verdicts(self, target_index: int, output_ids: np.ndarray) -> tuple[str, list[str]]:
        chosen = self.by_target[target_index]
        if chosen is None or self.output_ids.size == 0:
            return "", [""] * output_ids.size
        name, codes = chosen
        rows = np.clip(np.searchsorted(self.output_ids, output_ids), 0, self.output_ids.size - 1)
        found = self.output_ids[rows] == output_ids
        picked = np.where(found, codes[rows], -2)
        return name, [VALIDATOR_VERDICTS.get(int(code), "") for code in picked]


def _chosen_columns(project: Project, targets: list[Target]) -> _ChosenColumns:
    chosen = load_chosen_verdicts(project)
    if chosen is None:
        return _ChosenColumns(np.zeros(0, np.int64), [None] * len(targets))
    by_target: list[tuple[str, np.ndarray] | None] = []
    for target in targets:
        entry = chosen.by_criterion.get(target.key)
        by_target.append(None if entry is None else (entry[1], np.asarray(entry[2])))
    return _ChosenColumns(np.asarray(chosen.output_ids, dtype=np.int64), by_target)


def _usernames() -> dict[int, str]:
    from django.contrib.auth import get_user_model

    return dict(get_user_model().objects.values_list("id", "username"))


def iter_gold(
    project: Project, *, include_stale: bool = False, all_grades: bool = False,
    chunk_size: int = CHUNK_SIZE, with_texts: bool = True,
) -> Iterator[tuple[list[Target], list[GoldOutput]]]:
    """Gold labels of every output, `chunk_size` outputs at a time in ascending id order.

    Each chunk costs four queries (outputs, grades, criterion verdicts, adjudications) bounded
    by an output id range, so memory is bounded by the chunk, not the project."""
    targets = targets_for(project)
    chosen = _chosen_columns(project, targets)
    names = _usernames() if all_grades else {}
    versions = (
        dict(
            CriterionVersion.objects.filter(criterion__project=project).values_list("id", "number")
        ) if all_grades else {}
    )
    criterion_targets = [(i, t) for i, t in enumerate(targets) if t.criterion_id is not None]
    last_id = 0
    while True:
        fields = ["id", "system", "sample__external_id"]
        if with_texts:
            fields += [
                "sample__input_text", "sample__reference", "text", "sample__context", "metadata",
            ]
        rows = list(
            Output.objects.filter(project=project, id__gt=last_id).order_by("id")
            .values_list(*fields)[:chunk_size]
        )
        if not rows:
            return
        low, high = rows[0][0], rows[-1][0]
        last_id = high
        grade_fields = ["id", "output_id", "annotator_id", "verdict", "retracted", "supersedes_id"]
        if all_grades:
            grade_fields += ["submitted_at", "note", "score"]
        grades = list(
            Grade.objects.filter(project=project, output_id__gte=low, output_id__lte=high)
            .values_list(*grade_fields)
        )
        superseded = {g[5] for g in grades if g[5] is not None}
        by_output: dict[int, list[tuple]] = {}
        for g in grades:
            if g[0] not in superseded and not g[4]:
                by_output.setdefault(g[1], []).append(g)
        by_grade: dict[int, dict[int, tuple[int, str]]] = {}
        if criterion_targets:
            for grade_id, criterion_id, version_id, verdict in GradeCriterion.objects.filter(
                grade__project=project, grade__output_id__gte=low, grade__output_id__lte=high,
            ).values_list("grade_id", "criterion_id", "criterion_version_id", "verdict"):
                by_grade.setdefault(grade_id, {})[criterion_id] = (version_id, verdict)
        adjudications: dict[tuple[int, int | None], tuple[str, str]] = {}
        for output_id, criterion_id, verdict, reviewer in Adjudication.objects.filter(
            output__project=project, output_id__gte=low, output_id__lte=high,
        ).order_by("created_at", "id").values_list(
            "output_id", "criterion_id", "verdict", "reviewer__username"
        ):
            adjudications[(output_id, criterion_id)] = (verdict, reviewer)

        chunk: list[GoldOutput] = []
        for row in rows:
            output_id = row[0]
            if with_texts:
                gold_output = GoldOutput(
                    output_id, row[2], row[1], row[3], row[4], row[5], row[6], row[7] or {},
                )
            else:
                gold_output = GoldOutput(output_id, row[2], row[1], "", None, "", None, {})
            votes = by_output.get(output_id, ())
            counts = {PASS: 0, FAIL: 0, UNSURE: 0}
            for g in votes:
                counts[g[3]] += 1
            label = gold_label(
                counts[PASS], counts[FAIL], counts[UNSURE],
                adjudication=adjudications.get((output_id, None)),
            )
            if all_grades:
                label.grades = [_grade_entry(g, g[3], None, False, names) for g in votes]
            gold_output.labels.append(label)
            for _, target in criterion_targets:
                counts = {PASS: 0, FAIL: 0, UNSURE: 0}
                n_stale = 0
                entries = [] if all_grades else None
                for g in votes:
                    given = by_grade.get(g[0], {}).get(target.criterion_id)
                    if given is None:
                        verdict, version_id, stale = g[3], None, False
                    else:
                        version_id, verdict = given
                        stale = version_id != target.version_id
                        if stale:
                            n_stale += 1
                            if not include_stale:
                                continue
                    counts[verdict] += 1
                    if entries is not None:
                        entries.append(
                            _grade_entry(g, verdict, versions.get(version_id), stale, names)
                        )
                label = gold_label(
                    counts[PASS], counts[FAIL], counts[UNSURE], n_stale=n_stale,
                    adjudication=adjudications.get((output_id, target.criterion_id)),
                )
                label.version = target.version
                label.grades = entries
                gold_output.labels.append(label)
            chunk.append(gold_output)
        ids = np.fromiter((o.output_id for o in chunk), dtype=np.int64, count=len(chunk))
        for index in range(len(targets)):
            name, verdicts = chosen.verdicts(index, ids)
            if not name:
                continue
            for gold_output, verdict in zip(chunk, verdicts, strict=True):
                gold_output.labels[index].validator = name
                gold_output.labels[index].validator_verdict = verdict
        yield targets, chunk
        if len(rows) < chunk_size:
            return


def _grade_entry(grade: tuple, verdict: str, version: int | None, stale: bool, names) -> dict:
    return {
        "annotator": names.get(grade[2], str(grade[2])), "verdict": verdict,
        "criterion_version": version, "stale": stale,
        "submitted_at": grade[6].isoformat() if grade[6] else None, "note": grade[7],
        "score": grade[8],
    }


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


def _flat_rows(targets: list[Target], chunk: list[GoldOutput], options: GoldOptions):
    for o in chunk:
        for target, label in zip(targets, o.labels, strict=True):
            if options.labelled_only and label.status == STATUS_UNLABELLED:
                continue
            row = [
                o.output_id, o.item_id, o.system, o.input, o.reference, o.output, target.key,
                label.version, label.gold, label.status, label.majority, label.n_annotators,
                label.n_pass, label.n_fail, label.n_unsure, label.agreement,
                label.n_stale > 0, label.n_stale, label.adjudicated_by, label.validator,
                label.validator_verdict,
            ]
            if options.all_grades:
                row.append(label.grades)
            yield row


def _label_json(label: GoldLabel, options: GoldOptions) -> dict:
    entry = {
        "gold": label.gold, "status": label.status, "human_majority": label.majority,
        "n_annotators": label.n_annotators, "n_pass": label.n_pass, "n_fail": label.n_fail,
        "n_unsure": label.n_unsure, "agreement": label.agreement, "stale": label.n_stale > 0,
        "n_stale": label.n_stale, "adjudicated_by": label.adjudicated_by,
        "validator": label.validator, "validator_verdict": label.validator_verdict,
    }
    if label.version is not None:
        entry["version"] = label.version
    if options.all_grades:
        entry["grades"] = label.grades
    return entry


def _as_importer_label(label: GoldLabel) -> int | None:
    return {PASS: 1, FAIL: 0}.get(label.gold)


def _jsonl_record(targets: list[Target], o: GoldOutput, options: GoldOptions) -> dict | None:
    if options.labelled_only and all(lb.status == STATUS_UNLABELLED for lb in o.labels):
        return None
    holistic = o.labels[0]
    criteria = {
        t.key: _as_importer_label(lb)
        for t, lb in zip(targets[1:], o.labels[1:], strict=True) if lb.decided
    }
    human: dict[str, Any] = {"label": _as_importer_label(holistic)}
    if criteria:
        human["criteria"] = criteria
    return {
        "item_id": o.item_id, "input": o.input, "reference": o.reference, "context": o.context,
        "system": o.system, "output": o.output, "metadata": o.metadata, "human": human,
        "gold": {
            "output_id": o.output_id, "holistic": _label_json(holistic, options),
            "criteria": {
                t.key: _label_json(lb, options)
                for t, lb in zip(targets[1:], o.labels[1:], strict=True)
            },
        },
    }


def _parquet_schema(all_grades: bool):
    import pyarrow as pa

    columns = [
        ("output_id", pa.int64()), ("item_id", pa.string()), ("system", pa.string()),
        ("input", pa.string()), ("reference", pa.string()), ("output", pa.string()),
        ("criterion", pa.string()), ("criterion_version", pa.int32()), ("gold", pa.string()),
        ("gold_status", pa.string()), ("human_majority", pa.string()),
        ("n_annotators", pa.int32()), ("n_pass", pa.int32()), ("n_fail", pa.int32()),
        ("n_unsure", pa.int32()), ("agreement", pa.float64()), ("stale", pa.bool_()),
        ("n_stale", pa.int32()), ("adjudicated_by", pa.string()), ("validator", pa.string()),
        ("validator_verdict", pa.string()),
    ]
    if all_grades:
        columns.append(("grades", pa.string()))
    return pa.schema(columns)


def columns(options: GoldOptions) -> list[str]:
    return list(GOLD_COLUMNS) + (["grades"] if options.all_grades else [])


@contextmanager
def _snapshot():
    """One consistent snapshot for the whole export on PostgreSQL (grades keep arriving while
    it runs, chunk after chunk); a plain transaction elsewhere."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def write_gold(
    project: Project, fmt: str, stream: IO[bytes], *, options: GoldOptions | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write the project's gold labels to a binary stream; returns the number of rows
    (lines for JSON Lines). Memory stays bounded by `chunk_size` outputs."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format '{fmt}'; use csv, jsonl or parquet.")
    options = options or GoldOptions()
    chunks = iter_gold(
        project, include_stale=options.include_stale, all_grades=options.all_grades,
        chunk_size=chunk_size,
    )
    rows = 0
    with _snapshot():
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = _parquet_schema(options.all_grades)
            names = schema.names
            with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
                for targets, chunk in chunks:
                    flat = list(_flat_rows(targets, chunk, options))
                    if not flat:
                        continue
                    table_columns = {name: [r[i] for r in flat] for i, name in enumerate(names)}
                    if options.all_grades:
                        table_columns["grades"] = [
                            None if g is None else json.dumps(g) for g in table_columns["grades"]
                        ]
                    writer.write_table(pa.Table.from_pydict(table_columns, schema=schema))
                    rows += len(flat)
            return rows
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            if fmt == "csv":
                writer = csv.writer(text)
                writer.writerow(columns(options))
                for targets, chunk in chunks:
                    for row in _flat_rows(targets, chunk, options):
                        if options.all_grades:
                            row[-1] = "" if row[-1] is None else json.dumps(row[-1])
                        writer.writerow(row)
                        rows += 1
            else:
                for targets, chunk in chunks:
                    for o in chunk:
                        record = _jsonl_record(targets, o, options)
                        if record is not None:
                            text.write(json.dumps(record, ensure_ascii=False))
                            text.write("\n")
                            rows += 1
            text.flush()
        finally:
            text.detach()
    return rows
