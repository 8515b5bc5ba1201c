"""Shared statistics and encodings, pure numpy (no Django import), so that both apps may use
them: `annotate` owns it because `validators` imports `annotate` and never the reverse.

Encodings (one each, used everywhere):

- a person's vote and a human label (int8): 1 pass, 0 fail, 2 unsure, -1 none; the gold
  export adds 3 for a tie (`LABEL_NAMES[code + 1]` is the name);
- a validator's verdict (int8): 1 pass, 0 fail, -1 error, -2 missing (not run);
- evidence for the active selectors (float): 1.0 pass, 0.0 fail, NaN otherwise (`as_outcomes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

LABEL_FAIL, LABEL_PASS, LABEL_UNSURE, NO_LABEL = 0, 1, 2, -1
LABEL_TIE = 3
LABEL_NAMES = ("", "fail", "pass", "unsure", "tie")  # index code + 1
VERDICT_CODES = {"fail": LABEL_FAIL, "pass": LABEL_PASS, "unsure": LABEL_UNSURE}

VERDICT_PASS, VERDICT_FAIL, VERDICT_ERROR, VERDICT_MISSING = 1, 0, -1, -2
OUTCOME_CODES = {"pass": VERDICT_PASS, "fail": VERDICT_FAIL, "error": VERDICT_ERROR}
OUTCOME_NAMES = {
    VERDICT_PASS: "pass", VERDICT_FAIL: "fail", VERDICT_ERROR: "error", VERDICT_MISSING: "",
}


def sql_case(column: str, codes: Mapping[str, int], default: int) -> str:
    """The encoding `codes` as an SQL CASE over a text column, for queries counted in numpy."""
    whens = " ".join(f"WHEN '{name}' THEN {code}" for name, code in codes.items())
    return f"CASE {column} {whens} ELSE {default} END"


def as_outcomes(codes: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Label or verdict codes as evidence: 1.0 pass, 0.0 fail, NaN for anything else."""
    codes = np.asarray(codes)
    out = np.full(codes.shape, np.nan, dtype=dtype)
    out[codes == LABEL_PASS] = 1.0
    out[codes == LABEL_FAIL] = 0.0
    return out


# -- Wilson score intervals ------------------------------------------------------------------
# Two-sided 95%: scipy.stats.norm.isf(0.025) (as in statsmodels' proportion_confint) to 16 digits.
Z_95 = 1.959963984540054

Interval = tuple[float, float]


def wilson_interval(successes: float, n: float, z: float = Z_95) -> Interval | None:
    """Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta
    2001 recommend it over the Wald interval for small n and proportions near 0 or 1).

    `None` when n == 0: a proportion of nothing has no interval. `successes` and `n` may be
    fractional (an effective sample size).
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


def wilson_intervals(
    successes: np.ndarray, trials: np.ndarray, z: float = Z_95
) -> tuple[np.ndarray, np.ndarray]:
    """`wilson_interval` over arrays; [0, 1] where there are no trials.

    `successes` may be fractional (a rating-scale project's summed normalised scores).
    """
    successes = np.asarray(successes, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    safe = np.where(trials > 0, trials, 1.0)
    p = successes / safe
    centre, half_width = _centre_and_half_width(p, safe, z, np.sqrt)
    lower = np.where(p == 0.0, 0.0, np.clip(centre - half_width, 0.0, 1.0))
    upper = np.where(p == 1.0, 1.0, np.clip(centre + half_width, 0.0, 1.0))
    return np.where(trials > 0, lower, 0.0), np.where(trials > 0, upper, 1.0)


def _wilson(p: float, n: float, z: float) -> Interval:
    centre, half_width = _centre_and_half_width(p, n, z, math.sqrt)
    # At 0 and 1 the bound is exactly 0 or 1; the subtraction leaves a rounding residue.
    low = 0.0 if p == 0.0 else max(0.0, centre - half_width)
    high = 1.0 if p == 1.0 else min(1.0, centre + half_width)
    return (float(low), float(high))


def _centre_and_half_width(p, n, z: float, sqrt: Callable):
    """Wilson (1927): centre and half-width of the score interval at proportion p of n."""
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    return centre, half_width


# -- aligning ids ----------------------------------------------------------------------------
def rows_of(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `wanted` in the ascending `ids` (always valid indexes into a non-empty
    `ids`), and which of them are there at all."""
    wanted = np.asarray(wanted)
    if not ids.size:
        return np.zeros(wanted.shape, dtype=np.int64), np.zeros(wanted.shape, bool)
    rows = np.clip(np.searchsorted(ids, wanted), 0, ids.size - 1)
    return rows, ids[rows] == wanted


# -- majorities ------------------------------------------------------------------------------
def vote_counts(rows: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """(pass, fail, unsure) votes per row 0..n-1, from each vote's row and code."""
    return tuple(
        np.bincount(rows[codes == code], minlength=n)
        for code in (LABEL_PASS, LABEL_FAIL, LABEL_UNSURE)
    )


def decided_majority(n_pass: np.ndarray, n_fail: np.ndarray) -> np.ndarray:
    """The human label from vote counts (DESIGN §4.1): pass or fail by a strict majority of
    the pass/fail votes; ties, only unsure votes and no votes give NO_LABEL."""
    result = np.full(np.shape(n_pass), NO_LABEL, dtype=np.int8)
    result[n_pass > n_fail] = LABEL_PASS
    result[n_fail > n_pass] = LABEL_FAIL
    return result


def majority_codes(n_pass: np.ndarray, n_fail: np.ndarray, n_unsure: np.ndarray):
    """The gold export's majority over arrays: `decided_majority`, LABEL_TIE where pass and
    fail votes are level, LABEL_UNSURE where every vote is unsure; and the agreement (the
    share of votes equal to the majority; for a tie the larger side's), NaN without votes."""
    codes = decided_majority(n_pass, n_fail)
    undecided = codes == NO_LABEL
    codes[undecided & (n_pass > 0)] = LABEL_TIE
    codes[undecided & (n_pass == 0) & (n_unsure > 0)] = LABEL_UNSURE
    agreeing = np.select(
        [codes == LABEL_PASS, codes == LABEL_FAIL, codes == LABEL_TIE, codes == LABEL_UNSURE],
        [n_pass, n_fail, n_pass, n_unsure], 0,
    )
    n = n_pass + n_fail + n_unsure
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(n > 0, agreeing / np.maximum(n, 1), np.nan)
    return codes, agreement


def human_majority(n_pass: int, n_fail: int, n_unsure: int) -> tuple[str, float | None]:
    """`majority_codes` one label at a time, by name: (majority, agreement). The review page
    uses it, and the tests check the arrays against it."""
    n = n_pass + n_fail + n_unsure
    if n == 0:
        return "", None
    if n_pass > n_fail:
        return "pass", n_pass / n
    if n_fail > n_pass:
        return "fail", n_fail / n
    if n_pass:
        return "tie", n_pass / n
    return "unsure", 1.0


def majority_labels(output_index: np.ndarray, labels: np.ndarray, n_outputs: int) -> np.ndarray:
    """One label per output from several annotators' grades (`decided_majority`).

    `output_index[k]` is the output the grade `labels[k]` (1 pass, 0 fail, 2 unsure) was given
    to; the result is int8 per output.
    """
    output_index = np.asarray(output_index).astype(np.intp, copy=False)
    labels = np.asarray(labels)
    if output_index.shape != labels.shape or output_index.ndim != 1:
        raise ValueError("output_index and labels must be 1-D arrays of the same length")
    if labels.size and not np.isin(labels, (LABEL_PASS, LABEL_FAIL, LABEL_UNSURE)).all():
        raise ValueError("grade codes must be 1 (pass), 0 (fail) or 2 (unsure)")
    if output_index.size and (output_index.min() < 0 or output_index.max() >= n_outputs):
        raise ValueError(f"output_index must lie in [0, {n_outputs})")
    n_pass, n_fail, _ = vote_counts(output_index, labels, n_outputs)
    return decided_majority(n_pass, n_fail)


def majority(
    target_output_ids: np.ndarray, vote_output_ids: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """`decided_majority` per target output (ascending ids) of the votes' codes; votes on
    outputs not among the targets are left out."""
    rows, known = rows_of(target_output_ids, vote_output_ids)
    n_pass, n_fail, _ = vote_counts(rows[known], codes[known], target_output_ids.size)
    return decided_majority(n_pass, n_fail)
