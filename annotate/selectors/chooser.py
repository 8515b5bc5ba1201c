"""From scores to the item a person grades next (DESIGN §4.3).

The best-scored item wins, ties broken uniformly at random; with probability ε a uniformly random
pool item is taken instead. A selector whose `sampling` is "proportional" is drawn from instead:
an item in proportion to its score (scores are non-negative weights), so every item keeps a
known, bounded chance and estimates reweighted by it keep most of their labels (importance
sampling, as in Kossen et al. 2021, "Active Testing"). Every choice carries the probability that
this item was chosen under the mixture and the size of the pool it was drawn from, so estimates
can be reweighted by inverse probability (DESIGN §4.4).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from annotate.selectors.base import ScoredPool, SelectionContext, Selector

RANDOM_TAG = "random"
BEST, PROPORTIONAL = "best", "proportional"


@dataclass(frozen=True)
class Choice:
    row: int
    row_b: int | None
    selector: str
    why: str
    probability: float
    # Items the draw chose among: 1 / pool_size is what a uniform draw would have given it.
    pool_size: int = 0


def _random_why(epsilon: float) -> str:
    return f"chosen at random (ε = {epsilon:g}) so estimates stay unbiased"


def _usable(scored: ScoredPool, exclude_rows: Collection[int]) -> np.ndarray:
    keep = np.ones(scored.indices.shape[0], dtype=bool)
    if exclude_rows:
        excluded = np.fromiter(exclude_rows, dtype=np.int64)
        keep &= ~np.isin(scored.indices, excluded)
        if scored.partners is not None:
            keep &= ~np.isin(scored.partners, excluded)
    return keep


def _draw(
    scored: ScoredPool,
    open_scores: np.ndarray,
    available: np.ndarray,
    n_available: int,
    selector_name: str,
    epsilon: float,
    rng: np.random.Generator,
    sampling: str = BEST,
) -> tuple[int, Choice]:
    """One draw from the ε-mixture over the entries still `available`; returns its position.

    `open_scores` holds the scores with -inf at entries no longer available.
    """
    if sampling == PROPORTIONAL:
        weights = np.where(available, open_scores, 0.0)
        total = weights.sum()
        share = weights / total if total > 0 else available / n_available
    else:
        best = open_scores.max()
        ties = open_scores == best
        share = ties / np.count_nonzero(ties)
    if epsilon > 0 and rng.random() < epsilon:
        position = int(np.flatnonzero(available)[rng.integers(n_available)])
        tag, why = RANDOM_TAG, _random_why(epsilon)
    else:
        position = int(rng.choice(share.shape[0], p=share)) if sampling == PROPORTIONAL else int(
            np.flatnonzero(share)[rng.integers(np.count_nonzero(share))]
        )
        tag, why = selector_name, ""
    probability = epsilon / n_available + (1 - epsilon) * float(share[position])
    row = int(scored.indices[position])
    row_b = None if scored.partners is None else int(scored.partners[position])
    if not why:
        why = scored.explain(row)
    return position, Choice(row, row_b, tag, why, float(probability), n_available)


def choose(
    selector: Selector,
    ctx: SelectionContext,
    *,
    epsilon: float,
    rng: np.random.Generator,
    exclude_rows: Collection[int] = (),
) -> Choice | None:
    """The next item to grade, or None when the pool is empty."""
    ranked = choose_many(selector, ctx, k=1, epsilon=epsilon, rng=rng, exclude_rows=exclude_rows)
    return ranked[0] if ranked else None


def choose_many(
    selector: Selector,
    ctx: SelectionContext,
    *,
    k: int,
    epsilon: float,
    rng: np.random.Generator,
    exclude_rows: Collection[int] = (),
) -> list[Choice]:
    """Up to k choices, best first, for a caller whose claim on the first may lose a race.

    Choice j is drawn from the same ε-mixture over the pool without choices 1..j-1, so its
    `probability` is exact for the situation in which it is used: the earlier ones were taken.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError("epsilon must lie in [0, 1]")
    if k < 1:
        raise ValueError("k must be at least 1")
    scored = selector.score(ctx, rng)
    if not np.isfinite(scored.scores).all():
        raise ValueError(f"selector {selector.name!r} returned a score that is not finite")
    sampling = getattr(selector, "sampling", BEST)
    if sampling == PROPORTIONAL and scored.scores.size and scored.scores.min() < 0:
        raise ValueError(f"selector {selector.name!r} samples in proportion to its scores: "
                         "they must not be negative")
    available = _usable(scored, exclude_rows)
    open_scores = np.where(available, scored.scores, -np.inf)
    n_available = int(np.count_nonzero(available))
    choices: list[Choice] = []
    while len(choices) < k and n_available:
        position, choice = _draw(
            scored, open_scores, available, n_available, selector.name, epsilon, rng, sampling
        )
        choices.append(choice)
        taken = np.array([position])
        if scored.partners is not None:
            # Two pairs sharing an output cannot both be claimed; keep the list claimable.
            rows = np.array([choice.row, choice.row_b], dtype=np.int64)
            shares = np.isin(scored.indices, rows) | np.isin(scored.partners, rows)
            taken = np.flatnonzero(shares & available)
        available[taken] = False
        open_scores[taken] = -np.inf
        n_available -= taken.shape[0]
    return choices
