"""Gold-label export of 1,000,000 grades (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/export_gold.py
    ... --grades 200000            # a smaller run

The project: 250,000 outputs (25,000 inputs x 10 systems), 4 annotators per output (1,000,000
grades), two criteria with a verdict on every grade (2,000,000 criterion verdicts, 30% of one
criterion's under an older version, so stale), 1,000 adjudications. The data are generated
inside PostgreSQL (INSERT ... SELECT over generate_series), then every measurement runs in its
own process so that each peak RSS is its own:

* `annotate.gold.write_gold` to CSV, JSON Lines and Parquet (chunked by output id, one
  repeatable-read snapshot), without a chosen-validator provider: the export's own cost;
* the same CSV export with the configured provider (`validators.evidence.chosen_verdicts`,
  which computes the report card, so reads every label of the project through
  `annotate.labels.load_votes`), and that provider alone, in a fresh process as a worker
  would start;
* a naive baseline: `list(queryset)` of the grades with their outputs, samples and criterion
  verdicts, majority in Python, csv.writer, measured on a tenth of the grades and extrapolated
  linearly (time, and memory above the process's start, both grow with the grades it holds).

Targets: at most 60 s and peak RSS under 500 MB for 1,000,000 grades.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _setup import ROOT, fresh_database, peak_rss_mb

N_SYSTEMS = 10
N_ANNOTATORS = 4


def populate(n_grades: int) -> int:
    from django.contrib.auth.models import User
    from django.db import connection

    from annotate.models import Criterion, CriterionVersion, Project
    from annotate.services.criteria import criterion_create, criterion_version_publish
    from annotate.services.projects import membership_set, project_create

    owner = User.objects.create(username="bench-owner")
    project = project_create(name="Export bench", slug="export-bench", owner=owner)
    annotators = [User.objects.create(username=f"annotator-{i}") for i in range(N_ANNOTATORS)]
    for user in annotators:
        membership_set(project=project, user=user, role="annotator")
    grounded = criterion_create(project=project, key="grounded", name="Grounded", definition="v1")
    criterion_create(project=project, key="helpful", name="Helpful", definition="v1")
    criterion_version_publish(criterion=grounded, author=owner, definition="v2", reason="bench")
    versions = {
        (v.criterion.key, v.number): v.pk
        for v in CriterionVersion.objects.select_related("criterion")
    }
    criteria = dict(Criterion.objects.values_list("key", "pk"))
    n_outputs = n_grades // N_ANNOTATORS
    n_samples = n_outputs // N_SYSTEMS
    p = project.pk
    annotator_ids = ",".join(str(u.pk) for u in annotators)
    statements = [
        "SELECT setseed(0.42)",
        f"""INSERT INTO annotate_sample (project_id, external_id, input_text, reference, metadata, created_at)
            SELECT {p}, 'item-' || i, 'Customer asks, ticket ' || i || ': how do I change the email address on my account and keep my order history?',
                   'Open Settings, then Account, then Email. Your history stays.', '{{}}', now()
            FROM generate_series(1, {n_samples}) AS i""",
        f"""INSERT INTO annotate_output (project_id, sample_id, system, text, metadata, created_at)
            SELECT {p}, s.id, 'system-' || k,
                   'System ' || k || ' answers ticket ' || s.external_id || ': go to Settings, then Account, then Email, type the new address and confirm it from your inbox.',
                   '{{}}', now()
            FROM annotate_sample s CROSS JOIN generate_series(0, {N_SYSTEMS - 1}) AS k
            WHERE s.project_id = {p}""",
        f"""INSERT INTO annotate_grade (project_id, output_id, annotator_id, retracted, verdict, note,
                                        submitted_at, selector, selector_why)
            SELECT {p}, o.id, a, false,
                   CASE WHEN r < 0.62 THEN 'pass' WHEN r < 0.95 THEN 'fail' ELSE 'unsure' END,
                   '', now(), 'random', ''
            FROM annotate_output o CROSS JOIN unnest(ARRAY[{annotator_ids}]) AS a
                 CROSS JOIN LATERAL (SELECT random() + o.id * 0 + a * 0 AS r) AS draw
            WHERE o.project_id = {p}""",
        f"""INSERT INTO annotate_gradecriterion (grade_id, criterion_id, criterion_version_id, verdict)
            SELECT g.id, {criteria['grounded']},
                   CASE WHEN random() < 0.3 THEN {versions[('grounded', 1)]} ELSE {versions[('grounded', 2)]} END,
                   CASE WHEN random() < 0.7 THEN 'pass' ELSE 'fail' END
            FROM annotate_grade g WHERE g.project_id = {p}""",
        f"""INSERT INTO annotate_gradecriterion (grade_id, criterion_id, criterion_version_id, verdict)
            SELECT g.id, {criteria['helpful']}, {versions[('helpful', 1)]},
                   CASE WHEN random() < 0.8 THEN 'pass' ELSE 'fail' END
            FROM annotate_grade g WHERE g.project_id = {p}""",
        f"""INSERT INTO annotate_adjudication (output_id, criterion_id, verdict, reason, reviewer_id, created_at)
            SELECT o.id, NULL, 'fail', 'bench', {owner.pk}, now()
            FROM annotate_output o WHERE o.project_id = {p} ORDER BY o.id LIMIT 1000""",
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
    return Project.objects.get(pk=p).pk


def measure_streaming(fmt: str, path: str, provider: bool) -> dict:
    from django.conf import settings

    from annotate.gold import write_gold
    from annotate.models import Project

    if not provider:
        settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = None
    project = Project.objects.get(slug="export-bench")
    started = time.perf_counter()
    with open(path, "wb") as stream:
        rows = write_gold(project, fmt, stream)
    return {"seconds": time.perf_counter() - started, "rows": rows,
            "mb": os.path.getsize(path) / 1e6}


def measure_provider() -> dict:
    from annotate.evidence import load_chosen_verdicts
    from annotate.models import Project

    project = Project.objects.get(slug="export-bench")
    started = time.perf_counter()
    load_chosen_verdicts(project)
    return {"seconds": time.perf_counter() - started, "rows": 0, "mb": 0}


def measure_naive(fraction: float, path: str) -> dict:
    """The obvious ORM version: every grade object in memory, then group in Python."""
    import csv
    from collections import Counter, defaultdict

    from annotate.models import Grade, Output, Project

    project = Project.objects.get(slug="export-bench")
    last = Output.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    n_outputs = last.count()
    limit_id = last[max(int(n_outputs * fraction) - 1, 0)]
    started = time.perf_counter()
    grades = list(
        Grade.objects.filter(project=project, output_id__lte=limit_id, superseded_by__isnull=True,
                             retracted=False)
        .select_related("output__sample").prefetch_related("criterion_verdicts__criterion")
    )
    by_output = defaultdict(list)
    for grade in grades:
        by_output[grade.output_id].append(grade)
    rows = 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        for output_grades in by_output.values():
            output = output_grades[0].output
            targets = defaultdict(Counter)
            for grade in output_grades:
                targets[""][grade.verdict] += 1
                for verdict in grade.criterion_verdicts.all():
                    targets[verdict.criterion.key][verdict.verdict] += 1
            for key, counts in targets.items():
                gold = "pass" if counts["pass"] > counts["fail"] else "fail" if counts["fail"] > counts["pass"] else "tie"
                writer.writerow([output.pk, output.sample.external_id, output.system, output.sample.input_text,
                                 output.text, key, gold, sum(counts.values())])
                rows += 1
    return {"seconds": time.perf_counter() - started, "rows": rows, "grades": len(grades)}


def child(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    start_rss = peak_rss_mb()
    path = tempfile.mktemp(suffix=f".{args.fmt}")
    try:
        if args.run == "naive":
            result = measure_naive(args.fraction, path)
        elif args.run == "provider":
            result = measure_provider()
        else:
            result = measure_streaming(args.fmt, path, provider=not args.no_provider)
    finally:
        if os.path.exists(path):
            os.remove(path)
    result["peak_rss_mb"] = peak_rss_mb()
    result["start_rss_mb"] = start_rss
    print(json.dumps(result))


def run_child(*extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *extra], check=True, capture_output=True, text=True, env=os.environ,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grades", type=int, default=1_000_000)
    parser.add_argument("--naive-fraction", type=float, default=0.1)
    parser.add_argument("--run", choices=["streaming", "naive", "provider"])
    parser.add_argument("--no-provider", action="store_true")
    parser.add_argument("--fmt", default="csv")
    parser.add_argument("--fraction", type=float, default=0.1)
    args = parser.parse_args()
    if args.run:
        child(args)
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    label = fresh_database("export")
    started = time.perf_counter()
    populate(args.grades)
    print(f"Gold export benchmark on {label}: {args.grades:,} grades, "
          f"{args.grades // N_ANNOTATORS:,} outputs x 3 targets "
          f"(generated in {time.perf_counter() - started:.0f} s)")
    results = {
        fmt: run_child("--run", "streaming", "--fmt", fmt, "--no-provider")
        for fmt in ("csv", "jsonl", "parquet")
    }
    configured = run_child("--run", "streaming", "--fmt", "csv")
    provider = run_child("--run", "provider")
    naive = run_child("--run", "naive", "--fraction", str(args.naive_fraction))
    scale = args.grades / max(naive["grades"], 1)
    naive_full = naive["seconds"] * scale

    def line(label: str, r: dict, ratio: bool = True) -> None:
        rows = f"{r['rows']:,}" if r.get("rows") else ""
        speedup = f"{naive_full / r['seconds']:>7.1f}x" if ratio else ""
        print(f"{label:<58}{r['seconds']:>9.1f}{rows:>11}{r['peak_rss_mb']:>13.0f}{speedup}")

    print(f"{'method':<58}{'seconds':>9}{'rows':>11}{'peak RSS MB':>13}{'ratio':>8}")
    for fmt, r in results.items():
        line(f"write_gold {fmt} ({r['mb']:.0f} MB file), no validator provider", r)
    line("write_gold csv, configured chosen-validator provider", configured)
    line("  the provider alone (report card over every label)", provider, ratio=False)
    line(f"naive list(queryset), {naive['grades']:,} grades", naive, ratio=False)
    # Memory above the process's start (Django loaded) grows with the grades held.
    naive_rss = naive["start_rss_mb"] + (naive["peak_rss_mb"] - naive["start_rss_mb"]) * scale
    print(f"{'naive, extrapolated to ' + format(args.grades, ',') + ' grades':<58}"
          f"{naive_full:>9.1f}{'':>11}{naive_rss:>13.0f}{1:>7.1f}x")
    for label, rows in (("export alone", list(results.values())), ("with the provider", [configured])):
        slowest = max(r["seconds"] for r in rows)
        heaviest = max(r["peak_rss_mb"] for r in rows)
        ok = slowest <= 60 and heaviest < 500
        print(f"targets (<= 60 s, < 500 MB), {label}: {'met' if ok else 'NOT met'} "
              f"(slowest {slowest:.1f} s, peak {heaviest:.0f} MB)")

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
