"""Every write of the validators app: providers, validators (immutable), runs and verdicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotate.models import Criterion, Output, Project
from annotate.services.criteria import CriterionError, criterion_ensure, criterion_key_check
from annotate.services.text import unstorable_field
from annotate.untrusted_text import escape_unstorable_text
from validators import llm, provider_rules
from validators.models import (
    CachedAnswer,
    Origin,
    Outcome,
    Provider,
    Run,
    RunStatus,
    Validator,
    ValidatorKind,
    VerdictHistory,
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
    problem = provider_rules.base_url_problem(
        base_url, allow_link_local=settings.CONCORD_LLM_ALLOW_LINK_LOCAL
    )
    if problem:
        raise ValidatorError(problem, "base_url")
    problem = provider_rules.api_key_env_problem(api_key_env, provider_key_policy())
    if problem:
        raise ValidatorError(problem, "api_key_env")
    provider, _ = Provider.objects.update_or_create(
        project=project, name=name,
        defaults={
            "base_url": base_url.rstrip("/"), "model": model, "api_key_env": api_key_env,
            "concurrency": max(1, min(concurrency, 256)), "timeout_seconds": timeout_seconds,
            "temperature": temperature,
        },
    )
    return provider


def provider_key_policy() -> provider_rules.KeyPolicy:
    return provider_rules.KeyPolicy(
        names=tuple(settings.CONCORD_LLM_KEY_ENV_NAMES), prefix=settings.CONCORD_LLM_KEY_ENV_PREFIX
    )


def provider_config(provider: Provider) -> llm.ProviderConfig:
    """The provider as the LLM client needs it. The key and address rules are checked again
    here, not only at save: a provider saved before an admin narrowed them must not run."""
    problem = provider_rules.api_key_env_problem(provider.api_key_env, provider_key_policy())
    problem = problem or provider_rules.base_url_problem(
        provider.base_url, allow_link_local=settings.CONCORD_LLM_ALLOW_LINK_LOCAL
    )
    if problem:
        raise llm.LLMProviderError(f"provider '{provider.name}' cannot be used: {problem}")
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
        # An answer nobody could parse is not replayed: retrying an error verdict must ask the
        # provider again, or a fixed provider would keep "answering" with the old garbage.
        return {
            key: llm.CachedAnswer(raw, tokens) for key, raw, tokens in found
            if llm.parse_answer(raw) is not None
        }

    def set_many(self, answers) -> None:
        CachedAnswer.objects.bulk_create(
            [CachedAnswer(key=k, model=self.model, raw=raw, tokens=tokens) for k, (raw, tokens) in answers.items()],
            update_conflicts=True, unique_fields=["key"], update_fields=["raw", "tokens"],
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
    def __init__(
        self, problems: list[ValidatorImportProblem], *, unknown_criteria: Sequence[str] = (),
        other_problems: Sequence[ValidatorImportProblem] | None = None,
    ):
        super().__init__("; ".join(f"validator {p.index}, {p.field}: {p.message}" for p in problems))
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
        key = None
        try:
            config = provider_config(validator.provider)
            key = config.api_key
            results = llm.grade_prompts(config, prompts, cache=DatabaseAnswerCache(config.model))
        except llm.LLMProviderError as exc:
            results = None
            for o in prompt_outputs:
                evaluations[o.pk] = Evaluation(
                    o.pk, "error", None, provider_rules.redact(str(exc), [key]), None
                )
        if results is not None:
            for o, r in zip(prompt_outputs, results, strict=True):
                detail = r.raw if r.outcome != "error" else f"{r.detail}\n{r.raw}".strip()
                detail = provider_rules.redact(detail, [key])
                evaluations[o.pk] = Evaluation(
                    o.pk, r.outcome, None, detail[:DETAIL_LIMIT], r.latency_ms, r.tokens
                )
    return [evaluations[o.pk] for o in outputs]


FIRST_OUTPUTS_CHECKED = 5


def validator_first_outputs_problem(*, validator: Validator) -> str:
    """'' unless a code validator answers `error` on every one of the project's first five
    outputs (by id), which means it is broken for this data (a missing key in `meta`, a name
    typo) even though it compiled; then why, with the first error. Told at creation and
    import so nobody learns it from a whole run of errors. LLM graders are not tried here:
    that would call the provider on every save."""
    if validator.kind != ValidatorKind.CODE:
        return ""
    outputs = list(Output.objects.filter(project=validator.project)
                   .select_related("sample").order_by("id")[:FIRST_OUTPUTS_CHECKED])
    if not outputs:
        return ""
    try:
        evaluations = evaluate(validator, outputs)
    except Exception as exc:  # noqa: BLE001 - the sandbox being off is reported, not raised
        return f"'{validator.name}' could not be tried: {exc}"
    if any(e.outcome != "error" for e in evaluations):
        return ""
    return (f"'{validator.name}' answered error on every one of the project's first "
            f"{len(outputs)} outputs; the first said: {escape_unstorable_text(evaluations[0].detail)}")


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
    """Queue a run of `validators` (every active one by default) over the project's outputs.
    Verdicts already stored are kept, except `error` ones, which the run computes again."""
    chosen = list(validators) if validators is not None else list(
        Validator.objects.filter(project=project, archived=False)
    )
    if not chosen:
        raise ValidatorError("There are no validators to run.", "validators")
    foreign = [v.pk for v in chosen if v.project_id != project.pk]
    if foreign:
        raise ValidatorError(f"Validators {foreign} belong to another project.", "validators")
    n_outputs = Output.objects.filter(project=project).count()
    run = Run.objects.create(
        project=project, total=n_outputs * len(chosen), requested_by=requested_by,
        heartbeat_at=timezone.now(),
    )
    run.validators.set(chosen)
    from validators.tasks import run_execute_task

    transaction.on_commit(lambda: run_execute_task.delay(run.pk))
    return run


def _settled_output_ids(run: Run, validator: Validator) -> set[int]:
    """Outputs this run need not evaluate: a pass or fail is kept for good, and an error is
    kept only when this very run stored it (so a resumed run does not ask twice)."""
    stored = VerdictRecord.objects.filter(validator=validator).values_list("output_id", "outcome", "run_id")
    return {
        output_id for output_id, outcome, run_id in stored
        if outcome != Outcome.ERROR or run_id == run.pk
    }


def run_execute(*, run_id: int) -> Run:
    """Idempotent and resumable: verdicts already stored are skipped, so a run restarted after
    a crash finishes the rest and never duplicates a verdict. `error` verdicts stored by an
    earlier run are computed again; what they said moves to the verdict's history."""
    run = Run.objects.get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.CANCELLED):
        return run
    validators = list(run.validators.select_related("provider").order_by("id"))
    output_ids = list(Output.objects.filter(project_id=run.project_id).order_by("id").values_list("id", flat=True))
    todo_by_validator = []
    for validator in validators:
        settled = _settled_output_ids(run, validator)
        todo_by_validator.append((validator, [i for i in output_ids if i not in settled]))
    total = len(output_ids) * len(validators)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=run.started_at or timezone.now(), total=total,
        done=total - sum(len(todo) for _, todo in todo_by_validator),
        failed=VerdictRecord.objects.filter(run=run, outcome=Outcome.ERROR).count(),
        heartbeat_at=timezone.now(),
    )
    try:
        for validator, todo in todo_by_validator:
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
    Run.objects.filter(pk=run.pk).exclude(status=RunStatus.CANCELLED).update(
        status=RunStatus.DONE, finished_at=timezone.now(), done=stored.count(),
        failed=stored.filter(outcome=Outcome.ERROR).count(), heartbeat_at=timezone.now(),
    )
    return Run.objects.get(pk=run.pk)


def _run_batch(run: Run, validator: Validator, output_ids: list[int]) -> None:
    # Progress before the (possibly long) evaluation too, so a slow but live batch is not
    # mistaken for a dead one as soon as it outlasts the stale limit.
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    outputs = list(Output.objects.filter(pk__in=output_ids).select_related("sample").order_by("id"))
    try:
        evaluations = evaluate(validator, outputs)
    except Exception as exc:  # noqa: BLE001 - one validator's failure must not stop the others
        # The sandbox refusing to start, say: recorded as this validator's error verdicts (a
        # re-run retries them) while the run goes on to the next validator.
        detail = f"could not evaluate: {type(exc).__name__}: {exc}"[:DETAIL_LIMIT]
        evaluations = [Evaluation(o.pk, "error", None, detail, None) for o in outputs]
    with transaction.atomic():
        # Locked and filtered again inside the transaction: another run may have retried the
        # same errors since this batch was chosen, and its result must not be overwritten.
        retried = list(
            VerdictRecord.objects.select_for_update()
            .filter(validator=validator, output_id__in=output_ids, outcome=Outcome.ERROR)
            .exclude(run=run).order_by("id")
        )
        VerdictHistory.objects.bulk_create([
            VerdictHistory(
                validator=validator, output_id=old.output_id, outcome=old.outcome, score=old.score,
                detail=old.detail, latency_ms=old.latency_ms, tokens=old.tokens, run_id=old.run_id,
                stored_at=old.created_at, replaced_by=run,
            )
            for old in retried
        ])
        # Replaced by a new row, not updated: verdict rows are write-once, so the in-memory
        # verdict matrix (validators.matrix) sees the retry as a newer id.
        VerdictRecord.objects.filter(pk__in=[old.pk for old in retried]).delete()
        VerdictRecord.objects.bulk_create(
            [
                VerdictRecord(
                    validator=validator, output_id=e.output_id, outcome=e.outcome, score=e.score,
                    # Details come from assertions and LLM answers: escaped, never refused, so
                    # a NUL or a lone surrogate can neither fail the run nor lose the verdict.
                    detail=escape_unstorable_text(e.detail), latency_ms=e.latency_ms,
                    tokens=e.tokens, run=run,
                )
                for e in evaluations
            ],
            ignore_conflicts=True,
        )
        n_errors = sum(1 for e in evaluations if e.outcome == Outcome.ERROR)
        Run.objects.filter(pk=run.pk).update(
            done=F("done") + len(evaluations), failed=F("failed") + n_errors, heartbeat_at=timezone.now(),
        )


def runs_requeue_stale(*, now: datetime | None = None) -> list[int]:
    """The reaper (celery beat): re-queue queued or running runs whose heartbeat stopped for
    CONCORD_STALE_RUN_SECONDS, typically because their worker was killed. Runs are idempotent,
    so re-queuing one that was merely slow costs time, never a duplicate verdict. A run that
    stalled CONCORD_MAX_REQUEUES times while running is marked failed instead of looping."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CONCORD_STALE_RUN_SECONDS)
    requeued: list[int] = []
    from validators.tasks import run_execute_task

    with transaction.atomic():
        stale = list(
            Run.objects.select_for_update(skip_locked=True)
            .filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff))
            .order_by("id")
        )
        for run in stale:
            if run.status == RunStatus.RUNNING and run.requeues >= settings.CONCORD_MAX_REQUEUES:
                Run.objects.filter(pk=run.pk).update(
                    status=RunStatus.FAILED, finished_at=now,
                    error=f"Stopped making progress {run.requeues + 1} times (its worker died or hung); "
                          "not re-queued again. Start a new run to continue where it stopped.",
                )
                continue
            Run.objects.filter(pk=run.pk).update(requeues=F("requeues") + 1, heartbeat_at=now)
            transaction.on_commit(partial(run_execute_task.delay, run.pk))
            requeued.append(run.pk)
    return requeued


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
