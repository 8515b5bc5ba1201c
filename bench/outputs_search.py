"""Server time of the outputs list (search and filters) and of one output's page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/outputs_search.py
    python bench/outputs_search.py                      # SQLite
    options: --outputs 100000 --rounds 20

A throw-away database gets one project of `outputs` outputs (10 systems per input) whose
texts are drawn from a small vocabulary, with one rare word planted in 1 in 200 outputs;
2% of the outputs are graded by two annotators with a criterion verdict. Each round is one
GET through Django's test client (full middleware stack, session auth) of the first page of
the list, as a browser without htmx asks for it.
"""

from __future__ import annotations

import argparse
import random
import time

from _setup import fresh_database, percentile

SYSTEMS = 10
VOCABULARY = (
    "account billing settings order parcel refund password invoice upload limit team member "
    "invite admin browser desktop seat plan export report email link reset support contact "
    "delivery return warranty charge card bank payment receipt policy days weeks customer"
).split()
RARE = "zeppelin"


def build_project(n_outputs: int):
    from django.contrib.auth import get_user_model

    from annotate.models import Grade, GradeCriterion, Output, Role, Sample
    from annotate.services.criteria import criterion_create, current_versions
    from annotate.services.projects import membership_set, project_create

    rng = random.Random(7)
    User = get_user_model()
    owner = User.objects.create_user("bench-owner", password="x")
    graders = [User.objects.create_user(f"bench-grader-{i}", password="x") for i in range(2)]
    project = project_create(name="Search bench", slug="search-bench", owner=owner)
    for user in graders:
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
    criterion_create(project=project, key="grounded", definition="Supported by the article.",
                     reason="rubric", author=owner)

    def words(n: int) -> str:
        return " ".join(rng.choice(VOCABULARY) for _ in range(n))

    n_inputs = max(1, n_outputs // SYSTEMS)
    samples = Sample.objects.bulk_create(
        [Sample(project=project, external_id=f"item-{i}", input_text=words(40), reference=words(30))
         for i in range(n_inputs)],
        batch_size=2000,
    )
    outputs = []
    for sample in samples:
        for s in range(SYSTEMS):
            text = words(120)
            if rng.random() < 1 / 200:
                text += f" {RARE}"
            outputs.append(Output(project=project, sample=sample, system=f"system-{s}", text=text))
    Output.objects.bulk_create(outputs, batch_size=2000)
    ids = list(Output.objects.filter(project=project).values_list("id", flat=True))
    graded = rng.sample(ids, k=max(1, len(ids) // 50))
    from django.utils import timezone

    now = timezone.now()
    grades = Grade.objects.bulk_create([
        Grade(project=project, output_id=pk, annotator=user, verdict=rng.choice(["pass", "fail"]),
              submitted_at=now, selector="bench")
        for pk in graded for user in graders
    ], batch_size=2000)
    [version] = current_versions(project).values()
    GradeCriterion.objects.bulk_create([
        GradeCriterion(grade=g, criterion_id=version.criterion_id, criterion_version=version,
                       verdict=rng.choice(["pass", "fail"]))
        for g in grades
    ], batch_size=2000)
    return project, owner, graded


def timed(client, url: str, rounds: int) -> tuple[float, float, int]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    count = response.context["page"].paginator.count if response.context and "page" in response.context else -1
    return percentile(times, 50), percentile(times, 95), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    label = fresh_database("find_outputs_search")
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    start = time.perf_counter()
    project, owner, graded = build_project(args.outputs)
    print(f"{label}: {args.outputs} outputs built in {time.perf_counter() - start:.1f} s")
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk import
    client = Client()
    client.force_login(owner)
    base = f"/p/{project.slug}/outputs/"
    cases = [
        ("no filter", base),
        (f"q={RARE} (rare word)", f"{base}?q={RARE}"),
        ("q=refund (common word)", f"{base}?q=refund"),
        ("q=refund+invoice", f"{base}?q=refund+invoice"),
        ("system=system-3", f"{base}?system=system-3"),
        ("labelled=yes", f"{base}?labelled=yes"),
        ("human=grounded:fail", f"{base}?human=grounded:fail"),
        ("q + system + labelled", f"{base}?q=refund&system=system-3&labelled=yes"),
        ("output page", f"{base}{graded[0]}/"),
    ]
    print(f"{'request':<28} {'median ms':>10} {'p95 ms':>10} {'matches':>9}")
    for name, url in cases:
        timed(client, url, 1)  # warm caches once
        median, p95, count = timed(client, url, args.rounds)
        print(f"{name:<28} {median:>10.1f} {p95:>10.1f} {count:>9}")


if __name__ == "__main__":
    main()
