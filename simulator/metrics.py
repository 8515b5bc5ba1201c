"""Label-efficiency metrics of the `simulate` command (DESIGN §7). Pure numpy, no Django.

Definitions (the command's JSON and bench/LABEL_EFFICIENCY.md use exactly these):

- system estimate: per system, the mean of the oracle's answers so far (pass rate on a binary
  project, mean score on a rating one); optionally Hájek-weighted by 1 / selection probability.
  A system with no answer yet gets the mean of all answers so far (it ties with the middle), so
  early rankings are not flattered by dropping the systems nobody has graded.
- tau: Kendall's tau-b between that estimate and the same statistic over every output. An
  undefined tau (every estimate equal) counts as 0: no information about the order.
- regret of a validator choice: full-data alignment of the candidate the full data chooses
  minus full-data alignment of the candidate chosen now. Nothing chosen yet counts as
  alignment 0 (a criterion without a validator catches nothing), so the regret is then the
  best candidate's alignment. Regret can be negative: the card holds a candidate with a higher
  full-data alignment that the full data itself rejects (its FFR is above the ceiling there).
- labels needed: per seed, the smallest budget from which the metric stays on the right side of
  its threshold at every later budget; across seeds, the median, a seed that never gets there
  counting as infinitely many. None when the median is not reached within the budgets.
- parity: a selector's labels needed divided by random's on the same seeds and budgets; below 1
  is better. None when either is None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from annotate.rankings import kendall_tau

TAU_TARGET = 0.9
REGRET_TARGET = 0.02


def system_means(
    system_codes: np.ndarray,
    values: np.ndarray,
    n_systems: int,
    *,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(S,) weighted mean of `values` per system; systems without values get the overall mean.

    With `weights` = 1 / selection probability this is the Hájek estimator (DESIGN §4.4).
    """
    system_codes = np.asarray(system_codes, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (system_codes.shape == values.shape == weights.shape):
        raise ValueError("system_codes, values and weights must have the same shape")
    if values.size == 0:
        return np.zeros(n_systems)
    total = np.bincount(system_codes, weights=weights * values, minlength=n_systems)
    mass = np.bincount(system_codes, weights=weights, minlength=n_systems)
    overall = float(np.sum(weights * values) / np.sum(weights))
    return np.divide(total, mass, out=np.full(n_systems, overall), where=mass > 0)


def ranking_tau(estimate: np.ndarray, full: np.ndarray) -> float:
    """Kendall's tau-b of an estimate against the full-data statistic; 0.0 where undefined."""
    tau = kendall_tau(estimate, full)
    return 0.0 if tau is None else tau


def regret(full_alignment: dict[str, float], best: str, chosen: str | None) -> float:
    """Full-data alignment lost by holding `chosen` instead of `best` (see module docstring)."""
    held = 0.0 if chosen is None else full_alignment.get(chosen, 0.0)
    return float(full_alignment[best] - held)


def labels_needed_per_seed(
    curve: Sequence[float], budgets: Sequence[int], threshold: float, *, at_least: bool
) -> int | None:
    """The smallest budget from which `curve` stays >= (at_least) or <= threshold to the end."""
    if len(curve) != len(budgets):
        raise ValueError("one value per budget is needed")
    needed = None
    for budget, value in zip(reversed(budgets), reversed(curve), strict=True):
        ok = value >= threshold if at_least else value <= threshold
        if not ok:
            break
        needed = int(budget)
    return needed


def median_labels(per_seed: Sequence[int | None]) -> float | None:
    """Median over seeds, a seed that never reached the target counting as infinitely many."""
    if not per_seed:
        return None
    values = np.array([np.inf if n is None else float(n) for n in per_seed])
    median = float(np.median(values))
    return None if not np.isfinite(median) else median


def labels_quantile(per_seed: Sequence[int | None], q: float) -> float | None:
    """The q-quantile over seeds (linear interpolation, as numpy's default: q = 0.5 is
    `median_labels`), a seed that never reached the target counting as infinitely many. None
    when the quantile touches such a seed."""
    if not per_seed:
        return None
    values = np.sort([np.inf if n is None else float(n) for n in per_seed])
    position = (values.size - 1) * q
    low, high = int(np.floor(position)), int(np.ceil(position))
    if not np.isfinite(values[high]):
        return None
    # Rounded so 20.500000000000007 does not reach the JSON.
    return round(float(values[low] + (values[high] - values[low]) * (position - low)), 6)


def labels_needed(
    curves: Sequence[Sequence[float]], budgets: Sequence[int], threshold: float, *,
    at_least: bool,
) -> float | None:
    """Median over seeds (one curve per seed) of `labels_needed_per_seed`."""
    return median_labels(
        [labels_needed_per_seed(c, budgets, threshold, at_least=at_least) for c in curves]
    )


def all_below(curves_by_key: dict[str, Sequence[Sequence[float]]]) -> list[list[float]]:
    """Per seed and budget, the largest value over keys (criteria): the whole report card holds
    when its worst criterion does."""
    keys = list(curves_by_key)
    if not keys:
        return []
    stacked = np.array([curves_by_key[k] for k in keys], dtype=np.float64)
    return stacked.max(axis=0).tolist()


def parity(needed: float | None, random_needed: float | None) -> float | None:
    if needed is None or random_needed is None or random_needed <= 0:
        return None
    return float(needed) / float(random_needed)


def summarise(
    values: Sequence[Sequence[float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per budget: the mean over seeds and the min–max band (for the plot)."""
    array = np.asarray(values, dtype=np.float64)
    return array.mean(axis=0), array.min(axis=0), array.max(axis=0)
