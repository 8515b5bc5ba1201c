"""Server time from submitting a grade to the next item's HTML, with 100,000 outputs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/grading_roundtrip.py
    python bench/grading_roundtrip.py                      # SQLite
    options: --outputs 100000 --rounds 300 --graded 5000 --baseline-rounds 40

A throw-away database gets one project of `outputs` outputs (10 systems per input, three
criteria), `graded` of them already graded by three other annotators, and a few live claims.
Each round is one htmx POST to the grade-submit endpoint through Django's test client (the
full middleware stack, session auth, CSRF off as the test client does): the grade with a
per-criterion verdict and a note is stored, the next output is claimed, and the workspace
partial is rendered. The target is p95 ≤ 50 ms on PostgreSQL. Settings are production's (DEBUG
off, hashed static files), as gunicorn serves the app: DEBUG's query log and template debug
information add about 8 ms a round.

The outputs are texts as LLMs write them, 0.9 to 2.9 KB, each one different (Markdown with a
fenced Python block, a chat transcript, Markdown prose with a table; see reading_text), so
every round renders Markdown, highlights code and cleans the HTML of a text never seen before:
no cache helps the measured path. "CPU" is this process's time (Django, rendering, the
database driver), which the machine's other jobs disturb less than the wall clock.

Baseline, measured in the same run: the same round with the per-process cache of the
project's output ids cleared before every request, i.e. the pool loaded from the database in
full each time (what the assignment service did before).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from datetime import timedelta

from _setup import fresh_database, percentile

TARGET_P95_MS = 50.0
SYSTEMS = 10


def reading_text(n: int) -> str:
    """One of three shapes LLM outputs take (Markdown with a fenced Python block, a chat
    transcript, Markdown prose), 1 to 4 KB, different for every output: each round renders a
    text never rendered before, as grading a fresh output does."""
    steps = "".join(f"{k}. Open **Settings** > Account {n}, step {k}, and check the `plan_{n}` field.\n"
                    for k in range(1, 7 + n % 14))
    code = (
        "```python\n"
        f"from concord_cloud import Client\n\nclient = Client(token=\"...\")  # ticket {n}\n"
        + "".join(f"client.folders.share(\"folder-{n}-{k}\", role=\"viewer\", expires_days={k})\n"
                  for k in range(4 + n % 12))
        + "```\n"
    )
    shape = n % 3
    if shape == 0:
        return (f"## Sharing folder {n}\n\nThanks for reaching out! Here is how:\n\n{steps}\n"
                f"Or with the Python client:\n\n{code}\n> Links expire after the days you choose.\n")
    if shape == 1:
        messages = [
            {"role": "system", "content": f"You are the support assistant for account {n}."},
            {"role": "user", "content": f"How do I share folder {n} with a colleague?"},
            {"role": "assistant", "content": f"### Steps\n\n{steps}"},
            {"role": "user", "content": "Can I script it?"},
            {"role": "assistant", "content": f"Yes:\n\n{code}"},
        ]
        return json.dumps(messages)
    return (f"Thanks for reaching out about order {n}! " * 4 + "\n\n" + steps + "\n"
            + "| plan | storage |\n|---|---|\n| Basic | 200 GB |\n| Pro | 2 TB |\n\n"
            + f"*Hope that helps, ticket {n}.* " * 6)


def build_project(n_outputs: int, n_graded: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotate.models import Assignment, Grade, GradeCriterion, Output, Role, Sample
    from annotate.services.criteria import criterion_create, current_versions
    from annotate.services.projects import membership_set, project_create

    User = get_user_model()
    owner = User.objects.create_user("bench-owner", password="x")
    annotator = User.objects.create_user("bench-annotator", password="x")
    others = [User.objects.create_user(f"bench-other-{i}", password="x") for i in range(3)]
    project = project_create(
        name="Grading bench", slug="grading-bench", owner=owner,
        guidelines="Fail answers that invent a policy, a number or a menu path.",
    )
    for user in [annotator, *others]:
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    for key, definition in [
        ("grounded", "Every factual claim is supported by the article."),
        ("helpful", "Tells the customer what to do next."),
        ("tone", "Polite and calm."),
    ]:
        criterion_create(project=project, key=key, definition=definition, reason="rubric", author=owner)

    n_samples = n_outputs // SYSTEMS
    samples = Sample.objects.bulk_create(
        [
            Sample(
                project=project, external_id=f"item-{i}", input_text=f"Customer question {i}?",
                reference="The article says: Settings > Account.", context={"plan": "Basic"},
            )
            for i in range(n_samples)
        ],
        batch_size=5000,
    )
    Output.objects.bulk_create(
        [
            Output(project=project, sample=sample, system=f"system-{s}", text=reading_text(i * SYSTEMS + s))
            for i, sample in enumerate(samples) for s in range(SYSTEMS)
        ],
        batch_size=5000,
    )
    output_ids = list(Output.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    now = timezone.now()
    versions = current_versions(project)
    # The others graded over the past days, one grade every 10 s: a log read once and settled
    # (grades younger than labels.SETTLE_SECONDS are read again on every claim).
    grades = Grade.objects.bulk_create(
        [
            Grade(
                project=project, output_id=output_id, annotator=others[i % 3], verdict="pass",
                submitted_at=now - timedelta(seconds=10 * (n_graded - i)),
                started_at=now - timedelta(seconds=10 * (n_graded - i) + 30),
                selector="random", selector_why="chosen at random",
            )
            for i, output_id in enumerate(output_ids[:n_graded])
        ],
        batch_size=5000,
    )
    GradeCriterion.objects.bulk_create(
        [
            GradeCriterion(
                grade=grade, criterion_id=criterion_id, criterion_version=version, verdict="pass"
            )
            for grade in grades for criterion_id, version in list(versions.items())[:2]
        ],
        batch_size=5000,
    )
    for i, other in enumerate(others):
        Assignment.objects.create(
            project=project, output_id=output_ids[-1 - i], annotator=other, selector="random",
            claimed_at=now, expires_at=now + timedelta(minutes=30),
        )
    return project, annotator


ASSIGNMENT = re.compile(r'name="assignment" value="(\d+)"')
HIDDEN = re.compile(r'type="hidden" name="((?:v_[\w-]+)|shown_at)" value="([^"]*)"')


def form_fields(html: str, i: int) -> dict:
    """What the browser's form sends: the claim, when it was shown, the criterion versions
    shown, the verdict, a verdict for one criterion and sometimes a note."""
    data = dict(HIDDEN.findall(html))
    data.update({
        "assignment": ASSIGNMENT.search(html).group(1),
        "verdict": ("pass", "fail", "unsure")[i % 3],
        "c_grounded": ("pass", "fail", "")[i % 3], "c_helpful": "", "c_tone": "",
        "note": "bench" if i % 5 == 0 else "",
    })
    return data


def run_rounds(client, url: str, first_html: str, rounds: int, clear_cache: bool) -> tuple[list, str, list]:
    from annotate import queries as annotate_queries

    timings, cpu = [], []
    html = first_html
    for i in range(rounds):
        data = form_fields(html, i)
        if clear_cache:
            annotate_queries._output_ids.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.post(url, data, HTTP_HX_REQUEST="true")
        timings.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - cpu_started) * 1e3)
        assert response.status_code == 200, response.status_code
        html = response.content.decode()
        assert "Saved:" in html, "the grade was not saved"
    return timings, html, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--graded", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--baseline-rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    label = fresh_database("grading_roundtrip", production=True)
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from annotate.models import Grade

    started = time.perf_counter()
    project, annotator = build_project(args.outputs, args.graded)
    if connection.vendor == "postgresql":
        # Vacuum now, so that autovacuum does not wake up on the fresh tables mid-measurement.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    print(
        f"{label}: {args.outputs:,} outputs, {args.graded:,} already graded, "
        f"built in {time.perf_counter() - started:.1f} s (DEBUG={settings.DEBUG})"
    )

    client = Client()
    client.force_login(annotator)
    # How fast this machine serves a request that does nothing, to read the figures against.
    trivial = []
    for _ in range(50):
        tick = time.perf_counter()
        client.get(reverse("login"))
        trivial.append((time.perf_counter() - tick) * 1e3)
    page = client.get(reverse("grade-page", args=[project.slug]))
    assert page.status_code == 200
    url = reverse("grade-submit", args=[project.slug])
    _, html, _ = run_rounds(client, url, page.content.decode(), args.warmup, clear_cache=False)
    timings, html, cpu = run_rounds(client, url, html, args.rounds, clear_cache=False)
    baseline, html, baseline_cpu = run_rounds(client, url, html, args.baseline_rounds, clear_cache=True)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as counted:
        client.post(url, form_fields(html, 1), HTTP_HX_REQUEST="true")
    n_queries = len(counted)

    graded = Grade.objects.filter(annotator=annotator).count()
    print(f"{'submit → next item':<44}{'rounds':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}"
          f"{'CPU median':>12}{'CPU p95':>9}")
    for name, values, cpu_values in [
        ("this build (cached output ids)", timings, cpu),
        ("baseline (all ids loaded every request)", baseline, baseline_cpu),
    ]:
        print(
            f"{name:<44}{len(values):>7}{percentile(values, 50):>11.1f}"
            f"{percentile(values, 95):>9.1f}{max(values):>9.1f}"
            f"{percentile(cpu_values, 50):>12.1f}{percentile(cpu_values, 95):>9.1f}"
        )
    ratio = percentile(baseline, 50) / percentile(timings, 50)
    p95 = percentile(timings, 95)
    print(f"SQL queries per round: {n_queries}; grades stored by the annotator: {graded}")
    print(
        f"calibration: GET /login/ median {percentile(trivial, 50):.1f} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"baseline / this build (median): {ratio:.1f}×")
    print(f"p95 {p95:.1f} ms {'≤' if p95 <= TARGET_P95_MS else '>'} target {TARGET_P95_MS:.0f} ms")


if __name__ == "__main__":
    main()
