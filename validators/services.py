"""Every write of the validators app: providers, validators (immutable), runs and verdicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.models import Criterion, Output, Project
from annotate.services.criteria import CriterionError, criterion_ensure
from annotate.services.text import unstorable_field
from validators import llm
from validators.models import (
    CachedAnswer,
    Origin,
    Provider,
    Run,
    RunStatus,
    Validator,
    ValidatorKind,
    VerdictRecord,
)

BATCH_SIZE = 500
DETAIL_LIMIT = 2000


class ValidatorError(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


# -- providers -----------------------------------------------------------------------------
@transaction.atomic
def provider_save(
    *, project: Project, name: str = "default", base_url: str, model: str, api_key_env: str = "",
    concurrency: int = 8, timeout_seconds: float = 30.0, temperature: float = 0.0,
) -> Provider:
    if bad := unstorable_field(name=name, base_url=base_url, model=model, api_key_env=api_key_env):
        raise ValidatorError(bad[1], bad[0])
    if not base_url.startswith(("http://", "https://")):
        raise ValidatorError("The base URL must start with http:// or https://.", "base_url")
    if api_key_env and not api_key_env.replace("_", "").isalnum():
        raise ValidatorError(
            "Give the NAME of the environment variable that holds the key, not the key.",
            "api_key_env",
        )
    provider, _ = Provider.objects.update_or_create(
        project=project, name=name,
        defaults={
            "base_url": base_url.rstrip("/"), "model": model, "api_key_env": api_key_env,
            "concurrency": max(1, min(concurrency, 256)), "timeout_seconds": timeout_seconds,
            "temperature": temperature,
        },
    )
    return provider


def provider_config(provider: Provider) -> llm.ProviderConfig:
    return llm.ProviderConfig(
        base_url=provider.base_url, model=provider.model,
        api_key=llm.resolve_api_key(provider.api_key_env or None),
        concurrency=provider.concurrency, timeout_seconds=provider.timeout_seconds,
        temperature=provider.temperature,
    )


class DatabaseAnswerCache:
    """llm.AnswerCache backed by the CachedAnswer table, shared by every worker."""

    def __init__(self, model: str):
        self.model = model

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        found = CachedAnswer.objects.filter(key__in=list(keys)).values_list("key", "raw", "tokens")
        return {key: llm.CachedAnswer(raw, tokens) for key, raw, tokens in found}

    def set_many(self, answers) -> None:
        CachedAnswer.objects.bulk_create(
            [CachedAnswer(key=k, model=self.model, raw=raw, tokens=tokens) for k, (raw, tokens) in answers.items()],
            ignore_conflicts=True,
        )


# -- validators ----------------------------------------------------------------------------
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


def validators_export(project: Project) -> dict:
    return {"validators": [
        {
            "name": v.name, "criterion": v.criterion.key if v.criterion else None, "kind": v.kind,
            "threshold": v.threshold, "source": v.source,
            **({"provider": v.provider.name} if v.provider else {}),
        }
        for v in Validator.objects.filter(project=project, archived=False).select_related("criterion", "provider")
    ]}


@dataclass
class ValidatorImportProblem:
    index: int
    field: str
    message: str

    def to_dict(self) -> dict:
        return {"line": self.index, "field": self.field, "message": self.message}


class ValidatorImportError(ValueError):
    def __init__(self, problems: list[ValidatorImportProblem]):
        super().__init__("; ".join(f"validator {p.index}, {p.field}: {p.message}" for p in problems))
        self.problems = problems


@transaction.atomic
def validators_import(
    *, project: Project, data: dict | list, created_by: AbstractBaseUser | None = None,
    origin: str = Origin.IMPORTED,
) -> list[Validator]:
    """Import a validators file (DESIGN §6). All or nothing; an identical validator already in
    the project is not created twice."""
    entries = data.get("validators") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValidatorImportError([ValidatorImportProblem(0, "validators", "must be a list")])
    problems: list[ValidatorImportProblem] = []
    created: list[Validator] = []
    providers = {p.name: p for p in Provider.objects.filter(project=project)}
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
        if not isinstance(kind, str) or kind not in ValidatorKind.values:
            problems.append(ValidatorImportProblem(
                index, "kind", f"must be one of {', '.join(ValidatorKind.values)}",
            ))
            continue
        if entry.get("provider") is not None and not isinstance(entry.get("provider"), str):
            problems.append(ValidatorImportProblem(index, "provider", "must be a provider name or null"))
            continue
        if bad := unstorable_field(name=name, source=source, criterion=entry.get("criterion")):
            problems.append(ValidatorImportProblem(index, bad[0], bad[1]))
            continue
        criterion_key = entry.get("criterion")
        provider = providers.get(entry.get("provider") or "default") if kind == "llm" else None
        if kind == "llm" and provider is None:
            problems.append(ValidatorImportProblem(
                index, "provider", f"no provider named '{entry.get('provider') or 'default'}' in this project",
            ))
            continue
        if criterion_key is not None and not isinstance(criterion_key, str):
            problems.append(ValidatorImportProblem(index, "criterion", "must be a criterion key or null"))
            continue
        try:
            criterion = (
                criterion_ensure(project=project, key=criterion_key, author=created_by)
                if criterion_key else None
            )
        except CriterionError as exc:
            problems.append(ValidatorImportProblem(index, "criterion", str(exc)))
            continue
        existing = Validator.objects.filter(
            project=project, kind=kind, source=source, criterion=criterion, threshold=threshold,
            archived=False,
        ).first()
        if existing:
            continue
        try:
            created.append(validator_create(
                project=project, kind=kind, name=name or "", source=source, criterion=criterion,
                threshold=threshold, provider=provider, origin=origin, created_by=created_by,
            ))
        except ValidatorError as exc:
            problems.append(ValidatorImportProblem(index, exc.field, str(exc)))
    if problems:
        raise ValidatorImportError(problems)
    return created


# -- evaluation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    output_id: int
    outcome: str
    score: float | None
    detail: str
    latency_ms: float | None
    tokens: int | None = None


def _meta(output: Output) -> dict:
    return {**(output.sample.metadata or {}), **(output.metadata or {}), "system": output.system,
            "context": output.sample.context}


def evaluate(validator: Validator, outputs: Sequence[Output]) -> list[Evaluation]:
    """Run one validator over outputs (with their samples loaded). Never raises for a bad
    validator: every problem becomes an `error` verdict with a message."""
    if not outputs:
        return []
    if validator.kind == ValidatorKind.CODE:
        from validators.sandbox import CheckItem, get_pool

        items = [
            CheckItem(output=o.text, input=o.sample.input_text, reference=o.sample.reference, meta=_meta(o))
            for o in outputs
        ]
        results = get_pool().run(validator.source, items, threshold=validator.threshold)
        return [
            Evaluation(o.pk, r.outcome, r.score, r.detail[:DETAIL_LIMIT], r.latency_ms)
            for o, r in zip(outputs, results, strict=True)
        ]
    return _evaluate_llm(validator, outputs)


def _evaluate_llm(validator: Validator, outputs: Sequence[Output]) -> list[Evaluation]:
    evaluations: dict[int, Evaluation] = {}
    prompts, prompt_outputs = [], []
    for o in outputs:
        try:
            prompts.append(llm.render_prompt(
                validator.source, output=o.text, input=o.sample.input_text,
                reference=o.sample.reference, meta=_meta(o),
            ))
            prompt_outputs.append(o)
        except llm.PromptTemplateError as exc:
            evaluations[o.pk] = Evaluation(o.pk, "error", None, str(exc), None)
    if prompts:
        try:
            config = provider_config(validator.provider)
            results = llm.grade_prompts(config, prompts, cache=DatabaseAnswerCache(config.model))
        except llm.LLMProviderError as exc:
            results = None
            for o in prompt_outputs:
                evaluations[o.pk] = Evaluation(o.pk, "error", None, str(exc), None)
        if results is not None:
            for o, r in zip(prompt_outputs, results, strict=True):
                detail = r.raw if r.outcome != "error" else f"{r.detail}\n{r.raw}".strip()
                evaluations[o.pk] = Evaluation(
                    o.pk, r.outcome, None, detail[:DETAIL_LIMIT], r.latency_ms, r.tokens
                )
    return [evaluations[o.pk] for o in outputs]


def validator_try(*, validator: Validator, limit: int = 5) -> list[tuple[Output, Evaluation]]:
    """Verdicts on a few outputs before the validator is saved (`validator` may be unsaved)."""
    outputs = list(
        Output.objects.filter(project=validator.project).select_related("sample").order_by("?")[:limit]
    )
    return list(zip(outputs, evaluate(validator, outputs), strict=True))


# -- runs ----------------------------------------------------------------------------------
@transaction.atomic
def run_start(
    *, project: Project, validators: Iterable[Validator] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> Run:
    chosen = list(validators) if validators is not None else list(
        Validator.objects.filter(project=project, archived=False)
    )
    if not chosen:
        raise ValidatorError("There are no validators to run.", "validators")
    foreign = [v.pk for v in chosen if v.project_id != project.pk]
    if foreign:
        raise ValidatorError(f"Validators {foreign} belong to another project.", "validators")
    n_outputs = Output.objects.filter(project=project).count()
    run = Run.objects.create(project=project, total=n_outputs * len(chosen), requested_by=requested_by)
    run.validators.set(chosen)
    from validators.tasks import run_execute_task

    transaction.on_commit(lambda: run_execute_task.delay(run.pk))
    return run


def run_execute(*, run_id: int) -> Run:
    """Idempotent and resumable: verdicts already stored are skipped, so a run restarted after
    a crash finishes the rest and never duplicates a verdict."""
    run = Run.objects.get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.CANCELLED):
        return run
    validators = list(run.validators.select_related("provider").order_by("id"))
    output_ids = list(Output.objects.filter(project_id=run.project_id).order_by("id").values_list("id", flat=True))
    already = VerdictRecord.objects.filter(validator__in=validators, output__project_id=run.project_id)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=run.started_at or timezone.now(),
        total=len(output_ids) * len(validators), done=already.count(),
        failed=already.filter(outcome="error").count(),
    )
    try:
        for validator in validators:
            done = set(
                VerdictRecord.objects.filter(validator=validator).values_list("output_id", flat=True)
            )
            todo = [i for i in output_ids if i not in done]
            batch_size = BATCH_SIZE if validator.kind == ValidatorKind.CODE else max(
                validator.provider.concurrency * 4, 32
            )
            for start in range(0, len(todo), batch_size):
                if Run.objects.filter(pk=run.pk, status=RunStatus.CANCELLED).exists():
                    return Run.objects.get(pk=run.pk)
                _run_batch(run, validator, todo[start: start + batch_size])
    except Exception as exc:
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    # Exact counts at the end: a duplicate execution racing this one may have inflated them.
    stored = VerdictRecord.objects.filter(validator__in=validators, output__project_id=run.project_id)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.DONE, finished_at=timezone.now(), done=stored.count(),
        failed=stored.filter(outcome="error").count(),
    )
    return Run.objects.get(pk=run.pk)


def _run_batch(run: Run, validator: Validator, output_ids: list[int]) -> None:
    outputs = list(Output.objects.filter(pk__in=output_ids).select_related("sample").order_by("id"))
    evaluations = evaluate(validator, outputs)
    rows = [
        VerdictRecord(
            validator=validator, output_id=e.output_id, outcome=e.outcome, score=e.score,
            detail=e.detail, latency_ms=e.latency_ms, tokens=e.tokens, run=run,
        )
        for e in evaluations
    ]
    with transaction.atomic():
        created = VerdictRecord.objects.bulk_create(rows, ignore_conflicts=True)
        n_errors = sum(1 for e in evaluations if e.outcome == "error")
        Run.objects.filter(pk=run.pk).update(done=F("done") + len(created), failed=F("failed") + n_errors)


def run_cancel(*, run: Run) -> None:
    Run.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )


# -- report card ---------------------------------------------------------------------------
@transaction.atomic
def criterion_setting_save(
    *, project: Project, criterion: Criterion | None, ffr_ceiling: float | None = None,
    pinned: Validator | None = None, excluded: Iterable[Validator] = (), include_stale: bool = False,
):
    from validators.models import CriterionSetting

    if ffr_ceiling is not None and not 0.0 <= ffr_ceiling <= 1.0:
        raise ValidatorError("The false-failure ceiling must lie between 0 and 1.", "ffr_ceiling")
    excluded = list(excluded)
    for validator in [pinned, *excluded]:
        if validator is not None and (validator.project_id != project.pk or validator.criterion_id != (criterion.pk if criterion else None)):
            raise ValidatorError(f"'{validator.name}' is not a candidate for this criterion.", "pinned")
    if pinned is not None and pinned in excluded:
        raise ValidatorError("A validator cannot be pinned and excluded at once.", "pinned")
    setting, _ = CriterionSetting.objects.update_or_create(
        project=project, criterion=criterion,
        defaults={"ffr_ceiling": ffr_ceiling, "pinned": pinned, "include_stale": include_stale},
    )
    setting.excluded.set(excluded)
    return setting


@transaction.atomic
def suite_save(*, project: Project, name: str, created_by: AbstractBaseUser | None = None):
    """Snapshot today's report card: chosen validators, their metrics and their sources."""
    from validators.models import Suite
    from validators.report_card import report_card

    card = report_card(project)
    if not card.chosen_validator_ids:
        raise ValidatorError("No criterion has a chosen validator yet, so there is nothing to save.")
    chosen = {v.pk: v for v in Validator.objects.filter(pk__in=card.chosen_validator_ids).select_related("criterion", "provider")}
    snapshot = card.to_dict()
    snapshot["validators"] = [
        {
            "id": v.pk, "name": v.name, "criterion": v.criterion.key if v.criterion else None,
            "kind": v.kind, "threshold": v.threshold, "source": v.source,
            "provider": ({"name": v.provider.name, "model": v.provider.model, "base_url": v.provider.base_url,
                          "api_key_env": v.provider.api_key_env} if v.provider else None),
        }
        for v in (chosen[i] for i in card.chosen_validator_ids)
    ]
    suite = Suite.objects.create(
        project=project, name=name.strip() or f"Report card {timezone.now():%Y-%m-%d %H:%M}",
        snapshot=snapshot, coverage=card.suite.coverage,
        false_failure_rate=card.suite.false_failure_rate, n_grades=card.n_grades,
        created_by=created_by,
    )
    suite.validators.set(chosen.values())
    return suite
