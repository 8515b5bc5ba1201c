"""Writing validators: checked on creation, immutable after (an edit is a new revision)."""

from __future__ import annotations

import math
import re

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.models import Criterion, Project
from annotate.services.text import unstorable_field
from validators import llm
from validators.models import PROVIDER_KINDS, Origin, Provider, Target, Validator, ValidatorKind
from validators.services.errors import ValidatorError

RUNNABLE_KINDS = "code, llm or rating"


def source_problems(
    *, kind: str, source: str, threshold: float | None = None, target: str = Target.OUTPUT,
) -> list[str]:
    """Why a source cannot run as a validator of this kind and target; empty when it can.
    A pairwise LLM template needs {output_a} and {output_b}; a rating template (per output or
    pairwise: it scores one output at a time) needs {output}; a code comparator defines
    compare(output_a, output_b, input, reference, meta)."""
    if not source.strip():
        return ["The source is empty."]
    if kind == ValidatorKind.CODE:
        from validators.sandbox import check_source

        return check_source(source, "compare" if target == Target.PAIR else "check")
    if kind == ValidatorKind.LLM:
        return llm.check_pair_template(source) if target == Target.PAIR else llm.check_template(source)
    if kind == ValidatorKind.RATING:
        return llm.check_template(source)
    return [f"Unknown kind '{kind}'; use {RUNNABLE_KINDS}."]


def answer_pattern_problems(answer_patterns: str) -> list[str]:
    """Each line must be a regular expression with exactly one group (what it captures is the
    winner, or the rating); the message names the line."""
    problems = []
    for number, line in enumerate(answer_patterns.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            compiled = re.compile(line)
        except (re.error, RecursionError, OverflowError) as exc:
            problems.append(f"Line {number} of the answer patterns is not a regular expression: {exc}")
            continue
        if compiled.groups != 1:
            problems.append(f"Line {number} of the answer patterns has {compiled.groups} groups; "
                            "it needs exactly one, around the winner or the rating")
    return problems


@transaction.atomic
def validator_create(
    *, project: Project, kind: str, name: str, source: str, criterion: Criterion | None = None,
    threshold: float | None = None, provider: Provider | None = None, origin: str = Origin.HUMAN,
    parent: Validator | None = None, created_by: AbstractBaseUser | None = None,
    target: str = Target.OUTPUT, answer_patterns: str = "", inconsistent_is_tie: bool = True,
) -> Validator:
    """Create a validator to run: a code assertion or comparator, an LLM grader or pairwise
    judge, or a rating judge (`target` says whether it judges one output or a pair). External
    validators are created by importing their verdicts (validators.services.external)."""
    if kind not in ValidatorKind.values or kind == ValidatorKind.EXTERNAL:
        raise ValidatorError(
            f"Unknown kind '{kind}'; use {RUNNABLE_KINDS}." if kind != ValidatorKind.EXTERNAL
            else "External validators are created by importing their verdicts, not written here.",
            "kind",
        )
    if target not in Target.values:
        raise ValidatorError(f"Unknown target '{target}'; use output or pair.", "target")
    if bad := unstorable_field(name=name, source=source, answer_patterns=answer_patterns):
        raise ValidatorError(bad[1], bad[0])
    if not name.strip():
        raise ValidatorError("Give the validator a name.", "name")
    if threshold is not None and not math.isfinite(threshold):
        raise ValidatorError("The threshold must be a finite number.", "threshold")
    problems = source_problems(kind=kind, source=source, threshold=threshold, target=target)
    if problems:
        raise ValidatorError("; ".join(problems), "source")
    if problems := answer_pattern_problems(answer_patterns):
        raise ValidatorError("; ".join(problems), "answer_patterns")
    if criterion is not None and criterion.project_id != project.pk:
        raise ValidatorError("The criterion belongs to another project.", "criterion")
    if kind in PROVIDER_KINDS:
        provider = provider or Provider.objects.filter(project=project).order_by("id").first()
        if provider is None:
            raise ValidatorError(
                "LLM graders need a provider: add an OpenAI-compatible endpoint (base URL, model, "
                "and the name of the environment variable holding its key) on the Validators page.",
                "provider",
            )
        if provider.project_id != project.pk:
            raise ValidatorError("The provider belongs to another project.", "provider")
    else:
        provider = None
    return Validator.objects.create(
        project=project, kind=kind, name=name.strip(), source=source, criterion=criterion,
        threshold=threshold, provider=provider, origin=origin, parent=parent, created_by=created_by,
        target=target, answer_patterns=answer_patterns.strip("\n"),
        inconsistent_is_tie=inconsistent_is_tie,
    )


@transaction.atomic
def validator_revise(
    *, validator: Validator, source: str, name: str = "", threshold: float | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Validator:
    """Validators are immutable: an edit is a new validator pointing to its parent, and the
    parent is archived so it stops competing on the report card."""
    revised = validator_create(
        project=validator.project, kind=validator.kind, name=name or validator.name, source=source,
        criterion=validator.criterion, threshold=threshold if threshold is not None else validator.threshold,
        provider=validator.provider, origin=Origin.HUMAN, parent=validator, created_by=created_by,
        target=validator.target, answer_patterns=validator.answer_patterns,
        inconsistent_is_tie=validator.inconsistent_is_tie,
    )
    Validator.objects.filter(pk=validator.pk).update(archived=True)
    return revised


def validator_archive(*, validator: Validator) -> None:
    Validator.objects.filter(pk=validator.pk).update(archived=True)
