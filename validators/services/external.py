"""External judges (DESIGN §4.6): verdicts, scores or winners a team already has, from
promptfoo, DeepEval, LangSmith or its own scripts, imported as validators that are never run.

One row per verdict: the judge's name (`validator`), an optional `criterion`, the target (one
output, or a pair of outputs of the same input) and the verdict (`outcome`, `score` or
`winner`). Each name becomes one validator of kind `external`; importing a name again makes a
new version whose parent is the one it replaces, and the replaced one is archived with its
verdicts kept. All or nothing: every problem is reported with its line and field, and a file
with any problem writes nothing.

Rules for one judge (all its rows): one criterion, one target, and either outcomes or scores.
A scored judge may mark items it failed on with outcome `error`; its `threshold`, when given,
turns each score into pass (score >= threshold) or fail, and without one the scores are stored
with outcome `score` for the report card to pick the threshold.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate import importing
from annotate.importing import FileRejected, ImportProblem, ProblemList
from annotate.models import Criterion, Output, Project, Sample
from annotate.services.criteria import CriterionError, criterion_ensure, criterion_key_check
from annotate.untrusted_text import unstorable_in
from validators.models import (
    Origin,
    Outcome,
    PairVerdict,
    Target,
    Validator,
    ValidatorKind,
    VerdictRecord,
    Winner,
)
from validators.pairs import canonical

# Half a million verdicts is 65 judges over every pair of a large benchmark; more is a file
# to split, not one to hold in memory while it is checked.
MAX_ROWS = 500_000
NAME_MAX = 200
ITEM_ID_MAX = 255
SYSTEM_MAX = 200
MAX_ID = 2**63 - 1
# Enough of the file's head to tell text from binary and JSON Lines from CSV.
_SNIFF_BYTES = 8192
_WRITE_BATCH = 2000
_QUERY_CHUNK = 900

_OUTCOME_WORDS = {
    "pass": Outcome.PASS, "fail": Outcome.FAIL, "error": Outcome.ERROR,
    "true": Outcome.PASS, "false": Outcome.FAIL, "1": Outcome.PASS, "0": Outcome.FAIL,
}
_WINNER_WORDS = {"a": Winner.A, "b": Winner.B, "tie": Winner.TIE, "error": Winner.ERROR}
_ONE_OUTPUT_KEYS = ("output_id", "system")
_PAIR_KEYS = ("output_a_id", "output_b_id", "system_a", "system_b")
_TARGET_HELP = (
    "name the output (output_id, or item_id and system) or the pair (output_a_id and "
    "output_b_id, or item_id with system_a and system_b, or item_id alone when its input has "
    "exactly two outputs)"
)

SAMPLE_JSONL = "\n".join([
    '{"validator": "gpt4o_helpfulness", "criterion": null, "item_id": "q1", "system": "alpha", '
    '"outcome": "pass", "raw": "The answer is correct and complete. PASS"}',
    '{"validator": "gpt4o_helpfulness", "criterion": null, "item_id": "q1", "system": "beta", '
    '"outcome": "fail", "raw": "It ignores the second question. FAIL"}',
    '{"validator": "deepeval_relevancy", "output_id": 17, "score": 0.82, "threshold": 0.5}',
    '{"validator": "deepeval_relevancy", "output_id": 18, "score": 0.31, "threshold": 0.5}',
    '{"validator": "ragas_faithfulness", "item_id": "q1", "system": "alpha", "score": 0.9}',
    '{"validator": "arena_judge", "item_id": "q1", "system_a": "alpha", "system_b": "beta", '
    '"winner": "a", "raw": "[[A]]"}',
    '{"validator": "arena_judge", "output_a_id": 20, "output_b_id": 19, "winner": "tie"}',
    '{"validator": "llmbar_judge", "item_id": "llmbar-7", "winner": "b", '
    '"raw": "Output (b) follows the instruction."}',
    '{"validator": "rating_judge_pairs", "item_id": "llmbar-7", "score_a": 3, "score_b": 8}',
]) + "\n"


@dataclass(frozen=True)
class ImportedJudge:
    validator: Validator
    n_verdicts: int

    def to_dict(self) -> dict:
        return {
            "id": self.validator.pk, "name": self.validator.name, "target": self.validator.target,
            "parent": self.validator.parent_id, "n_verdicts": self.n_verdicts,
        }


@dataclass
class ExternalImportResult:
    judges: list[ImportedJudge] = field(default_factory=list)
    criteria_created: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def summary(self) -> str:
        if not self.ok:
            more = self.problem_count - len(self.problems)
            extra = f" (showing the first {len(self.problems)}; {more} more)" if more > 0 else ""
            return f"Nothing was imported: the file has {self.problem_count} problem(s){extra}."
        parts = [f"'{j.validator.name}' ({j.n_verdicts} verdict{'' if j.n_verdicts == 1 else 's'}"
                 + (", a new version" if j.validator.parent_id else "") + ")" for j in self.judges]
        text = f"Imported {len(self.judges)} judge(s): " + ", ".join(parts) + "."
        if self.criteria_created:
            text += f" New criteria: {', '.join(self.criteria_created)}."
        return text

    def to_dict(self) -> dict:
        return {
            "validators": [j.to_dict() for j in self.judges],
            "criteria_created": self.criteria_created, "message": self.summary(),
        }


# -- one row --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    line: int
    validator: str
    criterion: str | None
    target: str
    # What the row names; resolved to output ids against the project later.
    output_id: int | None = None
    item_id: str | None = None
    system: str | None = None
    output_a_id: int | None = None
    output_b_id: int | None = None
    system_a: str | None = None
    system_b: str | None = None
    outcome: str | None = None
    score: float | None = None
    threshold: float | None = None
    winner: str | None = None
    score_a: float | None = None
    score_b: float | None = None
    raw: str = ""

    @property
    def verdict_shape(self) -> str | None:
        """'outcome', 'score' or 'winner'; None for an `error` outcome, which fits both a
        judge of outcomes and a judge of scores (an item the judge failed on)."""
        if self.target == Target.PAIR:
            return "winner"
        if self.outcome == Outcome.ERROR and self.score is None:
            return None
        return "outcome" if self.outcome is not None else "score"


def _given(record: dict, key: str) -> bool:
    value = record.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


class _RowReader:
    """Checks one record at a time, adding each problem with its line and field."""

    def __init__(self, problems: ProblemList, *, max_text_bytes: int):
        self.problems = problems
        self.max_text_bytes = max_text_bytes

    def read(self, line: int, record: Any) -> _Row | None:
        if isinstance(record, importing._BadLine):
            self.problems.add(line, "", record.message)
            return None
        if not isinstance(record, dict):
            self.problems.add(line, "", f"each record must be a JSON object, not {_type_name(record)}")
            return None
        unstorable = unstorable_in(record) or importing._unstorable_json(record)
        if unstorable is not None:
            self.problems.add(line, *unstorable)
            return None
        before = self.problems.total
        name = self._text(line, record, "validator", NAME_MAX)
        if name is None and not _given(record, "validator"):
            self.problems.add(line, "validator", "is missing: give the judge's name")
        criterion = self._criterion(line, record)
        raw = self._raw(line, record)
        target_fields = self._target(line, record)
        verdict_fields = None if target_fields is None else self._verdict(line, record, target_fields["target"])
        if self.problems.total > before or name is None:
            return None
        return _Row(line=line, validator=name, criterion=criterion, raw=raw,
                    **target_fields, **verdict_fields)

    # -- the target
    def _target(self, line: int, record: dict) -> dict | None:
        one = [k for k in _ONE_OUTPUT_KEYS if _given(record, k)]
        pair = [k for k in _PAIR_KEYS if _given(record, k)]
        has_item = _given(record, "item_id")
        if one and pair:
            self.problems.add(line, pair[0], (
                f"mixes a one-output target ({one[0]}) with a pair target ({pair[0]}): "
                "a row judges one output or one pair"
            ))
            return None
        if "output_id" in one:
            if has_item or "system" in one:
                extra = "item_id" if has_item else "system"
                self.problems.add(line, extra, "give either output_id, or item_id and system, not both")
                return None
            output_id = self._id(line, record, "output_id")
            return None if output_id is None else {"target": Target.OUTPUT, "output_id": output_id}
        if one:
            if not has_item:
                self.problems.add(line, "item_id", "is missing: system names an output of an item")
                return None
            item_id = self._text(line, record, "item_id", ITEM_ID_MAX)
            system = self._text(line, record, "system", SYSTEM_MAX)
            if item_id is None or system is None:
                return None
            return {"target": Target.OUTPUT, "item_id": item_id, "system": system}
        if "output_a_id" in pair or "output_b_id" in pair:
            if has_item or "system_a" in pair or "system_b" in pair:
                extra = "item_id" if has_item else ("system_a" if "system_a" in pair else "system_b")
                self.problems.add(line, extra, (
                    "give either output_a_id and output_b_id, or item_id with system_a and "
                    "system_b, not both"
                ))
                return None
            a = self._id(line, record, "output_a_id", required=True)
            b = self._id(line, record, "output_b_id", required=True)
            if a is None or b is None:
                return None
            if a == b:
                self.problems.add(line, "output_b_id", "is the same output as output_a_id")
                return None
            return {"target": Target.PAIR, "output_a_id": a, "output_b_id": b}
        if pair:
            if not has_item:
                self.problems.add(line, "item_id", "is missing: system_a and system_b name outputs of an item")
                return None
            for key in ("system_a", "system_b"):
                if key not in pair:
                    self.problems.add(line, key, "is missing: a pair named by systems needs both")
                    return None
            item_id = self._text(line, record, "item_id", ITEM_ID_MAX)
            system_a = self._text(line, record, "system_a", SYSTEM_MAX)
            system_b = self._text(line, record, "system_b", SYSTEM_MAX)
            if item_id is None or system_a is None or system_b is None:
                return None
            if system_a == system_b:
                self.problems.add(line, "system_b", "is the same system as system_a")
                return None
            return {"target": Target.PAIR, "item_id": item_id, "system_a": system_a, "system_b": system_b}
        if has_item:
            item_id = self._text(line, record, "item_id", ITEM_ID_MAX)
            return None if item_id is None else {"target": Target.PAIR, "item_id": item_id}
        self.problems.add(line, "output_id", f"is missing: {_TARGET_HELP}")
        return None

    # -- the verdict
    def _verdict(self, line: int, record: dict, target: str) -> dict | None:
        wrong = ("winner", "score_a", "score_b") if target == Target.OUTPUT else ("outcome", "score", "threshold")
        for key in wrong:
            if _given(record, key):
                self.problems.add(line, key, (
                    "is for a pair; this row names one output (give outcome or score)"
                    if target == Target.OUTPUT else
                    "is for one output; this row names a pair (give winner: a, b or tie, or "
                    "score_a and score_b)"
                ))
                return None
        before = self.problems.total
        if target == Target.OUTPUT:
            outcome = self._outcome(line, record) if _given(record, "outcome") else None
            score = self._number(line, record, "score")
            threshold = self._number(line, record, "threshold")
            if self.problems.total > before:
                return None
            if outcome is None and score is None:
                self.problems.add(line, "outcome", "is missing: give outcome (pass, fail or error) or score")
                return None
            if threshold is not None and outcome in (Outcome.PASS, Outcome.FAIL):
                self.problems.add(line, "threshold", (
                    "applies to scores; this row gives an outcome (leave threshold out, or give "
                    "a score instead)"
                ))
                return None
            return {"outcome": outcome, "score": score, "threshold": threshold}
        score_a = self._number(line, record, "score_a")
        score_b = self._number(line, record, "score_b")
        if self.problems.total > before:
            return None
        if _given(record, "winner"):
            value = record["winner"]
            winner = _WINNER_WORDS.get(value.strip().lower()) if isinstance(value, str) else None
            if winner is None:
                self.problems.add(line, "winner", f"must be a, b or tie, not {importing._shown(value)}")
                return None
        elif score_a is not None and score_b is not None:
            # A rating judge compared by its two scores (DESIGN §4.6): equal scores are a tie.
            winner = Winner.A if score_a > score_b else Winner.B if score_b > score_a else Winner.TIE
        else:
            missing = "score_b" if score_a is not None else "score_a" if score_b is not None else "winner"
            self.problems.add(line, missing, "is missing: give winner (a, b or tie), or score_a and score_b")
            return None
        return {"winner": winner, "score_a": score_a, "score_b": score_b}

    def _outcome(self, line: int, record: dict) -> str | None:
        value = record["outcome"]
        if isinstance(value, bool):
            return Outcome.PASS if value else Outcome.FAIL
        if isinstance(value, int) and value in (0, 1):
            return Outcome.PASS if value == 1 else Outcome.FAIL
        word = _OUTCOME_WORDS.get(value.strip().lower()) if isinstance(value, str) else None
        if word is None:
            self.problems.add(line, "outcome", (
                f"must be pass, fail or error (or true/false, 1/0), not {importing._shown(value)}"
            ))
        return word

    # -- values
    def _number(self, line: int, record: dict, key: str) -> float | None:
        if not _given(record, key):
            return None
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.problems.add(line, key, f"must be a number, not {_type_name(value)}")
            return None
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            self.problems.add(line, key, f"must be a number, not {importing._shown(value)}")
            return None
        if not math.isfinite(number):
            self.problems.add(line, key, f"must be a finite number, not {importing._shown(value)}")
            return None
        return number

    def _id(self, line: int, record: dict, key: str, *, required: bool = False) -> int | None:
        if not _given(record, key):
            if required:
                self.problems.add(line, key, "is missing")
            return None
        value = record[key]
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 20:
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
            self.problems.add(line, key, (
                f"must be a Concord output id (a positive whole number), not {importing._shown(value)}"
            ))
            return None
        return value

    def _text(self, line: int, record: dict, key: str, limit: int) -> str | None:
        if not _given(record, key):
            return None
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problems.add(line, key, f"must be a string, not {_type_name(value)}")
            return None
        value = str(value).strip()
        if len(value) > limit:
            self.problems.add(line, key, f"is longer than {limit} characters")
            return None
        return value

    def _criterion(self, line: int, record: dict) -> str | None:
        if not _given(record, "criterion"):
            return None
        value = record["criterion"]
        if not isinstance(value, str):
            self.problems.add(line, "criterion", f"must be a criterion key or null, not {_type_name(value)}")
            return None
        try:
            return criterion_key_check(value)
        except CriterionError as exc:
            self.problems.add(line, "criterion", str(exc))
            return None

    def _raw(self, line: int, record: dict) -> str:
        value = record.get("raw")
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problems.add(line, "raw", f"must be a string (the judge's answer), not {_type_name(value)}")
            return ""
        if len(value) * 4 > self.max_text_bytes and len(value.encode("utf-8")) > self.max_text_bytes:
            self.problems.add(line, "raw", (
                f"is {len(value.encode('utf-8')):,} bytes; the limit is {self.max_text_bytes:,} "
                "bytes (CONCORD_MAX_TEXT_BYTES)"
            ))
            return ""
        return value


def _type_name(value: Any) -> str:
    return importing._type_name(value)


# -- reading the file ------------------------------------------------------------------------
def _file_format(filename: str, stream: IO[bytes]) -> str:
    """JSON Lines or CSV, by the name's extension or else by the content; a file that is no
    text is refused here, with one problem instead of one per line."""
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window is not the file's fault.
        if exc.start < len(head) - 3 or len(head) < _SNIFF_BYTES:
            raise FileRejected(ImportProblem(0, "file", (
                f"is not a text file (not valid UTF-8: byte 0x{head[exc.start]:02x} at offset "
                f"{exc.start}); export the verdicts as JSON Lines (.jsonl) or CSV (.csv)"
            ))) from exc
        text = head[:exc.start].decode("utf-8")
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.txt")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq", ".xlsx", ".xls")):
        raise FileRejected(ImportProblem(0, "file", (
            f"cannot read '{filename}': judge verdicts are imported from JSON Lines (.jsonl) or CSV (.csv)"
        )))
    return "jsonl" if text.lstrip("\ufeff \t\r\n").startswith("{") else "csv"


def _csv_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for line, record in importing.iter_raw_records(stream, "csv"):
        if isinstance(record, dict):
            # Cells are text; an empty one is a value left out.
            record = {key: (None if value == "" else value) for key, value in record.items()}
        yield line, record


def _raw_records(
    *, stream_or_records: IO[bytes] | list, filename: str, max_bytes: int,
) -> tuple[str, Iterable[tuple[int, Any]]]:
    if isinstance(stream_or_records, list):
        return "record", enumerate(stream_or_records, start=1)
    if not hasattr(stream_or_records, "read"):
        raise FileRejected(ImportProblem(0, "records", "must be a list of objects"))
    stream = stream_or_records
    importing.check_size(importing.file_size(stream), max_bytes)
    fmt = _file_format(filename, stream)
    if fmt == "csv":
        return "line", _csv_records(stream)
    return "line", importing.iter_raw_records(stream, "jsonl")


# -- the import -----------------------------------------------------------------------------
@dataclass
class _Judge:
    """What the rows of one name agree on, with the first line that said it."""

    first_line: int
    criterion: str | None
    target: str
    shape: str | None = None
    shape_line: int = 0
    threshold: float | None = None
    threshold_line: int = 0
    rows: list[_Row] = field(default_factory=list)


@dataclass(frozen=True)
class _Verdict:
    line: int
    output_id: int | None
    pair: tuple[int, int] | None
    row: _Row
    winner: str = ""
    score_a: float | None = None
    score_b: float | None = None


class _Importer:
    def __init__(self, *, project: Project, create_criteria: bool, created_by, max_rows: int):
        self.project = project
        self.create_criteria = create_criteria
        self.created_by = created_by
        self.max_rows = max_rows
        self.problems = ProblemList()
        self.reader = _RowReader(self.problems, max_text_bytes=settings.CONCORD_MAX_TEXT_BYTES)
        self.judges: dict[str, _Judge] = {}
        self.unit = "line"

    def where(self, line: int) -> str:
        return f"{self.unit} {line}"

    def read_all(self, records: Iterable[tuple[int, Any]]) -> None:
        n_rows = 0
        for line, record in records:
            n_rows += 1
            if n_rows > self.max_rows:
                self.problems.add(line, "file", (
                    f"the file has more than {self.max_rows:,} rows; split it into smaller files"
                ))
                return
            row = self.reader.read(line, record)
            if row is not None:
                self._agree(row)
        if n_rows == 0:
            self.problems.add(0, "file", "the file holds no verdicts")

    def _agree(self, row: _Row) -> None:
        judge = self.judges.get(row.validator)
        if judge is None:
            judge = self.judges[row.validator] = _Judge(
                first_line=row.line, criterion=row.criterion, target=row.target,
            )
        name, first = row.validator, self.where(judge.first_line)
        if row.criterion != judge.criterion:
            self.problems.add(row.line, "criterion", (
                f"is {_criterion_name(row.criterion)} but validator '{name}' judges "
                f"{_criterion_name(judge.criterion)} on {first}: one validator judges one criterion"
            ))
            return
        if row.target != judge.target:
            said = {Target.OUTPUT: "one output", Target.PAIR: "a pair"}
            self.problems.add(row.line, _target_field(row), (
                f"names {said[row.target]}, but validator '{name}' judges {said[judge.target]} "
                f"on {first}: all rows of a validator have the same target"
            ))
            return
        shape = row.verdict_shape
        if shape is not None and judge.shape is None:
            judge.shape, judge.shape_line = shape, row.line
        elif shape is not None and shape != judge.shape:
            self.problems.add(row.line, shape, (
                f"validator '{name}' gives {judge.shape}s on {self.where(judge.shape_line)} and "
                f"a {shape} here: give every row of a validator an outcome, or every row a score "
                "(outcome 'error' marks an item the judge failed on)"
            ))
            return
        if row.threshold is not None:
            if judge.threshold is None:
                judge.threshold, judge.threshold_line = row.threshold, row.line
            elif row.threshold != judge.threshold:
                self.problems.add(row.line, "threshold", (
                    f"is {row.threshold:g}, but validator '{name}' has threshold "
                    f"{judge.threshold:g} on {self.where(judge.threshold_line)}: one threshold per validator"
                ))
                return
        judge.rows.append(row)

    # -- against the project
    def check_criteria(self) -> dict[str, Criterion | None]:
        wanted: dict[str, int] = {}
        for judge in self.judges.values():
            if judge.criterion is not None:
                wanted.setdefault(judge.criterion, judge.first_line)
        known = {c.key: c for c in Criterion.objects.filter(project=self.project, key__in=list(wanted))}
        missing = [key for key in wanted if key not in known]
        if missing and not self.create_criteria:
            has = ", ".join(sorted(
                Criterion.objects.filter(project=self.project).values_list("key", flat=True)
            )) or "none yet"
            for key in missing:
                self.problems.add(wanted[key], "criterion", (
                    f"unknown criterion '{key}' (this project has: {has}); fix the name, or ask "
                    "the import to create missing criteria"
                ))
        return known

    def resolve(self) -> list[_Verdict]:
        rows = [row for judge in self.judges.values() for row in judge.rows]
        output_ids = {i for row in rows for i in (row.output_id, row.output_a_id, row.output_b_id) if i}
        item_ids = {row.item_id for row in rows if row.item_id is not None}
        sample_of: dict[int, int] = {}
        for chunk in _chunks(sorted(output_ids)):
            sample_of.update(Output.objects.filter(project=self.project, pk__in=chunk).values_list("pk", "sample_id"))
        sample_by_item: dict[str, int] = {}
        for chunk in _chunks(sorted(item_ids)):
            sample_by_item.update(Sample.objects.filter(project=self.project, external_id__in=chunk).values_list("external_id", "pk"))
        outputs_of: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for chunk in _chunks(sorted(sample_by_item.values())):
            for pk, sample_id, system in Output.objects.filter(sample_id__in=chunk).order_by("pk").values_list("pk", "sample_id", "system"):
                outputs_of[sample_id].append((pk, system))
        resolver = _Resolver(self.problems, sample_of, sample_by_item, outputs_of)
        verdicts = [v for v in (resolver.verdict(row) for row in rows) if v is not None]
        self._check_duplicates(verdicts)
        return verdicts

    def _check_duplicates(self, verdicts: list[_Verdict]) -> None:
        seen: dict[tuple, int] = {}
        for verdict in sorted(verdicts, key=lambda v: v.line):
            key = (verdict.row.validator, verdict.output_id, verdict.pair)
            first = seen.setdefault(key, verdict.line)
            if first != verdict.line:
                what = (f"output {verdict.output_id}" if verdict.output_id is not None
                        else f"the pair of outputs {verdict.pair[0]} and {verdict.pair[1]}")
                self.problems.add(verdict.line, "validator", (
                    f"duplicate verdict: validator '{verdict.row.validator}' already judged "
                    f"{what} on {self.where(first)} ({self.where(verdict.line)} repeats it)"
                ))

    # -- writing
    def write(self, verdicts: list[_Verdict], criteria: dict[str, Criterion]) -> ExternalImportResult:
        result = ExternalImportResult()
        by_name: dict[str, list[_Verdict]] = defaultdict(list)
        for verdict in verdicts:
            by_name[verdict.row.validator].append(verdict)
        # One import of a project at a time, so two imports of a name cannot both replace the
        # same version and leave two active.
        Project.objects.select_for_update().filter(pk=self.project.pk).first()
        for name, judge in self.judges.items():
            criterion = None
            if judge.criterion is not None:
                criterion = criteria.get(judge.criterion)
                if criterion is None:
                    criterion = criterion_ensure(project=self.project, key=judge.criterion, author=self.created_by)
                    criteria[judge.criterion] = criterion
                    result.criteria_created.append(judge.criterion)
            same_name = Validator.objects.filter(
                project=self.project, kind=ValidatorKind.EXTERNAL, name=name, archived=False,
            )
            previous = same_name.order_by("-pk").first()
            validator = Validator.objects.create(
                project=self.project, kind=ValidatorKind.EXTERNAL, target=judge.target, name=name,
                source="", criterion=criterion, threshold=judge.threshold, origin=Origin.IMPORTED,
                parent=previous, created_by=self.created_by,
            )
            same_name.exclude(pk=validator.pk).update(archived=True)
            mine = by_name[name]
            if judge.target == Target.OUTPUT:
                VerdictRecord.objects.bulk_create(
                    [_verdict_record(validator, v) for v in mine], batch_size=_WRITE_BATCH,
                )
            else:
                PairVerdict.objects.bulk_create(
                    [_pair_verdict(validator, v) for v in mine], batch_size=_WRITE_BATCH,
                )
            result.judges.append(ImportedJudge(validator=validator, n_verdicts=len(mine)))
        return result


class _Resolver:
    """Turns what a row names into Concord output ids, reporting what the project lacks."""

    def __init__(self, problems, sample_of, sample_by_item, outputs_of):
        self.problems = problems
        self.sample_of = sample_of
        self.sample_by_item = sample_by_item
        self.outputs_of = outputs_of

    def verdict(self, row: _Row) -> _Verdict | None:
        if row.target == Target.OUTPUT:
            output_id = self._output(row)
            return None if output_id is None else _Verdict(row.line, output_id, None, row)
        named = self._pair(row)
        if named is None:
            return None
        a, b = named
        pair, winner = canonical(a, b, row.winner)
        score_a, score_b = (row.score_a, row.score_b) if a < b else (row.score_b, row.score_a)
        return _Verdict(row.line, None, pair, row, winner=winner, score_a=score_a, score_b=score_b)

    def _output(self, row: _Row) -> int | None:
        if row.output_id is not None:
            if row.output_id not in self.sample_of:
                self.problems.add(row.line, "output_id", f"no output with id {row.output_id} in this project")
                return None
            return row.output_id
        return self._by_system(row, "system", row.system)

    def _pair(self, row: _Row) -> tuple[int, int] | None:
        if row.output_a_id is not None:
            missing = [k for k, i in (("output_a_id", row.output_a_id), ("output_b_id", row.output_b_id))
                       if i not in self.sample_of]
            for key in missing:
                self.problems.add(row.line, key, f"no output with id {getattr(row, key)} in this project")
            if missing:
                return None
            if self.sample_of[row.output_a_id] != self.sample_of[row.output_b_id]:
                self.problems.add(row.line, "output_b_id", (
                    "is an output of another input than output_a_id: a pair compares two outputs "
                    "of the same input"
                ))
                return None
            return row.output_a_id, row.output_b_id
        if row.system_a is not None:
            a = self._by_system(row, "system_a", row.system_a)
            b = self._by_system(row, "system_b", row.system_b)
            return None if a is None or b is None else (a, b)
        sample_id = self._sample(row)
        if sample_id is None:
            return None
        outputs = self.outputs_of.get(sample_id, [])
        if len(outputs) != 2:
            systems = ", ".join(s for _, s in outputs) or "none"
            self.problems.add(row.line, "item_id", (
                f"item '{row.item_id}' has {len(outputs)} outputs ({systems}), so item_id alone "
                "does not name a pair: give system_a and system_b"
            ))
            return None
        # A pairwise import creates output_a before output_b: id order is the file's order.
        return outputs[0][0], outputs[1][0]

    def _sample(self, row: _Row) -> int | None:
        sample_id = self.sample_by_item.get(row.item_id)
        if sample_id is None:
            self.problems.add(row.line, "item_id", f"no item '{row.item_id}' in this project")
        return sample_id

    def _by_system(self, row: _Row, key: str, system: str) -> int | None:
        if row.item_id not in self.sample_by_item:
            if key != "system_b":  # reported once per row, with system_a
                self._sample(row)
            return None
        outputs = self.outputs_of.get(self.sample_by_item[row.item_id], [])
        for output_id, name in outputs:
            if name == system:
                return output_id
        has = ", ".join(s for _, s in outputs) or "none"
        self.problems.add(row.line, key, (
            f"item '{row.item_id}' has no output of system '{system}' (it has: {has})"
        ))
        return None


def _verdict_record(validator: Validator, verdict: _Verdict) -> VerdictRecord:
    row = verdict.row
    outcome = row.outcome
    if outcome is None:
        outcome = (Outcome.SCORE if validator.threshold is None
                   else Outcome.PASS if row.score >= validator.threshold else Outcome.FAIL)
    return VerdictRecord(
        validator=validator, output_id=verdict.output_id, outcome=outcome, score=row.score,
        detail=row.raw,
    )


def _pair_verdict(validator: Validator, verdict: _Verdict) -> PairVerdict:
    a, b = verdict.pair
    # An external judge was asked once, in the row's order: `second_*` stays unread.
    return PairVerdict(
        validator=validator, output_a_id=a, output_b_id=b, winner=verdict.winner,
        first_winner=verdict.winner, second_winner="", first_answer=verdict.row.raw,
        score_a=verdict.score_a, score_b=verdict.score_b,
    )


def _criterion_name(key: str | None) -> str:
    return f"criterion '{key}'" if key else "the holistic verdict"


def _target_field(row: _Row) -> str:
    for key in ("output_id", "output_a_id", "system", "system_a"):
        if getattr(row, key) is not None:
            return key
    return "item_id"


def _chunks(values: list, size: int = _QUERY_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class _Rollback(Exception):
    pass


def external_verdicts_import(
    *, project: Project, stream_or_records: IO[bytes] | list, filename: str = "",
    created_by: AbstractBaseUser | None, create_criteria: bool = False,
    max_bytes: int | None = None, max_rows: int = MAX_ROWS,
) -> ExternalImportResult:
    """Import judge verdicts from a JSON Lines or CSV file (or a list of records from the API)
    as external validators of `project`. On any problem the result lists them all (line and
    field; for records, the record's position) and nothing was written."""
    importer = _Importer(
        project=project, create_criteria=create_criteria, created_by=created_by, max_rows=max_rows,
    )
    result = ExternalImportResult()
    try:
        unit, records = _raw_records(
            stream_or_records=stream_or_records, filename=filename,
            max_bytes=max_bytes or settings.CONCORD_IMPORT_MAX_BYTES,
        )
        importer.unit = unit
        importer.read_all(records)
        with transaction.atomic():
            criteria = importer.check_criteria()
            verdicts = importer.resolve()
            if importer.problems:
                raise _Rollback
            result = importer.write(verdicts, criteria)
    except _Rollback:
        pass
    except FileRejected as exc:
        importer.problems.add(exc.problem.line, exc.problem.field, exc.problem.message)
    except (io.UnsupportedOperation, OSError) as exc:
        importer.problems.add(0, "file", f"cannot be read: {exc}")
    if importer.problems:
        problems = sorted(importer.problems.problems, key=lambda p: p.line)
        return ExternalImportResult(problems=problems, problem_count=importer.problems.total)
    return result
