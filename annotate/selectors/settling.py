"""When is a criterion's validator choice settled? Pure numpy, no Django (DESIGN §4.3).

ε-good identification (Kalyanakrishnan, Tewari, Auer & Stone 2012, "PAC Subset Selection in
Stochastic Multi-armed Bandits", LUCB): the choice is settled once no candidate that could still
qualify can beat the current leader by more than the tolerance, with 95% confidence. Until then,
labels go where they separate the leader from the challengers still open: the outputs on which
the two disagree.

Why these bounds:

- Alignment (DESIGN §4.1) is the harmonic mean of coverage and 1 − FFR, each a weighted ratio
  (Hájek) estimate under the LURE weights of actively drawn labels. Bounding each candidate on
  its own (a Wilson interval per rate) is far too wide: with 100 failing labels a coverage
  interval spans ±0.09, so two candidates 0.011 apart would never separate within 0.02. The
  *difference* between two candidates moves only on outputs where they disagree, so the bound is
  on the paired difference: its linearisation (delta method) Σᵢ wᵢ ψᵢ gives the sandwich
  variance Σᵢ wᵢ² ψᵢ² of a weighted ratio estimator (Särndal, Swensson & Wretman 1992, "Model
  Assisted Survey Sampling", §5.6), which with equal weights is the plain paired variance and
  with unequal weights shrinks the sample to its Kish effective size.
- With no disagreement seen yet that variance is 0, which would settle a pair on luck. One
  unseen disagreement each way per class is added to the variance (as Agresti & Caffo 2000 add
  pseudo-counts so an interval from zero events is not empty).
- The labels are drawn without replacement from a finite project: the variance is multiplied
  by the finite-population correction 1 − n/N, so with every output labelled the bound is the
  full-data figure itself.
- One challenger's bound is one-sided at level 1 − δ/m over the m challengers (Bonferroni), so
  the leader is ε-good with probability ≥ 1 − δ at a fixed sample size. The bound is checked
  after every label, as LUCB does, without its log(t) inflation; tests measure its coverage by
  simulation at fixed sizes.
- Whether a candidate qualifies at all (FFR ≤ ceiling) uses the weighted Wilson interval at
  Kish's effective size, as the report card's own intervals do (validators/alignment.py). A
  challenger whose FFR is above the ceiling with confidence cannot become the choice; a leader
  whose FFR may exceed it may drop out, so the best other candidate must then be ε-good too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

TOLERANCE = 0.02
CONFIDENCE = 0.95


def kish_effective_size(weights: np.ndarray) -> float:
    """(Σw)² / Σw² (Kish 1965, "Survey Sampling", §11.7); 0 for no weights."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size == 0:
        return 0.0
    return float(weights.sum() ** 2 / np.square(weights).sum())


def weighted_wilson_interval(
    successes: np.ndarray, weights: np.ndarray, *, confidence: float = CONFIDENCE,
    population: int | None = None,
) -> tuple[float, float] | None:
    """Wilson score interval at the weighted proportion Σw·x / Σw with Kish's effective size
    as n; None with no observation. With `population` (the N the labels were drawn from without
    replacement), n is divided by the finite-population correction 1 − n/N."""
    successes = np.asarray(successes, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size == 0 or weights.sum() <= 0:
        return None
    proportion = float(weights[successes].sum() / weights.sum())
    n = kish_effective_size(weights)
    if population is not None:
        remaining = 1.0 - weights.size / population
        if remaining <= 0:
            return proportion, proportion
        n /= remaining
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denominator = 1 + z * z / n
    centre = (proportion + z * z / (2 * n)) / denominator
    half = z * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class CandidateRates:
    """Weighted coverage, 1 − FFR and alignment of each candidate column, with what the delta
    method needs: the gradient of alignment and each row's centred contribution."""

    coverage: np.ndarray  # (K,) NaN where the candidate has no failing label
    keep: np.ndarray  # (K,) 1 − FFR; NaN where it has no passing label
    alignment: np.ndarray  # (K,) harmonic mean; 0 where undefined
    ffr_interval: np.ndarray  # (K, 2) weighted Wilson; NaN where undefined
    n_fail: np.ndarray  # (K,) raw labels of each class with a verdict from the candidate
    n_pass: np.ndarray
    influence: np.ndarray  # (n, K) ψ: alignment − truth ≈ Σᵢ wᵢ ψᵢ


def candidate_rates(
    labels_pass: np.ndarray, verdicts: np.ndarray, weights: np.ndarray, *,
    population: int | None = None, confidence: float = CONFIDENCE,
) -> CandidateRates:
    """Rates of K candidates on n labelled outputs.

    `labels_pass` (n,) bool human label; `verdicts` (n, K) 1 pass, 0 fail, NaN none (a
    candidate is measured on the outputs it gave a verdict on); `weights` (n,) LURE weights.
    """
    labels_pass = np.asarray(labels_pass, dtype=bool)
    verdicts = np.asarray(verdicts, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    decided = ~np.isnan(verdicts)
    fails = (verdicts == 0) & decided
    passes = (verdicts == 1) & decided
    on_fail = decided & ~labels_pass[:, None]
    on_pass = decided & labels_pass[:, None]
    w = weights[:, None]
    w_fail = (w * on_fail).sum(axis=0)
    w_pass = (w * on_pass).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = (w * (fails & on_fail)).sum(axis=0) / w_fail
        keep = (w * (passes & on_pass)).sum(axis=0) / w_pass
        total = coverage + keep
        alignment = np.where(total > 0, 2 * coverage * keep / total, 0.0)
        # ∂A/∂c = 2k²/(c+k)², ∂A/∂k = 2c²/(c+k)²; at c = k = 0 both are taken as 1/2, the
        # limit along c = k.
        grad_c = np.where(total > 0, 2 * keep**2 / total**2, 0.5)
        grad_k = np.where(total > 0, 2 * coverage**2 / total**2, 0.5)
        influence = np.where(
            on_fail, grad_c * (fails - coverage) / w_fail,
            np.where(on_pass, grad_k * (passes - keep) / w_pass, 0.0),
        )
    alignment = np.nan_to_num(alignment, nan=0.0)
    influence = np.nan_to_num(influence, nan=0.0)
    interval = np.full((verdicts.shape[1], 2), np.nan)
    for k in range(verdicts.shape[1]):
        rows = on_pass[:, k]
        bounds = weighted_wilson_interval(
            fails[rows, k], weights[rows], confidence=confidence, population=population,
        )
        if bounds is not None:
            interval[k] = bounds
    return CandidateRates(
        coverage=coverage, keep=keep, alignment=alignment, ffr_interval=interval,
        n_fail=on_fail.sum(axis=0), n_pass=on_pass.sum(axis=0), influence=influence,
    )


def leader(rates: CandidateRates, *, ffr_ceiling: float, min_labels: int) -> int | None:
    """The column the EvalGen rule (DESIGN §4.2) holds on these estimates: FFR ≤ ceiling, at
    least `min_labels` of each class, alignment > 0; the highest alignment, ties to lower FFR,
    then the lower column. None when nothing qualifies."""
    ffr = 1.0 - rates.keep
    qualifies = (
        (rates.n_fail >= min_labels) & (rates.n_pass >= min_labels)
        & (np.nan_to_num(ffr, nan=np.inf) <= ffr_ceiling) & (rates.alignment > 0)
    )
    if not qualifies.any():
        return None
    columns = np.flatnonzero(qualifies)
    order = np.lexsort((columns, ffr[columns], -rates.alignment[columns]))
    return int(columns[order[0]])


def gap_upper_bounds(
    rates: CandidateRates, weights: np.ndarray, labels_pass: np.ndarray, reference: int, *,
    population: int | None = None, confidence: float = CONFIDENCE, n_comparisons: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(estimate, upper bound) of alignment[j] − alignment[reference] for every column j.

    Delta-method sandwich variance of the paired difference with one unseen disagreement each
    way per class, times 1 − n/N; one-sided at 1 − (1 − confidence) / n_comparisons.
    The reference's own entry is (0, 0).
    """
    weights = np.asarray(weights, dtype=np.float64)
    labels_pass = np.asarray(labels_pass, dtype=bool)
    difference = rates.influence - rates.influence[:, [reference]]
    variance = (weights[:, None] ** 2 * difference**2).sum(axis=0)
    mean_weight = float(weights.mean()) if weights.size else 1.0
    # The unseen disagreements: in each class, j says fail where the reference says pass, and
    # the other way round, each at the mean weight. ψ of a row from the row's own verdicts.
    for on_pass, gradient, rate in ((False, _grad(rates, "c"), rates.coverage),
                                    (True, _grad(rates, "k"), rates.keep)):
        side = labels_pass if on_pass else ~labels_pass
        total = float(weights[side].sum()) or mean_weight
        for j_fails in (True, False):
            # On a failing output "fails" is the caught side; on a passing one "passes" is.
            j_hit = float(j_fails != on_pass)
            ref_hit = 1.0 - j_hit
            psi_j = gradient * (j_hit - np.nan_to_num(rate, nan=0.0)) / total
            psi_ref = gradient[reference] * (
                ref_hit - np.nan_to_num(rate[reference], nan=0.0)) / total
            variance = variance + mean_weight**2 * (psi_j - psi_ref) ** 2
    if population is not None:
        variance = variance * max(0.0, 1.0 - weights.size / population)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / max(1, n_comparisons))
    estimate = rates.alignment - rates.alignment[reference]
    upper = estimate + z * np.sqrt(variance)
    upper[reference] = 0.0
    return estimate, upper


def _grad(rates: CandidateRates, which: str) -> np.ndarray:
    c = np.nan_to_num(rates.coverage, nan=0.0)
    k = np.nan_to_num(rates.keep, nan=0.0)
    total = c + k
    with np.errstate(divide="ignore", invalid="ignore"):
        if which == "c":
            return np.where(total > 0, 2 * k**2 / total**2, 0.5)
        return np.where(total > 0, 2 * c**2 / total**2, 0.5)


@dataclass(frozen=True)
class Settling:
    """Whether further labels can still change a criterion's choice by more than `tolerance`.

    `leader` and the columns in `pairs` index the criterion's candidate columns as passed in.
    `pairs` are the (held, challenger) pairs still open: the outputs on which they disagree are
    the grades that decide between them. With no leader yet, nothing is settled and no pair is
    named (labels anywhere help).
    """

    settled: bool
    leader: int | None
    pairs: tuple[tuple[int, int], ...]
    # Largest upper bound on how much alignment a challenger could gain over the held column.
    worst_gap: float | None
    n_labels: int
    tolerance: float = TOLERANCE
    confidence: float = CONFIDENCE
    # The held column's FFR may still exceed the ceiling (then the next best is checked too).
    leader_in_doubt: bool = False

    @property
    def why(self) -> str:
        if self.settled:
            return (f"settled: further labels change it by < {self.tolerance:g} with "
                    f"{self.confidence:.0%} confidence ({self.n_labels} labels)")
        if self.leader is None:
            return "open: no candidate qualifies yet"
        return (f"open: a challenger may still beat the choice by up to {self.worst_gap:.3f} "
                f"(tolerance {self.tolerance:g})")


def criterion_settling(
    labels_pass: np.ndarray, verdicts: np.ndarray, weights: np.ndarray | None = None, *,
    ffr_ceiling: float, min_labels: int, population: int | None = None,
    held: int | None = None, tolerance: float = TOLERANCE, confidence: float = CONFIDENCE,
) -> Settling:
    """Settling of one criterion from its n labelled outputs and K candidate columns.

    `held`: the column the report card holds (a pin included); by default the EvalGen rule's
    choice on these weighted estimates. A challenger counts while its FFR interval reaches the
    ceiling (it might still qualify). Settled when every such challenger's gap upper bound is
    at most `tolerance`, and, if the held column's own FFR interval reaches above the ceiling,
    also against the best other candidate, which would take its place.
    """
    labels_pass = np.asarray(labels_pass, dtype=bool)
    verdicts = np.asarray(verdicts, dtype=np.float64)
    n = labels_pass.shape[0]
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if verdicts.shape[1] == 0:
        return Settling(False, None, (), None, n, tolerance, confidence)
    rates = candidate_rates(labels_pass, verdicts, weights, population=population,
                            confidence=confidence)
    first = leader(rates, ffr_ceiling=ffr_ceiling, min_labels=min_labels) if held is None else held
    if first is None:
        return Settling(False, None, (), None, n, tolerance, confidence)
    may_qualify = ~(rates.ffr_interval[:, 0] > ffr_ceiling) & (rates.alignment > 0)
    references = [first]
    in_doubt = bool(rates.ffr_interval[first, 1] > ffr_ceiling)
    if in_doubt:
        others = may_qualify.copy()
        others[first] = False
        if others.any():
            columns = np.flatnonzero(others)
            references.append(int(columns[np.argmax(rates.alignment[columns])]))
    challengers = np.flatnonzero(may_qualify)
    pairs: list[tuple[int, int]] = []
    worst = -math.inf
    n_comparisons = max(1, sum(int(np.count_nonzero(challengers != r)) for r in references))
    for reference in references:
        _, upper = gap_upper_bounds(
            rates, weights, labels_pass, reference, population=population,
            confidence=confidence, n_comparisons=n_comparisons,
        )
        for j in challengers.tolist():
            if j == reference:
                continue
            worst = max(worst, float(upper[j]))
            if upper[j] > tolerance:
                pairs.append((reference, j))
    worst_gap = None if worst == -math.inf else worst
    return Settling(not pairs, first, tuple(pairs), worst_gap, n, tolerance, confidence, in_doubt)
