"""Load: concurrent annotators grading through the API and the HTML grading page, against
gunicorn on PostgreSQL, then an integrity check in the database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/load_annotators.py
    options: --seconds 180 (--seconds 30 for a quick run) --annotators 50 --overlaps 1,3
             --outputs 3000 --workers 3 --threads 4 --name load

A throw-away database (`concord_bench_<name>` next to DATABASE_URL's) gets one project per
overlap, each with `outputs` outputs (two criteria) and the same `annotators` members. gunicorn
(gthread) serves the app with DEBUG off when the static files can be collected, else with
DEBUG on (said in the output). Half of the annotators grade through the API (POST queue/next,
then POST grades with per-criterion verdicts), the other half through the grading page as a
browser with htmx does (GET the page, then POST the form with HX-Request and read the next
item from the answer). Nobody waits between items: this measures the server at saturation,
with the load generator on the same machine.

Checked afterwards, in the database:
- no 5xx answer (and every other non-success answer is counted and printed),
- no output holds grades from more annotators than the project's overlap,
- no lost or duplicated grade: the multiset of (annotator, output) pairs the clients were told
  was saved equals the multiset of stored grades. A request whose answer never arrived is
  counted apart and its output left out of this comparison (nobody knows whether it was saved).
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from _setup import ROOT, fresh_database, percentile

CRITERIA = ("grounded", "helpful")
ASSIGNMENT = re.compile(r'name="assignment" value="(\d+)"')
SHOWN_AT = re.compile(r'name="shown_at" value="([^"]*)"')
VERSION = re.compile(r'name="v_(\w+)" value="(\d+)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, var_dir: str) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ, "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_COOKIES": "0", "CONCORD_VAR_DIR": var_dir,
        "CELERY_TASK_ALWAYS_EAGER": "1", "LOG_LEVEL": "ERROR", "PYTHONPATH": str(ROOT),
    }
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
        capture_output=True, text=True, check=False,
    )
    mode = "DEBUG off"
    if collected.returncode != 0:
        env["DEBUG"] = "1"
        mode = "DEBUG on (collectstatic failed: " + collected.stderr.strip().splitlines()[-1][:120] + ")"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login/")
            if connection.getresponse().status == 200:
                return server, mode
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("gunicorn did not answer within 60 s")


# -- the clients -----------------------------------------------------------------------------
@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter = field(default_factory=collections.Counter)
    saved: list[tuple[int, int]] = field(default_factory=list)  # (annotator id, output id)
    saved_assignments: list[tuple[int, int]] = field(default_factory=list)  # HTML: (annotator, assignment)
    unanswered: int = 0
    unknown_assignments: set[int] = field(default_factory=set)
    unknown_outputs: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds * 1000)
            self.statuses[(kind, status)] += 1


class Browser:
    """One HTTP/1.1 connection with a cookie jar. Never retries: a retried POST could save a
    grade twice, which is exactly what this benchmark looks for."""

    def __init__(self, port: int, cookies: dict[str, str] | None = None, headers: dict | None = None):
        self.port, self.cookies, self.headers = port, dict(cookies or {}), dict(headers or {})
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                self.cookies[key] = morsel.value
        if (response.getheader("Connection") or "").lower() == "close":
            self.connection.close()
            self.connection = None
        return response.status, data


def timed(tally: Tally, kind: str, browser: Browser, *request):
    started = time.perf_counter()
    try:
        status, data = browser.request(*request)
    except (OSError, http.client.HTTPException):
        with tally.lock:
            tally.unanswered += 1
            tally.statuses[(kind, "no answer")] += 1
        return None, b""
    tally.record(kind, status, time.perf_counter() - started)
    return status, data


def api_annotator(port: int, slug: str, user_id: int, token: str, deadline: float, tally: Tally, rng: random.Random):
    browser = Browser(port, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    base = f"/api/projects/{slug}"
    while time.monotonic() < deadline:
        status, data = timed(tally, "api claim", browser, "POST", f"{base}/queue/next/", b'{"mode": "single"}')
        if status == 204:
            time.sleep(0.5)
            continue
        if status != 200:
            continue
        item = json.loads(data)
        output_id = item["output"]["id"]
        grade = {
            "output": output_id, "assignment": item["assignment"], "verdict": rng.choice(["pass", "fail"]),
            "criteria": {key: rng.choice(["pass", "fail"]) for key in CRITERIA},
        }
        status, _ = timed(tally, "api grade", browser, "POST", f"{base}/grades/", json.dumps(grade).encode())
        with tally.lock:
            if status == 201:
                tally.saved.append((user_id, output_id))
            elif status is None:
                tally.unknown_outputs.add(output_id)


def html_annotator(port: int, slug: str, user_id: int, session_key: str, deadline: float, tally: Tally, rng: random.Random):
    browser = Browser(port, cookies={"sessionid": session_key})
    page = f"/p/{slug}/grade/"
    html = ""
    while time.monotonic() < deadline:
        if not ASSIGNMENT.search(html):
            status, data = timed(tally, "html page", browser, "GET", page)
            html = data.decode("utf-8", "replace") if status == 200 else ""
            if not ASSIGNMENT.search(html):
                time.sleep(0.5)
                continue
        assignment = int(ASSIGNMENT.search(html).group(1))
        form = {
            "csrfmiddlewaretoken": CSRF.search(html).group(1), "assignment": str(assignment),
            "shown_at": SHOWN_AT.search(html).group(1) if SHOWN_AT.search(html) else "",
            "verdict": rng.choice(["pass", "fail"]),
        }
        for key, version in VERSION.findall(html):
            form[f"v_{key}"] = version
            form[f"c_{key}"] = rng.choice(["pass", "fail"])
        body = "&".join(f"{k}={_quote(v)}" for k, v in form.items()).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
            "X-CSRFToken": browser.cookies.get("csrftoken", ""),
        }
        status, data = timed(tally, "html grade", browser, "POST", f"/p/{slug}/grade/submit/", body, headers)
        html = data.decode("utf-8", "replace") if status == 200 else ""
        with tally.lock:
            if status == 200 and "Saved:" in html:
                tally.saved_assignments.append((user_id, assignment))
            elif status is None:
                tally.unknown_assignments.add(assignment)


def _quote(value: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(value)


# -- set-up and checks (in this process, straight on the database) -----------------------------
def build_project(overlap: int, n_outputs: int, annotators: list) -> object:
    from annotate.models import Output, Role, Sample
    from annotate.services.criteria import criterion_create
    from annotate.services.projects import membership_set, project_create

    owner = annotators[0]
    project = project_create(name=f"Load, overlap {overlap}", slug=f"load-overlap-{overlap}", owner=owner, overlap=overlap)
    for user in annotators[1:]:
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    for key in CRITERIA:
        criterion_create(project=project, key=key, definition=f"The answer is {key}.", reason="rubric", author=owner)
    samples = Sample.objects.bulk_create([
        Sample(project=project, external_id=f"q{i}", input_text=f"Customer question {i}?") for i in range(n_outputs // 2)
    ])
    text = "Open Settings > Account and choose Reset. We email you a link valid for 30 minutes. " * 4
    Output.objects.bulk_create([
        Output(project=project, sample=sample, system=system, text=text)
        for sample in samples for system in ("v1", "v2")
    ])
    return project


def credentials(annotators: list) -> tuple[dict, dict]:
    """API tokens and logged-in sessions made directly, so the run measures grading, not the
    (rate-limited) login endpoints."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from rest_framework.authtoken.models import Token

    tokens, sessions = {}, {}
    for user in annotators:
        tokens[user.pk] = Token.objects.get_or_create(user=user)[0].key
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions[user.pk] = session.session_key
    return tokens, sessions


def check(project, tally: Tally) -> dict:
    from django.db.models import Count

    from annotate.models import Assignment, Grade

    grades = Grade.objects.filter(output__project=project)
    assignment_outputs = dict(
        Assignment.objects.filter(pk__in=[a for _, a in tally.saved_assignments] + list(tally.unknown_assignments))
        .values_list("pk", "output_id")
    )
    unknown = tally.unknown_outputs | {assignment_outputs[a] for a in tally.unknown_assignments if a in assignment_outputs}
    told = collections.Counter(tally.saved + [(u, assignment_outputs.get(a)) for u, a in tally.saved_assignments])
    stored = collections.Counter(grades.values_list("annotator_id", "output_id"))
    told = collections.Counter({k: n for k, n in told.items() if k[1] not in unknown})
    stored_known = collections.Counter({k: n for k, n in stored.items() if k[1] not in unknown})
    lost = sum((told - stored_known).values())
    # Nobody undoes in this run, so one annotator holding two grades of one output is a duplicate.
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    # Stored although the client was answered with an error.
    unreported = sum(1 for pair in stored_known if pair not in told)
    over = (
        grades.values("output_id").annotate(n=Count("annotator_id", distinct=True))
        .filter(n__gt=project.overlap).count()
    )
    return {
        "grades": grades.count(), "lost": lost, "duplicated": duplicated, "over_overlap": over,
        "unreported": unreported,
        "unknown": len(unknown),
        "fivexx": sum(n for (kind, status), n in tally.statuses.items() if isinstance(status, int) and status >= 500),
    }


def run_load(port: int, project, annotators: list, tokens: dict, sessions: dict, seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = []
    for i, user in enumerate(annotators):
        rng = random.Random(i)
        if i % 2 == 0:
            target, args = api_annotator, (port, project.slug, user.pk, tokens[user.pk], deadline, tally, rng)
        else:
            target, args = html_annotator, (port, project.slug, user.pk, sessions[user.pk], deadline, tally, rng)
        threads.append(threading.Thread(target=target, args=args, daemon=True))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--overlaps", default="1,3")
    parser.add_argument("--outputs", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--name", default="load", help="the throw-away database is concord_bench_<name>")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("note: DATABASE_URL is not PostgreSQL; the figures in the README are for PostgreSQL", file=sys.stderr)
    # One key for this process (which signs the sessions) and the server (which reads them).
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    label = fresh_database(args.name)

    from django.contrib.auth import get_user_model

    User = get_user_model()
    annotators = [User.objects.create_user(f"annotator-{i:02d}", password=secrets.token_urlsafe(12)) for i in range(args.annotators)]
    overlaps = [int(x) for x in args.overlaps.split(",")]
    projects = {overlap: build_project(overlap, args.outputs, annotators) for overlap in overlaps}
    tokens, sessions = credentials(annotators)
    from django.db import connections

    connections.close_all()

    port = free_port()
    var_dir = tempfile.mkdtemp(prefix="concord-load-")
    Path(var_dir, "celery").mkdir()
    server, mode = start_gunicorn(port, args.workers, args.threads, var_dir)
    failed = False
    try:
        print(f"{label}, gunicorn gthread {args.workers} workers × {args.threads} threads, {mode}; "
              f"{args.annotators} annotators (half API, half HTML page), {args.outputs} outputs, {args.seconds:.0f} s per overlap")
        for overlap in overlaps:
            tally, elapsed = run_load(port, projects[overlap], annotators, tokens, sessions, args.seconds)
            result = check(projects[overlap], tally)
            everything = [ms for values in tally.latencies.values() for ms in values]
            print(f"\noverlap {overlap}: {result['grades']} grades in {elapsed:.1f} s = "
                  f"{result['grades'] / elapsed:.1f} grades/s, {len(everything) / elapsed:.1f} requests/s")
            print(f"  {'request':<11} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
            for kind in sorted(tally.latencies):
                values = tally.latencies[kind]
                print(f"  {kind:<11} {len(values):>6} {percentile(values, 50):>8.0f} {percentile(values, 95):>8.0f} {percentile(values, 99):>8.0f}")
            print(f"  {'all':<11} {len(everything):>6} {percentile(everything, 50):>8.0f} {percentile(everything, 95):>8.0f} {percentile(everything, 99):>8.0f}")
            print("  answers: " + ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(tally.statuses.items(), key=str)))
            print(f"  checks: 5xx {result['fivexx']}, outputs over overlap {result['over_overlap']}, "
                  f"lost {result['lost']}, duplicated {result['duplicated']}, saved despite an error answer "
                  f"{result['unreported']}, unanswered requests {tally.unanswered}")
            failed |= bool(
                result["fivexx"] or result["over_overlap"] or result["lost"] or result["duplicated"]
                or result["unreported"]
            )
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    print("\nFAILED" if failed else "\nall checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
