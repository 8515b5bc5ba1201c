"""Inter-annotator agreement for nominal labels (DESIGN §4.5).

Every function takes a ratings matrix of shape (n_items, n_raters): integer category codes
``>= 0`` and ``MISSING`` (-1) where a rater did not label an item. A coefficient that is
undefined on the given data is returned as ``None``, never as a made-up 0 or 1:

* no item carries two ratings (a single rater, or raters that never overlap): nothing to agree on;
* the chance-corrected coefficients of Cohen, Fleiss and Krippendorff are undefined when every
  rating falls in one category, because expected agreement is then 1 and the ratio is 0/0.
  Gwet's AC1 stays defined there (its chance agreement never exceeds 1/q) as long as the scale
  has at least two categories, which is why it takes ``n_categories``.

The multi-rater coefficients with missing ratings follow Gwet, *Handbook of Inter-Rater
Reliability* (4th ed., 2014, ch. 2 and 4), as implemented in the irrCAC R package: observed
agreement is averaged over the items rated at least twice, and category prevalences over the
items rated at least once, each item weighing the same whatever its number of raters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np

MISSING = -1

# Expected agreement this close to 1 means a single category: kappa would be 0/0.
_DEGENERATE_CHANCE = 1.0 - 1e-12


@dataclass(frozen=True)
class PairKappa:
    rater_a: int
    rater_b: int
    n_items: int
    kappa: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RaterReferenceAgreement:
    rater: int
    n_items: int
    percent_agreement: float | None
    kappa: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceAgreement:
    """Annotators against one reference labeller (e.g. the chosen validator).

    ``n_pairs``, ``percent_agreement`` and ``kappa`` pool every (annotator label, reference
    label) pair; ``raters`` gives the same per annotator column.
    """

    n_pairs: int
    percent_agreement: float | None
    kappa: float | None
    raters: tuple[RaterReferenceAgreement, ...]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AgreementSummary:
    n_items: int
    n_raters: int
    n_ratings: int
    n_items_multiply_rated: int
    percent_agreement: float | None
    mean_cohen_kappa: float | None
    cohen_kappa_pairs: tuple[PairKappa, ...]
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    gwet_ac1: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _validated(ratings: np.ndarray) -> np.ndarray:
    matrix = np.asarray(ratings)
    if matrix.ndim != 2:
        raise ValueError(f"ratings must be a 2-D (items x raters) array, got shape {matrix.shape}")
    if matrix.size and not np.issubdtype(matrix.dtype, np.integer):
        if not np.all(np.equal(np.mod(matrix, 1), 0)):
            raise ValueError("ratings must be integer category codes")
    matrix = matrix.astype(np.int64)
    if matrix.size and matrix.min() < MISSING:
        raise ValueError("ratings must be category codes >= 0, or -1 for missing")
    return matrix


def _category_count(matrix: np.ndarray, n_categories: int | None = None) -> int:
    observed = int(matrix.max()) + 1 if matrix.size else 0
    if n_categories is None:
        return max(observed, 1)
    if n_categories < observed:
        raise ValueError(f"n_categories={n_categories} but a code {observed - 1} occurs")
    return n_categories


def _counts_by_item(matrix: np.ndarray, n_categories: int) -> np.ndarray:
    """(n_items, n_categories) number of raters who put item i in category k."""
    n_items = matrix.shape[0]
    items, raters = np.nonzero(matrix != MISSING)
    flat = items * n_categories + matrix[items, raters]
    return np.bincount(flat, minlength=n_items * n_categories).reshape(n_items, n_categories)


def _observed_agreement(counts: np.ndarray) -> float | None:
    """Share of agreeing rater pairs per item, averaged over items rated at least twice."""
    per_item = counts.sum(axis=1)
    paired = per_item >= 2
    if not paired.any():
        return None
    pairs = per_item[paired] * (per_item[paired] - 1)
    agreeing = (counts[paired] * (counts[paired] - 1)).sum(axis=1)
    return float(np.mean(agreeing / pairs))


def _prevalence(counts: np.ndarray) -> np.ndarray:
    """Gwet's pi_k: each rated item's category shares, averaged with equal item weights."""
    per_item = counts.sum(axis=1)
    rated = per_item >= 1
    return (counts[rated] / per_item[rated, None]).mean(axis=0)


def percent_agreement(ratings: np.ndarray) -> float | None:
    matrix = _validated(ratings)
    return _observed_agreement(_counts_by_item(matrix, _category_count(matrix)))


def _cohen_kappa(labels_a: np.ndarray, labels_b: np.ndarray, n_categories: int) -> float | None:
    n = labels_a.size
    if n == 0:
        return None
    observed = float(np.mean(labels_a == labels_b))
    marginal_a = np.bincount(labels_a, minlength=n_categories) / n
    marginal_b = np.bincount(labels_b, minlength=n_categories) / n
    chance = float(marginal_a @ marginal_b)
    if chance >= _DEGENERATE_CHANCE:
        return None
    return (observed - chance) / (1.0 - chance)


def cohen_kappa_pairs(ratings: np.ndarray) -> list[PairKappa]:
    """Cohen's kappa (Cohen 1960) for every pair of raters on the items both labelled."""
    matrix = _validated(ratings)
    n_categories = _category_count(matrix)
    result = []
    for rater_a, rater_b in combinations(range(matrix.shape[1]), 2):
        both = (matrix[:, rater_a] != MISSING) & (matrix[:, rater_b] != MISSING)
        kappa = _cohen_kappa(matrix[both, rater_a], matrix[both, rater_b], n_categories)
        result.append(PairKappa(rater_a, rater_b, int(both.sum()), kappa))
    return result


def _mean_defined(pairs: list[PairKappa]) -> float | None:
    defined = [pair.kappa for pair in pairs if pair.kappa is not None]
    return float(np.mean(defined)) if defined else None


def mean_cohen_kappa(ratings: np.ndarray) -> float | None:
    """Light's kappa (Light 1971): the unweighted mean over rater pairs where kappa is defined."""
    return _mean_defined(cohen_kappa_pairs(ratings))


def _fleiss_kappa(counts: np.ndarray) -> float | None:
    observed = _observed_agreement(counts)
    if observed is None:
        return None
    chance = float(np.sum(_prevalence(counts) ** 2))
    if chance >= _DEGENERATE_CHANCE:
        return None
    return (observed - chance) / (1.0 - chance)


def fleiss_kappa(ratings: np.ndarray) -> float | None:
    """Fleiss' kappa (Fleiss 1971), generalised to a varying number of raters per item.

    No item is dropped: with missing ratings this is Gwet's generalised form (Handbook 2014,
    irrCAC ``fleiss.kappa.raw``); with the same number of raters on every item it is exactly
    Fleiss' original statistic.
    """
    matrix = _validated(ratings)
    return _fleiss_kappa(_counts_by_item(matrix, _category_count(matrix)))


def _krippendorff_alpha(counts: np.ndarray) -> float | None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal metric:
    # only pairable values (items with >= 2 ratings) enter the coincidence matrix.
    per_item = counts.sum(axis=1)
    pairable = counts[per_item >= 2]
    if pairable.shape[0] == 0:
        return None
    per_pairable = pairable.sum(axis=1)
    n_values = float(per_pairable.sum())
    by_category = pairable.sum(axis=0).astype(float)
    disagreeing = float(np.sum((per_pairable**2 - (pairable**2).sum(axis=1)) / (per_pairable - 1)))
    expected = (n_values**2 - float(np.sum(by_category**2))) / (n_values - 1)
    if expected <= 0.0:
        return None
    return 1.0 - disagreeing / expected


def krippendorff_alpha_nominal(ratings: np.ndarray) -> float | None:
    """Krippendorff's alpha for nominal data; missing ratings allowed."""
    matrix = _validated(ratings)
    return _krippendorff_alpha(_counts_by_item(matrix, _category_count(matrix)))


def _gwet_ac1(counts: np.ndarray) -> float | None:
    # Gwet (2008), BJMSP 61:29-48, eq. for q categories and r raters; missing ratings as in
    # Gwet's Handbook (2014): pe = sum_k pi_k (1 - pi_k) / (q - 1).
    n_categories = counts.shape[1]
    observed = _observed_agreement(counts)
    if observed is None or n_categories < 2:
        return None
    prevalence = _prevalence(counts)
    chance = float(np.sum(prevalence * (1.0 - prevalence))) / (n_categories - 1)
    return (observed - chance) / (1.0 - chance)


def gwet_ac1(ratings: np.ndarray, *, n_categories: int | None = None) -> float | None:
    """Gwet's AC1. ``n_categories`` is the size of the scale (2 for pass/fail).

    It matters because AC1's chance agreement divides by q - 1; by default q is the largest
    code + 1, which under-counts the scale when its top category happens to be unused.
    """
    matrix = _validated(ratings)
    return _gwet_ac1(_counts_by_item(matrix, _category_count(matrix, n_categories)))


def agreement_with_reference(ratings: np.ndarray, reference: np.ndarray) -> ReferenceAgreement:
    """Each annotator (column) against a reference label per item, e.g. the chosen validator."""
    matrix = _validated(ratings)
    reference_codes = _validated(np.asarray(reference).reshape(-1, 1))[:, 0]
    if reference_codes.size != matrix.shape[0]:
        raise ValueError("reference needs one label per item (row of ratings)")
    n_categories = max(_category_count(matrix), _category_count(reference_codes[:, None]))
    both = (matrix != MISSING) & (reference_codes[:, None] != MISSING)
    reference_grid = np.broadcast_to(reference_codes[:, None], matrix.shape)

    def compare(mask: np.ndarray) -> tuple[int, float | None, float | None]:
        labels, expected = matrix[mask], reference_grid[mask]
        if labels.size == 0:
            return 0, None, None
        agree = float(np.mean(labels == expected))
        return int(labels.size), agree, _cohen_kappa(labels, expected, n_categories)

    raters = []
    for rater in range(matrix.shape[1]):
        column_mask = np.zeros_like(both)
        column_mask[:, rater] = both[:, rater]
        raters.append(RaterReferenceAgreement(rater, *compare(column_mask)))
    n_pairs, agree, kappa = compare(both)
    return ReferenceAgreement(n_pairs, agree, kappa, tuple(raters))


def agreement_summary(ratings: np.ndarray, *, n_categories: int | None = None) -> AgreementSummary:
    matrix = _validated(ratings)
    counts = _counts_by_item(matrix, _category_count(matrix, n_categories))
    pairs = cohen_kappa_pairs(matrix)
    return AgreementSummary(
        n_items=int(matrix.shape[0]),
        n_raters=int(matrix.shape[1]),
        n_ratings=int(counts.sum()),
        n_items_multiply_rated=int(np.sum(counts.sum(axis=1) >= 2)),
        percent_agreement=_observed_agreement(counts),
        mean_cohen_kappa=_mean_defined(pairs),
        cohen_kappa_pairs=tuple(pairs),
        fleiss_kappa=_fleiss_kappa(counts),
        krippendorff_alpha=_krippendorff_alpha(counts),
        gwet_ac1=_gwet_ac1(counts),
    )
