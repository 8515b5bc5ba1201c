"""What validator runs and gold exports share as background jobs: the reaper that re-queues
the ones whose worker died (issue 12 §2). Both carry `status`, `heartbeat_at`, `requeues`,
`created_at`, `finished_at` and `error`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone


def jobs_requeue_stale(
    *, jobs: type[models.Model], queued: str, running: str, failed: str,
    dispatch: Callable[[int], object], give_up_advice: str = "", now: datetime | None = None,
) -> list[int]:
    """Re-queue queued or running jobs whose heartbeat is older than
    CONCORD_STALE_RUN_SECONDS (a job without one counts from its creation). One that stalled
    CONCORD_MAX_REQUEUES times while running is marked failed instead of looping. Jobs are
    idempotent, so re-queuing one that was merely slow costs time, never a duplicate."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CONCORD_STALE_RUN_SECONDS)
    requeued: list[int] = []
    with transaction.atomic():
        stale = list(
            jobs.objects.select_for_update(skip_locked=True)
            .filter(status__in=[queued, running])
            .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff))
            .order_by("id")
        )
        for job in stale:
            if job.status == running and job.requeues >= settings.CONCORD_MAX_REQUEUES:
                jobs.objects.filter(pk=job.pk).update(
                    status=failed, finished_at=now,
                    error=f"Stopped making progress {job.requeues + 1} times (its worker died "
                          f"or hung); not re-queued again.{give_up_advice}",
                )
                continue
            jobs.objects.filter(pk=job.pk).update(requeues=F("requeues") + 1, heartbeat_at=now)
            transaction.on_commit(partial(dispatch, job.pk))
            requeued.append(job.pk)
    return requeued
