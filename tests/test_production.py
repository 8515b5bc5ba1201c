"""Production mode as the Docker image runs it: `collectstatic` and gunicorn with DEBUG off, the
main pages walked in Chromium as each role.

The commands come from docker/Dockerfile itself, so the image and this test cannot drift apart:
a vendored file that breaks the manifest storage, a template naming a static file that does not
exist or a page that only renders with DEBUG on fails here, not in front of a user.
"""

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import global_settings
from django.db import connection
from playwright.sync_api import Browser, Page

from annotate.models import Project
from concord_testing.processes import database_url, free_port, wait_for_http
from validators.demo import DEMO_LOGINS, demo_load
from validators.models import Run, Validator

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What each role opens (all 200) and what it is refused (403, never a 500), from the README's
# page table. "{validator}" and "{run}" are filled in from the demo project.
PAGES = {
    "owner": (
        ["", "p/{slug}/", "p/{slug}/grade/", "p/{slug}/grade/history/", "p/{slug}/pairwise/",
         "p/{slug}/validators/", "p/{slug}/validators/{validator}/", "p/{slug}/runs/{run}/",
         "p/{slug}/verdicts/", "p/{slug}/report-card/", "p/{slug}/rankings/", "p/{slug}/review/",
         "p/{slug}/exports/", "p/{slug}/settings/", "p/{slug}/import/", "api/docs/"],
        [],
    ),
    "annotator": (
        ["", "p/{slug}/", "p/{slug}/grade/", "p/{slug}/grade/history/", "p/{slug}/pairwise/",
         "p/{slug}/validators/", "p/{slug}/validators/{validator}/", "p/{slug}/verdicts/",
         "p/{slug}/report-card/", "p/{slug}/rankings/"],
        ["p/{slug}/review/", "p/{slug}/exports/", "p/{slug}/settings/", "p/{slug}/import/"],
    ),
    "reviewer": (
        ["", "p/{slug}/", "p/{slug}/validators/", "p/{slug}/validators/{validator}/",
         "p/{slug}/verdicts/", "p/{slug}/report-card/", "p/{slug}/rankings/", "p/{slug}/review/"],
        ["p/{slug}/grade/", "p/{slug}/pairwise/", "p/{slug}/exports/", "p/{slug}/settings/",
         "p/{slug}/import/"],
    ),
}
# WhiteNoise's answer for a file whose name carries its content hash.
IMMUTABLE = "max-age=315360000, public, immutable"
HASHED = re.compile(r"/static/(?P<name>[\w./-]+?)\.[0-9a-f]{12}\.(?P<ext>css|js|svg)$")


def dockerfile_commands() -> tuple[dict[str, str], list[str], list[str]]:
    """The image's ENV, its collectstatic step (leading VAR=value words become env) and CMD."""
    text = DOCKERFILE.read_text()
    env = dict(word.split("=", 1) for word in shlex.split(re.search(r"^ENV (.+)$", text, re.M)[1]))
    run = re.search(r"^RUN (.*collectstatic.*)$", text, re.M)[1]
    step = shlex.split(next(part for part in run.split("&&") if "collectstatic" in part))
    while "=" in step[0]:
        name, value = step.pop(0).split("=", 1)
        env[name] = value
    cmd = json.loads(re.search(r"^CMD (\[.+\])$", text, re.M)[1])
    return env, step, cmd


def production_env(tmp_path: Path, image_env: dict[str, str], **extra: str) -> dict[str, str]:
    # pytest's own process runs with DEBUG and eager Celery (concord_testing.pytest_env);
    # none of that may leak into the production processes.
    inherited = {k: v for k, v in os.environ.items()
                 if k not in {"DEBUG", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return {
        **inherited, **image_env, "DEBUG": "0", "CONCORD_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url(connection.settings_dict, connection.vendor),
        "PYTHONPATH": str(ROOT), **extra,
    }


@pytest.fixture
def demo_project(django_capture_on_commit_callbacks, settings):
    # gunicorn checks passwords with the production hashers, not the tests' fast MD5 one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    with django_capture_on_commit_callbacks(execute=True):
        project, _ = demo_load()
    return project


@pytest.fixture
def production_server(tmp_path, demo_project):
    image_env, collectstatic, cmd = dockerfile_commands()
    assert collectstatic[:2] == ["python", "manage.py"] and cmd[0] == "gunicorn", (collectstatic, cmd)

    built = subprocess.run(
        [sys.executable, *collectstatic[1:]], cwd=ROOT, env=production_env(tmp_path, image_env),
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    static_root = tmp_path / "var" / "staticfiles"
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    assert {"favicon.svg", "app.css", "app.js", "vendor/chart.umd.min.js"} <= set(manifest)

    port = free_port()
    # The image's CMD with a free local port and two workers (the machine is shared).
    args = [*cmd[1:]]
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    args[args.index("--workers") + 1] = "2"
    env = production_env(
        tmp_path, {k: v for k, v in image_env.items() if k != "SECRET_KEY"},
        SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="localhost",
    )
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args], cwd=ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    # Chromium keeps the production cookies (Secure, the default with DEBUG off) over plain HTTP
    # only for "localhost", which it counts as a secure context.
    base = f"http://localhost:{port}"
    try:
        status = wait_for_http(f"{base}/login/", timeout=60, alive=lambda: server.poll() is None)
        assert status == 200, log.read_text()[-3000:]
        yield base, manifest, log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.url == f"{base}/", page.url
    assert page.get_by_role("heading", name="Projects").is_visible()


def test_production_mode_serves_every_main_page_to_every_role(production_server, browser: Browser, demo_project):
    base, manifest, log = production_server
    project = Project.objects.get(pk=demo_project.pk)
    fill = {
        "slug": project.slug,
        "validator": Validator.objects.filter(project=project).order_by("pk").first().pk,
        "run": Run.objects.filter(project=project).order_by("pk").first().pk,
    }
    passwords = {username: password for username, password, _ in DEMO_LOGINS}
    static_seen: dict[str, str] = {}

    for username, (allowed, refused) in PAGES.items():
        context = browser.new_context()
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m, p=problems: m.type == "error" and p.append(f"console: {m.text}"))
        page.on("pageerror", lambda e, p=problems: p.append(f"page error: {e}"))
        page.on("response", lambda r, p=problems: r.status >= 400 and p.append(f"{r.status} {r.url}"))
        page.on("response", lambda r: "/static/" in r.url and static_seen.setdefault(
            r.url.removeprefix(base), f"{r.status} {r.headers.get('cache-control')}"))

        log_in(page, base, username, passwords[username])
        for path in allowed:
            url = f"{base}/{path.format(**fill)}"
            answer = page.goto(url, wait_until="networkidle")
            assert (username, url, answer.status) == (username, url, 200)
            assert page.locator("main, #swagger-ui").count() >= 1, (username, url)
        assert problems == [], (username, problems)

        for path in refused:
            url = f"{base}/{path.format(**fill)}"
            answer = page.request.get(url)
            assert (username, url, answer.status) == (username, url, 403)
            assert "does not allow this" in answer.text(), (username, url)

        page.goto(f"{base}/")
        icon = page.locator("link[rel=icon]").get_attribute("href")
        assert icon == f"/static/{manifest['favicon.svg']}"
        favicon = page.request.get(f"{base}{icon}")
        assert (favicon.status, favicon.headers["content-type"]) == (200, "image/svg+xml")
        assert favicon.body() == (ROOT / "static" / "favicon.svg").read_bytes()
        context.close()

    # Every static file the pages loaded is the hashed copy collectstatic made, served by
    # WhiteNoise with a cache-forever header.
    served = {HASHED.search(url)["name"] + "." + HASHED.search(url)["ext"]: answer
              for url, answer in static_seen.items() if HASHED.search(url)}
    assert {"app.css", "app.js", "vendor/pico.min.css", "vendor/htmx.min.js",
            "vendor/chart.umd.min.js"} <= set(served), sorted(static_seen)
    assert set(served.values()) == {f"200 {IMMUTABLE}"}, served
    unhashed = {url: answer for url, answer in static_seen.items() if not HASHED.search(url)}
    assert all(answer.startswith("200 ") for answer in unhashed.values()), unhashed

    # Django logs each refusal with its traceback; nothing else may have raised.
    text = log.read_text()
    assert "Internal Server Error" not in text, text[-3000:]
    refusals = sum(len(refused) for _, refused in PAGES.values())
    assert (text.count("Traceback"), text.count("Forbidden (Permission denied)")) == (refusals, refusals)
