"""Selectors that look at where outputs lie in an embedding space (DESIGN §4.3).

diversity (k-center greedy) and mad_systems (pairwise maximum discrepancy between systems).

Without embeddings both fall back to the outputs' validator-verdict patterns as coordinates,
so they still spread the labels over different validator behaviours.

Cache: the max cosine of every row to the labelled set is kept per feature matrix and updated
with only the rows labelled since the previous call (a k-center greedy step needs nothing else);
if a label disappears (an undo) it is rebuilt. The first call with L labels costs N·L·D
multiply-adds; each later call costs N·D per new label.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import sparse

from annotate.selectors.base import (
    ScoredPool,
    SelectionContext,
    derived,
    register_selector,
    validator_pass_rates,
)

# Elements of one similarity block, to bound the temporary memory of an update (~16 MB).
_BLOCK_ELEMENTS = 4_000_000
_FEW_CENTRES = 8


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def verdict_features(evidence: np.ndarray) -> np.ndarray:
    """(N, M) float32 unit rows: centred verdicts, a missing verdict imputed at the pass rate."""

    def compute() -> np.ndarray:
        rates = np.nan_to_num(validator_pass_rates(evidence), nan=0.5).astype(np.float32)
        filled = np.where(np.isnan(evidence), rates, evidence).astype(np.float32)
        return _unit_rows(filled - rates)

    return derived("verdict_features", (evidence,), compute)


def output_features(ctx: SelectionContext) -> tuple[np.ndarray, str]:
    if ctx.embeddings is not None:
        return ctx.embeddings, "embeddings"
    return verdict_features(ctx.evidence), "validator verdicts"


class NearestLabelled:
    """Max cosine similarity of every row to a growing set of rows, updated incrementally."""

    def __init__(self, n_rows: int) -> None:
        self._lock = threading.Lock()
        self._covered = np.zeros(n_rows, dtype=bool)
        self._max_similarity = np.full(n_rows, -np.inf, dtype=np.float32)

    def max_similarity(
        self, features: np.ndarray, chosen: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """For `rows`, the max cosine to the rows where `chosen` holds; -inf if none is."""
        with self._lock:
            if (self._covered & ~chosen).any():
                self._covered[:] = False
                self._max_similarity[:] = -np.inf
            new = np.flatnonzero(chosen & ~self._covered)
            self._fold_in(features, new)
            self._covered[new] = True
            return self._max_similarity[rows].copy()

    def _fold_in(self, features: np.ndarray, centres: np.ndarray) -> None:
        if centres.shape[0] <= _FEW_CENTRES:
            # The usual call (a label or two since the last one): einsum, because a
            # multi-threaded BLAS gemv on a tall matrix stalled for 10-20 ms whenever the other
            # core was busy.
            for centre in centres.tolist():
                similarity = np.einsum("ij,j->i", features, features[centre])
                np.maximum(self._max_similarity, similarity, out=self._max_similarity)
            return
        block = max(1, _BLOCK_ELEMENTS // max(1, features.shape[0]))
        for start in range(0, centres.shape[0], block):
            similarity = features @ features[centres[start : start + block]].T
            np.maximum(self._max_similarity, similarity.max(axis=1), out=self._max_similarity)


def _nearest_labelled(kind: str, features: np.ndarray, *keys: np.ndarray) -> NearestLabelled:
    return derived(kind, (features, *keys), lambda: NearestLabelled(features.shape[0]))


@register_selector(menu_position=80)
@dataclass(frozen=True)
class DiversitySelector:
    """k-center greedy (Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks:
    A Core-Set Approach"): the pool item farthest from everything labelled, where far means a
    low max cosine similarity to the labelled set."""

    name: ClassVar[str] = "diversity"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Diversity (k-center)"
    summary: ClassVar[str] = (
        "Outputs unlike anything graded yet (k-center on embeddings): covers the data's variety fast."
    )
    uses_embeddings: ClassVar[bool] = True

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        features, space = output_features(ctx)
        pool = ctx.pool
        nearest = _nearest_labelled("nearest_labelled_rows", features)
        similarity = nearest.max_similarity(features, ctx.labelled_mask, pool)
        # Cosine distance lies in [0, 2]; with nothing labelled every item is equally far.
        distance = np.where(np.isinf(similarity), 2.0, 1.0 - similarity.astype(np.float64))

        def explain(row: int) -> str:
            closest = similarity[np.searchsorted(pool, row)]
            if np.isinf(closest):
                return "nothing graded yet: every item is as far as any other"
            return (
                f"farthest from everything graded so far (closest graded item has cosine "
                f"{closest:.2f} on {space})"
            )

        return ScoredPool(pool, distance, explain)


def _row_table(system_codes: np.ndarray, sample_codes: np.ndarray, shape: tuple[int, int]):
    """(S, I) int64 row of each (system, sample), -1 where the system has no output there."""

    def compute() -> np.ndarray:
        table = np.full(shape, -1, dtype=np.int64)
        table[system_codes, sample_codes] = np.arange(system_codes.shape[0])
        return table

    return derived("row_table", (system_codes, sample_codes), compute, shape)


def _sample_features(features: np.ndarray, sample_codes: np.ndarray, n_samples: int):
    """(I, D) unit mean of each sample's output features: a stand-in for the input itself."""

    def compute() -> np.ndarray:
        n_rows = sample_codes.shape[0]
        membership = sparse.csr_matrix(
            (np.ones(n_rows, dtype=np.float32), (sample_codes, np.arange(n_rows))),
            shape=(n_samples, n_rows),
        )
        return _unit_rows(np.asarray(membership @ features, dtype=np.float32))

    return derived("sample_features", (features, sample_codes), compute, n_samples)


def _system_pairs(n_systems: int) -> tuple[np.ndarray, np.ndarray]:
    return derived("system_pairs", (), lambda: np.triu_indices(n_systems, k=1), n_systems)


@register_selector(menu_position=60)
@dataclass(frozen=True)
class MadSystemsSelector:
    """Pairwise MAD between systems (Wang et al. 2020, MAD competition; MAD-Eval's use for LLMs).

    System pairs are visited round-robin by `n_labelled`; for the current pair, the sample whose
    two outputs are most dissimilar (1 − cosine) wins, less λ times its max cosine to inputs
    already chosen so the comparisons spread over inputs. Both rows of a pair are pool rows, and
    a pair listed in `compared_pairs` is never offered again. The ε-random branch of the chooser
    draws uniformly among the current system pair's candidate samples. `row` is always the
    system with the lower code: the caller shows the two sides in random order, or position bias
    enters the comparisons.
    """

    name: ClassVar[str] = "mad_systems"
    pairwise: ClassVar[bool] = True
    label: ClassVar[str] = "MAD between systems (pairwise)"
    summary: ClassVar[str] = (
        "Pairs where two systems' answers differ most: finds what separates systems (pairwise grading)."
    )
    uses_embeddings: ClassVar[bool] = True
    diversity_weight: float = 0.5

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        n_systems, n_samples = ctx.n_systems, ctx.n_samples
        if n_systems < 2 or ctx.pool.shape[0] < 2:
            return ScoredPool.empty()
        table = _row_table(ctx.system_codes, ctx.sample_codes, (n_systems, n_samples))
        firsts, seconds = _system_pairs(n_systems)
        n_pairs = firsts.shape[0]
        compared = self._compared_samples_by_pair(ctx)
        start = ctx.n_labelled % n_pairs
        found = self._first_open_pair(ctx, table, firsts, seconds, start, compared)
        if found is None:
            return ScoredPool.empty()
        pair, samples, rows_a, rows_b = found
        first, second = int(firsts[pair]), int(seconds[pair])

        features, space = output_features(ctx)
        dissimilarity = 1.0 - np.einsum(
            "ij,ij->i", features[rows_a], features[rows_b], dtype=np.float64
        )
        chosen = np.zeros(n_samples, dtype=bool)
        chosen[ctx.sample_codes[ctx.labelled_mask]] = True
        if ctx.compared_pairs is not None and ctx.compared_pairs.shape[0]:
            chosen[ctx.sample_codes[ctx.compared_pairs[:, 0]]] = True
        sample_features = _sample_features(features, ctx.sample_codes, n_samples)
        nearest = _nearest_labelled(
            "nearest_chosen_samples", sample_features, ctx.sample_codes
        )
        similarity = nearest.max_similarity(sample_features, chosen, samples)
        penalty = np.where(np.isinf(similarity), 0.0, similarity.astype(np.float64))
        scores = dissimilarity - self.diversity_weight * penalty

        def explain(row: int) -> str:
            position = int(np.flatnonzero(rows_a == row)[0])
            near = similarity[position]
            chosen_text = (
                "no input chosen yet" if np.isinf(near)
                else f"closest input already chosen has cosine {near:.2f}"
            )
            return (
                f"{ctx.system_name(first)} vs {ctx.system_name(second)} (system pair "
                f"{pair + 1} of {n_pairs}): their outputs differ most on this input "
                f"(cosine distance {dissimilarity[position]:.2f} on {space}; {chosen_text})"
            )

        return ScoredPool(rows_a, scores, explain, partners=rows_b)

    @staticmethod
    def _compared_samples_by_pair(ctx: SelectionContext) -> dict[tuple[int, int], np.ndarray]:
        if ctx.compared_pairs is None or ctx.compared_pairs.shape[0] == 0:
            return {}
        rows = ctx.compared_pairs.astype(np.int64)
        systems = np.sort(ctx.system_codes[rows], axis=1)
        samples = ctx.sample_codes[rows[:, 0]]
        by_pair: dict[tuple[int, int], list[int]] = {}
        for (a, b), sample in zip(systems.tolist(), samples.tolist(), strict=True):
            by_pair.setdefault((a, b), []).append(sample)
        return {pair: np.array(samples, dtype=np.int64) for pair, samples in by_pair.items()}

    @staticmethod
    def _open_samples(
        ctx: SelectionContext,
        table: np.ndarray,
        first: int,
        second: int,
        compared: dict[tuple[int, int], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows_a, rows_b = table[first], table[second]
        open_ = (rows_a >= 0) & (rows_b >= 0)
        open_[open_] = ctx.candidate_mask[rows_a[open_]] & ctx.candidate_mask[rows_b[open_]]
        done = compared.get((first, second))
        if done is not None:
            open_[done] = False
        samples = np.flatnonzero(open_)
        return samples, rows_a[samples], rows_b[samples]

    def _first_open_pair(
        self,
        ctx: SelectionContext,
        table: np.ndarray,
        firsts: np.ndarray,
        seconds: np.ndarray,
        start: int,
        compared: dict[tuple[int, int], np.ndarray],
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
        """The round-robin pair at `start`, or the next one that still has an open sample."""
        samples, rows_a, rows_b = self._open_samples(
            ctx, table, int(firsts[start]), int(seconds[start]), compared
        )
        if samples.shape[0]:
            return start, samples, rows_a, rows_b
        in_pool = (table >= 0) & ctx.candidate_mask[np.maximum(table, 0)]
        overlap = in_pool.astype(np.float32) @ in_pool.T.astype(np.float32)
        n_pairs = firsts.shape[0]
        order = (start + np.arange(1, n_pairs)) % n_pairs
        order = order[overlap[firsts[order], seconds[order]] > 0]
        for pair in order.tolist():
            samples, rows_a, rows_b = self._open_samples(
                ctx, table, int(firsts[pair]), int(seconds[pair]), compared
            )
            if samples.shape[0]:
                return pair, samples, rows_a, rows_b
        return None
