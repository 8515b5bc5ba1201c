"""Whether any Celery worker is listening, so a page can say "no worker" instead of showing
`queued` forever. Asked with a broadcast ping and kept in the cache for a few seconds, because
progress bars poll every second and a ping waits its whole timeout when nobody answers."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

NO_WORKER = "No worker is running: start one with `celery -A config worker`."
UNKNOWN = (
    "Cannot tell whether a worker is running ({reason}). If this stays queued, start one with "
    "`celery -A config worker`."
)


@dataclass(frozen=True)
class WorkerStatus:
    """`alive` is None when the broker could not be asked: "unknown" rather than a guess."""

    alive: bool | None
    message: str

    def to_dict(self) -> dict:
        return {"worker_alive": self.alive, "worker_message": self.message}


ALIVE = WorkerStatus(True, "")


def worker_status() -> WorkerStatus:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return ALIVE  # tasks run inside the process that queued them
    # Keyed by the broker, so a changed setting (tests, a restarted server) is never answered
    # from another broker's cache entry; hashed, so no credential lands in a cache key.
    key = "concord:worker-status:" + hashlib.sha256(settings.CELERY_BROKER_URL.encode()).hexdigest()[:16]
    cached = cache.get(key)
    if cached is not None:
        return WorkerStatus(*cached)
    status = _ping()
    cache.set(key, (status.alive, status.message), settings.CONCORD_WORKER_STATUS_CACHE_SECONDS)
    return status


def job_worker_status(*, pending: bool, running: bool, heartbeat_at: datetime | None) -> WorkerStatus:
    """Whether a worker will move a queued or running job (a validator run, an export) forward.
    A running job whose heartbeat is fresh proves a worker without asking: a solo-pool worker
    (the embedded `make run` one) cannot answer a ping while it is busy with that very job."""
    if not pending:
        return ALIVE
    fresh = heartbeat_at is not None and (
        timezone.now() - heartbeat_at < timedelta(seconds=settings.CONCORD_STALE_RUN_SECONDS)
    )
    if running and fresh:
        return ALIVE
    return worker_status()


def _ping() -> WorkerStatus:
    from celery import Celery

    # A throw-away app on the broker the settings name now: the project's app publishes control
    # messages through the producer pool it built from the settings it first saw.
    pinger = Celery("concord-ping", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    pinger.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    pinger.conf.broker_connection_timeout = settings.CONCORD_WORKER_PING_TIMEOUT
    try:
        with pinger.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            replies = pinger.control.inspect(
                timeout=settings.CONCORD_WORKER_PING_TIMEOUT, connection=connection,
            ).ping()
    except Exception as exc:  # a broker that is down, or a transport without broadcast
        logger.warning("Could not ping the Celery workers: %s: %s", type(exc).__name__, exc)
        return WorkerStatus(None, UNKNOWN.format(reason=f"the broker did not answer: {type(exc).__name__}"))
    finally:
        pinger.close()
    if replies:
        return ALIVE
    return WorkerStatus(False, NO_WORKER)
