"""Reads shared by the validators pages and API."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotate.models import Output, Project
from config.workers import WorkerStatus, job_worker_status
from validators.models import (
    PairVerdict,
    Run,
    RunStatus,
    Target,
    Validator,
    VerdictHistory,
    VerdictRecord,
    Winner,
)
from validators.pairs import human_pair_choices, project_pairs


def _count_per_validator(model) -> QuerySet:
    return (
        model.objects.filter(validator=OuterRef("pk")).order_by().values("validator")
        .annotate(n=Count("id")).values("n")
    )


def validators_with_counts(project):
    return (
        Validator.objects.filter(project=project, archived=False)
        .select_related("criterion", "provider")
        .annotate(
            n_pass=Count("verdicts", filter=Q(verdicts__outcome="pass")),
            n_fail=Count("verdicts", filter=Q(verdicts__outcome="fail")),
            n_error=Count("verdicts", filter=Q(verdicts__outcome="error")),
            # Counted apart: a second Count over another relation would multiply the rows.
            n_verdicts=Coalesce(Subquery(_count_per_validator(VerdictRecord)), 0)
            + Coalesce(Subquery(_count_per_validator(PairVerdict)), 0),
        )
        .order_by("criterion__position", "id")
    )


def outcome_counts(validator: Validator) -> dict[str, int]:
    counts = dict(
        VerdictRecord.objects.filter(validator=validator).values_list("outcome").annotate(n=Count("id"))
    )
    return {k: counts.get(k, 0) for k in ("pass", "fail", "error", "score")}


def pair_winner_counts(validator_or_run) -> dict[str, int]:
    """Pair verdicts by winner ('a', 'b', 'tie', 'error'), and how many were inconsistent."""
    verdicts = _pair_verdicts_of(validator_or_run)
    counts = dict(verdicts.values_list("winner").annotate(n=Count("id")))
    return {**{k: counts.get(k, 0) for k in Winner.values},
            "inconsistent": verdicts.filter(inconsistent=True).count()}


def _pair_verdicts_of(validator_or_run):
    if isinstance(validator_or_run, Run):
        return PairVerdict.objects.filter(
            validator__in=validator_or_run.validators.all(), output_a__project=validator_or_run.project,
        )
    return PairVerdict.objects.filter(validator=validator_or_run)


def grouped_errors(validator_or_run, limit: int = 10) -> list[dict]:
    verdicts = VerdictRecord.objects.filter(outcome="error")
    if isinstance(validator_or_run, Run):
        verdicts = verdicts.filter(validator__in=validator_or_run.validators.all(), output__project=validator_or_run.project)
    else:
        verdicts = verdicts.filter(validator=validator_or_run)
    details = [
        *verdicts.values_list("detail", flat=True)[:5000],
        *_pair_verdicts_of(validator_or_run).filter(winner=Winner.ERROR).values_list("detail", flat=True)[:5000],
    ]
    groups: dict[str, int] = {}
    for detail in details:
        first_line = (detail or "error").splitlines()[0][:160]
        groups[first_line] = groups.get(first_line, 0) + 1
    return [{"message": m, "n": n} for m, n in sorted(groups.items(), key=lambda kv: -kv[1])[:limit]]


def run_summary(run: Run) -> dict:
    verdicts = VerdictRecord.objects.filter(validator__in=run.validators.all(), output__project=run.project)
    counts = dict(verdicts.values_list("outcome").annotate(n=Count("id")))
    percent = 100.0 * run.done / run.total if run.total else 100.0
    return {
        "counts": {k: counts.get(k, 0) for k in ("pass", "fail", "error")},
        "errors": grouped_errors(run),
        "percent": min(percent, 100.0),
        "finished": run.status in ("done", "failed", "cancelled"),
        "worker": run_worker_status(run),
        "retried": VerdictHistory.objects.filter(replaced_by=run).count(),
        "pair_counts": (pair_winner_counts(run) if run.validators.filter(target=Target.PAIR).exists()
                        else None),
    }


_SANDBOX_SUMMARY_SECONDS = 60.0
_sandbox_summary: tuple[float, dict] | None = None


def sandbox_summary() -> dict:
    """What the code sandbox guarantees on this server, for the validators page and the API:
    whether code validators run, which barriers are up and which are missing (DESIGN §5).
    Cached for a minute so a page never waits behind a busy worker more than once."""
    import time

    from validators.sandbox import SandboxError, get_pool

    global _sandbox_summary
    now = time.monotonic()
    if _sandbox_summary is not None and now - _sandbox_summary[0] < _SANDBOX_SUMMARY_SECONDS:
        return _sandbox_summary[1]
    try:
        status = get_pool().status()
    except SandboxError as exc:
        summary = {"mode": "unavailable", "code_validators_enabled": False,
                   "disabled_reason": f"the sandbox could not start: {exc}",
                   "weak_isolation_accepted": False, "active_barriers": [],
                   "missing_barriers": [], "problems": [str(exc)], "limits": {}}
    else:
        summary = {key: status[key] for key in (
            "mode", "code_validators_enabled", "disabled_reason", "weak_isolation_accepted",
            "active_barriers", "missing_barriers", "problems", "limits", "timeout_seconds",
            "memory_mb",
        )}
    _sandbox_summary = (now, summary)
    return summary


def forget_sandbox_summary() -> None:
    global _sandbox_summary
    _sandbox_summary = None


def run_worker_status(run: Run) -> WorkerStatus:
    return job_worker_status(
        pending=run.pending, running=run.status == RunStatus.RUNNING, heartbeat_at=run.heartbeat_at,
    )


def verdict_history(validator: Validator, limit: int = 20) -> list[VerdictHistory]:
    """The latest replaced verdicts of a validator, each with the outcome that replaced it."""
    current = VerdictRecord.objects.filter(validator=validator, output=OuterRef("output")).values("outcome")[:1]
    return list(
        VerdictHistory.objects.filter(validator=validator)
        .select_related("output", "output__sample")
        .annotate(now=Subquery(current))
        .order_by("-replaced_at", "-id")[:limit]
    )


def history_by_cell(output_ids, validator_ids) -> dict[tuple[int, int], list[VerdictHistory]]:
    """Replaced verdicts per (output, validator) cell, newest first, for the verdict matrix."""
    cells: dict[tuple[int, int], list[VerdictHistory]] = {}
    for entry in VerdictHistory.objects.filter(output_id__in=output_ids, validator_id__in=validator_ids):
        cells.setdefault((entry.output_id, entry.validator_id), []).append(entry)
    return cells


@dataclass(frozen=True)
class PairRow:
    """One row of the pairs view of the verdict matrix: a pair in canonical order, the human
    choice ('' when nobody compared it) and each judge's PairVerdict (None when not judged)."""

    output_a: Output
    output_b: Output
    human: str
    cells: list[PairVerdict | None]


def pair_matrix_page(project: Project, judges: list[Validator], page_number: str | None) -> tuple[Page, list[PairRow]]:
    human = human_pair_choices(project)
    pairs = sorted(set(project_pairs(project)) | set(human))
    page = Paginator(pairs, 50).get_page(page_number)
    on_page = list(page.object_list)
    ids = {i for pair in on_page for i in pair}
    outputs = Output.objects.select_related("sample").in_bulk(ids)
    verdicts = {
        (v.validator_id, v.output_a_id, v.output_b_id): v
        for v in PairVerdict.objects.filter(
            validator__in=judges, output_a_id__in=[a for a, _ in on_page], output_b_id__in=[b for _, b in on_page],
        )
    }
    rows = [
        PairRow(outputs[a], outputs[b], human.get((a, b), ""), [verdicts.get((j.pk, a, b)) for j in judges])
        for a, b in on_page
    ]
    return page, rows


def matrix_outputs_filtered(outputs, validators, *, outcome: str, validator: str, disagree: bool):
    """The verdict matrix's filters, each an independent EXISTS so they combine: a verdict
    `outcome` (by `validator` when one is named; a named validator alone keeps the outputs it
    judged), and `disagree`: some shown validator passed the output and another failed it.
    (Joined counts over one `verdicts` join made "outcome + disagree" always empty.)"""
    shown = [v.pk for v in validators]
    named = [int(validator)] if validator.isdigit() and int(validator) in shown else shown

    def verdict(**conditions):
        return Exists(VerdictRecord.objects.filter(output=OuterRef("pk"), **conditions))

    if outcome in ("pass", "fail", "error"):
        outputs = outputs.filter(verdict(outcome=outcome, validator_id__in=named))
    elif validator.isdigit():
        outputs = outputs.filter(verdict(validator_id__in=named))
    if disagree:
        outputs = outputs.filter(verdict(outcome="pass", validator_id__in=shown)).filter(
            verdict(outcome="fail", validator_id__in=shown)
        )
    return outputs
