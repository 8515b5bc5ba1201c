"""Gold-label exports (DESIGN §3 Export): a job row, a Celery task that writes the file in
chunks (annotate.gold), and the file for download. The same two functions serve the exports
page, the admin action and the API; `manage.py export_gold` writes a file directly."""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import OperationalError, transaction
from django.utils import timezone

from annotate.export_formats import EXPORT_FORMATS, unknown_format_message
from annotate.gold import GoldOptions, write_gold
from annotate.models import Export, ExportStatus, Project
from annotate.services.jobs import jobs_requeue_stale
from config.workers import WorkerStatus, job_worker_status

logger = logging.getLogger(__name__)
KIND_GOLD_LABELS = "gold_labels"


class ExportError(ValueError):
    pass


def clean_options(options: dict | None) -> GoldOptions:
    try:
        return GoldOptions.from_dict(options)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def export_start(
    *, project: Project, fmt: str, options: dict | None = None,
    requested_by: AbstractBaseUser | None,
) -> Export:
    """Queue a gold-label export of `project` in a format of EXPORT_FORMATS. Options: all_grades,
    include_stale, labelled_only (see annotate.gold). The caller checks the role (owners and
    staff)."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(unknown_format_message(fmt))
    cleaned = clean_options(options)
    with transaction.atomic():
        export = Export.objects.create(
            project=project, kind=KIND_GOLD_LABELS, format=fmt, options=cleaned.to_dict(),
            requested_by=requested_by, heartbeat_at=timezone.now(),
        )
        from annotate.tasks import export_gold_task

        transaction.on_commit(lambda: export_gold_task.delay(export.pk))
    return export


def export_worker_status(export: Export) -> WorkerStatus:
    return job_worker_status(
        pending=export.pending, running=export.status == ExportStatus.RUNNING,
        heartbeat_at=export.heartbeat_at,
    )


def export_file_name(export: Export) -> str:
    return f"{export.project.slug}-gold-{export.pk}.{export.format}"


def export_run(*, export_id: int) -> Export:
    """Write the export's file. Idempotent: a finished export is returned as it is, and one
    interrupted while running (a worker that died) is written again from the start."""
    with transaction.atomic():
        export = Export.objects.select_for_update().select_related("project").get(pk=export_id)
        if export.status == ExportStatus.DONE:
            return export
        export.status = ExportStatus.RUNNING
        export.error = ""
        export.heartbeat_at = timezone.now()
        export.save(update_fields=["status", "error", "heartbeat_at"])
    # Short and unique: the FileField holds at most 100 characters, slugs up to 80.
    name = f"exports/{export.project_id}/gold-{export.pk}.{export.format}"
    try:
        with tempfile.TemporaryFile() as scratch:
            rows = write_gold(
                export.project, export.format, scratch, options=GoldOptions.from_dict(export.options)
            )
            scratch.seek(0)
            if default_storage.exists(name):
                default_storage.delete(name)
            saved = default_storage.save(name, File(scratch, name=name))
    except OperationalError:
        raise  # transient: the task retries and writes the file again
    except Exception as exc:  # anything else is reported on the export row, not retried
        logger.exception("Gold export %s failed", export_id)
        Export.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        export.refresh_from_db()
        return export
    Export.objects.filter(pk=export_id).update(
        status=ExportStatus.DONE, file=saved, rows=rows, error="", finished_at=timezone.now()
    )
    export.refresh_from_db()
    return export


def exports_requeue_stale(*, now: datetime | None = None) -> list[int]:
    """The reaper (celery beat): re-queue queued or running exports whose heartbeat is older
    than CONCORD_STALE_RUN_SECONDS, typically because their worker was killed. An export's
    heartbeat moves when it is queued and when it starts (the file is written inside one
    database snapshot, which cannot report progress to other connections), so an export
    writing for longer than the limit is started a second time; both write complete files
    under their own names and the last to finish is the one kept."""
    from annotate.tasks import export_gold_task

    return jobs_requeue_stale(
        jobs=Export, queued=ExportStatus.QUEUED, running=ExportStatus.RUNNING,
        failed=ExportStatus.FAILED, dispatch=export_gold_task.delay, now=now,
    )
