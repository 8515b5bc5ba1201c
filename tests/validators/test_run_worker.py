"""A run executed by a real Celery worker over Redis, killed mid-run and started again."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from concord_testing.llm_stub import LLMStubServer, keyword_responder
from config.workers import worker_status
from validators.models import Run, RunStatus, Validator, VerdictRecord
from validators.services.authoring import validator_create
from validators.services.providers import provider_save

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CONCORD_TEST_REDIS_URL", "")


def redis_up() -> bool:
    if not REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not redis_up(), reason="needs Redis at CONCORD_TEST_REDIS_URL (.ci/run sets it)"),
]


def worker_database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    return f"sqlite:///{settings['NAME']}"


def start_worker(queue: str, log: Path, *options: str, env: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ, "DATABASE_URL": worker_database_url(), "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0", "DEBUG": "1", "PYTHONPATH": str(ROOT), **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", *(options or ("--pool=solo",)),
         "-Q", queue, "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=info"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_killed_worker_run_resumes_without_duplicates(project, make_outputs, tmp_path):
    outputs = make_outputs(n_samples=40, systems=("alpha", "beta"))
    queue = f"concord-test-{uuid.uuid4().hex[:8]}"
    sender = Celery(broker=REDIS_URL, set_as_current=False)
    with LLMStubServer(responder=keyword_responder("alpha"), latency_s=0.05) as stub:
        provider = provider_save(project=project, base_url=stub.base_url, model="m", concurrency=2)
        grader = Validator.objects.create(
            project=project, kind="llm", name="g", provider=provider,
            source="Answer: {output}\nGood? Answer YES or NO.",
        )
        run = Run.objects.create(project=project, total=len(outputs))
        run.validators.set([grader])
        log = tmp_path / "worker.log"

        worker = start_worker(queue, log)
        try:
            sender.send_task("validators.tasks.run_execute_task", args=[run.pk], queue=queue)
            wait_until(lambda: VerdictRecord.objects.filter(validator=grader).count() >= 32, 60, "a first batch")
            stop(worker)
            partial = VerdictRecord.objects.filter(validator=grader).count()
            assert 32 <= partial < len(outputs), log.read_text()[-2000:]
            assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING

            worker = start_worker(queue, log)
            sender.send_task("validators.tasks.run_execute_task", args=[run.pk], queue=queue)
            wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.DONE, 60, "the run to finish")
        finally:
            stop(worker)
            sender.close()

    finished = Run.objects.get(pk=run.pk)
    verdicts = VerdictRecord.objects.filter(validator=grader)
    assert (finished.done, finished.total, finished.failed) == (80, 80, 0)
    assert verdicts.count() == 80
    assert verdicts.values("output_id").distinct().count() == 80
    assert set(verdicts.values_list("output__system", "outcome").distinct()) == {("alpha", "pass"), ("beta", "fail")}


# A code assertion slow enough (a few ms per output, in the sandbox pool) for a run of a few
# seconds: the sandbox offers no time.sleep, so it spins.
SLOW_CHECK = """def check(output, input, reference, meta):
    spin = sum(i * i for i in range(40000))
    return spin > 0 and output.startswith('alpha')
"""


def run_status(user, run) -> dict:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/runs/{run.pk}/").json()


@pytest.mark.django_db(transaction=True)
def test_run_of_a_killed_worker_finishes_by_itself(project, owner, make_outputs, settings, tmp_path):
    """SIGKILL the worker mid-run; a new worker with beat (the reaper every second) finishes the
    run, every verdict stored exactly once, with nobody re-starting the run by hand."""
    outputs = make_outputs(n_samples=80, systems=("alpha", "beta"))
    checks = [
        validator_create(project=project, kind="code", name=f"slow {i}", source=SLOW_CHECK)
        for i in range(4)
    ]
    run = Run.objects.create(project=project, total=len(outputs) * len(checks), heartbeat_at=timezone.now())
    run.validators.set(checks)
    queue = f"concord-test-{uuid.uuid4().hex[:8]}"
    # Well above one batch (160 outputs × a few ms), so a slow but live batch on a busy CI
    # machine is not re-queued a second time.
    stale_seconds = 8
    reaper = {
        "CELERY_TASK_DEFAULT_QUEUE": queue, "CONCORD_STALE_RUN_SECONDS": str(stale_seconds),
        "CONCORD_REAPER_INTERVAL_SECONDS": "1",
    }
    # The test process asks the same Redis whether a worker is alive.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.CONCORD_STALE_RUN_SECONDS = stale_seconds
    settings.CONCORD_WORKER_STATUS_CACHE_SECONDS = 0.01
    sender = Celery(broker=REDIS_URL, set_as_current=False)
    log = tmp_path / "worker.log"
    stored = VerdictRecord.objects.filter(run=run)

    # Prefork, as in docker/compose.yaml: the pool's child runs the task, so this is the case
    # task_reject_on_worker_lost is about; the whole process group dies here, as with kill -9.
    worker = start_worker(queue, log, "--concurrency=1", env=reaper)
    try:
        sender.send_task("validators.tasks.run_execute_task", args=[run.pk], queue=queue)
        wait_until(lambda: stored.count() >= len(outputs), 60, "the first validator's verdicts")
        assert run_status(owner, run)["worker_alive"] is True
        stop(worker)
        partial = stored.count()
        assert len(outputs) <= partial < len(outputs) * len(checks), log.read_text()[-2000:]
        killed = Run.objects.get(pk=run.pk)
        assert (killed.status, killed.requeues) == ("running", 0)

        # Once the run stops moving, nobody answers the ping: the API says so.
        time.sleep(stale_seconds + 0.5)
        answer = run_status(owner, run)
        assert (answer["status"], answer["worker_alive"]) == ("running", False)
        assert answer["worker_message"] == "No worker is running: start one with `celery -A config worker`."

        worker = start_worker(queue, log, "--concurrency=1", "-B", "--schedule", str(tmp_path / "beat"), env=reaper)
        # A prefork worker answers pings from its main process even while its child is busy.
        wait_until(lambda: worker_status().alive is True, 30, "the new worker to answer a ping")
        wait_until(lambda: Run.objects.get(pk=run.pk).status == "done", 90, "the reaper and the new worker")
    finally:
        stop(worker)
        sender.close()

    finished = Run.objects.get(pk=run.pk)
    verdicts = VerdictRecord.objects.filter(validator__in=checks)
    assert (finished.status, finished.done, finished.total, finished.failed, finished.error) == ("done", 640, 640, 0, "")
    assert finished.requeues == 1
    assert verdicts.count() == 640 and stored.count() == 640
    assert verdicts.values("validator_id", "output_id").distinct().count() == 640
    per_outcome = verdicts.values("output__system", "outcome").annotate(n=Count("id"))
    assert sorted(per_outcome.values_list("output__system", "outcome", "n")) == [
        ("alpha", "pass", 320), ("beta", "fail", 320),
    ]
