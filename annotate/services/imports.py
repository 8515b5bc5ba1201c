"""Import of samples and outputs (and optionally their human labels) from files.

One pass over the file inside one transaction: each chunk is validated and, while the file has
shown no problem, written with bulk inserts. Any problem anywhere rolls everything back, so a
rejected file leaves nothing behind, and memory stays bounded by the chunk size.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from annotate import importing
from annotate.importing import (
    PER_OUTPUT,
    FileRejected,
    ImportProblem,
    OutputRecord,
    PairRecord,
    ProblemList,
)
from annotate.models import (
    Comparison,
    Criterion,
    Grade,
    GradeCriterion,
    Output,
    Project,
    Sample,
    Scale,
    Verdict,
)
from annotate.services.criteria import criterion_ensure, current_versions
from annotate.services.projects import import_annotator


@dataclass
class ImportResult:
    kind: str = ""
    records: int = 0
    samples_created: int = 0
    outputs_created: int = 0
    outputs_unchanged: int = 0
    grades_created: int = 0
    comparisons_created: int = 0
    criteria_created: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def nothing_new(self) -> bool:
        return self.ok and not (
            self.samples_created or self.outputs_created or self.grades_created
            or self.comparisons_created
        )

    def summary(self) -> str:
        if not self.ok:
            more = self.problem_count - len(self.problems)
            extra = f" (showing the first {len(self.problems)}; {more} more)" if more > 0 else ""
            return f"Nothing was imported: the file has {self.problem_count} problem(s){extra}."
        if self.nothing_new:
            return (
                f"Nothing new: all {self.outputs_unchanged} outputs in the file were already "
                "imported."
            )
        parts = [f"{self.samples_created} samples", f"{self.outputs_created} outputs"]
        if self.grades_created:
            parts.append(f"{self.grades_created} grades")
        if self.comparisons_created:
            parts.append(f"{self.comparisons_created} comparisons")
        text = "Imported " + ", ".join(parts) + "."
        if self.outputs_unchanged:
            text += f" {self.outputs_unchanged} outputs were already there and were left alone."
        if self.criteria_created:
            text += f" New criteria: {', '.join(self.criteria_created)}."
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "records": self.records, "samples": self.samples_created,
            "outputs": self.outputs_created, "unchanged": self.outputs_unchanged,
            "grades": self.grades_created, "comparisons": self.comparisons_created,
            "criteria_created": self.criteria_created, "message": self.summary(),
            "errors": [p.to_dict() for p in self.problems],
        }


class _Rollback(Exception):
    pass


def _sample_metadata(record, key: str) -> dict:
    if record.item_id != key:
        return {"item_id": record.item_id}
    input_id = getattr(record, "input_id", None)
    return {"input_id": input_id} if input_id is not None else {}


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


class _Importer:
    def __init__(
        self, *, project: Project, with_labels: bool, annotator_name: str, chunk_size: int,
        max_text_bytes: int,
    ):
        self.project = project
        self.max_text_bytes = max_text_bytes
        self.with_labels = with_labels
        self.annotator_name = annotator_name
        self.chunk_size = chunk_size
        self.problems = ProblemList()
        self.result = ImportResult()
        self.kind: str | None = None
        # Fixed-size digests keep memory per distinct key small on very large files.
        self.seen_outputs: dict[bytes, int] = {}
        self.seen_inputs: dict[str, tuple[bytes, int]] = {}
        # (input_id, system) → digest of the text first met for it in this file.
        self.grouped_texts: dict[bytes, bytes] = {}
        self.seen_references: dict[str, tuple[bytes, int]] = {}
        self.annotator: AbstractBaseUser | None = None
        self.criteria: dict[str, Criterion] = {}
        self.versions: dict[int, Any] = {}

    # -- driving -------------------------------------------------------------------------
    def run(self, raw_records) -> ImportResult:
        try:
            with transaction.atomic():
                chunk: list = []
                for line, raw in raw_records:
                    record = self._validate(line, raw)
                    self.result.records += 1
                    if record is not None and not self.problems:
                        chunk.append(record)
                    if len(chunk) >= self.chunk_size:
                        self._flush(chunk)
                        chunk = []
                if chunk and not self.problems:
                    self._flush(chunk)
                if self.result.records == 0 and not self.problems:
                    self.problems.add(0, "file", "the file holds no records")
                if self.problems:
                    raise _Rollback
        except _Rollback:
            pass
        except FileRejected as exc:
            self.problems.add(exc.problem.line, exc.problem.field, exc.problem.message)
        if self.problems:
            self.result = ImportResult(
                kind=self.kind or "", records=self.result.records,
                problems=self.problems.problems, problem_count=self.problems.total,
            )
        else:
            self.result.kind = self.kind or ""
        return self.result

    def _validate(self, line: int, raw: Any) -> OutputRecord | PairRecord | None:
        if self.kind is None:
            self.kind = importing.detect_kind(raw)
            if self.kind is None:
                if not isinstance(raw, importing._BadLine):
                    self.problems.add(
                        line, "",
                        "cannot tell the record format: expected 'output' (one output per line) "
                        "or 'output_a'/'output_b' (pairwise)",
                    )
                    return None
                self.problems.add(line, "", raw.message)
                return None
        elif not isinstance(raw, importing._BadLine) and importing.detect_kind(raw) not in (
            None, self.kind,
        ):
            self.problems.add(line, "", f"mixes formats: the file started as {self.kind} records")
            return None
        if self.kind == PER_OUTPUT:
            record = importing.validate_output_record(
                line, raw, self.problems, max_text_bytes=self.max_text_bytes
            )
            if record is not None:
                self._check_duplicates(record.line, record.item_id, record.input, [record.system])
                self._check_reference(record.line, record.item_id, record.reference)
                if self.with_labels and record.human is not None:
                    self._check_scale(record.line, record.human)
            return record
        record = importing.validate_pair_record(
            line, raw, self.problems, max_text_bytes=self.max_text_bytes
        )
        if record is not None:
            record = self._ungroup_if_texts_differ(record)
            self._check_duplicates(record.line, record.sample_key, record.input, [])
        return record

    def _ungroup_if_texts_differ(self, record: importing.PairRecord) -> importing.PairRecord:
        """Pairs sharing an `input_id` share one input, so each system has one output there.
        A file where a system answered the same prompt twice with different texts (PandaLM
        does) keeps that pair as an input of its own, keyed by its item_id: neither text is
        lost, and the pair is still a comparison of the same two systems."""
        if record.sample_key == record.item_id:
            return record
        texts = [(record.system_a, _digest(record.output_a)), (record.system_b, _digest(record.output_b))]
        keys = [_digest(f"{record.sample_key}\x1f{system}") for system, _ in texts]
        if any(self.grouped_texts.get(key, text) != text for key, (_, text) in zip(keys, texts, strict=True)):
            return replace(record, sample_key=record.item_id, input_id=record.sample_key)
        for key, (_, text) in zip(keys, texts, strict=True):
            self.grouped_texts.setdefault(key, text)
        return record

    def _check_scale(self, line: int, human: importing.HumanLabel) -> None:
        """Scores become grades only on the project's own scale: a 99 on a 1-5 project is a
        mistake in the file, not a pass. Only checked when labels are imported; the outputs
        of a file graded on another scale are still welcome without them."""
        project = self.project
        if project.scale != Scale.RATING:
            return
        low = project.scale_min if project.scale_min is not None else -math.inf
        high = project.scale_max if project.scale_max is not None else math.inf
        scored = [("human.score", human.score)] + [
            (f"human.criteria_scores.{name}", score)
            for name, score in human.criteria_scores.items()
        ]
        for where, score in scored:
            if score is not None and not low <= score <= high:
                self.problems.add(
                    line, where,
                    f"{score:g} is outside the project's scale ({low:g} to {high:g})",
                )

    def _check_reference(self, line: int, item_id: str, reference: str | None) -> None:
        """One reference per input. Records of the same input may leave it out (a human
        reference "system" has none), but two different references are a mistake."""
        if reference is None:
            return
        digest = _digest(reference)
        first = self.seen_references.setdefault(item_id, (digest, line))
        if first[0] != digest:
            self.problems.add(
                line, "reference",
                f"differs from the reference of item_id '{item_id}' on line {first[1]}",
            )

    def _check_duplicates(self, line: int, item_id: str, input_text: str, systems: list[str]) -> None:
        input_digest = _digest(input_text)
        first = self.seen_inputs.get(item_id)
        if first is None:
            self.seen_inputs[item_id] = (input_digest, line)
        elif first[0] != input_digest:
            self.problems.add(
                line, "input", f"differs from the input of item_id '{item_id}' on line {first[1]}"
            )
        for system in systems:
            key = _digest(f"{item_id}\x1f{system}")
            if key in self.seen_outputs:
                self.problems.add(
                    line, "system",
                    f"duplicate (item_id, system) = ('{item_id}', '{system}'); first on line "
                    f"{self.seen_outputs[key]}",
                )
            else:
                self.seen_outputs[key] = line

    # -- writing -------------------------------------------------------------------------
    def _flush(self, chunk: list) -> None:
        if self.kind == PER_OUTPUT:
            by_item: dict[str, OutputRecord] = {}
            for r in chunk:
                # The sample takes its reference from whichever record of the input has one.
                if r.item_id not in by_item or (by_item[r.item_id].reference is None and r.reference):
                    by_item[r.item_id] = r
            samples = self._samples_for(by_item)
            outputs = self._outputs_for(
                samples, [(r.line, r.item_id, r.system, r.output, r.metadata) for r in chunk]
            )
            if self.with_labels and not self.problems:
                self._grades_for(chunk, samples, outputs)
        else:
            chunk = self._ungroup_if_stored_texts_differ(chunk)
            samples = self._samples_for({r.sample_key: r for r in chunk})
            wanted = []
            for r in chunk:
                wanted.append((r.line, r.sample_key, r.system_a, r.output_a, {}))
                wanted.append((r.line, r.sample_key, r.system_b, r.output_b, {}))
            outputs = self._outputs_for(samples, wanted)
            if self.with_labels and not self.problems:
                self._comparisons_for(chunk, samples, outputs)

    def _ungroup_if_stored_texts_differ(self, chunk: list[importing.PairRecord]) -> list[importing.PairRecord]:
        """The rule of `_ungroup_if_texts_differ` against outputs an earlier import stored."""
        grouped = {r.sample_key for r in chunk if r.sample_key != r.item_id}
        if not grouped:
            return chunk
        stored = {
            (key, system): text
            for key, system, text in Output.objects.filter(
                project=self.project, sample__external_id__in=grouped
            ).values_list("sample__external_id", "system", "text")
        }
        ungrouped = []
        for r in chunk:
            if r.sample_key != r.item_id and any(
                stored.get((r.sample_key, system), text) != text
                for system, text in ((r.system_a, r.output_a), (r.system_b, r.output_b))
            ):
                r = replace(r, sample_key=r.item_id, input_id=r.sample_key)
            ungrouped.append(r)
        return ungrouped

    def _samples_for(self, by_key: dict[str, OutputRecord | PairRecord]) -> dict[str, Sample]:
        existing = {
            s.external_id: s
            for s in Sample.objects.filter(project=self.project, external_id__in=list(by_key))
        }
        new, completed = [], []
        for key, record in by_key.items():
            sample = existing.get(key)
            if sample is not None and sample.reference is None and getattr(record, "reference", None):
                # An earlier chunk (or import) met this input only through records without one.
                sample.reference = record.reference
                completed.append(sample)
            if sample is None:
                new.append(Sample(
                    project=self.project, external_id=key, input_text=record.input,
                    context=record.context, reference=record.reference,
                    metadata=_sample_metadata(record, key),
                ))
            elif sample.input_text != record.input:
                self.problems.add(
                    record.line, "input",
                    f"item_id '{key}' already exists in this project with a different input",
                )
        if completed:
            Sample.objects.bulk_update(completed, ["reference"])
        if new:
            created = Sample.objects.bulk_create(new)
            self.result.samples_created += len(created)
            existing.update({s.external_id: s for s in created})
        return existing

    def _outputs_for(self, samples: dict[str, Sample], wanted: list) -> dict:
        existing = {
            (o.sample_id, o.system): o
            for o in Output.objects.filter(sample_id__in=[s.pk for s in samples.values()])
        }
        new: dict[tuple[int, str], Output] = {}
        already_there: set[tuple[int, str]] = set()
        for line, key, system, text, metadata in wanted:
            sample = samples.get(key)
            if sample is None:
                continue
            ident = (sample.pk, system)
            found = existing.get(ident) or new.get(ident)
            if found is None:
                new[ident] = Output(
                    project=self.project, sample=sample, system=system, text=text,
                    metadata=metadata,
                )
            elif found.text != text:
                self.problems.add(
                    line, "output",
                    f"the output of system '{system}' for item '{key}' was already imported with "
                    "a different text; Concord never overwrites an output",
                )
            elif ident in existing:
                already_there.add(ident)
        self.result.outputs_unchanged += len(already_there)
        if new and not self.problems:
            self.result.outputs_created += _insert_outputs(list(new.values()))
            if self.with_labels:
                existing = {
                    (o.sample_id, o.system): o
                    for o in Output.objects.filter(sample_id__in=[s.pk for s in samples.values()])
                }
        return existing

    def _ensure_labelling(self) -> None:
        if self.annotator is None:
            self.annotator = import_annotator(project=self.project, username=self.annotator_name)

    def _criterion(self, name: str) -> Criterion:
        criterion = self.criteria.get(name)
        if criterion is None:
            before = Criterion.objects.filter(project=self.project, key=name).exists()
            criterion = criterion_ensure(project=self.project, key=name, author=self.annotator)
            if not before:
                self.result.criteria_created.append(name)
            self.criteria[name] = criterion
            self.versions = current_versions(self.project)
        return criterion

    def _verdict(self, label: int | None, score: float | None) -> tuple[str, float | None] | None:
        project = self.project
        if project.scale == Scale.RATING and score is not None:
            return Verdict.for_score(score, project.pass_threshold), score
        if label is not None:
            return (Verdict.PASS if label == 1 else Verdict.FAIL), score
        return None

    def _grades_for(self, chunk: list[OutputRecord], samples: dict, outputs: dict) -> None:
        self._ensure_labelling()
        labelled = [r for r in chunk if r.human is not None]
        if not labelled:
            return
        output_ids = [outputs[(samples[r.item_id].pk, r.system)].pk for r in labelled]
        already = set(
            Grade.objects.filter(
                output_id__in=output_ids, annotator=self.annotator, superseded_by__isnull=True,
            ).values_list("output_id", flat=True)
        )
        now = timezone.now()
        grades, per_criterion = [], []
        for record, output_id in zip(labelled, output_ids, strict=True):
            if output_id in already:
                continue
            human = record.human
            holistic = self._verdict(human.label, human.score)
            criteria_verdicts = []
            names = set(human.criteria) | (
                set(human.criteria_scores) if self.project.scale == Scale.RATING else set()
            )
            for name in sorted(names - _inferred_in_export(record.metadata)):
                verdict = self._verdict(human.criteria.get(name), human.criteria_scores.get(name))
                if verdict is not None:
                    criteria_verdicts.append((self._criterion(name), verdict))
            if holistic is None and not criteria_verdicts:
                continue
            if holistic is None:
                # No overall label: the output passes only if every criterion passes.
                holistic = (
                    Verdict.FAIL if any(v[0] == Verdict.FAIL for _, v in criteria_verdicts)
                    else Verdict.PASS, None,
                )
            grades.append(Grade(
                project=self.project, output_id=output_id, annotator=self.annotator,
                verdict=holistic[0], score=holistic[1], submitted_at=now, selector="import",
                selector_why=f"imported from line {record.line}",
            ))
            per_criterion.append(criteria_verdicts)
        created = Grade.objects.bulk_create(grades)
        rows = [
            GradeCriterion(
                grade=grade, criterion=criterion, criterion_version=self.versions[criterion.pk],
                verdict=verdict, score=score,
            )
            for grade, verdicts in zip(created, per_criterion, strict=True)
            for criterion, (verdict, score) in verdicts
        ]
        GradeCriterion.objects.bulk_create(rows)
        self.result.grades_created += len(created)

    def _comparisons_for(self, chunk: list[PairRecord], samples, outputs) -> None:
        self._ensure_labelling()
        now = timezone.now()
        wanted = []
        for r in chunk:
            if r.preference is None:
                continue
            sample = samples[r.sample_key]
            wanted.append((r, sample, outputs[(sample.pk, r.system_a)], outputs[(sample.pk, r.system_b)]))
        if not wanted:
            return
        already = set(
            Comparison.objects.filter(
                annotator=self.annotator, output_a_id__in=[w[2].pk for w in wanted],
                superseded_by__isnull=True,
            ).values_list("output_a_id", "output_b_id")
        )
        new = [
            Comparison(
                project=self.project, sample=sample, output_a=a, output_b=b,
                annotator=self.annotator, choice=r.preference, submitted_at=now,
                selector="import", selector_why=f"imported from line {r.line}",
            )
            for r, sample, a, b in wanted
            if (a.pk, b.pk) not in already
        ]
        Comparison.objects.bulk_create(new)
        self.result.comparisons_created += len(new)


def _inferred_in_export(metadata: dict) -> set[str]:
    """Criteria whose label a Concord gold export marked as inferred from a holistic pass: they
    were never given, so they are never imported as given (DESIGN §4.1)."""
    gold = metadata.get("gold")
    criteria = gold.get("criteria") if isinstance(gold, dict) else None
    if not isinstance(criteria, dict):
        return set()
    return {
        str(key) for key, entry in criteria.items()
        if isinstance(entry, dict) and entry.get("label_source") == "inferred"
    }


def _insert_outputs(outputs: list[Output]) -> int:
    """Bulk insert; on PostgreSQL through COPY, several times faster than a multi-row INSERT
    built by the ORM. Ids are not needed here, so none are read back."""
    if connection.vendor != "postgresql":
        return len(Output.objects.bulk_create(outputs))
    now = timezone.now()
    columns = "project_id, sample_id, system, text, metadata, created_at"
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(
            f"COPY {Output._meta.db_table} ({columns}) FROM STDIN"
        ) as copy:
            for o in outputs:
                copy.write_row((o.project_id, o.sample_id, o.system, o.text, json.dumps(o.metadata), now))
    return len(outputs)


def outputs_import(
    *, project: Project, stream: IO[bytes] | None = None, filename: str = "",
    records: list | None = None, fmt: str | None = None, with_labels: bool = False,
    annotator_name: str = "import", max_bytes: int | None = None,
) -> ImportResult:
    """Import a file (or a list of records) into `project`. Returns the result; on any problem
    the result lists them and nothing was written."""
    importer = _Importer(
        project=project, with_labels=with_labels, annotator_name=annotator_name,
        chunk_size=settings.CONCORD_IMPORT_CHUNK_SIZE,
        max_text_bytes=settings.CONCORD_MAX_TEXT_BYTES,
    )
    try:
        if records is not None:
            fmt = "records"
            if not isinstance(records, list):
                raise FileRejected(ImportProblem(0, "records", "must be a list of objects"))
        else:
            fmt = fmt or importing.detect_format(filename)
            importing.check_size(
                importing.file_size(stream), max_bytes or settings.CONCORD_IMPORT_MAX_BYTES
            )
    except FileRejected as exc:
        importer.problems.add(exc.problem.line, exc.problem.field, exc.problem.message)
        return ImportResult(problems=importer.problems.problems, problem_count=1)
    return importer.run(importing.iter_raw_records(stream, fmt, records=records))
