"""Shared statistics and encodings, pure numpy (no Django import), so that both apps may use
them: `annotate` owns it because `validators` imports `annotate` and never the reverse.
"""

from __future__ import annotations

import math

import numpy as np

LABEL_FAIL, LABEL_PASS, LABEL_UNSURE, NO_LABEL = 0, 1, 2, -1
VERDICT_CODES = {"fail": LABEL_FAIL, "pass": LABEL_PASS, "unsure": LABEL_UNSURE}

# Two-sided 95%: scipy.stats.norm.isf(0.025) (as in statsmodels' proportion_confint) to 16 digits.
Z_95 = 1.959963984540054

Interval = tuple[float, float]


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Interval | None:
    """Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta
    2001 recommend it over the Wald interval for small n and proportions near 0 or 1).

    `None` when n == 0: a proportion of nothing has no interval.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return None
    return _wilson(successes / n, n, z)


def wilson_interval_float(proportion: float, n: float, z: float = Z_95) -> Interval | None:
    """`wilson_interval` at a proportion with a real-valued sample size, for weighted data:
    `proportion` is a weighted proportion and `n` its Kish effective size.

    At an integer n and proportion successes/n it is exactly `wilson_interval(successes, n)`.
    `None` when n == 0.
    """
    proportion, n = float(proportion), float(n)
    if not (math.isfinite(n) and n >= 0.0):
        raise ValueError(f"need a finite n >= 0, got n={n}")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"need 0 <= proportion <= 1, got proportion={proportion}")
    if n == 0.0:
        return None
    return _wilson(proportion, n, z)


def _wilson(p: float, n: float, z: float) -> Interval:
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    # At 0 and 1 the bound is exactly 0 or 1; the subtraction leaves a rounding residue.
    low = 0.0 if p == 0.0 else max(0.0, centre - half_width)
    high = 1.0 if p == 1.0 else min(1.0, centre + half_width)
    return (low, high)



def rows_of(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `wanted` in the ascending `ids`, and which of them are there at all."""
    rows = np.searchsorted(ids, wanted)
    found = rows < ids.size
    found[found] = ids[rows[found]] == wanted[found]
    return rows, found


def target_rows(target_output_ids: np.ndarray, vote_output_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vote's row in the ascending `target_output_ids`, and whether its output is there."""
    n = target_output_ids.size
    if not n:
        return np.zeros(vote_output_ids.size, dtype=np.int64), np.zeros(vote_output_ids.size, bool)
    rows = np.clip(np.searchsorted(target_output_ids, vote_output_ids), 0, n - 1)
    return rows, target_output_ids[rows] == vote_output_ids


def majority(target_output_ids: np.ndarray, vote_output_ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Majority of pass/fail votes per target output (ascending ids); ties, `unsure` and
    outputs without votes give NO_LABEL."""
    n = target_output_ids.size
    rows, known = target_rows(target_output_ids, vote_output_ids)
    rows, codes = rows[known], codes[known]
    passes = np.bincount(rows[codes == LABEL_PASS], minlength=n)
    fails = np.bincount(rows[codes == LABEL_FAIL], minlength=n)
    result = np.full(n, NO_LABEL, dtype=np.int8)
    result[passes > fails] = LABEL_PASS
    result[fails > passes] = LABEL_FAIL
    return result
