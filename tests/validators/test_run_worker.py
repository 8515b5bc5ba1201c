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

from concord_testing.llm_stub import LLMStubServer, keyword_responder
from validators import services
from validators.models import Run, RunStatus, Validator, VerdictRecord

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


def start_worker(queue: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ, "DATABASE_URL": worker_database_url(), "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0", "DEBUG": "1", "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=info"],
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
    sender = Celery(broker=REDIS_URL)
    with LLMStubServer(responder=keyword_responder("alpha"), latency_s=0.05) as stub:
        provider = services.provider_save(project=project, base_url=stub.base_url, model="m", concurrency=2)
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
