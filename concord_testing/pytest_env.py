"""Loaded with `-p concord_testing.pytest_env` before pytest-django configures Django, so the
test environment is in place when the settings module is imported."""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Playwright's sync API runs an event loop in the test thread; the ORM calls in the same test
# stay synchronous (DESIGN §8).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
