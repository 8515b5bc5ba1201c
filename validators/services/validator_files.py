"""Validators files (DESIGN §6): export the active validators, import them all or nothing."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.models import Criterion, Project
from annotate.services.criteria import CriterionError, criterion_ensure, criterion_key_check
from annotate.services.text import unstorable_field
from validators.models import PROVIDER_KINDS, Origin, Provider, Target, Validator, ValidatorKind
from validators.services.authoring import validator_create
from validators.services.errors import ValidatorError

# The file's kinds: the model's runnable kinds, plus "pairwise" (an LLM judge or a code
# comparator over pairs, DESIGN §6).
PAIRWISE = "pairwise"
FILE_KINDS = (ValidatorKind.CODE, ValidatorKind.LLM, ValidatorKind.RATING, PAIRWISE)
_DEFINES_COMPARE = re.compile(r"^def\s+compare\s*\(", re.M)


def validators_export(project: Project) -> dict:
    """The project's active validators as a validators file. External validators are left
    out: they are verdicts imported from a file, with no source to run."""
    return {"validators": [
        _exported(v)
        for v in Validator.objects.filter(project=project, archived=False)
        .exclude(kind=ValidatorKind.EXTERNAL).select_related("criterion", "provider")
    ]}


def _exported(v: Validator) -> dict:
    pairwise = v.target == Target.PAIR
    entry = {
        "name": v.name, "criterion": v.criterion.key if v.criterion else None,
        "kind": PAIRWISE if pairwise and v.kind != ValidatorKind.RATING else v.kind,
        "threshold": v.threshold, "source": v.source,
        **({"provider": v.provider.name} if v.provider else {}),
    }
    if pairwise and v.kind == ValidatorKind.RATING:
        entry["target"] = Target.PAIR
    if v.patterns:
        entry["answer_patterns"] = v.patterns
    if pairwise and v.kind != ValidatorKind.RATING:
        entry["inconsistent"] = "tie" if v.inconsistent_is_tie else "error"
    return entry


def _kind_and_target(entry: dict, kind: str, source: str) -> tuple[str, str, str]:
    """(model kind, target, '' or the problem) of a file entry."""
    if kind == PAIRWISE:
        if entry.get("target") not in (None, Target.PAIR):
            return kind, Target.PAIR, "a pairwise judge's target is pair"
        if entry.get("provider") is None and _DEFINES_COMPARE.search(source):
            return ValidatorKind.CODE, Target.PAIR, ""
        return ValidatorKind.LLM, Target.PAIR, ""
    target = entry.get("target") or Target.OUTPUT
    if target not in Target.values:
        return kind, Target.OUTPUT, "must be output or pair"
    return kind, target, ""


def _answer_patterns(value: object) -> str | None:
    """The patterns as stored (one per line), from a string or a list of strings; None when
    the value is neither."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) and "\n" not in line for line in value):
        return "\n".join(value)
    return None


@dataclass
class ValidatorImportProblem:
    """A problem with one entry of a validators file. `index` is the entry's 1-based position
    in the `validators` list, not a line of the file (a JSON file's lines say nothing about
    its entries); 0 for the file as a whole."""

    index: int
    field: str
    message: str
    name: str = ""

    @property
    def where(self) -> str:
        if not self.index:
            return "the file"
        return f"entry {self.index}" + (f" ({self.name!r})" if self.name else "")

    def to_dict(self) -> dict:
        # `line` repeats `entry` for clients written before the two were told apart.
        return {"entry": self.index, "line": self.index, "field": self.field, "message": self.message}


class ValidatorImportError(ValueError):
    def __init__(
        self, problems: list[ValidatorImportProblem], *, unknown_criteria: Sequence[str] = (),
        other_problems: Sequence[ValidatorImportProblem] | None = None,
    ):
        super().__init__("; ".join(f"{p.where}, {p.field}: {p.message}" for p in problems))
        self.problems = problems
        self.unknown_criteria = list(unknown_criteria)
        # The problems other than unknown criteria (all of them when there are none).
        self.other_problems = list(problems if other_problems is None else other_problems)


@transaction.atomic
def validators_import(
    *, project: Project, data: dict | list, created_by: AbstractBaseUser | None = None,
    origin: str = Origin.IMPORTED, create_criteria: bool = False,
) -> list[Validator]:
    """Import a validators file (DESIGN §6). All or nothing; an identical validator already in
    the project is not created twice. A criterion the project lacks is refused, with its name,
    unless `create_criteria`: a typo in a file must not quietly become a new criterion."""
    entries = data.get("validators") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValidatorImportError([ValidatorImportProblem(0, "validators", "must be a list")])
    problems: list[ValidatorImportProblem] = []
    created: list[Validator] = []
    providers = {p.name: p for p in Provider.objects.filter(project=project)}
    known_criteria = set(Criterion.objects.filter(project=project).values_list("key", flat=True))
    unknown_criteria: list[str] = []
    unknown_problems: list[ValidatorImportProblem] = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            problems.append(ValidatorImportProblem(index, "", "must be an object"))
            continue
        kind, source, name = entry.get("kind", "code"), entry.get("source"), entry.get("name")
        threshold = entry.get("threshold")
        if not isinstance(name, str) or not name.strip():
            problems.append(ValidatorImportProblem(index, "name", "is missing"))
            continue
        if not isinstance(source, str):
            problems.append(ValidatorImportProblem(index, "source", "is missing"))
            continue
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
            problems.append(ValidatorImportProblem(index, "threshold", "must be a number or null"))
            continue
        if threshold is not None and not math.isfinite(threshold):
            problems.append(ValidatorImportProblem(index, "threshold", "must be a finite number"))
            continue
        if kind == ValidatorKind.EXTERNAL:
            problems.append(ValidatorImportProblem(
                index, "kind", "external validators are imported with their verdicts file, not here",
            ))
            continue
        if not isinstance(kind, str) or kind not in FILE_KINDS:
            problems.append(ValidatorImportProblem(
                index, "kind", f"must be one of {', '.join(FILE_KINDS)}",
            ))
            continue
        kind, target, target_problem = _kind_and_target(entry, kind, source)
        if target_problem:
            problems.append(ValidatorImportProblem(index, "target", target_problem))
            continue
        answer_patterns = _answer_patterns(entry.get("answer_patterns"))
        if answer_patterns is None:
            problems.append(ValidatorImportProblem(
                index, "answer_patterns", "must be a string or a list of strings (one regular expression each)",
            ))
            continue
        inconsistent = entry.get("inconsistent", "tie")
        if inconsistent not in ("tie", "error"):
            problems.append(ValidatorImportProblem(index, "inconsistent", 'must be "tie" or "error"'))
            continue
        if entry.get("provider") is not None and not isinstance(entry.get("provider"), str):
            problems.append(ValidatorImportProblem(index, "provider", "must be a provider name or null"))
            continue
        if bad := unstorable_field(name=name, source=source, criterion=entry.get("criterion")):
            problems.append(ValidatorImportProblem(index, bad[0], bad[1]))
            continue
        criterion_key = entry.get("criterion")
        provider = providers.get(entry.get("provider") or "default") if kind in PROVIDER_KINDS else None
        if kind in PROVIDER_KINDS and provider is None:
            problems.append(ValidatorImportProblem(
                index, "provider", f"no provider named '{entry.get('provider') or 'default'}' in this project",
            ))
            continue
        if criterion_key is not None and not isinstance(criterion_key, str):
            problems.append(ValidatorImportProblem(index, "criterion", "must be a criterion key or null"))
            continue
        try:
            criterion_key = criterion_key_check(criterion_key) if criterion_key else None
        except CriterionError as exc:
            problems.append(ValidatorImportProblem(index, "criterion", str(exc)))
            continue
        if criterion_key and criterion_key not in known_criteria and not create_criteria:
            if criterion_key not in unknown_criteria:
                unknown_criteria.append(criterion_key)
            unknown_problems.append(ValidatorImportProblem(index, "criterion", _unknown_criterion(
                criterion_key, known_criteria,
            )))
            problems.append(unknown_problems[-1])
            continue
        criterion = (
            criterion_ensure(project=project, key=criterion_key, author=created_by)
            if criterion_key else None
        )
        if criterion_key:
            known_criteria.add(criterion_key)
        existing = Validator.objects.filter(
            project=project, kind=kind, source=source, criterion=criterion, threshold=threshold,
            target=target, answer_patterns=answer_patterns.strip("\n"),
            inconsistent_is_tie=inconsistent == "tie", archived=False,
        ).first()
        if existing:
            continue
        try:
            created.append(validator_create(
                project=project, kind=kind, name=name or "", source=source, criterion=criterion,
                threshold=threshold, provider=provider, origin=origin, created_by=created_by,
                target=target, answer_patterns=answer_patterns,
                inconsistent_is_tie=inconsistent == "tie",
            ))
        except ValidatorError as exc:
            problems.append(ValidatorImportProblem(index, exc.field, str(exc)))
    if problems:
        for problem in problems:
            entry = entries[problem.index - 1] if 0 < problem.index <= len(entries) else None
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                problem.name = entry["name"].strip()[:80]
        raise ValidatorImportError(
            problems, unknown_criteria=unknown_criteria,
            other_problems=[p for p in problems if p not in unknown_problems],
        )
    return created


def _unknown_criterion(key: str, known: set[str]) -> str:
    has = ", ".join(sorted(k for k in known if k)) or "none yet"
    return (
        f"unknown criterion '{key}' (this project has: {has}); "
        "ask the import to create missing criteria to add it"
    )
