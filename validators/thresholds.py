"""The threshold of a scored validator (a rating or external judge stored without one), picked
by the EvalGen rule over a sweep of candidate thresholds (DESIGN §4.2, §4.6). Pure numpy: no
Django. A score passes at >= the threshold, as a numeric code assertion does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotate.statistics import VERDICT_FAIL, VERDICT_MISSING, VERDICT_PASS
from validators.alignment import AlignmentMetrics, alignment_table
from validators.selection import Candidate, select_validator

# Above this many distinct scores, the sweep tries this many quantiles of them: the card
# recomputes after every grade and must stay within milliseconds.
MAX_THRESHOLDS = 200


def candidate_thresholds(scores: np.ndarray, cap: int = MAX_THRESHOLDS) -> np.ndarray:
    """The distinct finite scores, ascending; above `cap` of them, `cap` quantiles that are
    themselves scores (so every threshold splits the data where a score sits). Kept in the
    scores' own dtype: a float32 matrix compares exactly against its own values."""
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    distinct = np.unique(scores[np.isfinite(scores)])
    if distinct.size <= cap:
        return distinct
    return np.unique(np.quantile(distinct, np.linspace(0.0, 1.0, cap), method="inverted_cdf"))


def verdicts_at(codes: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Verdict codes (n_outputs, n_thresholds): where a score is stored without a verdict,
    pass at score >= threshold, else fail; errors and other verdicts stay as they are."""
    codes = np.asarray(codes, dtype=np.int8)
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    scored = (codes == VERDICT_MISSING) & np.isfinite(scores)
    with np.errstate(invalid="ignore"):
        passes = scores[:, np.newaxis] >= thresholds[np.newaxis, :]
    picked = np.where(passes, VERDICT_PASS, VERDICT_FAIL).astype(np.int8)
    return np.where(scored[:, np.newaxis], picked, codes[:, np.newaxis]).astype(np.int8)


def shortest(value: np.floating) -> float:
    return float(np.format_float_positional(value, unique=True, trim="-"))


@dataclass(frozen=True)
class ThresholdSweep:
    thresholds: np.ndarray            # ascending candidate thresholds
    metrics: list[AlignmentMetrics]   # one per threshold
    chosen: int | None                # index into thresholds, None when there are no scores
    qualified: bool                   # the chosen threshold meets the rule (else: best alignment)
    reason: str

    @property
    def threshold(self) -> float | None:
        """The picked threshold as the shortest decimal that reads back as the same score
        (a float32 0.7 is 0.699999988 as a float64; people and exports see 0.7)."""
        return None if self.chosen is None else shortest(self.thresholds[self.chosen])

    @property
    def metrics_at_threshold(self) -> AlignmentMetrics | None:
        return None if self.chosen is None else self.metrics[self.chosen]

    def curve(self) -> dict:
        """Alignment and FFR across thresholds, JSON-ready (undefined values are None)."""
        return {
            "thresholds": [shortest(t) for t in self.thresholds],
            "alignment": [m.alignment for m in self.metrics],
            "ffr": [m.false_failure_rate for m in self.metrics],
            "chosen": self.threshold,
        }


def threshold_sweep(
    human: np.ndarray, codes: np.ndarray, scores: np.ndarray, *, ffr_ceiling: float,
    min_labels: int, weights: np.ndarray | None = None, cap: int = MAX_THRESHOLDS,
) -> ThresholdSweep:
    """Alignment of `score >= t` with the human labels for every candidate t, and the t the
    EvalGen rule picks: the highest alignment with FFR under the ceiling, ties by lower FFR,
    then lower skip rate, then the lower threshold. When no threshold qualifies, the one with
    the highest alignment regardless of the ceiling, so the card shows how far off it is."""
    thresholds = candidate_thresholds(scores, cap)
    if thresholds.size == 0:
        return ThresholdSweep(thresholds, [], None, False, "no score on a graded output yet")
    table = alignment_table(human, verdicts_at(codes, scores, thresholds), weights)
    candidates = [
        Candidate(validator_id=index, kind="code", name=f"{t:g}", metrics=m)
        for index, (t, m) in enumerate(zip(thresholds, table, strict=True))
    ]
    selection = select_validator(candidates, ffr_ceiling=ffr_ceiling, min_labels=min_labels)
    if selection.chosen is not None:
        chosen = selection.chosen.validator_id
        m = table[chosen]
        return ThresholdSweep(thresholds, table, chosen, True, (
            f"threshold picked: {shortest(thresholds[chosen]):g} (alignment {m.alignment:.2f}, FFR "
            f"{m.false_failure_rate:.2f}; {thresholds.size} thresholds tried)"
        ))
    loose = select_validator(candidates, ffr_ceiling=1.0, min_labels=min_labels)
    if loose.chosen is None:
        return ThresholdSweep(thresholds, table, None, False, f"no threshold qualifies: {selection.reason}")
    chosen = loose.chosen.validator_id
    return ThresholdSweep(thresholds, table, chosen, False, (
        f"no threshold qualifies ({selection.reason}); best alignment at {shortest(thresholds[chosen]):g}"
    ))
