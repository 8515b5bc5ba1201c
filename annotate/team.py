"""Per-annotator statistics for the team page, as plain numpy functions (no Django)."""

from __future__ import annotations

import numpy as np

from annotate.agreement import cohen_kappa_pairs


def median_per_rater(rater_index: np.ndarray, seconds: np.ndarray, n_raters: int) -> np.ndarray:
    """Median of `seconds` per rater (NaN for a rater without any).

    The median, not the mean, because time on task is heavy-tailed: a tab left open over lunch
    is one long value, and it moves the median by at most one rank while it would dominate a
    mean. Negative durations (clock skew between a browser and the server) count as 0.
    """
    rater_index = np.asarray(rater_index, dtype=np.int64)
    seconds = np.clip(np.asarray(seconds, dtype=float), 0.0, None)
    medians = np.full(n_raters, np.nan)
    if rater_index.size == 0:
        return medians
    order = np.lexsort((seconds, rater_index))
    sorted_raters, sorted_seconds = rater_index[order], seconds[order]
    starts = np.searchsorted(sorted_raters, np.arange(n_raters), side="left")
    ends = np.searchsorted(sorted_raters, np.arange(n_raters), side="right")
    for rater in np.flatnonzero(ends > starts):
        medians[rater] = float(np.median(sorted_seconds[starts[rater]:ends[rater]]))
    return medians


def mean_kappa_per_rater(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each rater (column of an items x raters matrix, -1 missing): the mean of Cohen's
    kappa against every other rater on the items both labelled, over the pairs where kappa is
    defined (NaN when none is), and how many such partners there are."""
    n_raters = np.asarray(ratings).shape[1]
    totals = np.zeros(n_raters)
    partners = np.zeros(n_raters, dtype=np.int64)
    for pair in cohen_kappa_pairs(ratings):
        if pair.kappa is None:
            continue
        for rater in (pair.rater_a, pair.rater_b):
            totals[rater] += pair.kappa
            partners[rater] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(partners > 0, totals / np.maximum(partners, 1), np.nan)
    return means, partners


def counts_per_day(
    rater_index: np.ndarray, day_index: np.ndarray, n_raters: int, n_days: int,
) -> np.ndarray:
    """(n_raters, n_days) number of events per rater and day; days outside [0, n_days) are
    left out."""
    rater_index = np.asarray(rater_index, dtype=np.int64)
    day_index = np.asarray(day_index, dtype=np.int64)
    inside = (day_index >= 0) & (day_index < n_days)
    flat = rater_index[inside] * n_days + day_index[inside]
    return np.bincount(flat, minlength=n_raters * n_days).reshape(n_raters, n_days)
