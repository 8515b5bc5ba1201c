"""Celery shells: load ids, call a service, retry on transient errors."""

from celery import shared_task
from django.db import OperationalError

from validators.services.runs import run_execute, runs_requeue_stale


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def run_execute_task(self, run_id: int) -> int:
    return run_execute(run_id=run_id).done


@shared_task
def runs_requeue_stale_task() -> list[int]:
    return runs_requeue_stale()
