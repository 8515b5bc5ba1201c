"""Helpers for tests that start the app's real processes (gunicorn, a Celery worker) beside
pytest: they must open pytest's test database, on a free port, and be waited for."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from typing import Any


def database_url(settings_dict: dict[str, Any], vendor: str) -> str:
    """The DATABASE_URL of the test database pytest-django created (a file for SQLite, so
    another process can open it; see config.settings)."""
    if vendor == "postgresql":
        user = settings_dict["USER"] or "postgres"
        password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
        host = settings_dict["HOST"] or "127.0.0.1"
        port = settings_dict["PORT"] or 5432
        return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
    return f"sqlite:///{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout: float, alive=lambda: True) -> int:
    """Polls `url` until it answers (any status); returns the status. `alive` lets the caller
    give up as soon as the server process has died instead of waiting out the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
