"""Import 100,000 generated outputs (JSONL) into a fresh database.

    python bench/import_outputs.py [--outputs 100000]          # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python bench/import_outputs.py

Prints outputs per second and peak RSS, with a naive baseline (one INSERT per output through the
ORM) measured on a slice in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

from _setup import fresh_database, peak_rss_mb


def write_file(path: str, n_outputs: int, systems: int = 10) -> None:
    rng = random.Random(1)
    words = "the answer is grounded in the article and says what to do next with care".split()
    with open(path, "w") as f:
        for i in range(n_outputs):
            item, system = divmod(i, systems)
            if system == 0:
                question = f"Question {item}: " + " ".join(rng.choices(words, k=30))
                reference = " ".join(rng.choices(words, k=25))
            f.write(json.dumps({
                "item_id": f"item-{item}", "input": question,
                "reference": reference, "system": f"system-{system}",
                "output": " ".join(rng.choices(words, k=rng.randint(20, 80))),
                "human": {"label": rng.randint(0, 1), "criteria": {"grounded": rng.randint(0, 1)}},
            }) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    args = parser.parse_args()
    label = fresh_database("import")
    from django.contrib.auth.models import User

    from annotate.models import Output, Sample
    from annotate.services.imports import outputs_import
    from annotate.services.projects import project_create

    owner = User.objects.create(username="bench")
    path = tempfile.mktemp(suffix=".jsonl")
    write_file(path, args.outputs)
    rss_before = peak_rss_mb()

    project = project_create(name="Import bench", owner=owner)
    started = time.perf_counter()
    with open(path, "rb") as stream:
        result = outputs_import(project=project, stream=stream, filename="bench.jsonl")
    elapsed = time.perf_counter() - started
    assert result.ok and result.outputs_created == args.outputs, result.summary()
    rate = args.outputs / elapsed
    rss_after = peak_rss_mb()

    again_started = time.perf_counter()
    with open(path, "rb") as stream:
        again = outputs_import(project=project, stream=stream, filename="bench.jsonl")
    again_elapsed = time.perf_counter() - again_started
    assert again.nothing_new

    naive = project_create(name="Naive bench", owner=owner)
    with open(path) as f:
        records = [json.loads(next(f)) for _ in range(args.baseline)]
    naive_started = time.perf_counter()
    samples: dict[str, Sample] = {}
    for r in records:
        sample = samples.get(r["item_id"])
        if sample is None:
            sample = samples[r["item_id"]] = Sample.objects.create(
                project=naive, external_id=r["item_id"], input_text=r["input"], reference=r["reference"]
            )
        Output.objects.create(project=naive, sample=sample, system=r["system"], text=r["output"])
    naive_rate = args.baseline / (time.perf_counter() - naive_started)

    print(f"Import benchmark on {label}: {args.outputs:,} outputs")
    print(f"{'method':<34}{'outputs/s':>12}{'ratio':>8}")
    print(f"{'outputs_import (chunked bulk)':<34}{rate:>12,.0f}{rate / naive_rate:>7.1f}x")
    print(f"{'naive ORM create() per row':<34}{naive_rate:>12,.0f}{1:>7.1f}x")
    print(f"re-import of the same file (nothing new): {args.outputs / again_elapsed:,.0f} outputs/s")
    print(f"peak RSS: {rss_after:.0f} MB (before the import: {rss_before:.0f} MB)")


if __name__ == "__main__":
    main()
