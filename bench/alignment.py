"""Recompute the whole report card: 50 validators × 100,000 outputs, 10,000 human labels.

    python bench/alignment.py                       # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/alignment.py

Prints the card recomputed from the database (verdict matrix cached as arrays and refreshed
incrementally, labels read fresh) and the pure computation alone, each with the median and p95
over repetitions, beside a naive baseline measured in the same run: one query per validator
joining its verdicts with the human labels, metrics computed per validator.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _setup import fresh_database, percentile

N_CRITERIA = 5


def populate(n_outputs: int, n_validators: int, n_labels: int):
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Grade, GradeCriterion, Output, Sample
    from annotate.services.criteria import criterion_create, current_versions
    from annotate.services.projects import project_create
    from validators.models import Validator, VerdictRecord

    rng = np.random.default_rng(0)
    owner = User.objects.create(username="bench")
    project = project_create(name="Alignment bench", owner=owner)
    criteria = [criterion_create(project=project, key=f"c{i}") for i in range(N_CRITERIA)]
    versions = current_versions(project)
    n_samples = n_outputs // 10
    Sample.objects.bulk_create(
        [Sample(project=project, external_id=f"s{i}", input_text="q") for i in range(n_samples)], batch_size=5000
    )
    sample_ids = list(Sample.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    Output.objects.bulk_create(
        [Output(project=project, sample_id=sample_ids[i // 10], system=f"sys{i % 10}", text="t") for i in range(n_outputs)],
        batch_size=5000,
    )
    output_ids = np.array(Output.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    truth = rng.random(n_outputs) < 0.7
    validators = [
        Validator.objects.create(
            project=project, kind="code", name=f"v{j}", source="def check(output, input, reference, meta):\n    return True",
            criterion=criteria[j % N_CRITERIA],
        )
        for j in range(n_validators)
    ]
    now = timezone.now()
    noise = rng.random((n_outputs, n_validators))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.connection.cursor().copy(
            "COPY validators_verdict (validator_id, output_id, outcome, detail, created_at) FROM STDIN"
        ) as copy:
            for j, v in enumerate(validators):
                accuracy = 0.6 + 0.35 * j / n_validators
                agree = noise[:, j] < accuracy
                passes = np.where(agree, truth, ~truth)
                for oid, ok in zip(output_ids.tolist(), passes.tolist(), strict=True):
                    copy.write_row((v.pk, oid, "pass" if ok else "fail", "", now))
    else:
        for j, v in enumerate(validators):
            accuracy = 0.6 + 0.35 * j / n_validators
            passes = np.where(noise[:, j] < accuracy, truth, ~truth)
            VerdictRecord.objects.bulk_create(
                [VerdictRecord(validator=v, output_id=int(oid), outcome="pass" if ok else "fail", created_at=now)
                 for oid, ok in zip(output_ids, passes, strict=True)],
                batch_size=10000,
            )
    labelled = rng.choice(n_outputs, size=n_labels, replace=False)
    grades = Grade.objects.bulk_create(
        [Grade(project=project, output_id=int(output_ids[i]), annotator=owner,
               verdict="pass" if truth[i] else "fail", submitted_at=now) for i in labelled],
        batch_size=5000,
    )
    GradeCriterion.objects.bulk_create(
        [GradeCriterion(grade=g, criterion=c, criterion_version=versions[c.pk],
                        verdict="pass" if truth[i] or rng.random() < 0.5 else "fail")
         for g, i in zip(grades, labelled, strict=True) for c in criteria],
        batch_size=10000,
    )
    if connection.vendor == "postgresql":
        # What autovacuum would do after a bulk load; without statistics the planner scans.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return project


def naive_card(project):
    """One query per validator, metrics from Python lists: what a first version would do."""
    from annotate.models import Grade
    from validators.alignment import metrics_from_counts
    from validators.models import Validator, VerdictRecord

    human = dict(Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
                 .values_list("output_id", "verdict"))
    results = []
    for validator in Validator.objects.filter(project=project):
        tp = fn = fp = tn = 0
        for output_id, outcome in VerdictRecord.objects.filter(validator=validator, output_id__in=list(human)).values_list("output_id", "outcome"):
            fails, human_fails = outcome == "fail", human[output_id] == "fail"
            tp += fails and human_fails
            fn += (not fails) and human_fails
            fp += fails and not human_fails
            tn += (not fails) and not human_fails
        results.append(metrics_from_counts(tp=tp, fn=fn, fp=fp, tn=tn))
    return results


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--validators", type=int, default=50)
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    label = fresh_database("alignment")
    started = time.perf_counter()
    project = populate(args.outputs, args.validators, args.labels)
    print(f"populated in {time.perf_counter() - started:.0f} s")

    from annotate.labels import load_votes
    from annotate.statistics import majority
    from validators.alignment import alignment_table
    from validators.matrix import verdict_matrix
    from validators.report_card import report_card
    from validators.selection import Candidate, select_validator

    started = time.perf_counter()
    card = report_card(project)
    cold = (time.perf_counter() - started) * 1000
    assert len(card.criteria) == 1 + N_CRITERIA
    from_db = timed(lambda: report_card(project), args.repeats)

    matrix = verdict_matrix(project)
    votes = load_votes(project)
    labels = {cid: majority(matrix.output_ids, votes.output_ids, votes.codes(cid)) for cid in votes.criteria}

    def pure():
        for cid, human in labels.items():
            rows = np.flatnonzero(human >= 0)
            columns = np.arange(args.validators)[np.arange(args.validators) % N_CRITERIA == (cid % N_CRITERIA)]
            metrics = alignment_table(human[rows], matrix.codes[np.ix_(rows, columns)])
            select_validator([Candidate(int(c), "code", str(c), m) for c, m in zip(columns, metrics, strict=True)],
                             ffr_ceiling=0.25, min_labels=3)

    pure_times = timed(pure, args.repeats * 5)
    naive_times = timed(lambda: naive_card(project), 2)

    naive_median = percentile(naive_times, 50)
    print(f"Report card benchmark on {label}: {args.validators} validators × {args.outputs:,} outputs, {args.labels:,} labels")
    print(f"{'what':<46}{'median ms':>11}{'p95 ms':>9}{'vs naive':>10}")
    print(f"{'naive: one query per validator':<46}{naive_median:>11.0f}{percentile(naive_times, 95):>9.0f}{1:>9.0f}x")
    print(f"{'report card from the database (warm cache)':<46}{percentile(from_db, 50):>11.1f}{percentile(from_db, 95):>9.1f}{naive_median / percentile(from_db, 50):>9.0f}x")
    print(f"{'pure computation (alignment + selection)':<46}{percentile(pure_times, 50):>11.1f}{percentile(pure_times, 95):>9.1f}{naive_median / percentile(pure_times, 50):>9.0f}x")
    print(f"first build of the cached verdict matrix: {cold:.0f} ms")


if __name__ == "__main__":
    main()
