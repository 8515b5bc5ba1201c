"""Celery shells: load ids, call a service, retry on transient errors."""

from celery import shared_task
from django.db import OperationalError

from annotate.services import exports


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
    max_retries=5,
)
def export_gold_task(self, export_id: int) -> int:
    return exports.export_run(export_id=export_id).rows
