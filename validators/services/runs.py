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
    PairVerdict,
    Run,
    RunStatus,
    Target,
    Validator,
    ValidatorKind,
    VerdictHistory,
    VerdictRecord,
    Winner,
)
from validators.pairs import Pair, project_pairs
from validators.services.errors import ValidatorError
from validators.services.evaluation import DETAIL_LIMIT, Evaluation, evaluate
from validators.services.pair_evaluation import PairEvaluation, evaluate_pairs

BATCH_SIZE = 500


@transaction.atomic
def run_start(
    *, project: Project, validators: Iterable[Validator] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> Run:
    """Queue a run of `validators` (every active one by default) over the project's outputs.
    Verdicts already stored are kept, except `error` ones, which the run computes again."""
    chosen = list(validators) if validators is not None else list(
        # External validators hold imported verdicts: "all" means all that can run.
        Validator.objects.filter(project=project, archived=False).exclude(kind=ValidatorKind.EXTERNAL)
    )
    if not chosen:
        raise ValidatorError("There are no validators to run.", "validators")
    foreign = [v.pk for v in chosen if v.project_id != project.pk]
    if foreign:
        raise ValidatorError(f"Validators {foreign} belong to another project.", "validators")
    external = [v.name for v in chosen if v.kind == ValidatorKind.EXTERNAL]
    if external:
        raise ValidatorError(
            f"External validators are imported, never run: {', '.join(external)}. "
            "Import a new file to update their verdicts.", "validators",
        )
    n_pair_validators = sum(1 for v in chosen if v.target == Target.PAIR)
    n_outputs = Output.objects.filter(project=project).count()
    n_pairs = len(project_pairs(project)) if n_pair_validators else 0
    run = Run.objects.create(
        project=project, total=n_outputs * (len(chosen) - n_pair_validators) + n_pairs * n_pair_validators,
        requested_by=requested_by, heartbeat_at=timezone.now(),
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


def _settled_pairs(run: Run, validator: Validator) -> set[Pair]:
    """Pairs this run need not judge, by the rule of `_settled_output_ids`."""
    stored = PairVerdict.objects.filter(validator=validator).values_list(
        "output_a_id", "output_b_id", "winner", "run_id"
    )
    return {(a, b) for a, b, winner, run_id in stored if winner != Winner.ERROR or run_id == run.pk}


def _batch_size(validator: Validator) -> int:
    if validator.kind == ValidatorKind.CODE:
        return BATCH_SIZE // 2 if validator.target == Target.PAIR else BATCH_SIZE
    # A pairwise LLM judge asks two prompts per pair (both orders).
    per_item = 2 if validator.target == Target.PAIR else 1
    return max(validator.provider.concurrency * 4, 32) // per_item


def run_execute(*, run_id: int) -> Run:
    """Idempotent and resumable: verdicts already stored are skipped, so a run restarted after
    a crash finishes the rest and never duplicates a verdict. `error` verdicts stored by an
    earlier run are computed again; what they said moves to the verdict's history (pair
    verdicts in error are simply replaced). Pairwise judges work over the project's pairs
    (outputs sharing an input), the others over its outputs."""
    run = Run.objects.get(pk=run_id)
    if run.status in (RunStatus.DONE, RunStatus.CANCELLED):
        return run
    validators = list(run.validators.select_related("provider").order_by("id"))
    output_ids = list(Output.objects.filter(project_id=run.project_id).order_by("id").values_list("id", flat=True))
    pair_validators = [v for v in validators if v.target == Target.PAIR]
    pairs = project_pairs(run.project) if pair_validators else []
    todo_by_validator: list[tuple[Validator, list]] = []
    for validator in validators:
        if validator.target == Target.PAIR:
            settled_pairs = _settled_pairs(run, validator)
            todo_by_validator.append((validator, [p for p in pairs if p not in settled_pairs]))
        else:
            settled = _settled_output_ids(run, validator)
            todo_by_validator.append((validator, [i for i in output_ids if i not in settled]))
    total = len(output_ids) * (len(validators) - len(pair_validators)) + len(pairs) * len(pair_validators)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=run.started_at or timezone.now(), total=total,
        done=total - sum(len(todo) for _, todo in todo_by_validator),
        failed=VerdictRecord.objects.filter(run=run, outcome=Outcome.ERROR).count()
        + PairVerdict.objects.filter(run=run, winner=Winner.ERROR).count(),
        heartbeat_at=timezone.now(),
    )
    try:
        for validator, todo in todo_by_validator:
            batch_size = _batch_size(validator)
            for start in range(0, len(todo), batch_size):
                if Run.objects.filter(pk=run.pk, status=RunStatus.CANCELLED).exists():
                    return Run.objects.get(pk=run.pk)
                if validator.target == Target.PAIR:
                    _run_pair_batch(run, validator, todo[start: start + batch_size])
                else:
                    _run_batch(run, validator, todo[start: start + batch_size])
    except Exception as exc:
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    # Exact counts at the end: a duplicate execution racing this one may have inflated them.
    stored = VerdictRecord.objects.filter(validator__in=validators, output__project_id=run.project_id)
    stored_pairs = PairVerdict.objects.filter(validator__in=pair_validators, output_a__project_id=run.project_id)
    Run.objects.filter(pk=run.pk).exclude(status=RunStatus.CANCELLED).update(
        status=RunStatus.DONE, finished_at=timezone.now(),
        done=stored.count() + stored_pairs.count(),
        failed=stored.filter(outcome=Outcome.ERROR).count() + stored_pairs.filter(winner=Winner.ERROR).count(),
        heartbeat_at=timezone.now(),
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


def _run_pair_batch(run: Run, validator: Validator, pairs: list[Pair]) -> None:
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    outputs = Output.objects.filter(pk__in={i for pair in pairs for i in pair}).select_related("sample")
    by_id = {o.pk: o for o in outputs}
    # A pair whose output was deleted since the pairs were listed is simply not judged.
    present = [(a, b) for a, b in pairs if a in by_id and b in by_id]
    try:
        evaluations = evaluate_pairs(validator, [(by_id[a], by_id[b]) for a, b in present])
    except Exception as exc:  # noqa: BLE001 - one validator's failure must not stop the others
        detail = f"could not evaluate: {type(exc).__name__}: {exc}"[:DETAIL_LIMIT]
        evaluations = [PairEvaluation(a, b, Winner.ERROR, detail=detail) for a, b in present]
    wanted = set(present)
    with transaction.atomic():
        # As in _run_batch: locked and filtered again, so another run's retry is never lost.
        retried = [
            old.pk for old in PairVerdict.objects.select_for_update()
            .filter(validator=validator, output_a_id__in={a for a, _ in present}, winner=Winner.ERROR)
            .exclude(run=run).order_by("id")
            if (old.output_a_id, old.output_b_id) in wanted
        ]
        # Write-once like verdicts: a retried error is a new row.
        PairVerdict.objects.filter(pk__in=retried).delete()
        PairVerdict.objects.bulk_create(
            [
                PairVerdict(
                    validator=validator, output_a_id=e.output_a_id, output_b_id=e.output_b_id,
                    winner=e.winner, inconsistent=e.inconsistent, first_winner=e.first_winner,
                    second_winner=e.second_winner,
                    # Judges' answers are untrusted text: escaped, never refused.
                    first_answer=escape_unstorable_text(e.first_answer),
                    second_answer=escape_unstorable_text(e.second_answer),
                    score_a=e.score_a, score_b=e.score_b, detail=escape_unstorable_text(e.detail),
                    latency_ms=e.latency_ms, tokens=e.tokens, run=run,
                )
                for e in evaluations
            ],
            ignore_conflicts=True,
        )
        n_errors = sum(1 for e in evaluations if e.winner == Winner.ERROR)
        Run.objects.filter(pk=run.pk).update(
            done=F("done") + len(pairs), failed=F("failed") + n_errors, heartbeat_at=timezone.now(),
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
