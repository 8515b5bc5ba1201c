"""Glue between the database and the pure selectors: builds the arrays a selector scores."""

from __future__ import annotations

import numpy as np
from django.contrib.auth.models import AbstractBaseUser

from annotate.models import Output, Project
from annotate.services.assignments import RankedItem


def rank_with_selector(
    *, project: Project, annotator: AbstractBaseUser, pool: np.ndarray, selector: str,
    rng: np.random.Generator, limit: int,
) -> list[RankedItem]:
    order = rng.permutation(pool.size)[:limit]
    probability = 1.0 / pool.size
    return [
        RankedItem(int(pool[i]), None, "random", "chosen at random", probability) for i in order
    ]


def rank_pairs(
    *, project: Project, annotator: AbstractBaseUser, exclude: set[tuple[int, int]],
    selector: str, rng: np.random.Generator, limit: int = 20,
) -> list[RankedItem]:
    rows = np.array(
        Output.objects.filter(project=project).order_by("sample_id", "id").values_list("sample_id", "id"),
        dtype=np.int64,
    ).reshape(-1, 2)
    if rows.size == 0:
        return []
    samples, starts, counts = np.unique(rows[:, 0], return_index=True, return_counts=True)
    comparable = np.flatnonzero(counts >= 2)
    ranked: list[RankedItem] = []
    for index in rng.permutation(comparable):
        ids = rows[starts[index]: starts[index] + counts[index], 1]
        pairs = [
            (int(a), int(b)) for i, a in enumerate(ids) for b in ids[i + 1:]
            if (min(a, b), max(a, b)) not in exclude
        ]
        if not pairs:
            continue
        a, b = pairs[int(rng.integers(len(pairs)))]
        if rng.random() < 0.5:
            a, b = b, a
        ranked.append(RankedItem(a, b, "random", "pair chosen at random", None))
        if len(ranked) >= limit:
            break
    return ranked
