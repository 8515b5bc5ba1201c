"""Ranking uncertainty: spend grades where the system ranking is still undecided (DESIGN §4.3).

Racing / best-arm identification (Maron & Moore 1994, "Hoeffding Races"; applied to LLM
evaluation in Zhou et al. 2024, "On Speeding Up Language Model Evaluation"): arms whose
confidence intervals are separated from their neighbours need no more samples; the ones that
still overlap a neighbour in the current ranking get them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from annotate.selectors.base import Z_95, ScoredPool, SelectionContext, wilson_interval


@dataclass(frozen=True)
class SystemStanding:
    """Per system: grades, estimated pass rate (or mean normalised score) and its interval."""

    n_grades: np.ndarray  # (S,) int64
    estimate: np.ndarray  # (S,) float64; 0.5 with no grades
    lower: np.ndarray
    upper: np.ndarray
    order: np.ndarray  # (S,) system codes, best first
    overlap: np.ndarray  # (S,) largest interval overlap with a ranking neighbour
    neighbour: np.ndarray  # (S,) the neighbour giving it, -1 if none


def system_standing(ctx: SelectionContext, z: float = Z_95) -> SystemStanding:
    n_systems = ctx.n_systems
    labelled = ctx.labelled_mask
    systems = ctx.system_codes[labelled]
    n_grades = np.bincount(systems, minlength=n_systems)
    total = np.bincount(
        systems, weights=ctx.human[labelled].astype(np.float64), minlength=n_systems
    )
    estimate = np.divide(total, n_grades, out=np.full(n_systems, 0.5), where=n_grades > 0)
    lower, upper = wilson_interval(total, n_grades, z)
    order = np.argsort(-estimate, kind="stable")
    overlap = np.zeros(n_systems)
    neighbour = np.full(n_systems, -1, dtype=np.int64)
    if n_systems > 1:
        above, below = order[:-1], order[1:]
        shared = np.maximum(
            0.0, np.minimum(upper[above], upper[below]) - np.maximum(lower[above], lower[below])
        )
        # Each adjacent pair offers its overlap to both members; keep each system's larger one.
        for members, others in ((above, below), (below, above)):
            better = shared > overlap[members]
            overlap[members[better]] = shared[better]
            neighbour[members[better]] = others[better]
    return SystemStanding(n_grades, estimate, lower, upper, order, overlap, neighbour)


@dataclass(frozen=True)
class RankingUncertaintySelector:
    """Outputs of the systems whose interval overlaps a ranking neighbour's the most.

    A system clearly separated from both neighbours scores 0, so it gets grades only once
    every system is separated (or through the chooser's ε-random branch).
    """

    name: ClassVar[str] = "ranking_uncertainty"
    pairwise: ClassVar[bool] = False
    z: float = Z_95

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        standing = system_standing(ctx, self.z)
        pool = ctx.pool
        scores = standing.overlap[ctx.system_codes[pool]]

        def describe(system: int) -> str:
            return (
                f"{ctx.system_name(system)} ({standing.estimate[system]:.2f}, "
                f"[{standing.lower[system]:.2f}, {standing.upper[system]:.2f}], "
                f"{int(standing.n_grades[system])} grades)"
            )

        def explain(row: int) -> str:
            system = int(ctx.system_codes[row])
            other = int(standing.neighbour[system])
            if other < 0:
                return f"{describe(system)} is clearly separated from its neighbours"
            return (
                f"ranking still open: {describe(system)} overlaps its neighbour "
                f"{describe(other)} by {standing.overlap[system]:.2f}"
            )

        return ScoredPool(pool, scores, explain)
