"""Root conftest: runs before Django settings load, so the test environment is set here."""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Playwright's sync API runs an event loop in the test thread; the ORM calls in the same
# test are still synchronous (DESIGN §8).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
