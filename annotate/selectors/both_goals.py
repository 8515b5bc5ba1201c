"""One selector for both goals: a stable system ranking and the right validator per criterion.

Measured alone, `ranking_uncertainty` starves the report card (its grades cover a few systems
at a time) and `validator_choice` blurs the ranking (it grades where validators disagree).
This selector gives each grade to whichever goal gains more from it, and draws it from a
mixture, so every output keeps a known chance and both the report card (LURE weights) and the
ranking's weighted estimate stay unbiased (Kossen et al. 2021, "Active Testing").

The common scale is *the share of a goal's open questions one grade settles*:

* ranking: the questions are the S(S − 1)/2 system pairs. One grade of system s settles
  Σ_b P(s and b ordered wrongly) · (share of the variance of their difference it removes)
  (`ranking.grade_value`); the ranking goal's grade goes to the best such system, so its gain
  is max_s grade_value(s) / #pairs.
* validator choice: the questions are the criteria with two or more candidate validators.
  A criterion is open while P(its runner-up is truly better than the leader by more than the
  0.02 regret tolerance) is large (normal approximation, delta method on the alignment's
  harmonic mean). One grade drawn from the validator goal's own distribution removes the share
  of the variance of the leader-minus-runner-up difference that `efficiency` uniform grades
  would (importance-sampling variance). Until a criterion has `MIN_LABELS` grades of each class
  no validator can be chosen at all (DESIGN §4.2), so it is open with certainty and a grade
  settles the share of the missing minority-class grades it is expected to supply.

Both gains are shares of the goal's questions in [0, 1], so they compare directly: a goal
whose questions are settled gains 0 and gets no grades beyond the uniform share. The project's
`goal_balance` β (1: ranking only, 0: validator choice only) weighs them: the ranking goal gets
β·G_r / (β·G_r + (1 − β)·G_v) of the non-uniform mass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

from annotate.selectors.base import (
    ScoredPool,
    SelectionContext,
    criterion_labels,
    evidence_columns,
    register_selector,
    registered_selectors,
)

# DESIGN §7: a criterion's choice is good enough once its regret stays within this.
REGRET_TOLERANCE = 0.02
# The project defaults of the report card (DESIGN §4.2): grades of each class a candidate
# needs, and the false-failure ceiling a candidate must keep to be chosen.
MIN_LABELS = 3
FFR_CEILING = 0.25

RANKING_SELECTOR, VALIDATOR_SELECTOR = "ranking_uncertainty", "validator_choice"


@dataclass(frozen=True)
class CriterionOutlook:
    """How open one criterion's validator choice is, and what one more grade does to it."""

    criterion: int
    leader: int  # evidence column
    runner_up: int
    gap: float  # smoothed alignment of the leader minus the runner-up's
    standard_error: float  # of that difference
    open_probability: float  # P(the runner-up is truly better by more than the tolerance)
    gain: float  # share of this criterion's question one grade settles


@dataclass(frozen=True)
class GoalPlan:
    """One grade's plan: each goal's gain, their shares, and the probabilities over the pool."""

    ranking_gain: float  # share of system pairs one ranking grade settles
    validator_gain: float  # mean over criteria of the share one validator grade settles
    shares: tuple[float, float]  # (ranking, validator) of the non-uniform mass
    ranking_draw: np.ndarray  # (P,) ranking_uncertainty's own draw, summing to 1
    validator_draw: np.ndarray  # (P,) validator_choice's own draw, summing to 1
    probability: np.ndarray  # (P,) the mixture, summing to 1
    ranking_scored: ScoredPool
    validator_scored: ScoredPool
    outlooks: tuple[CriterionOutlook, ...]


def smoothed_alignment(verdicts: np.ndarray, passes: np.ndarray) -> tuple[np.ndarray, ...]:
    """(coverage, 1 − FFR, alignment) per candidate, from its verdicts (one row per candidate,
    one column per graded output), add-one smoothed as the selectors' `alignment_scores` is,
    so they exist from the first grade (DESIGN §4.1)."""
    human = np.stack([~passes, passes], axis=1).astype(np.float64)
    # One product per count: rows are candidates, columns (human fail, human pass).
    fails = (verdicts == 0).astype(np.float64) @ human
    decided = (~np.isnan(verdicts)).astype(np.float64) @ human
    coverage = (fails[:, 0] + 1.0) / (decided[:, 0] + 2.0)
    keep = 1.0 - (fails[:, 1] + 1.0) / (decided[:, 1] + 2.0)
    return coverage, keep, 2 * coverage * keep / (coverage + keep)


def _finite_population_variance(n_labelled: float, n_outputs: int) -> float:
    """Variance of a mean of n draws without replacement from N, up to the per-draw variance."""
    if n_labelled <= 0:
        return 1.0
    return max(n_outputs - n_labelled, 0.0) / (max(n_outputs - 1.0, 1.0) * n_labelled)


def criterion_outlook(
    ctx: SelectionContext, criterion: int, columns: np.ndarray, draw: np.ndarray
) -> CriterionOutlook | None:
    """The open probability and one grade's gain for one criterion.

    `draw` is the validator goal's distribution over `ctx.pool` (sums to 1): how efficiently
    its grades pin down the leader-minus-runner-up difference depends on how much of its mass
    falls where the two disagree.
    """
    rows, values = criterion_labels(ctx, criterion)
    passes = values >= ctx.pass_threshold
    n = rows.shape[0]
    n_pass = int(passes.sum())
    minority = min(n_pass, n - n_pass)
    by_column = evidence_columns(ctx.evidence)
    verdicts = by_column[columns][:, rows]
    coverage, keep, alignment = smoothed_alignment(verdicts, passes)
    eligible = keep >= 1.0 - FFR_CEILING
    # The card holds the best eligible candidate; the runner-up is the best of the others.
    ordered = np.lexsort((-alignment, ~eligible))
    leader, runner_up = int(ordered[0]), int(ordered[1])
    gap = float(alignment[leader] - alignment[runner_up])
    if minority < MIN_LABELS:
        # No candidate can be chosen yet: open for certain. A uniform grade is of the minority
        # class with the smoothed minority share; it settles 1/(grades still missing).
        share = (minority + 1.0) / (n + 2.0)
        gain = share / (MIN_LABELS - minority)
        return CriterionOutlook(
            criterion, int(columns[leader]), int(columns[runner_up]), gap, np.inf, 1.0, gain
        )
    # Delta method on A = 2ck / (c + k): the leader's gradient for both (they are close).
    c, k = coverage[leader], keep[leader]
    d_coverage = 2 * k * k / (c + k) ** 2
    d_keep = 2 * c * c / (c + k) ** 2
    a, b = verdicts[leader], verdicts[runner_up]
    disagree = (a != b) & ~np.isnan(a) & ~np.isnan(b)
    n_fail = n - n_pass
    # Per-output variance of a difference of two 0/1 indicators that differ on `disagree`.
    fail_share = (disagree[~passes].sum() + 1.0) / (n_fail + 2.0)
    pass_share = (disagree[passes].sum() + 1.0) / (n_pass + 2.0)
    n_outputs = ctx.n_outputs
    pass_rate = n_pass / n
    variance = (
        d_coverage**2 * fail_share * _finite_population_variance(n_fail, round(n_outputs * (1 - pass_rate)))
        + d_keep**2 * pass_share * _finite_population_variance(n_pass, round(n_outputs * pass_rate))
    )
    standard_error = float(np.sqrt(variance))
    if standard_error == 0.0:
        return CriterionOutlook(
            criterion, int(columns[leader]), int(columns[runner_up]), gap, 0.0, 0.0, 0.0
        )
    open_probability = float(ndtr(-(gap + REGRET_TOLERANCE) / standard_error))
    # Importance-sampling variance per draw of the disagreement count: Σ_d 1/(P² q) under the
    # goal's draw against D (the disagreeing share) under a uniform one.
    pool = ctx.pool
    pool_a, pool_b = by_column[columns[leader]][pool], by_column[columns[runner_up]][pool]
    pool_disagree = (pool_a != pool_b) & ~np.isnan(pool_a) & ~np.isnan(pool_b)
    if not pool_disagree.any():
        # The remaining outputs cannot change the difference between the two.
        return CriterionOutlook(
            criterion, int(columns[leader]), int(columns[runner_up]), gap, standard_error,
            open_probability, 0.0,
        )
    size = pool.shape[0]
    uniform_variance = pool_disagree.mean()
    with np.errstate(divide="ignore"):
        drawn_variance = float((1.0 / draw[pool_disagree]).sum()) / size**2
    efficiency = uniform_variance / drawn_variance if np.isfinite(drawn_variance) else 0.0
    removed = 1.0 - _finite_population_variance(n + efficiency, n_outputs) / (
        _finite_population_variance(n, n_outputs)
    )
    gain = open_probability * float(np.clip(removed, 0.0, 1.0))
    return CriterionOutlook(
        criterion, int(columns[leader]), int(columns[runner_up]), gap, standard_error,
        open_probability, gain,
    )


def validator_outlooks(ctx: SelectionContext, draw: np.ndarray) -> list[CriterionOutlook]:
    """One outlook per criterion with at least two candidate validators."""
    codes, counts = np.unique(ctx.validator_criteria, return_counts=True)
    outlooks = []
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        if count < 2:
            continue
        columns = np.flatnonzero(ctx.validator_criteria == code)
        outlook = criterion_outlook(ctx, code, columns, draw)
        if outlook is not None:
            outlooks.append(outlook)
    return outlooks


def goal_shares(ranking_gain: float, validator_gain: float, goal_balance: float) -> tuple[float, float]:
    """(ranking, validator) shares of the non-uniform mass, proportional to the weighted gains;
    with nothing to gain on either side, the balance itself."""
    if not 0.0 <= goal_balance <= 1.0:
        raise ValueError("goal_balance must lie in [0, 1]")
    ranking = goal_balance * ranking_gain
    validator = (1.0 - goal_balance) * validator_gain
    total = ranking + validator
    if total <= 0.0:
        return goal_balance, 1.0 - goal_balance
    return ranking / total, validator / total


def mixture(
    ranking_draw: np.ndarray, validator_draw: np.ndarray, shares: tuple[float, float],
    uniform_share: float,
) -> np.ndarray:
    """Probability of each pool item: uniform_share / P + (1 − uniform_share) · the goals' mix.
    Every item keeps at least uniform_share / P, so LURE weights stay below 1 / uniform_share."""
    size = ranking_draw.shape[0]
    goals = shares[0] * ranking_draw + shares[1] * validator_draw
    return uniform_share / size + (1.0 - uniform_share) * goals


def as_distribution(scores: np.ndarray, proportional: bool) -> np.ndarray:
    """A selector's scores as the distribution its own draw follows (without the chooser's ε):
    in proportion to them, or uniform over the best-scored ties."""
    size = scores.shape[0]
    if proportional:
        total = float(scores.sum())
        return scores / total if total > 0 else np.full(size, 1.0 / size)
    best = scores == scores.max()
    return best / float(best.sum())


@register_selector(menu_position=120)
@dataclass(frozen=True)
class BothGoalsSelector:
    """Each grade to the goal (system ranking or validator choice) it settles more of.

    Draws from uniform_share · uniform + (1 − uniform_share) · (π · ranking_uncertainty's pick +
    (1 − π) · validator_choice's draw), with π set per grade by the two goals' gains (module
    docstring) and the project's goal balance. Measured with bench/both_goals_replay.py (30
    seeds, median labels against random's, FRANK / SummEval / MQM dev files): τ ≥ 0.9 at
    0.80 / 0.85 / 0.88, every criterion's regret ≤ 0.02 at 0.79 / 1.03 / 0.85.
    """

    name: ClassVar[str] = "both_goals"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Ranking and validator choice"
    summary: ClassVar[str] = (
        "Gives each grade to whichever goal it settles more of, the system ranking or the validator choice, with a uniform share so estimates stay unbiased."
    )
    uses_embeddings: ClassVar[bool] = False
    sampling: ClassVar[str] = "proportional"
    # Project fields the services pass to this selector as keyword arguments.
    project_settings: ClassVar[tuple[str, ...]] = ("goal_balance",)
    # FRANK, 30 seeds: 0.7 ranks faster than 0.5 (parity 0.86 vs 0.93) with the same card (0.91);
    # 0.85 ranks faster still (0.79) but holds the card only at random's pace (1.00).
    goal_balance: float = 0.7
    uniform_share: float = 0.1

    def plan(self, ctx: SelectionContext, rng: np.random.Generator) -> GoalPlan:
        """The two goals' draws, gains and shares, and the mixture over `ctx.pool`."""
        pool = ctx.pool
        selectors = registered_selectors()
        ranking_selector = selectors[RANKING_SELECTOR]()
        validator_selector = selectors[VALIDATOR_SELECTOR]()
        ranking_scored = ranking_selector.score(ctx, rng)
        validator_scored = validator_selector.score(ctx, rng)
        ranking_draw = _on_pool(pool, ranking_scored, as_distribution(
            ranking_scored.scores, getattr(ranking_selector, "sampling", "best") == "proportional"
        ))
        validator_draw = _on_pool(pool, validator_scored, as_distribution(
            validator_scored.scores,
            getattr(validator_selector, "sampling", "best") == "proportional",
        ))
        # ranking_uncertainty scores an output by its system's `grade_value`: the best of them
        # is what one ranking grade settles.
        n_pairs = ctx.n_systems * (ctx.n_systems - 1) / 2
        best_value = float(ranking_scored.scores.max()) if ranking_scored.scores.size else 0.0
        ranking_gain = best_value / n_pairs if n_pairs else 0.0
        # The validator goal's grades are drawn with the uniform share too; that bounded draw is
        # what the report card reweights, so its efficiency is the one that counts.
        outlooks = validator_outlooks(
            ctx, mixture(ranking_draw, validator_draw, (0.0, 1.0), self.uniform_share)
        )
        validator_gain = float(np.mean([o.gain for o in outlooks])) if outlooks else 0.0
        shares = goal_shares(ranking_gain, validator_gain, self.goal_balance)
        return GoalPlan(
            ranking_gain, validator_gain, shares, ranking_draw, validator_draw,
            mixture(ranking_draw, validator_draw, shares, self.uniform_share),
            ranking_scored, validator_scored, tuple(outlooks),
        )

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        pool = ctx.pool
        if pool.shape[0] == 0:
            return ScoredPool.empty()
        plan = self.plan(ctx, rng)
        shares = plan.shares
        split = f"ranking {shares[0]:.0%} / validator choice {shares[1]:.0%} of the chosen share"
        floor = self.uniform_share / pool.shape[0]

        def explain(row: int) -> str:
            position = int(np.searchsorted(pool, row))
            from_ranking = shares[0] * plan.ranking_draw[position]
            from_validator = shares[1] * plan.validator_draw[position]
            if max(from_ranking, from_validator) * (1 - self.uniform_share) < floor:
                reason = "drawn within the uniform share, so estimates stay unbiased"
            elif from_ranking >= from_validator:
                reason = plan.ranking_scored.explain(row)
            else:
                reason = plan.validator_scored.explain(row)
            return f"{reason} ({split})"

        return ScoredPool(pool, plan.probability, explain)


def _on_pool(pool: np.ndarray, scored: ScoredPool, values: np.ndarray) -> np.ndarray:
    """`values` (aligned with scored.indices) re-aligned with `pool`; 0 where not scored."""
    if scored.indices.shape == pool.shape and np.array_equal(scored.indices, pool):
        return values
    aligned = np.zeros(pool.shape[0])
    positions = np.searchsorted(pool, scored.indices)
    aligned[positions] = values
    return aligned
