"""Weights that keep estimates from actively chosen labels unbiased. Pure numpy, no Django."""

from __future__ import annotations

import numpy as np


def importance_ratios(probability: np.ndarray, pool_size: np.ndarray) -> np.ndarray:
    """1 / (pool size × probability): how many uniformly drawn items each label stands for, the
    chance a uniform draw from the same pool had over the chance it actually had. NaN where the
    probability or the pool size is unknown (missing, NaN or not positive)."""
    probability = np.asarray(probability, dtype=np.float64)
    pool_size = np.asarray(pool_size, dtype=np.float64)
    known = np.isfinite(probability) & (probability > 0) & np.isfinite(pool_size) & (pool_size > 0)
    ratios = np.full(probability.shape, np.nan)
    ratios[known] = 1.0 / (pool_size[known] * probability[known])
    return ratios


def lure_weights(
    ratios: np.ndarray, pool_sizes: np.ndarray, n_population: int, n_labelled: int
) -> np.ndarray:
    """Weights that keep estimates from actively drawn labels unbiased (LURE: Farquhar, Gal &
    Rainforth 2021, "On Statistical Bias in Active Learning"; Kossen et al. 2021):

        v = 1 + (N − M) / (pool − 1) · (ratio − 1),  ratio = 1 / (pool × probability)

    with N outputs, M of them labelled, and `pool` the ungraded outputs the label was drawn
    from. Uniform draws get 1; once every output is labelled (M = N) every weight is 1, so the
    estimate is the plain full-data figure. Unknown pool sizes keep the plain ratio.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    pool_sizes = np.asarray(pool_sizes, dtype=np.float64)
    known = np.isfinite(pool_sizes) & (pool_sizes > 1)
    remaining = max(n_population - n_labelled, 0)
    factor = np.ones_like(ratios)
    factor[known] = np.minimum(remaining / (pool_sizes[known] - 1.0), 1.0)
    factor[np.isfinite(pool_sizes) & (pool_sizes <= 1)] = 0.0
    return 1.0 + factor * (ratios - 1.0)
