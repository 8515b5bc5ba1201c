"""Which item an annotator grades next, claimed so two annotators never collide.

A claim is an Assignment row with a slot number in [0, overlap). The partial unique constraints
on (output, slot) and (output, annotator) over live claims make the claim race-free on SQLite
and PostgreSQL alike: a losing insert raises IntegrityError and the next candidate is tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotate.models import Assignment, AssignmentStatus, Comparison, Grade, Output, Project

MAX_CLAIM_ATTEMPTS = 20


@dataclass(frozen=True)
class RankedItem:
    output_id: int
    output_b_id: int | None
    selector: str
    why: str
    probability: float | None


def _expire_stale(project: Project, now) -> None:
    Assignment.objects.filter(
        project=project, status=AssignmentStatus.ACTIVE, expires_at__lt=now
    ).update(status=AssignmentStatus.EXPIRED, closed_at=now)


def active_assignment(*, project: Project, annotator: AbstractBaseUser) -> Assignment | None:
    return (
        Assignment.objects.filter(
            project=project, annotator=annotator, status=AssignmentStatus.ACTIVE,
            expires_at__gte=timezone.now(),
        )
        .select_related("output", "output_b")
        .first()
    )


def pool_output_ids(*, project: Project, annotator: AbstractBaseUser, include_skipped: bool = False) -> np.ndarray:
    """Outputs this annotator may claim: not graded or claimed by them, overlap not reached."""
    all_ids = np.fromiter(
        Output.objects.filter(project=project).order_by("id").values_list("id", flat=True),
        dtype=np.int64,
    )
    graders = (
        Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
        .values("output_id")
        .annotate(n=Count("annotator_id", distinct=True))
    )
    live = (
        Assignment.objects.filter(
            project=project, status=AssignmentStatus.ACTIVE, output_b__isnull=True
        )
        .values("output_id")
        .annotate(n=Count("id"))
    )
    taken: dict[int, int] = {}
    for row in graders:
        taken[row["output_id"]] = taken.get(row["output_id"], 0) + row["n"]
    for row in live:
        taken[row["output_id"]] = taken.get(row["output_id"], 0) + row["n"]
    full = [output_id for output_id, n in taken.items() if n >= project.overlap]
    own = Q(status=AssignmentStatus.SUBMITTED) | Q(status=AssignmentStatus.ACTIVE)
    if not include_skipped:
        own |= Q(status=AssignmentStatus.SKIPPED)
    mine = list(
        Assignment.objects.filter(project=project, annotator=annotator, output_b__isnull=True)
        .filter(own)
        .values_list("output_id", flat=True)
    ) + list(
        Grade.objects.filter(
            project=project, annotator=annotator, superseded_by__isnull=True, retracted=False
        ).values_list("output_id", flat=True)
    )
    excluded = np.unique(np.asarray(full + mine, dtype=np.int64))
    return all_ids[~np.isin(all_ids, excluded, assume_unique=False)]


def rank_pool(
    *, project: Project, annotator: AbstractBaseUser, pool: np.ndarray, selector: str,
    rng: np.random.Generator, limit: int = MAX_CLAIM_ATTEMPTS,
) -> list[RankedItem]:
    """Order the pool by the named selector (random until a selector scores it)."""
    from annotate.selection import rank_with_selector

    return rank_with_selector(
        project=project, annotator=annotator, pool=pool, selector=selector, rng=rng, limit=limit
    )


def _insert_claim(*, project, annotator, item: RankedItem, now, ttl) -> Assignment | None:
    used = set(
        Assignment.objects.filter(
            output_id=item.output_id, output_b__isnull=True,
            status__in=[AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED],
        ).values_list("slot", flat=True)
    )
    free = [slot for slot in range(project.overlap) if slot not in used]
    if not free:
        return None
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                project=project, output_id=item.output_id, annotator=annotator, slot=free[0],
                selector=item.selector, why=item.why[:300], probability=item.probability,
                claimed_at=now, expires_at=now + ttl,
            )
    except IntegrityError:
        return None


def assignment_claim_next(
    *, project: Project, annotator: AbstractBaseUser, selector: str | None = None,
    mode: str = "single", rng: np.random.Generator | None = None,
) -> Assignment | None:
    """The annotator's current claim, or a new one on the next item. None when nothing is left."""
    now = timezone.now()
    ttl = timedelta(seconds=settings.CONCORD_ASSIGNMENT_TTL_SECONDS)
    _expire_stale(project, now)
    current = active_assignment(project=project, annotator=annotator)
    if current is not None:
        if (current.output_b_id is not None) == (mode == "pair"):
            return current
        assignment_release(assignment=current)
    rng = rng or np.random.default_rng()
    selector = selector or project.default_selector
    if mode == "pair":
        return _claim_pair(project=project, annotator=annotator, selector=selector, rng=rng, now=now, ttl=ttl)
    for include_skipped in (False, True):
        pool = pool_output_ids(project=project, annotator=annotator, include_skipped=include_skipped)
        if pool.size == 0:
            continue
        ranked = rank_pool(project=project, annotator=annotator, pool=pool, selector=selector, rng=rng)
        for item in ranked:
            claim = _insert_claim(project=project, annotator=annotator, item=item, now=now, ttl=ttl)
            if claim is not None:
                return Assignment.objects.select_related("output").get(pk=claim.pk)
    return None


def assignment_claim_output(*, project: Project, annotator: AbstractBaseUser, output: Output, why: str) -> Assignment:
    """Claim a specific output (reopening a past grade, undo): it replaces the current claim."""
    now = timezone.now()
    with transaction.atomic():
        current = active_assignment(project=project, annotator=annotator)
        if current is not None:
            assignment_release(assignment=current)
        previous = Assignment.objects.filter(
            output=output, annotator=annotator, output_b__isnull=True,
            status=AssignmentStatus.SUBMITTED,
        ).first()
        if previous is not None:
            slot = previous.slot
            Assignment.objects.filter(pk=previous.pk).update(
                status=AssignmentStatus.RELEASED, closed_at=now
            )
        else:
            # The annotator's own grade already counts toward overlap, so an overflow slot
            # above `overlap` is right when every regular slot is taken.
            used = set(
                Assignment.objects.filter(
                    output=output, output_b__isnull=True,
                    status__in=[AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED],
                ).values_list("slot", flat=True)
            )
            slot = next(n for n in range(len(used) + 1) if n not in used)
        return Assignment.objects.create(
            project=project, output=output, annotator=annotator, slot=slot,
            selector="reopened", why=why, probability=None, claimed_at=now,
            expires_at=now + timedelta(seconds=settings.CONCORD_ASSIGNMENT_TTL_SECONDS),
        )


def _claim_pair(*, project, annotator, selector, rng, now, ttl) -> Assignment | None:
    from annotate.selection import rank_pairs

    compared = set()
    for a, b in Comparison.objects.filter(
        project=project, annotator=annotator, superseded_by__isnull=True, retracted=False
    ).values_list("output_a_id", "output_b_id"):
        compared.add((min(a, b), max(a, b)))
    for item in rank_pairs(project=project, annotator=annotator, exclude=compared, selector=selector, rng=rng):
        try:
            with transaction.atomic():
                claim = Assignment.objects.create(
                    project=project, output_id=item.output_id, output_b_id=item.output_b_id,
                    annotator=annotator, selector=item.selector, why=item.why[:300],
                    probability=item.probability, claimed_at=now, expires_at=now + ttl,
                )
        except IntegrityError:
            continue
        return Assignment.objects.select_related("output", "output_b").get(pk=claim.pk)
    return None


def assignment_skip(*, assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.SKIPPED, closed_at=timezone.now()
    )


def assignment_release(*, assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.RELEASED, closed_at=timezone.now()
    )
