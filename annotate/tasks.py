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


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
    max_retries=5,
)
def embeddings_compute_task(self, project_id: int, method: str) -> int:
    from annotate.embeddings import embeddings_compute
    from annotate.models import Project

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return embeddings_compute(project=project, method=method).dimensions


@shared_task
def assignments_expire_task() -> int:
    from annotate.services.assignments import assignments_expire

    return assignments_expire()


@shared_task
def exports_requeue_stale_task() -> list[int]:
    return exports.exports_requeue_stale()
