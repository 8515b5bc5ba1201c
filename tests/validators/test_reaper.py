"""The beat reaper re-queues runs and exports whose heartbeat stopped, and the API says whether a
worker is alive. Tasks run eagerly here; the real-worker version is in test_run_worker.py."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Export
from annotate.services.exports import export_start, exports_requeue_stale
from config.workers import NO_WORKER
from validators.models import Run, VerdictRecord
from validators.services.authoring import validator_create
from validators.services.runs import run_start, runs_requeue_stale

NO_EMAIL = "import re\ndef check(output, input, reference, meta):\n    return not re.search(r'@', output)\n"


@pytest.fixture(autouse=True)
def forget_worker_status():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def stalled_run(project, make_outputs, settings):
    """A run whose worker died after storing 3 of 8 verdicts, 10 minutes ago."""
    settings.CONCORD_STALE_RUN_SECONDS = 120
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    long_ago = timezone.now() - timedelta(minutes=10)
    run = Run.objects.create(
        project=project, total=8, done=3, status="running", started_at=long_ago, heartbeat_at=long_ago,
    )
    run.validators.set([check])
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=check, output=o, outcome="pass", run=run) for o in outputs[:3]
    ])
    return run


@pytest.mark.django_db
def test_stalled_run_is_requeued_and_finishes_with_each_verdict_once(stalled_run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        requeued = runs_requeue_stale()

    run = Run.objects.get(pk=stalled_run.pk)
    assert requeued == [run.pk]
    assert (run.status, run.done, run.total, run.failed, run.requeues) == ("done", 8, 8, 0, 1)
    verdicts = VerdictRecord.objects.filter(run=run)
    assert verdicts.count() == 8 and verdicts.values("output_id").distinct().count() == 8


@pytest.mark.django_db
def test_moving_run_is_left_alone(stalled_run, django_capture_on_commit_callbacks):
    Run.objects.filter(pk=stalled_run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=60))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requeued = runs_requeue_stale()

    run = Run.objects.get(pk=stalled_run.pk)
    assert (requeued, len(callbacks)) == ([], 0)
    assert (run.status, run.done, run.requeues) == ("running", 3, 0)
    assert VerdictRecord.objects.filter(run=run).count() == 3


@pytest.mark.django_db
def test_finished_runs_are_never_requeued(stalled_run, django_capture_on_commit_callbacks):
    Run.objects.filter(pk=stalled_run.pk).update(status="done")

    with django_capture_on_commit_callbacks(execute=True):
        requeued = runs_requeue_stale()

    assert requeued == [] and Run.objects.get(pk=stalled_run.pk).requeues == 0


@pytest.mark.django_db
def test_run_that_keeps_stalling_is_failed_not_requeued_forever(stalled_run, settings, django_capture_on_commit_callbacks):
    settings.CONCORD_MAX_REQUEUES = 2
    Run.objects.filter(pk=stalled_run.pk).update(requeues=2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requeued = runs_requeue_stale()

    run = Run.objects.get(pk=stalled_run.pk)
    assert (requeued, len(callbacks), run.status, run.requeues) == ([], 0, "failed", 2)
    assert run.error.startswith("Stopped making progress 3 times")
    assert VerdictRecord.objects.filter(run=run).count() == 3


@pytest.mark.django_db
def test_stalled_export_is_requeued_and_written(project, owner, make_outputs, settings, django_capture_on_commit_callbacks, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.CONCORD_STALE_RUN_SECONDS = 120
    make_outputs(n_samples=2, systems=("alpha",))
    # Queued while no worker was listening: the task never ran.
    with django_capture_on_commit_callbacks(execute=False):
        export = export_start(project=project, fmt="jsonl", requested_by=owner)
    Export.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        requeued = exports_requeue_stale()

    export.refresh_from_db()
    assert requeued == [export.pk]
    assert (export.status, export.rows, export.requeues) == ("done", 2, 1)
    assert len(export.file.read().decode().splitlines()) == 2


# -- is a worker alive? --------------------------------------------------------------------
def run_status(user, run) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(reverse("api-run-detail", args=[run.pk]))
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_queued_run_says_no_worker_is_running(project, owner, make_outputs, broker_without_worker):
    make_outputs(n_samples=1)
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    run = run_start(project=project, validators=[check])

    answer = run_status(owner, run)

    assert (answer["status"], answer["worker_alive"], answer["worker_message"]) == ("queued", False, NO_WORKER)
    assert NO_WORKER == "No worker is running: start one with `celery -A config worker`."


@pytest.mark.django_db
def test_broker_that_cannot_be_asked_gives_unknown_not_a_guess(project, owner, make_outputs, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/13"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.CONCORD_WORKER_PING_TIMEOUT = 0.3
    make_outputs(n_samples=1)
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    run = Run.objects.create(project=project, total=2)
    run.validators.set([check])

    answer = run_status(owner, run)

    assert (answer["status"], answer["worker_alive"]) == ("queued", None)
    assert answer["worker_message"].startswith("Cannot tell whether a worker is running (the broker did not answer")


@pytest.mark.django_db
def test_a_run_that_moves_proves_its_worker_and_finished_runs_need_none(project, owner, make_outputs, broker_without_worker):
    make_outputs(n_samples=1)
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    moving = Run.objects.create(project=project, total=2, status="running", heartbeat_at=timezone.now())
    finished = Run.objects.create(project=project, total=2, status="done", heartbeat_at=timezone.now() - timedelta(days=1))
    for run in (moving, finished):
        run.validators.set([check])

    assert [(a["worker_alive"], a["worker_message"]) for a in (run_status(owner, moving), run_status(owner, finished))] == [
        (True, ""), (True, ""),
    ]


@pytest.mark.django_db
def test_queued_export_says_no_worker_is_running(project, owner, make_outputs, broker_without_worker, client):
    make_outputs(n_samples=1)
    export = export_start(project=project, fmt="csv", requested_by=owner)
    api = APIClient()
    api.force_authenticate(owner)

    answer = api.get(reverse("api-export-detail", args=[export.pk])).json()
    client.force_login(owner)
    page = client.get(reverse("exports", args=[project.slug])).content.decode()

    assert (answer["status"], answer["worker_alive"], answer["worker_message"]) == ("queued", False, NO_WORKER)
    assert "No worker is running: start one with <code>celery -A config worker</code>." in page
