"""The embedded mode of `make run`: a solo worker with beat on kombu's filesystem:// broker, no
Redis. The filesystem transport has no unacknowledged set, so a killed worker's task is simply
gone: only the reaper brings the run back."""

import os
import subprocess
import sys
import time
import uuid

import pytest
from celery import Celery
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from tests.validators.test_run_worker import (
    ROOT,
    SLOW_CHECK,
    run_status,
    stop,
    wait_until,
    worker_database_url,
)
from validators.models import Run, VerdictRecord
from validators.services.authoring import validator_create

STALE_SECONDS = 8


def filesystem_options(var_dir) -> dict:
    folders = {name: var_dir / "celery" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
        "data_folder_processed": str(folders["processed"]), "control_folder": str(folders["control"]),
        "store_processed": False,
    }


def start_embedded_worker(var_dir, log, *options: str) -> subprocess.Popen:
    """The worker `make run` starts, against this test's database and broker folder."""
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update({
        "DATABASE_URL": worker_database_url(), "CONCORD_VAR_DIR": str(var_dir),
        "CELERY_TASK_ALWAYS_EAGER": "0", "DEBUG": "1", "PYTHONPATH": str(ROOT),
        "CONCORD_STALE_RUN_SECONDS": str(STALE_SECONDS), "CONCORD_REAPER_INTERVAL_SECONDS": "1",
    })
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", *options,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=info"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.django_db(transaction=True)
def test_embedded_worker_killed_mid_run_is_recovered_by_beat(project, owner, make_outputs, settings, tmp_path):
    outputs = make_outputs(n_samples=60, systems=("alpha", "beta"))
    checks = [
        validator_create(project=project, kind="code", name=f"slow {i}", source=SLOW_CHECK)
        for i in range(3)
    ]
    run = Run.objects.create(project=project, total=len(outputs) * len(checks), heartbeat_at=timezone.now())
    run.validators.set(checks)
    var_dir = tmp_path / f"var-{uuid.uuid4().hex[:6]}"
    options = filesystem_options(var_dir)
    # The test process asks the same broker folder whether a worker is alive.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    settings.CONCORD_STALE_RUN_SECONDS = STALE_SECONDS
    settings.CONCORD_WORKER_STATUS_CACHE_SECONDS = 0.01
    settings.CONCORD_WORKER_PING_TIMEOUT = 1.0
    cache.clear()
    sender = Celery(broker="filesystem://", set_as_current=False)
    sender.conf.broker_transport_options = options
    log = tmp_path / "worker.log"
    stored = VerdictRecord.objects.filter(run=run)

    worker = start_embedded_worker(var_dir, log)
    try:
        # An idle solo worker answers the ping through the filesystem broker's control folder.
        wait_until(lambda: run_status(owner, run)["worker_alive"], 30, "the worker to answer a ping")
        sender.send_task("validators.tasks.run_execute_task", args=[run.pk])
        wait_until(lambda: stored.count() >= len(outputs), 60, "the first validator's verdicts")
        stop(worker)
        partial = stored.count()
        assert len(outputs) <= partial < len(outputs) * len(checks), log.read_text()[-2000:]
        assert list((var_dir / "celery" / "queue").iterdir()) == []  # the task died with its worker

        time.sleep(STALE_SECONDS + 0.5)
        answer = run_status(owner, run)
        assert (answer["status"], answer["worker_alive"]) == ("running", False)

        worker = start_embedded_worker(var_dir, log, "-B", "--schedule", str(tmp_path / "beat"))
        wait_until(lambda: Run.objects.get(pk=run.pk).status == "done", 90, "beat's reaper and the new worker")
    finally:
        stop(worker)

    finished = Run.objects.get(pk=run.pk)
    verdicts = VerdictRecord.objects.filter(validator__in=checks)
    assert (finished.status, finished.done, finished.total, finished.failed, finished.requeues) == ("done", 360, 360, 0, 1)
    assert verdicts.count() == 360 and verdicts.values("validator_id", "output_id").distinct().count() == 360
    per_outcome = verdicts.values("output__system", "outcome").annotate(n=Count("id"))
    assert sorted(per_outcome.values_list("output__system", "outcome", "n")) == [("alpha", "pass", 180), ("beta", "fail", 180)]
