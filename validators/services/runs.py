"""Runs: queued, executed in batches (idempotent and resumable), re-queued by the reaper when
their worker stops, cancelled on request. Verdicts are written here and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.models import Output, Project
from annotate.services.jobs import jobs_requeue_stale
from annotate.untrusted_text import escape_unstorable_text
from validators.models import (
    Outcome,
    Run,
    RunStatus,
    Validator,
    ValidatorKind,
    VerdictHistory,
    VerdictRecord,
)
from validators.services.errors import ValidatorError
from validators.services.evaluation import DETAIL_LIMIT, Evaluation, evaluate

BATCH_SIZE = 500


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
    from validators.tasks import run_execute_task

    return jobs_requeue_stale(
        jobs=Run, queued=RunStatus.QUEUED, running=RunStatus.RUNNING, failed=RunStatus.FAILED,
        dispatch=run_execute_task.delay,
        give_up_advice=" Start a new run to continue where it stopped.", now=now,
    )


def run_cancel(*, run: Run) -> None:
    Run.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
