"""Shared set-up for benchmarks: a fresh, throw-away database (SQLite file or a PostgreSQL
database next to DATABASE_URL's), Django configured against it, migrations applied."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fresh_database(name: str, *, production: bool = False) -> str:
    """Point DATABASE_URL at a new empty database and return a label for printing.

    `production`: settings as gunicorn serves them (DEBUG off, hashed static files collected
    into a throw-away folder), for benchmarks of a request's latency; DEBUG alone adds about
    8 ms to a grading round trip (query logging, template debug info)."""
    if production:
        os.environ["DEBUG"] = "0"
        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
        os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        parsed = urlparse(url)
        bench_db = f"concord_bench_{name}"
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
            connection.execute(f'CREATE DATABASE "{bench_db}"')
        os.environ["DATABASE_URL"] = urlunparse(parsed._replace(path=f"/{bench_db}"))
        label = "PostgreSQL"
    else:
        folder = tempfile.mkdtemp(prefix="concord-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        os.environ["CONCORD_VAR_DIR"] = folder
        label = "SQLite"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if production:
        from django.conf import settings

        settings.STATIC_ROOT = tempfile.mkdtemp(prefix="concord-bench-static-")
        call_command("collectstatic", interactive=False, verbosity=0)
    return label


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))
