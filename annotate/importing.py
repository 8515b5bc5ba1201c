"""Reading import files: JSON Lines, CSV, Parquet or an in-memory list of records.

Parsing and validation only; nothing here touches the database. Every problem is reported as
an `ImportProblem` naming the line (or record number) and the field, so the caller can refuse
the whole file with a precise list.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from annotate.untrusted_text import unstorable_in

PER_OUTPUT = "per_output"
PAIRWISE = "pairwise"
FORMATS = ("jsonl", "csv", "parquet", "records")
MAX_PROBLEMS = 100
# Deeper JSON is no data anyone means to grade by, and the JSON encoders that store and show it
# recurse: a file nested 100,000 deep otherwise ends as a RecursionError.
MAX_JSON_DEPTH = 64
# The texts a grader reads and a validator receives; their size is capped by
# CONCORD_MAX_TEXT_BYTES (the caller passes it in).
SIZED_TEXTS = ("input", "reference", "output", "output_a", "output_b")
# Criterion keys as the Criterion model accepts them (annotate.models.key_validator).
_CRITERION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
CRITERION_KEY_MAX = 64


@dataclass(frozen=True)
class ImportProblem:
    line: int
    field: str
    message: str

    def to_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class FileRejected(Exception):
    """The file cannot be read at all (size, encoding, format); carries one problem."""

    def __init__(self, problem: ImportProblem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class HumanLabel:
    label: int | None
    score: float | None
    criteria: dict[str, int]
    criteria_scores: dict[str, float]


@dataclass(frozen=True)
class OutputRecord:
    line: int
    item_id: str
    input: str
    reference: str | None
    context: Any
    system: str
    output: str
    metadata: dict
    human: HumanLabel | None


@dataclass(frozen=True)
class PairRecord:
    line: int
    item_id: str
    sample_key: str
    input: str
    reference: str | None
    context: Any
    system_a: str
    output_a: str
    system_b: str
    output_b: str
    preference: str | None
    metadata: dict
    # Set when the pair's input_id was set aside because a system's text differed there.
    input_id: str | None = None


@dataclass
class ProblemList:
    problems: list[ImportProblem] = field(default_factory=list)
    total: int = 0

    def add(self, line: int, field_name: str, message: str) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ImportProblem(line, field_name, message))

    def __bool__(self) -> bool:
        return self.total > 0


def detect_format(filename: str) -> str:
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".jsonl.txt")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".json"):
        return "jsonl"
    raise FileRejected(
        ImportProblem(0, "file", f"cannot tell the format of '{filename}': use .jsonl, .csv or .parquet")
    )


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise FileRejected(
            ImportProblem(
                0, "file",
                f"the file is {_human_bytes(size)}; the import limit is {_human_bytes(limit)}. "
                "Split it into smaller files.",
            )
        )
    if size == 0:
        raise FileRejected(ImportProblem(0, "file", "the file is empty"))


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def iter_raw_records(
    stream: IO[bytes] | None, fmt: str, *, records: Iterable[Any] | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield (line, raw record) pairs. Raises FileRejected for problems that stop reading."""
    if fmt == "records":
        yield from enumerate(records or [], start=1)
    elif fmt == "jsonl":
        yield from _iter_jsonl(stream)
    elif fmt == "csv":
        yield from _iter_csv(stream)
    elif fmt == "parquet":
        yield from _iter_parquet(stream)
    else:
        raise FileRejected(ImportProblem(0, "file", f"unknown format '{fmt}'"))


class _BadLine:
    """A line that could not be decoded; validation reports it with its own message."""

    def __init__(self, message: str):
        self.message = message


def _iter_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, raw_line in enumerate(stream, start=1):
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, _BadLine(
                f"not valid UTF-8 (byte 0x{raw_line[exc.start]:02x} at column {exc.start + 1})"
            )
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip():
            continue
        yield number, _json_or_bad_line(text, "invalid JSON")


def _json_or_bad_line(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return _BadLine(f"{what}: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return _BadLine(f"{what}: nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    except ValueError as exc:
        # int() refuses numbers of more than 4,300 digits (CVE-2020-10735's limit).
        return _BadLine(f"{what}: {exc}")


# Columns of a CSV that hold JSON (nested values cannot be written as plain cells).
_JSON_COLUMNS = {"context", "metadata", "meta", "human", "human_votes"}


def _iter_csv(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.DictReader(text, strict=True)
    try:
        header = reader.fieldnames
    except UnicodeDecodeError as exc:
        raise FileRejected(ImportProblem(1, "file", f"not valid UTF-8: {exc.reason}")) from exc
    except csv.Error as exc:
        raise FileRejected(ImportProblem(1, "file", f"malformed CSV: {exc}")) from exc
    if not header:
        raise FileRejected(ImportProblem(0, "file", "the file is empty"))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise FileRejected(
                ImportProblem(reader.line_num + 1, "file", f"not valid UTF-8: {exc.reason}")
            ) from exc
        except csv.Error as exc:
            # line_num counts the lines read before the one that broke.
            raise FileRejected(
                ImportProblem(reader.line_num + 1, "file", f"malformed CSV: {exc}")
            ) from exc
        line = reader.line_num
        if None in row:
            yield line, _BadLine(f"{len(row[None])} more cells than the header has columns")
            continue
        record: dict[str, Any] = {}
        bad = None
        for key, value in row.items():
            if value is None:
                bad = f"missing cells: the row ends before column '{key}'"
                break
            if key in _JSON_COLUMNS:
                if value.strip() == "":
                    record[key] = None
                    continue
                parsed = _json_or_bad_line(value, f"column '{key}' is not valid JSON")
                if isinstance(parsed, _BadLine):
                    bad = parsed.message
                    break
                record[key] = parsed
            elif key in ("reference", "system_a", "system_b") and value == "":
                record[key] = None
            else:
                record[key] = value
        yield line, (_BadLine(bad) if bad else record)


def _iter_parquet(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet_file = pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise FileRejected(ImportProblem(0, "file", f"not a readable Parquet file: {exc}")) from exc
    number = 0
    for batch in parquet_file.iter_batches(batch_size=2000):
        for row in batch.to_pylist():
            number += 1
            yield number, {k: _from_parquet(k, v) for k, v in row.items()}


def _from_parquet(key: str, value: Any) -> Any:
    if key in _JSON_COLUMNS and isinstance(value, str):
        parsed = _json_or_bad_line(value, key)
        return value if isinstance(parsed, _BadLine) else parsed
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def detect_kind(record: Any) -> str | None:
    if isinstance(record, dict):
        if "output_a" in record or "output_b" in record:
            return PAIRWISE
        return PER_OUTPUT
    return None


def _text(record: dict, key: str, line: int, problems: ProblemList, *, required: bool = True,
          allow_empty: bool = True) -> str | None:
    if key not in record or record[key] is None:
        if required:
            problems.add(line, key, "is missing")
        return None
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(line, key, f"must be a string, not {_type_name(value)}")
        return None
    if not isinstance(value, str):
        if key in ("output", "output_a", "output_b", "input"):
            problems.add(line, key, f"must be a string, not {_type_name(value)}")
            return None
        value = str(value)
    if not allow_empty and not value.strip():
        problems.add(line, key, "is empty")
        return None
    return value


def _type_name(value: Any) -> str:
    return {
        dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number",
        str: "a string", type(None): "null",
    }.get(type(value), type(value).__name__)


def _human(value: Any, line: int, problems: ProblemList) -> HumanLabel | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(line, "human", f"must be an object, not {_type_name(value)}")
        return None
    label = value.get("label")
    if label is not None and (isinstance(label, bool) or label not in (0, 1)):
        problems.add(line, "human.label", f"must be 0, 1 or null, not {_shown(label)}")
        label = None
    score = _score(value.get("score"), line, "human.score", problems)
    criteria: dict[str, int] = {}
    raw_criteria = value.get("criteria")
    if raw_criteria is not None:
        if not isinstance(raw_criteria, dict):
            problems.add(line, "human.criteria", f"must be an object, not {_type_name(raw_criteria)}")
        else:
            for name, verdict in raw_criteria.items():
                where = _field_path("human.criteria", str(name))
                key_problem = _criterion_key_problem(str(name))
                if key_problem:
                    problems.add(line, where, key_problem)
                    continue
                if verdict is None:
                    continue
                if isinstance(verdict, bool) or verdict not in (0, 1):
                    problems.add(line, where, f"must be 0, 1 or null, not {_shown(verdict)}")
                else:
                    criteria[str(name)] = int(verdict)
    criteria_scores: dict[str, float] = {}
    raw_scores = value.get("criteria_scores")
    if isinstance(raw_scores, dict):
        for name, s in raw_scores.items():
            where = _field_path("human.criteria_scores", str(name))
            key_problem = _criterion_key_problem(str(name))
            if key_problem:
                problems.add(line, where, key_problem)
                continue
            if isinstance(s, int | float) and not isinstance(s, bool):
                parsed = _score(s, line, where, problems)
                if parsed is not None:
                    criteria_scores[str(name)] = parsed
    return HumanLabel(
        label=None if label is None else int(label),
        score=score,
        criteria=criteria,
        criteria_scores=criteria_scores,
    )


_RESERVED = {
    "item_id", "input", "reference", "context", "system", "output", "human", "metadata", "meta",
    "system_a", "system_b", "output_a", "output_b", "human_preference", "input_id",
}


def _metadata(record: dict, line: int, problems: ProblemList) -> dict:
    metadata = record.get("metadata", record.get("meta")) or {}
    if not isinstance(metadata, dict):
        problems.add(line, "metadata", f"must be an object, not {_type_name(metadata)}")
        return {}
    extra = {k: v for k, v in record.items() if k not in _RESERVED}
    return {**extra, **metadata}


def _is_object(line: int, record: Any, problems: ProblemList) -> bool:
    if isinstance(record, _BadLine):
        problems.add(line, "", record.message)
        return False
    if not isinstance(record, dict):
        problems.add(line, "", f"each record must be a JSON object, not {_type_name(record)}")
        return False
    return True


def _storable(line: int, record: dict, problems: ProblemList, max_text_bytes: int | None) -> bool:
    """The checks every value of a record must pass before anything else looks at it: text a
    database can hold (annotate.untrusted_text's one rule), finite numbers, bounded nesting,
    and texts within the size limit. Reports the first problem of the record with its path."""
    unstorable = unstorable_in(record)
    if unstorable is not None:
        problems.add(line, *unstorable)
        return False
    bad_value = _unstorable_json(record)
    if bad_value is not None:
        problems.add(line, *bad_value)
        return False
    before = problems.total
    if max_text_bytes is not None:
        for key in SIZED_TEXTS:
            value = record.get(key)
            # Four bytes per character at most: most texts need no encoding to be measured.
            if isinstance(value, str) and len(value) * 4 > max_text_bytes:
                size = len(value.encode("utf-8"))
                if size > max_text_bytes:
                    problems.add(
                        line, key,
                        f"is {size:,} bytes; the limit is {max_text_bytes:,} bytes "
                        "(CONCORD_MAX_TEXT_BYTES)",
                    )
    return problems.total == before


_NON_FINITE_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _unstorable_json(value: Any) -> tuple[str, str] | None:
    """The first (path, problem) of a number JSON columns cannot hold (NaN, ±Infinity, which
    Python's JSON reader accepts and 1e309 becomes) or of nesting deeper than MAX_JSON_DEPTH."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        where, current, depth = stack.pop()
        if isinstance(current, float) and not math.isfinite(current):
            return where, f"must be a finite number, not {_NON_FINITE_NAMES[repr(current)]}"
        if isinstance(current, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return where, f"is nested more than {MAX_JSON_DEPTH} levels deep"
            items = current.items() if isinstance(current, dict) else enumerate(current)
            for key, item in items:
                child = (f"{where}[{key}]" if isinstance(current, list)
                         else f"{where}.{key}" if where else str(key))
                stack.append((child, item, depth + 1))
    return None


def _shown(value: Any) -> str:
    """A value quoted in a message, cut short: a 4,000-digit label is not worth echoing."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _criterion_key_problem(name: str) -> str | None:
    if len(name) > CRITERION_KEY_MAX:
        return f"the criterion key is longer than {CRITERION_KEY_MAX} characters"
    if not _CRITERION_KEY.match(name):
        return (f"the criterion key {_shown(name)} is not valid: use letters, digits, '_' and "
                "'-' (no spaces), starting with a letter or digit")
    return None


def _field_path(prefix: str, name: str) -> str:
    return f"{prefix}.{name if len(name) <= 40 else name[:37] + '...'}"


def _score(value: Any, line: int, field_name: str, problems: ProblemList) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(line, field_name, f"must be a number or null, not {_type_name(value)}")
        return None
    try:
        return float(value)
    except OverflowError:
        problems.add(line, field_name, f"is too large to be a score ({_shown(value)})")
        return None


def validate_output_record(
    line: int, record: Any, problems: ProblemList, *, max_text_bytes: int | None = None,
) -> OutputRecord | None:
    if not _is_object(line, record, problems):
        return None
    if not _storable(line, record, problems, max_text_bytes):
        return None
    before = problems.total
    item_id = _text(record, "item_id", line, problems, allow_empty=False)
    input_text = _text(record, "input", line, problems)
    system = _text(record, "system", line, problems, allow_empty=False)
    output = _text(record, "output", line, problems)
    reference = _text(record, "reference", line, problems, required=False)
    human = _human(record.get("human"), line, problems)
    metadata = _metadata(record, line, problems)
    if item_id is not None and len(item_id) > 255:
        problems.add(line, "item_id", "is longer than 255 characters")
    if system is not None and len(system) > 200:
        problems.add(line, "system", "is longer than 200 characters")
    if problems.total > before:
        return None
    return OutputRecord(
        line=line, item_id=item_id.strip(), input=input_text, reference=reference,
        context=record.get("context"), system=system.strip(), output=output,
        metadata=metadata, human=human,
    )


def validate_pair_record(
    line: int, record: Any, problems: ProblemList, *, max_text_bytes: int | None = None,
) -> PairRecord | None:
    if not _is_object(line, record, problems):
        return None
    if not _storable(line, record, problems, max_text_bytes):
        return None
    before = problems.total
    item_id = _text(record, "item_id", line, problems, allow_empty=False)
    input_text = _text(record, "input", line, problems)
    output_a = _text(record, "output_a", line, problems)
    output_b = _text(record, "output_b", line, problems)
    system_a = _text(record, "system_a", line, problems, required=False)
    system_b = _text(record, "system_b", line, problems, required=False)
    reference = _text(record, "reference", line, problems, required=False)
    preference = record.get("human_preference")
    if preference is not None and preference not in ("a", "b", "tie"):
        problems.add(
            line, "human_preference", f"must be 'a', 'b', 'tie' or null, not {_shown(preference)}"
        )
    metadata = _metadata(record, line, problems)
    if problems.total > before:
        return None
    # Unnamed systems (LLMBar) are anonymous per pair; named ones share a sample per prompt so
    # the same system's output is one Output however many pairs it appears in.
    input_id = record.get("input_id")
    if system_a and system_b and input_id is not None:
        sample_key = str(input_id)
    else:
        sample_key = item_id.strip()
    if system_a and system_b and system_a == system_b:
        problems.add(line, "system_b", "is the same system as system_a")
        return None
    return PairRecord(
        line=line, item_id=item_id.strip(), sample_key=sample_key, input=input_text,
        reference=reference, context=record.get("context"),
        system_a=(system_a or "anonymous-a").strip(), output_a=output_a,
        system_b=(system_b or "anonymous-b").strip(), output_b=output_b,
        preference=preference, metadata=metadata,
    )


def file_size(stream: IO[bytes]) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        position = stream.tell()
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(position)
        return size
