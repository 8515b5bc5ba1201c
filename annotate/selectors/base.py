"""What an active selector sees and returns (DESIGN §4.3), and the cache selectors share.

Pure numpy: no Django import, so selectors are tested and benchmarked alone.

Caching contract: the arrays of a `SelectionContext` are read, never written. Quantities that
depend only on slow-changing arrays (the evidence matrix, the embeddings, the system and sample
codes) are memoised by `derived` against the *identity* of those arrays, held through weak
references, so a caller that keeps one evidence matrix alive between calls (e.g. per project,
until the next verdict lands) gets warm timings, and a caller that builds a fresh matrix per
request simply pays the cold cost. Mutating an array in place after it was used is not
supported: build a new array instead.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Protocol, TypeVar

import numpy as np

HOLISTIC = -1
# Winner codes of pairwise judges and human comparisons, as validators.pairwise_alignment's
# (annotate never imports validators, DESIGN §2): a, b, tie, error, missing.
WIN_A, WIN_B, WIN_TIE, WIN_ERROR, WIN_MISSING = 0, 1, 2, -1, -2
DEFAULT_CONSISTENCY_FLOOR = 0.6

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class PairJudges:
    """The project's pairwise judges over its candidate pairs, for the judge_choice selector."""

    pair_rows: np.ndarray     # (P, 2) int64 rows into the context's N outputs, canonical order
    verdict: np.ndarray       # (J, P) int8 winner codes
    consistency: np.ndarray   # (J,) over all pairs judged in both orders; NaN if asked once
    human: np.ndarray         # (P,) int8 current human winner, WIN_MISSING if not compared
    weights: np.ndarray       # (P,) LURE weight of each compared pair (1 for uniform draws)
    names: tuple[str, ...] = ()
    floor: float = DEFAULT_CONSISTENCY_FLOOR

    def name(self, judge: int) -> str:
        return self.names[judge] if judge < len(self.names) else f"judge #{judge}"


@dataclass(frozen=True, eq=False)
class SelectionContext:
    """Everything a selector may look at. Arrays are aligned over ALL N outputs of the project."""

    # (N,) bool: unlabelled by this annotator, unclaimed, overlap not reached.
    candidate_mask: np.ndarray
    # (N,) int32, 0..S-1 and 0..I-1.
    system_codes: np.ndarray
    sample_codes: np.ndarray
    # (N, M) float32 validator outcomes: 1 pass, 0 fail, NaN missing or error.
    evidence: np.ndarray
    # (N, M) float32 raw numeric scores where validators return numbers, else NaN.
    evidence_scores: np.ndarray | None
    # (M,) int32 criterion code per validator column; HOLISTIC (-1) for the holistic verdict.
    validator_criteria: np.ndarray
    # (N,) float32 current holistic human label: 1 pass, 0 fail, NaN unlabelled. A rating-scale
    # project passes scores normalised to [0, 1].
    human: np.ndarray
    # (N, C) float32, the same encoding per criterion code.
    human_by_criterion: np.ndarray | None
    # (N, D) float32, L2-normalised rows.
    embeddings: np.ndarray | None
    # Grades (or comparisons, in pair mode) the project has; drives alternation and round robin.
    n_labelled: int
    system_names: tuple[str, ...] = ()
    # Optional, for the `why` texts only.
    validator_names: tuple[str, ...] = ()
    criterion_names: tuple[str, ...] = ()
    # A human value at or above this counts as pass; a rating-scale project passes its
    # normalised pass threshold.
    pass_threshold: float = 0.5
    # (K, 2) int64 row pairs already compared: mad_systems never offers them again and treats
    # their samples as already chosen.
    compared_pairs: np.ndarray | None = None
    # The project's pairwise judges over its pairs (selectors with `uses_pair_judges`).
    pair_judges: PairJudges | None = None
    # (N,) float64 LURE weights of the current labels (annotate.sampling_weights), 1 where an
    # output is unlabelled or was drawn uniformly; None: every label was drawn uniformly. Lets a
    # selector estimate population figures from actively drawn labels, as the report card does.
    label_weights: np.ndarray | None = None
    # The report card's rule (DESIGN §4.2) with the project's defaults, for selectors that
    # predict its choice.
    ffr_ceiling: float = 0.25
    min_labels_per_class: int = 3

    def __post_init__(self) -> None:
        n = self.candidate_mask.shape[0]
        for name in ("system_codes", "sample_codes", "human"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        if self.evidence.ndim != 2 or self.evidence.shape[0] != n:
            raise ValueError(f"evidence must have shape ({n}, M)")
        m = self.evidence.shape[1]
        if self.validator_criteria.shape != (m,):
            raise ValueError(f"validator_criteria must have shape ({m},)")
        if self.evidence_scores is not None and self.evidence_scores.shape != (n, m):
            raise ValueError(f"evidence_scores must have shape ({n}, {m})")
        for name in ("human_by_criterion", "embeddings"):
            value = getattr(self, name)
            if value is not None and (value.ndim != 2 or value.shape[0] != n):
                raise ValueError(f"{name} must have shape ({n}, ·)")
        if self.label_weights is not None and self.label_weights.shape != (n,):
            raise ValueError(f"label_weights must have shape ({n},)")
        if self.compared_pairs is not None and (
            self.compared_pairs.ndim != 2 or self.compared_pairs.shape[1] != 2
        ):
            raise ValueError("compared_pairs must have shape (K, 2)")

    @property
    def n_outputs(self) -> int:
        return int(self.candidate_mask.shape[0])

    @cached_property
    def n_systems(self) -> int:
        largest = int(self.system_codes.max()) + 1 if self.n_outputs else 0
        return max(len(self.system_names), largest)

    @cached_property
    def n_samples(self) -> int:
        return int(self.sample_codes.max()) + 1 if self.n_outputs else 0

    @cached_property
    def pool(self) -> np.ndarray:
        return np.flatnonzero(self.candidate_mask).astype(np.int64, copy=False)

    @cached_property
    def labelled_mask(self) -> np.ndarray:
        return ~np.isnan(self.human)

    @cached_property
    def graded_rows(self) -> np.ndarray:
        """Rows with a holistic or any per-criterion human value."""
        graded = self.labelled_mask.copy()
        if self.human_by_criterion is not None:
            # Column by column: numpy's reductions over a short last axis are ~30× slower.
            for column in range(self.human_by_criterion.shape[1]):
                graded |= ~np.isnan(self.human_by_criterion[:, column])
        return np.flatnonzero(graded)

    def system_name(self, code: int) -> str:
        return self.system_names[code] if code < len(self.system_names) else f"system {code}"

    def validator_name(self, column: int) -> str:
        if column < len(self.validator_names):
            return self.validator_names[column]
        return f"validator #{column}"

    def criterion_name(self, code: int) -> str:
        if code == HOLISTIC:
            return "the holistic verdict"
        return self.criterion_names[code] if code < len(self.criterion_names) else f"criterion {code}"


@dataclass(frozen=True, eq=False)
class ScoredPool:
    """Scores for pool rows only; higher is picked first.

    `explain(row)` gives the short reason shown to the annotator; it is called only for the row
    actually chosen, so it may do a little work. A pairwise selector fills `partners` with the
    second row of each pair (same sample, another system).
    """

    indices: np.ndarray  # (P,) int64 rows into N
    scores: np.ndarray  # (P,) float64
    explain: Callable[[int], str]
    partners: np.ndarray | None = None  # (P,) int64

    @classmethod
    def empty(cls) -> ScoredPool:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), lambda row: "", None)


class Selector(Protocol):
    # The registry name (stored on grades and projects), and what the settings menu shows.
    name: ClassVar[str]
    label: ClassVar[str]
    # One line on what it picks and why, shown beside the menu and on the selector guide.
    summary: ClassVar[str]
    # Chooses pairs of outputs (judged A / B / tie) instead of single outputs.
    pairwise: ClassVar[bool]
    # Reads output embeddings, so callers compute them first (it falls back without them).
    uses_embeddings: ClassVar[bool]

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool: ...


# The registry: a selector class registers itself where it is defined, so a new selector is
# one module (or one class in an existing module) plus its test. `menu_position` orders the
# settings menu; annotate.selectors imports every module of the package and derives the rest.
_REGISTERED: dict[str, tuple[int, type]] = {}
_SelectorClass = TypeVar("_SelectorClass", bound=type)


def register_selector(*, menu_position: int) -> Callable[[_SelectorClass], _SelectorClass]:
    def register(selector_class: _SelectorClass) -> _SelectorClass:
        name = selector_class.name  # type: ignore[attr-defined]
        existing = _REGISTERED.get(name)
        if existing is not None and existing[1].__qualname__ != selector_class.__qualname__:
            raise ValueError(f"two selectors are named {name!r}")
        _REGISTERED[name] = (menu_position, selector_class)
        return selector_class

    return register


def registered_selectors() -> dict[str, type]:
    """Every registered selector by name, in menu order."""
    return {name: cls for name, (_, cls) in sorted(_REGISTERED.items(), key=lambda i: i[1][0])}


def unchanged_or_fresh(cached: dict[str, np.ndarray], name: str, fresh: np.ndarray) -> np.ndarray:
    """The array cached under `name` when `fresh` equals it, else `fresh` (made read-only and
    cached): unchanged inputs keep their identity, so the memoisation below stays warm."""
    previous = cached.get(name)
    if previous is not None and previous.shape == fresh.shape and np.array_equal(
        previous, fresh, equal_nan=fresh.dtype.kind == "f"
    ):
        return previous
    fresh.setflags(write=False)
    cached[name] = fresh
    return fresh


# ---------------------------------------------------------------------------------------------
# Memoisation against array identity.

_CACHE_CAPACITY = 64
_cache: OrderedDict[tuple[Hashable, ...], tuple[tuple[weakref.ref | None, ...], object]] = (
    OrderedDict()
)
# Re-entrant: a weak-reference callback may run from garbage collection inside a locked block.
_cache_lock = threading.RLock()


def _referent(ref: weakref.ref | None) -> object | None:
    return None if ref is None else ref()


def _forget(key: tuple[Hashable, ...]) -> Callable[[weakref.ref], None]:
    def forget(_: weakref.ref) -> None:
        with _cache_lock:
            _cache.pop(key, None)

    return forget


def derived(
    kind: str, arrays: tuple[np.ndarray | None, ...], compute: Callable[[], T], *extra: Hashable
) -> T:
    """`compute()` memoised while every array in `arrays` is the very same live object.

    An entry is dropped as soon as one of its arrays is garbage-collected (so a reused id never
    hits a stale value) and a small LRU bounds the rest. A cached value must not reference the
    arrays it is keyed by, or they would never be collected.
    """
    key = (kind, *(id(a) for a in arrays), *extra)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            refs, value = hit
            if all(_referent(r) is a for r, a in zip(refs, arrays, strict=True)):
                _cache.move_to_end(key)
                return value  # type: ignore[return-value]
            del _cache[key]
    value = compute()
    refs = tuple(None if a is None else weakref.ref(a, _forget(key)) for a in arrays)
    with _cache_lock:
        _cache[key] = (refs, value)
        while len(_cache) > _CACHE_CAPACITY:
            _cache.popitem(last=False)
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# ---------------------------------------------------------------------------------------------
# Quantities several selectors share.


@dataclass(frozen=True)
class VoteCounts:
    """Per output: how many validators gave a verdict, and how many of those passed it."""

    n_pass: np.ndarray  # (N,) float64
    n_verdicts: np.ndarray  # (N,) float64

    @property
    def pass_fraction(self) -> np.ndarray:
        return np.divide(
            self.n_pass, self.n_verdicts, out=np.full_like(self.n_pass, np.nan),
            where=self.n_verdicts > 0,
        )


def vote_counts(evidence: np.ndarray, columns: np.ndarray | None = None) -> VoteCounts:
    def compute() -> VoteCounts:
        block = evidence if columns is None else evidence[:, columns]
        n_pass = (block == 1).sum(axis=1, dtype=np.float64)
        n_fail = (block == 0).sum(axis=1, dtype=np.float64)
        return VoteCounts(n_pass, n_pass + n_fail)

    extra = () if columns is None else tuple(int(c) for c in columns)
    return derived("vote_counts", (evidence,), compute, *extra)


def validator_pass_rates(evidence: np.ndarray) -> np.ndarray:
    """(M,) pass rate of each validator over all outputs it gave a verdict on; NaN if none."""

    def compute() -> np.ndarray:
        n_pass = (evidence == 1).sum(axis=0, dtype=np.float64)
        n_verdicts = n_pass + (evidence == 0).sum(axis=0, dtype=np.float64)
        return np.divide(
            n_pass, n_verdicts, out=np.full_like(n_pass, np.nan), where=n_verdicts > 0
        )

    return derived("validator_pass_rates", (evidence,), compute)


def criterion_values(ctx: SelectionContext, criterion: int) -> np.ndarray:
    """Human values for a criterion over `ctx.graded_rows`, NaN where that row has none.

    The criterion's own grade where given, else the holistic verdict, as alignment does
    (DESIGN §4.1).
    """
    rows = ctx.graded_rows
    values = ctx.human[rows]
    by_criterion = ctx.human_by_criterion
    if criterion != HOLISTIC and by_criterion is not None and criterion < by_criterion.shape[1]:
        own = by_criterion[rows, criterion]
        values = np.where(np.isnan(own), values, own)
    return values


def criterion_labels(ctx: SelectionContext, criterion: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows with a human value for a criterion, and those values (see criterion_values)."""
    values = criterion_values(ctx, criterion)
    known = ~np.isnan(values)
    return ctx.graded_rows[known], values[known]


def evidence_columns(evidence: np.ndarray) -> np.ndarray:
    """(M, N) contiguous copy of the evidence: one validator's verdicts read without striding."""
    return derived("evidence_columns", (evidence,), lambda: np.ascontiguousarray(evidence.T))
