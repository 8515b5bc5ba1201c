"""Which pair a person compares next so the report card keeps the right pairwise judge with
few comparisons (DESIGN §4.3 "validator choice", §4.6). Pure numpy: no Django import; the
queue (annotate.selection) and the judge-choice simulator (simulator.pairwise_judges) both use
this module.

ε-good identification in the spirit of LUCB (Kalyanakrishnan, Tewari, Auer & Stone 2012,
"PAC Subset Selection in Stochastic Multi-armed Bandits"): the leader is the judge the card
would hold now; a challenger stays open while the upper confidence bound of its accuracy
minus the leader's exceeds the tolerance. Comparisons go where the leader and its closest open
challengers (its rivals: the highest accuracies now) give different winners: only those pairs
can move the differences. Once no challenger is open, the choice is settled and the draw is
uniform. A fixed uniform share keeps every pair's chance ≥ share / pool, so the LURE weights
(annotate.sampling_weights) that keep the card's accuracy unbiased stay bounded.

The bound on a difference uses what the judges' verdicts tell without any label: on pairs
where two judges give the same winner their correctness is the same, so

    acc_j − acc_i = |D_ij| / N_decided · mean over D_ij of (correct_j − correct_i),

D_ij being the pairs where they disagree. Two judges that disagree on 1 pair in 100 cannot be
2 points apart, and need no comparison at all. The mean over D_ij is bounded by a Wilson score
interval (Wilson 1927) on the weighted labelled pairs of D_ij (Kish effective size) with the
finite-population correction √((M − n) / (M − 1)) (Cochran 1977, §2.6): once every pair of
D_ij is compared, the difference is known exactly. The confidence is split over the
challengers (Bonferroni): at 95% per challenger, 3 of 30 PandaLM runs with 8 comparator judges
declared a choice settled that was 0.03 off; split, none of 30 (LLMBar or PandaLM), at the
price of settling later (LLMBar: 40 comparisons at the median instead of 21).

Codes are validators.pairwise_alignment's (annotate never imports validators, DESIGN §2):
0 = a, 1 = b, 2 = tie, -1 = error, -2 = missing (no human choice / not judged).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from annotate.selectors.base import (
    DEFAULT_CONSISTENCY_FLOOR,
    WIN_A,
    WIN_B,
    WIN_MISSING,
    PairJudges,
    ScoredPool,
    SelectionContext,
    register_selector,
)
from annotate.selectors.chooser import PROPORTIONAL

TOLERANCE = 0.02           # the regret the choice may keep (DESIGN §7)
CONFIDENCE = 0.95          # one-sided, for all challengers at once (Bonferroni)
UNIFORM_SHARE = 0.2        # of each draw spread over the whole pool: every weight ≤ 1 / 0.2
RIVALS = 3                 # open challengers whose disagreements with the leader get the mass


def wilson_bounds(mean: np.ndarray, n: np.ndarray, *, z: float | np.ndarray,
                  population: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (Wilson 1927) for proportions `mean` seen on `n` draws, z standard
    errors wide; with `population` (M) the draws are without replacement from M items and z
    shrinks by √((M − n) / (M − 1)), so n = M gives the observed mean exactly. (0, 1) where
    n = 0. For n draws with replacement this is scipy's binomtest(...).proportion_ci(method=
    "wilson") at confidence 1 − 2·(1 − Φ(z))."""
    mean = np.clip(np.asarray(mean, np.float64), 0.0, 1.0)
    n = np.asarray(n, np.float64)
    mean, n = np.broadcast_arrays(mean, n)
    z_eff = np.broadcast_to(np.asarray(z, np.float64), n.shape)
    if population is not None:
        population = np.broadcast_to(np.asarray(population, np.float64), n.shape)
        fpc = np.divide(np.maximum(population - n, 0.0), population - 1.0,
                        out=np.zeros(n.shape), where=population > 1)
        z_eff = z_eff * np.sqrt(fpc)
    low, high = np.zeros(n.shape), np.ones(n.shape)
    seen = n > 0
    m, k, zz = mean[seen], n[seen], z_eff[seen] ** 2
    denominator = 1.0 + zz / k
    centre = (m + zz / (2 * k)) / denominator
    half = np.sqrt(zz * (m * (1 - m) / k + zz / (4 * k * k))) / denominator
    low[seen], high[seen] = np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)
    return low, high


def judge_accuracies(verdict: np.ndarray, human: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(J,) Σ w·correct / Σ w over the pairs with a human winner (ties left out; a judge tie or
    error is wrong), as validators.pairwise_alignment.weighted_accuracy for every judge at once.
    NaN where no weight falls on a decided pair the judge answered."""
    verdict = np.atleast_2d(np.asarray(verdict, np.int8))
    human = np.asarray(human, np.int8)
    weights = np.asarray(weights, np.float64)
    decided = (human == WIN_A) | (human == WIN_B)
    w = np.where(decided, weights, 0.0)
    answered = verdict != WIN_MISSING
    mass = answered @ w
    correct = (verdict == human) & answered
    return np.divide(correct @ w, mass, out=np.full(verdict.shape[0], np.nan), where=mass > 0)


def card_leader(accuracy: np.ndarray, consistency: np.ndarray, *,
                floor: float = DEFAULT_CONSISTENCY_FLOOR) -> int | None:
    """The judge select_pairwise_judge keeps (costs equal): the highest accuracy among judges
    whose consistency meets the floor (NaN = asked once, exempt), ties by consistency (asked
    once counting as −1), then the lower index. None when no judge qualifies or has an accuracy."""
    accuracy = np.asarray(accuracy, np.float64)
    consistency = np.asarray(consistency, np.float64)
    eligible = ~(consistency < floor) & ~np.isnan(accuracy)
    if not eligible.any():
        return None
    index = np.arange(accuracy.size)
    order = np.lexsort((index, -np.nan_to_num(consistency, nan=-1.0), -np.nan_to_num(accuracy)))
    return int(order[eligible[order]][0])


__all__ = ["PairJudges", "WIN_MISSING"]


@dataclass(frozen=True)
class JudgeRace:
    """Where the choice between pairwise judges stands after the labelled pairs."""

    leader: int | None       # the judge the card holds now (by the card's rule)
    accuracy: np.ndarray     # (J,) weighted accuracy on the labelled pairs, NaN where none
    gap_upper: np.ndarray    # (J,) upper bound of accuracy_j − accuracy_leader; -inf if not a challenger
    open: np.ndarray         # (J,) bool: may still beat the leader by more than the tolerance
    tolerance: float
    confidence: float

    @property
    def settled(self) -> bool:
        return self.leader is not None and not self.open.any()

    def rivals(self, k: int = RIVALS) -> np.ndarray:
        """The k open challengers with the highest accuracy now (ties by the gap's upper bound).
        LUCB's own second arm, the highest upper bound, measured worse here: early on the widest
        bounds belong to the judges least like the leader, the weak ones (LLMBar, 100 seeds:
        9 comparisons at the median against 7)."""
        n_open = int(self.open.sum())
        if n_open == 0:
            return np.zeros(0, np.int64)
        accuracy = np.nan_to_num(self.accuracy, nan=0.0)
        order = np.lexsort((-np.where(self.open, self.gap_upper, 0.0), -accuracy, ~self.open))
        return order[:min(k, n_open)].astype(np.int64)


def judge_race(verdict: np.ndarray, human: np.ndarray, weights: np.ndarray,
               consistency: np.ndarray, *, floor: float = DEFAULT_CONSISTENCY_FLOOR,
               tolerance: float = TOLERANCE, confidence: float = CONFIDENCE) -> JudgeRace:
    """`verdict` (J, P): every judge's winner on every pair of the population; `human` (P,):
    the human winner, WIN_MISSING where not compared yet; `weights` (P,): the LURE weight of
    each compared pair (ignored elsewhere); `consistency` (J,): position consistency over all
    the pairs a judge answered in both orders (known without labels), NaN for judges asked
    once. Judges below the floor are never challengers: the card would not hold them."""
    verdict = np.atleast_2d(np.asarray(verdict, np.int8))
    human = np.asarray(human, np.int8)
    weights = np.where(human != WIN_MISSING, np.asarray(weights, np.float64), 0.0)
    consistency = np.asarray(consistency, np.float64)
    n_judges, n_pairs = verdict.shape
    accuracy = judge_accuracies(verdict, human, weights)
    qualifies = ~(consistency < floor)
    leader = card_leader(accuracy, consistency, floor=floor)
    if leader is None and qualifies.any():
        # Nothing compared yet: the card holds nobody; race against the judge it would rank first.
        leader = card_leader(np.zeros(n_judges), consistency, floor=floor)
    gap_upper = np.full(n_judges, -np.inf)
    if leader is None:
        return JudgeRace(None, accuracy, gap_upper, np.zeros(n_judges, bool), tolerance, confidence)
    labelled = human != WIN_MISSING
    decided = (human == WIN_A) | (human == WIN_B)
    # N_decided: the share of compared pairs with a winner, over the population (all when none yet).
    labelled_mass = weights[labelled].sum()
    decided_share = weights[decided].sum() / labelled_mass if labelled_mass > 0 else 1.0
    n_decided = max(decided_share * n_pairs, 1.0)
    differ = verdict != verdict[leader]                                   # (J, P): D_ij
    correct = (verdict == human) & decided
    # s = (correct_j − correct_leader + 1) / 2 on the labelled pairs of D_ij, in [0, 1].
    s = (correct.astype(np.float64) - correct[leader] + 1.0) / 2.0
    w_in = differ & labelled
    w = np.where(w_in, weights, 0.0)
    mass = w.sum(axis=1)
    mean = np.divide((w * s).sum(axis=1), mass, out=np.full(n_judges, 0.5), where=mass > 0)
    n_eff = np.divide(mass ** 2, (w ** 2).sum(axis=1), out=np.zeros(n_judges), where=mass > 0)
    n_seen = w_in.sum(axis=1).astype(np.float64)
    population = differ.sum(axis=1).astype(np.float64)
    # Kish's effective size, never more than the pairs seen, so the FPC stays meaningful.
    n_eff = np.minimum(n_eff, n_seen)
    # Finite-population correction by the pairs actually compared; Wilson's variance by the
    # effective size of their weights.
    fpc = np.divide(np.maximum(population - n_seen, 0.0), population - 1.0,
                    out=np.zeros(n_judges), where=population > 1)
    # Bonferroni over the challengers: `confidence` holds for the whole set of decisions at
    # once, so a panel of 64 rivals is not 64 chances to settle on a wrong one.
    n_challengers = max(int(qualifies.sum()) - 1, 1)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / n_challengers) * np.sqrt(fpc)
    _, high = wilson_bounds(mean, n_eff, z=z)
    # Every pair of D_ij compared: the difference is known, unweighted.
    seen_all = (n_seen >= population) & (population > 0)
    exact = np.divide((w_in * s).sum(axis=1), n_seen, out=np.full(n_judges, 0.5), where=n_seen > 0)
    high = np.where(seen_all, exact, high)
    gap_upper = population / n_decided * (2.0 * high - 1.0)
    gap_upper[leader] = -np.inf
    gap_upper[~qualifies] = -np.inf
    open_ = gap_upper > tolerance
    return JudgeRace(leader, accuracy, gap_upper, open_, tolerance, confidence)


def judge_choice_probabilities(verdict: np.ndarray, race: JudgeRace, pool: np.ndarray, *,
                               uniform_share: float = UNIFORM_SHARE, rivals: int = RIVALS) -> np.ndarray:
    """(P,) draw probabilities over the pairs: share u uniform over the pool, 1 − u in
    proportion to how many of the race's rivals give a different winner from the leader on the
    pair (only those pairs move a difference); 0 outside the pool; uniform when the race is
    settled or no pool pair separates them."""
    verdict = np.atleast_2d(np.asarray(verdict, np.int8))
    pool = np.asarray(pool, dtype=bool)
    q = np.zeros(pool.size)
    size = int(pool.sum())
    if size == 0:
        return q
    focus = np.zeros(pool.size)
    chosen = race.rivals(rivals)
    if race.leader is not None and chosen.size:
        focus = (verdict[chosen] != verdict[race.leader]).sum(axis=0) * pool
    total = focus.sum()
    if total == 0:
        q[pool] = 1.0 / size
        return q
    q[pool] = uniform_share / size
    q += (1.0 - uniform_share) * focus / total
    return q


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


@register_selector(menu_position=65)
@dataclass(frozen=True)
class JudgeChoiceSelector:
    """Pairwise judge choice: compare the pairs where the judge the card holds and its closest
    open challengers disagree, until every challenger is within the tolerance at the
    confidence (module docstring); a uniform share keeps weighted accuracies unbiased. Draws in
    proportion to those chances, so every comparison records its probability and pool size."""

    name: ClassVar[str] = "judge_choice"
    pairwise: ClassVar[bool] = True
    label: ClassVar[str] = "Judge choice (pairwise)"
    summary: ClassVar[str] = (
        "Pairs where the leading pairwise judge and a close rival disagree, until the judge choice "
        "is settled: keeps the right judge with few comparisons (pairwise grading)."
    )
    uses_embeddings: ClassVar[bool] = False
    uses_pair_judges: ClassVar[bool] = True
    sampling: ClassVar[str] = PROPORTIONAL
    tolerance: float = TOLERANCE
    confidence: float = CONFIDENCE
    uniform_share: float = UNIFORM_SHARE

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        judges = ctx.pair_judges
        if judges is None or judges.pair_rows.shape[0] == 0 or judges.verdict.shape[0] == 0:
            return _random_pairs(ctx, "no pairwise judge has verdicts yet: a pair at random")
        rows_a, rows_b = judges.pair_rows[:, 0], judges.pair_rows[:, 1]
        pool = _open_pairs(ctx, rows_a, rows_b, judges.human == WIN_MISSING)
        if not pool.any():
            return ScoredPool.empty()
        race = judge_race(judges.verdict, judges.human, judges.weights, judges.consistency,
                          floor=judges.floor, tolerance=self.tolerance, confidence=self.confidence)
        q = judge_choice_probabilities(judges.verdict, race, pool, uniform_share=self.uniform_share)
        positions = np.flatnonzero(pool)
        by_row = {int(rows_a[p]): int(p) for p in positions}
        leader, rivals = race.leader, race.rivals()
        n_open = int(race.open.sum())
        still = f"{n_open} judge{'s' if n_open != 1 else ''} could still beat it by more than {self.tolerance:g}"

        def explain(row: int) -> str:
            p = by_row[row]
            if leader is None:
                return "no pairwise judge meets the consistency floor: a pair at random"
            held = f"{judges.name(leader)} (accuracy {_fmt(race.accuracy[leader])})"
            if race.settled:
                return (f"judge choice settled: {held} is within {self.tolerance:g} of every other "
                        f"judge at {self.confidence:.0%}; a pair at random")
            against = [judges.name(int(j)) for j in rivals if judges.verdict[j, p] != judges.verdict[leader, p]]
            if against:
                return f"{held} and {', '.join(against)} disagree here; {still}"
            return (f"from the uniform share ({self.uniform_share:.0%}) that keeps the judges' "
                    f"weighted accuracy unbiased; {still}")

        return ScoredPool(rows_a[positions], q[positions], explain, partners=rows_b[positions])


def _open_pairs(ctx: SelectionContext, rows_a: np.ndarray, rows_b: np.ndarray,
                uncompared: np.ndarray) -> np.ndarray:
    """Pairs whose two outputs are candidates, not compared by this annotator and, while any is
    left, not compared by anyone (each pair counts once in the population the weights assume)."""
    pool = ctx.candidate_mask[rows_a] & ctx.candidate_mask[rows_b]
    if ctx.compared_pairs is not None and ctx.compared_pairs.shape[0]:
        done = {(min(a, b), max(a, b)) for a, b in ctx.compared_pairs.tolist()}
        pool &= np.array([(min(a, b), max(a, b)) not in done
                          for a, b in zip(rows_a.tolist(), rows_b.tolist(), strict=True)], dtype=bool)
    fresh = pool & uncompared
    return fresh if fresh.any() else pool


def _random_pairs(ctx: SelectionContext, why: str) -> ScoredPool:
    """Every open same-input pair, equally likely (the fallback without judges)."""
    pool = ctx.pool
    samples = ctx.sample_codes[pool]
    order = np.argsort(samples, kind="stable")
    rows, codes = pool[order], samples[order]
    firsts, seconds = [], []
    for start, end in _runs(codes):
        group = rows[start:end]
        for i in range(group.size):
            for j in range(i + 1, group.size):
                firsts.append(int(group[i]))
                seconds.append(int(group[j]))
    rows_a, rows_b = np.array(firsts, np.int64), np.array(seconds, np.int64)
    keep = _open_pairs(ctx, rows_a, rows_b, np.ones(rows_a.size, bool)) if rows_a.size else rows_a.astype(bool)
    return ScoredPool(rows_a[keep], np.ones(int(keep.sum())), lambda row: why, partners=rows_b[keep])


def _runs(codes: np.ndarray) -> list[tuple[int, int]]:
    if codes.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], codes.size]
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if e - s >= 2]
