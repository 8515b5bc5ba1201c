"""Writing validators: checked on creation, immutable after (an edit is a new revision)."""

from __future__ import annotations

import math

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.models import Criterion, Project
from annotate.services.text import unstorable_field
from validators import llm
from validators.models import Origin, Provider, Validator, ValidatorKind
from validators.services.errors import ValidatorError


def source_problems(*, kind: str, source: str, threshold: float | None = None) -> list[str]:
    if not source.strip():
        return ["The source is empty."]
    if kind == ValidatorKind.CODE:
        from validators.sandbox import check_source

        return check_source(source)
    if kind == ValidatorKind.LLM:
        return llm.check_template(source)
    return [f"Unknown kind '{kind}'; use code or llm."]


@transaction.atomic
def validator_create(
    *, project: Project, kind: str, name: str, source: str, criterion: Criterion | None = None,
    threshold: float | None = None, provider: Provider | None = None, origin: str = Origin.HUMAN,
    parent: Validator | None = None, created_by: AbstractBaseUser | None = None,
) -> Validator:
    if kind not in ValidatorKind.values:
        raise ValidatorError(f"Unknown kind '{kind}'; use code or llm.", "kind")
    if bad := unstorable_field(name=name, source=source):
        raise ValidatorError(bad[1], bad[0])
    if not name.strip():
        raise ValidatorError("Give the validator a name.", "name")
    if threshold is not None and not math.isfinite(threshold):
        raise ValidatorError("The threshold must be a finite number.", "threshold")
    problems = source_problems(kind=kind, source=source, threshold=threshold)
    if problems:
        raise ValidatorError("; ".join(problems), "source")
    if criterion is not None and criterion.project_id != project.pk:
        raise ValidatorError("The criterion belongs to another project.", "criterion")
    if kind == ValidatorKind.LLM:
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
    )
    Validator.objects.filter(pk=validator.pk).update(archived=True)
    return revised


def validator_archive(*, validator: Validator) -> None:
    Validator.objects.filter(pk=validator.pk).update(archived=True)
