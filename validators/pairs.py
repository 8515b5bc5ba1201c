"""The pairs a pairwise judge is asked about and the human comparisons it is measured against,
both in canonical order (the lower output id is `a`)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from annotate.labels import canonical_choice, pair_choices
from annotate.models import Output, Project
from validators.models import PairVerdict
from validators.pairwise_alignment import WIN_MISSING, WINNER_CODES

Pair = tuple[int, int]


canonical = canonical_choice


def project_pairs(project: Project) -> list[Pair]:
    """Every unordered pair of outputs that share an input, the set a pairwise judge runs
    over: a pairwise import makes one pair per record; a per-output project with k systems
    has k(k-1)/2 per input."""
    by_sample: dict[int, list[int]] = defaultdict(list)
    for output_id, sample_id in Output.objects.filter(project=project).order_by("id").values_list("id", "sample_id"):
        by_sample[sample_id].append(output_id)
    return sorted((a, b) for ids in by_sample.values() for i, a in enumerate(ids) for b in ids[i + 1:])


def human_pair_choices(project: Project) -> dict[Pair, str]:
    """Per compared pair, the current choice of the majority of annotators ('a', 'b' or
    'tie'); a split vote is a tie."""
    choices = pair_choices(project)
    return dict(zip(choices.pairs, choices.choices, strict=True))


def pair_verdict_codes(validator_ids: list[int], pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(winner, first, second) code matrices of shape (pairs, validators), WIN_MISSING where a
    validator has not judged a pair."""
    shape = (len(pairs), len(validator_ids))
    winner = np.full(shape, WIN_MISSING, np.int8)
    first, second = winner.copy(), winner.copy()
    rows = {pair: i for i, pair in enumerate(pairs)}
    columns = {vid: j for j, vid in enumerate(validator_ids)}
    for vid, a, b, w, f, s in PairVerdict.objects.filter(validator_id__in=validator_ids).values_list(
        "validator_id", "output_a_id", "output_b_id", "winner", "first_winner", "second_winner"
    ):
        row = rows.get((a, b))
        if row is None:
            continue
        col = columns[vid]
        winner[row, col] = WINNER_CODES.get(w, WIN_MISSING)
        first[row, col] = WINNER_CODES.get(f, WIN_MISSING)
        second[row, col] = WINNER_CODES.get(s, WIN_MISSING)
    return winner, first, second
