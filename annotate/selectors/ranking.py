"""Ranking uncertainty: spend grades where the system ranking is still undecided (DESIGN §4.3).

Racing / best-arm identification (Maron & Moore 1994, "Hoeffding Races"; applied to LLM
evaluation in Zhou et al. 2024, "On Speeding Up Language Model Evaluation"): systems already
separated from the others need no more grades; the ones that may still swap places get them.

The ranking being estimated is the one over the project's *own* outputs, a finite population:
once every output of a system is graded its pass rate is known exactly. So each system's
standard error carries the finite-population correction (N_s − n_s) / (N_s − 1), and a system
is worth a grade in proportion to how likely each of its pairs is to be ordered wrongly now
(normal approximation) times the share of that pair's variance one more grade removes. The
output is drawn uniformly within the chosen system, so each system's mean of grades stays an
unbiased estimate of its pass rate (stratified sampling with adaptive allocation).

Measured offline on the shared dev files (20 seeds; labels until τ ≥ 0.9 stays): SummEval 195
vs random's 257, FRANK 282 vs 376, MQM 1,700 vs 2,100 — where the Wilson-overlap rule of the
first version tied random (see bench/LABEL_EFFICIENCY.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

from annotate.selectors.base import ScoredPool, SelectionContext, register_selector
from annotate.statistics import Z_95

# Pseudo-grades of the pooled variance mixed into each system's own: a system with two equal
# grades is not yet known to have no variance.
PRIOR_GRADES = 2.0


@dataclass(frozen=True)
class SystemStanding:
    """Per system: grades, outputs, estimated pass rate (or mean normalised score), its
    finite-population standard error, and how likely each pair is ordered wrongly now."""

    n_grades: np.ndarray  # (S,) int64
    n_outputs: np.ndarray  # (S,) int64
    estimate: np.ndarray  # (S,) float64; the mean of all grades for a system without any
    variance: np.ndarray  # (S,) per-output variance, shrunk towards the pooled one
    standard_error: np.ndarray  # (S,) 0 once every output of the system is graded
    swap_probability: np.ndarray  # (S, S) P(the pair's order differs from the estimate's)

    def standard_error_after_one_more(self) -> np.ndarray:
        n_next = self.n_grades + 1.0
        return np.sqrt(self.variance / n_next * _fpc(n_next, self.n_outputs))


def _fpc(n_grades: np.ndarray, n_outputs: np.ndarray) -> np.ndarray:
    n_outputs = n_outputs.astype(np.float64)
    return np.clip(n_outputs - n_grades, 0.0, None) / np.maximum(n_outputs - 1.0, 1.0)


def system_standing(ctx: SelectionContext) -> SystemStanding:
    n_systems = ctx.n_systems
    labelled = ctx.labelled_mask
    systems = ctx.system_codes[labelled]
    values = ctx.human[labelled].astype(np.float64)
    n_grades = np.bincount(systems, minlength=n_systems)
    n_outputs = np.bincount(ctx.system_codes, minlength=n_systems)
    total = np.bincount(systems, weights=values, minlength=n_systems)
    overall = float(values.mean()) if values.size else 0.5
    estimate = np.divide(total, n_grades, out=np.full(n_systems, overall), where=n_grades > 0)
    squares = np.bincount(
        systems, weights=(values - estimate[systems]) ** 2, minlength=n_systems
    )
    # Pooled variance; before two grades exist, a Bernoulli at the overall mean (at most 0.25).
    pooled = float(values.var(ddof=1)) if values.size > 1 else overall * (1.0 - overall)
    pooled = max(pooled, 1e-6)
    variance = (squares + PRIOR_GRADES * pooled) / (np.maximum(n_grades - 1, 0) + PRIOR_GRADES)
    return standing_from(n_grades, n_outputs, estimate, variance)


def standing_from(
    n_grades: np.ndarray, n_outputs: np.ndarray, estimate: np.ndarray, variance: np.ndarray
) -> SystemStanding:
    """The standing given each system's estimate and per-output variance: finite-population
    standard errors and pairwise swap probabilities."""
    # A system without grades is as uncertain as a single grade leaves it.
    effective = np.maximum(n_grades, 1).astype(np.float64)
    standard_error = np.sqrt(variance / effective * _fpc(n_grades, n_outputs))
    gap = np.abs(estimate[:, None] - estimate[None, :])
    spread = np.sqrt(standard_error[:, None] ** 2 + standard_error[None, :] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        swap = np.where(spread > 0, ndtr(-gap / spread), 0.0)
    # Equal estimates with uncertainty are a coin flip; identical and certain is no question.
    np.fill_diagonal(swap, 0.0)
    return SystemStanding(n_grades, n_outputs, estimate, variance, standard_error, swap)


def grade_value(standing: SystemStanding) -> np.ndarray:
    """(S,) what one more grade of each system is worth: Σ_b P(it and b are ordered wrongly) ·
    the share of the variance of their difference that the grade removes."""
    se2 = standing.standard_error**2
    removed = se2 - standing.standard_error_after_one_more() ** 2
    pair_variance = se2[:, None] + se2[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(pair_variance > 0, removed[:, None] / pair_variance, 0.0)
    return (standing.swap_probability * share).sum(axis=1)


@register_selector(menu_position=100)
@dataclass(frozen=True)
class RankingUncertaintySelector:
    """Outputs of the systems whose place in the ranking one more grade settles the most.

    score(s) = Σ_b P(s and b ordered wrongly) · (variance of their difference one grade of s
    removes) / (variance of their difference). A fully graded system scores 0.
    """

    name: ClassVar[str] = "ranking_uncertainty"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Ranking uncertainty"
    summary: ClassVar[str] = (
        "Grades the systems whose order is least certain: a stable system ranking with fewer labels."
    )
    uses_embeddings: ClassVar[bool] = False
    z: float = Z_95

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        standing = system_standing(ctx)
        value = grade_value(standing)
        pool = ctx.pool
        scores = value[ctx.system_codes[pool]]
        rival = np.argmax(standing.swap_probability, axis=1)

        def describe(system: int) -> str:
            half = self.z * standing.standard_error[system]
            return (
                f"{ctx.system_name(system)} ({standing.estimate[system]:.2f} ± {half:.2f}, "
                f"{int(standing.n_grades[system])} of {int(standing.n_outputs[system])} graded)"
            )

        def explain(row: int) -> str:
            system = int(ctx.system_codes[row])
            other = int(rival[system])
            chance = float(standing.swap_probability[system, other])
            if chance < 0.005:
                return f"{describe(system)} is clearly separated from the other systems"
            return (
                f"ranking still open: {describe(system)} may swap places with "
                f"{describe(other)} (chance {chance:.0%})"
            )

        return ScoredPool(pool, scores, explain)
