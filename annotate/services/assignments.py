"""Which item an annotator grades next, claimed so two annotators never collide.

A claim is an Assignment row with a slot number in [0, overlap). The partial unique constraints
on (output, slot) and (output, annotator) over live claims make the claim race-free on SQLite
and PostgreSQL alike: a losing insert raises IntegrityError and the next slot or candidate is
tried. Grades given without a claim (imports, the API without an assignment) hold no slot, so
they shrink the number of slots on offer instead.

Pairs (output_b set) have no unique constraint; a pair claim locks both output rows (fixed
order) and counts the pair's live claims and comparisons under that lock.

Queue controls (annotate.services.output_actions). An output excluded from sampling is in no
pool, single or pair, and no re-grade or assignment serves it until restored. In single mode
the order is: re-grades, then outputs assigned to the annotator (oldest assignment first),
then with `Project.overlap_first` the outputs others have graded or claimed whose overlap is
not reached, then the selector over the whole pool. An open assignment holds a slot for its
assignee: others are offered the output only while graders, live claims and waiting
assignees leave a slot free. All of this only narrows or orders the candidates; the unique
constraints still decide every claim, so the claim stays race-free. Pair mode honours
exclusions only: assignment is per output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Grade,
    Output,
    OutputAssignee,
    Project,
)
from annotate.queries import current_graders, graded_counts, project_output_ids
from annotate.queue_queries import QueueControls, excluded_output_ids, graders_of, queue_controls
from annotate.selection import RankedItem, rank_pairs, rank_pool
from annotate.statistics import rows_of

MAX_CLAIM_ATTEMPTS = 20
LIVE = (AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED)
REOPENED = "reopened"
# Selector names recorded on claims the queue controls made rather than a selector.
ASSIGNED = "assigned"
OVERLAP_FIRST = "overlap_first"


class AssignmentError(ValueError):
    pass


def _ttl() -> timedelta:
    return timedelta(seconds=settings.CONCORD_ASSIGNMENT_TTL_SECONDS)


def _expire_stale(project: Project, now) -> None:
    Assignment.objects.filter(
        project=project, status=AssignmentStatus.ACTIVE, expires_at__lt=now
    ).update(status=AssignmentStatus.EXPIRED, closed_at=now)


def assignments_expire(*, now=None) -> int:
    """Release every expired claim in every project (run periodically by Celery beat; claims are
    also expired lazily when an annotator asks for the next item)."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=AssignmentStatus.ACTIVE, expires_at__lt=now).update(
        status=AssignmentStatus.EXPIRED, closed_at=now
    )


def active_assignment(*, project: Project, annotator: AbstractBaseUser) -> Assignment | None:
    claim = Assignment.objects.filter(
        project=project, annotator=annotator, status=AssignmentStatus.ACTIVE,
        expires_at__gte=timezone.now(),
    ).values_list("pk", flat=True).first()
    # Usually there is none (the last one was just submitted): the joins only when needed.
    if claim is None:
        return None
    return Assignment.objects.select_related("output__sample", "output_b__sample").get(pk=claim)


def _claim_rows(project: Project, annotator: AbstractBaseUser) -> list[tuple]:
    """Every live claim of the project, and the annotator's skipped ones, in one read:
    (pk, output_id, output_b_id, annotator_id, status, expires_at)."""
    return list(
        Assignment.objects.filter(
            Q(status=AssignmentStatus.ACTIVE)
            | Q(annotator=annotator, status=AssignmentStatus.SKIPPED, output_b__isnull=True),
            project=project,
        ).values_list("pk", "output_id", "output_b_id", "annotator_id", "status", "expires_at")
    )


@dataclass(frozen=True)
class QueuePool:
    """What one annotator may claim now (`ids`, ascending), and in it the outputs assigned to
    them (`assigned`, oldest assignment first), those someone else has graded (`started`) and
    those someone else has only claimed so far (`claimed`): what overlap-first completes."""

    ids: np.ndarray
    assigned: list[int]
    started: np.ndarray
    claimed: np.ndarray
    # Per output, the slots held for other annotators' assignments not taken up yet.
    held: dict[int, int]


def pool_output_ids(
    *, project: Project, annotator: AbstractBaseUser, include_skipped: bool = False,
    claims: list[tuple] | None = None,
) -> np.ndarray:
    """Outputs this annotator may claim: not graded or claimed by them, overlap not reached,
    not excluded from sampling, no slot held for an assignee. See `queue_pool`."""
    return queue_pool(
        project=project, annotator=annotator, include_skipped=include_skipped, claims=claims
    ).ids


def queue_pool(
    *, project: Project, annotator: AbstractBaseUser, include_skipped: bool = False,
    claims: list[tuple] | None = None, controls: QueueControls | None = None,
) -> QueuePool:
    """The annotator's pool (see `pool_output_ids`) with its assigned and started parts.

    `claims` are _claim_rows and `controls` the queue_controls read earlier in the same
    request. Claims past their expiry are marked expired here, when one is seen, rather than
    by an UPDATE on every request. The annotator's submitted claims need no reading: a claim
    is submitted together with its grade (so the output is among theirs), and undoing the
    grade releases the claim.
    """
    all_ids = project_output_ids(project)
    taken, mine = graded_counts(project, annotator, all_ids)
    now = timezone.now()
    claimed, own, live, expired = [], list(mine), set(), False
    for _, output_id, output_b_id, annotator_id, status, expires_at in (
        _claim_rows(project, annotator) if claims is None else claims
    ):
        if status == AssignmentStatus.ACTIVE:
            if expires_at < now:
                expired = True
                continue
            if output_b_id is None:
                # A live claim not yet graded counts; a submitted one is counted by its grade.
                claimed.append(output_id)
                live.add((output_id, annotator_id))
        elif include_skipped:
            continue
        if annotator_id == annotator.pk and output_b_id is None:
            own.append(output_id)
    if expired:
        _expire_stale(project, now)
    graded = taken > 0
    if claimed:
        rows, found = rows_of(all_ids, np.asarray(claimed, dtype=np.int64))
        np.add.at(taken, rows[found], 1)
    started = taken > 0
    if controls is None:
        controls = queue_controls(project)
    assignees, me = controls.assignees, annotator.pk
    mine_assigned = [o for o, a in assignees if a == me]
    held: dict[int, int] = {}
    if len(mine_assigned) < len(assignees):
        graders = graders_of(project, {o for o, _ in assignees})
        for o, a in assignees:
            if a != me and a not in graders[o] and (o, a) not in live:
                held[o] = held.get(o, 0) + 1
        if held:
            rows, found = rows_of(all_ids, np.fromiter(held, dtype=np.int64, count=len(held)))
            taken[rows[found]] += np.fromiter(held.values(), dtype=taken.dtype, count=len(held))[found]
    keep = taken < project.overlap
    for left_out in (own, controls.excluded):
        if len(left_out):
            rows, found = rows_of(all_ids, np.asarray(left_out, dtype=np.int64))
            keep[rows[found]] = False
    ids = all_ids[keep]
    assigned = []
    if mine_assigned:
        rows, found = rows_of(all_ids, np.asarray(mine_assigned, dtype=np.int64))
        assigned = [o for o, row, ok in zip(mine_assigned, rows, found, strict=True) if ok and keep[row]]
    return QueuePool(
        ids=ids, assigned=assigned, started=all_ids[keep & graded],
        claimed=all_ids[keep & started & ~graded], held=held,
    )


def _free_slots(*, project: Project, output_id: int, held: int = 0) -> list[int]:
    """Slots on offer, below the `held` top ones kept for waiting assignees: two annotators
    racing for the last free slot then race for the same slot number, and the unique
    constraint leaves the held one to its assignee."""
    graders = current_graders(project, output_id)
    if not graders:
        # Nobody holds a grade: every slot is on offer and the unique constraint on
        # (output, slot) picks the winner, without reading the live claims first.
        return list(range(project.overlap - held))
    live = list(
        Assignment.objects.filter(
            output_id=output_id, output_b__isnull=True, status__in=LIVE
        ).values_list("slot", "annotator_id")
    )
    # Grades given without a claim hold no slot, so each one takes a slot off the offer.
    unslotted = graders - {annotator_id for _, annotator_id in live}
    used = {slot for slot, _ in live}
    return [slot for slot in range(project.overlap - len(unslotted) - held) if slot not in used]


def _create_claim(**fields) -> Assignment | None:
    """Insert a claim, or None when a unique constraint says it is taken. Outside a
    transaction the INSERT is its own; inside one a savepoint keeps the caller's alive."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return Assignment.objects.create(**fields)
        return Assignment.objects.create(**fields)
    except IntegrityError:
        # Another annotator took this slot, or this annotator claimed something else
        # meanwhile (one_active_claim_per_annotator); the caller tells which.
        return None


def _insert_claim(*, project, annotator, item: RankedItem, now, held: int = 0) -> Assignment | None:
    for slot in _free_slots(project=project, output_id=item.output_id, held=held):
        claim = _create_claim(
            project=project, output_id=item.output_id, annotator=annotator, slot=slot,
            selector=item.selector, why=item.why[:300], probability=item.probability,
            pool_size=item.pool_size, claimed_at=now, expires_at=now + _ttl(),
        )
        if claim is not None:
            return claim
    return None


def assignment_claim_next(
    *, project: Project, annotator: AbstractBaseUser, selector: str | None = None,
    mode: str = "single", rng: np.random.Generator | None = None,
) -> Assignment | None:
    """The annotator's current claim, or a new one on the next item. None when nothing is left.

    Not wrapped in one transaction on purpose: each insert commits on its own, so a claim
    lost to a concurrent annotator costs one candidate, not the whole ranking.
    """
    if mode not in ("single", "pair"):
        raise AssignmentError(f"Unknown mode '{mode}'; use single or pair.")
    now = timezone.now()
    # One read serves both the annotator's current claim and the pool below.
    claims = _claim_rows(project, annotator)
    current = next(
        (row for row in claims if row[3] == annotator.pk
         and row[4] == AssignmentStatus.ACTIVE and row[5] >= now),
        None,
    )
    if current is not None:
        if (current[2] is not None) == (mode == "pair"):
            return Assignment.objects.select_related("output__sample", "output_b__sample").get(
                pk=current[0]
            )
        Assignment.objects.filter(pk=current[0], status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.RELEASED, closed_at=now
        )
        claims = [row for row in claims if row[0] != current[0]]
    rng = rng or np.random.default_rng()
    selector = selector or project.default_selector
    if mode == "pair":
        _expire_stale(project, now)
        claim = _claim_pair(project=project, annotator=annotator, selector=selector, rng=rng, now=now)
    else:
        controls = queue_controls(project)
        if controls.regrade_requested:
            regrade = _claim_regrade(project=project, annotator=annotator, excluded=controls.excluded)
            if regrade is not None:
                return regrade
        claim = _claim_single(
            project=project, annotator=annotator, selector=selector, rng=rng, now=now,
            claims=claims, controls=controls,
        )
    if claim is None:
        # A concurrent request of the same annotator (a second tab) may have won.
        return active_assignment(project=project, annotator=annotator)
    related = ("output__sample", "output_b__sample") if mode == "pair" else ("output__sample",)
    return Assignment.objects.select_related(*related).get(pk=claim.pk)


def _claim_regrade(*, project: Project, annotator: AbstractBaseUser, excluded: np.ndarray) -> Assignment | None:
    """Outputs sent back for re-grading (by a review meeting or a bulk action) come before any
    other item, unless `excluded` from sampling."""
    from annotate.services.review import regrade_candidates, regrade_reason

    candidates = regrade_candidates(project, annotator)
    if not candidates:
        return None
    excluded = set(excluded.tolist())
    for output_id in candidates:
        if output_id in excluded:
            continue
        output = Output.objects.filter(pk=output_id, project=project).first()
        if output is None:
            continue
        try:
            claim = assignment_claim_output(
                project=project, annotator=annotator, output=output,
                why=regrade_reason(project=project, output_id=output_id),
            )
        except AssignmentError:
            continue
        Assignment.objects.filter(pk=claim.pk).update(priority=1)
        return Assignment.objects.select_related("output__sample", "output_b__sample").get(pk=claim.pk)
    return None


def _assigned_items(project: Project, annotator: AbstractBaseUser, assigned: list[int]) -> Iterator[RankedItem]:
    """The annotator's assigned outputs. A person chose them, not a draw: no probability, so
    estimates count each as standing for itself (as imported labels do)."""
    for output_id in assigned[:MAX_CLAIM_ATTEMPTS]:
        reason = (
            OutputAssignee.objects.filter(
                output_id=output_id, annotator=annotator, cancelled_at__isnull=True
            ).values_list("reason", flat=True).first()
        )
        why = f"assigned to you: {reason}" if reason else "assigned to you"
        yield RankedItem(output_id, None, ASSIGNED, why, None, None)


def _first_draw(project: Project, output_id: int) -> tuple[float | None, int | None]:
    """(probability, pool size) of the draw that put the output in the labelled sample: its
    earliest current grade, else the earliest live claim on it."""
    grade = (
        Grade.objects.filter(output_id=output_id, superseded_by__isnull=True, retracted=False)
        .order_by("submitted_at", "id").values_list("selector_probability", "selector_pool_size").first()
    )
    if grade is not None:
        return grade
    claim = (
        Assignment.objects.filter(output_id=output_id, output_b__isnull=True, status__in=LIVE)
        .order_by("claimed_at", "id").values_list("probability", "pool_size").first()
    )
    return claim if claim is not None else (None, None)


def _completion_items(project: Project, started: np.ndarray, rng: np.random.Generator) -> Iterator[RankedItem]:
    """Overlap-first: outputs others already graded (or claimed), in random order. They were
    drawn once already; this grade adds a vote on an output already in the sample and does
    not change which outputs are in it. So it carries the probability and pool size of that
    first draw (the LURE weight of annotate.labels.output_weights, a mean over an output's
    votes, stays the first draw's; the rankings read the first draw anyway), and is tagged
    OVERLAP_FIRST so it never joins the ε-random stream."""
    rows = rng.choice(started.size, size=min(MAX_CLAIM_ATTEMPTS, started.size), replace=False)
    why = (f"completing overlap: others graded it and it needs {project.overlap} annotators "
           f"(one of {started.size} such outputs)")
    for row in rows:
        output_id = int(started[row])
        probability, pool_size = _first_draw(project, output_id)
        yield RankedItem(output_id, None, OVERLAP_FIRST, why, probability, pool_size)


def _candidates(*, project, annotator, pool: QueuePool, selector, rng) -> Iterator[RankedItem]:
    """Assigned outputs, then (overlap-first) graded, then claimed ones, then the selector's ranking, which
    is computed only when the earlier ones were all taken by others."""
    yield from _assigned_items(project, annotator, pool.assigned)
    if project.overlap_first:
        # Graded ones first: a claim may yet be skipped or expire.
        for started in (pool.started, pool.claimed):
            if started.size:
                yield from _completion_items(project, started, rng)
    yield from rank_pool(
        project=project, annotator=annotator, pool=pool.ids, selector=selector, rng=rng,
        limit=MAX_CLAIM_ATTEMPTS,
    )


def _claim_single(*, project, annotator, selector, rng, now, claims, controls) -> Assignment | None:
    for include_skipped in (False, True):
        pool = queue_pool(
            project=project, annotator=annotator, include_skipped=include_skipped, claims=claims,
            controls=controls,
        )
        if pool.ids.size == 0:
            continue
        for item in _candidates(project=project, annotator=annotator, pool=pool, selector=selector, rng=rng):
            claim = _insert_claim(
                project=project, annotator=annotator, item=item, now=now,
                held=pool.held.get(item.output_id, 0),
            )
            if claim is not None:
                return claim
            if Assignment.objects.filter(
                project=project, annotator=annotator, status=AssignmentStatus.ACTIVE
            ).exists():
                return None
    return None


def _pair_filter(a: int, b: int) -> Q:
    return Q(output_id=a, output_b_id=b) | Q(output_id=b, output_b_id=a)


def _pair_graders(project: Project, a: int, b: int) -> set[int]:
    claimed = Assignment.objects.filter(
        _pair_filter(a, b), project=project, status=AssignmentStatus.ACTIVE
    ).values_list("annotator_id", flat=True)
    compared = Comparison.objects.filter(
        Q(output_a_id=a, output_b_id=b) | Q(output_a_id=b, output_b_id=a),
        project=project, superseded_by__isnull=True, retracted=False,
    ).values_list("annotator_id", flat=True)
    return set(claimed) | set(compared)


def _claim_pair(*, project, annotator, selector, rng, now) -> Assignment | None:
    left_out = excluded_output_ids(project)
    exclude = set()
    for a, b in Comparison.objects.filter(
        project=project, annotator=annotator, superseded_by__isnull=True, retracted=False
    ).values_list("output_a_id", "output_b_id"):
        exclude.add((min(a, b), max(a, b)))
    skipped = set()
    for a, b in Assignment.objects.filter(
        project=project, annotator=annotator, output_b__isnull=False,
        status=AssignmentStatus.SKIPPED,
    ).values_list("output_id", "output_b_id"):
        skipped.add((min(a, b), max(a, b)))
    for excluded in (exclude | skipped, exclude):
        ranked = rank_pairs(
            project=project, annotator=annotator, exclude=excluded, selector=selector, rng=rng,
            left_out=left_out,
        )
        for item in ranked:
            # Left and right are shown in random order whatever order the selector proposed.
            left, right = item.output_id, item.output_b_id
            if rng.random() < 0.5:
                left, right = right, left
            try:
                with transaction.atomic():
                    list(
                        Output.objects.select_for_update()
                        .filter(pk__in=[left, right]).order_by("pk").values_list("pk", flat=True)
                    )
                    if len(_pair_graders(project, left, right) - {annotator.pk}) >= project.overlap:
                        continue
                    return Assignment.objects.create(
                        project=project, output_id=left, output_b_id=right, annotator=annotator,
                        selector=item.selector, why=item.why[:300], probability=item.probability,
                        pool_size=item.pool_size, claimed_at=now, expires_at=now + _ttl(),
                    )
            except IntegrityError:
                return None
        if excluded == exclude:
            break
    return None


@transaction.atomic
def assignment_claim_output(
    *, project: Project, annotator: AbstractBaseUser, output: Output, why: str,
    output_b: Output | None = None,
) -> Assignment:
    """Claim a specific output or pair (reopening a past grade, undo); it replaces the
    annotator's current claim. A reopened output keeps the slot its earlier claim held."""
    if output.project_id != project.pk or (output_b is not None and output_b.project_id != project.pk):
        raise AssignmentError("That output belongs to another project.")
    now = timezone.now()
    current = (
        Assignment.objects.select_for_update()
        .filter(project=project, annotator=annotator, status=AssignmentStatus.ACTIVE)
        .first()
    )
    if current is not None:
        assignment_release(assignment=current)
    if output_b is not None:
        return Assignment.objects.create(
            project=project, output=output, output_b=output_b, annotator=annotator,
            selector=REOPENED, why=why[:300], claimed_at=now, expires_at=now + _ttl(),
        )
    previous = (
        Assignment.objects.select_for_update()
        .filter(output=output, annotator=annotator, output_b__isnull=True, status__in=LIVE)
        .first()
    )
    if previous is not None:
        Assignment.objects.filter(pk=previous.pk).update(
            status=AssignmentStatus.RELEASED, closed_at=now
        )
        slots = [previous.slot]
    else:
        # The annotator's own grade (if any) already counts toward overlap, so an overflow
        # slot at or above `overlap` is right when every regular slot is taken.
        used = set(
            Assignment.objects.filter(
                output=output, output_b__isnull=True, status__in=LIVE
            ).values_list("slot", flat=True)
        )
        slots = [n for n in range(max(used, default=-1) + 3) if n not in used]
    for slot in slots:
        try:
            with transaction.atomic():
                return Assignment.objects.create(
                    project=project, output=output, annotator=annotator, slot=slot,
                    selector=REOPENED, why=why[:300], probability=None, claimed_at=now,
                    expires_at=now + _ttl(),
                )
        except IntegrityError:
            continue
    raise AssignmentError("This output is being claimed by others right now; try again.")


def assignment_skip(*, assignment: Assignment, annotator: AbstractBaseUser | None = None) -> bool:
    """Give the claim back; the annotator sees the output again only when nothing else is left.
    False when the claim was not (or no longer) active."""
    claims = Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE)
    if annotator is not None:
        claims = claims.filter(annotator=annotator)
    return bool(claims.update(status=AssignmentStatus.SKIPPED, closed_at=timezone.now()))


def assignment_release(*, assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.RELEASED, closed_at=timezone.now()
    )
