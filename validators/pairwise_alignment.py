"""How well a pairwise judge agrees with human comparisons, and which judge to keep (DESIGN
§4.6). Pure numpy: no Django. Pairs are in canonical order (the lower output id is `a`) on both
sides, human and judge, so a human who saw the pair the other way round has been mapped first.

Codes (int8), one encoding for human choices and judge winners:
0 = a, 1 = b, 2 = tie, -1 = error (judge only: unread answer or inconsistent-as-error),
-2 = missing (no human choice, or the judge has not judged the pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from annotate.statistics import Interval, wilson_interval

WIN_A, WIN_B, WIN_TIE, WIN_ERROR, WIN_MISSING = 0, 1, 2, -1, -2
WINNER_CODES = {"a": WIN_A, "b": WIN_B, "tie": WIN_TIE, "error": WIN_ERROR}
WINNER_NAMES = {code: name for name, code in WINNER_CODES.items()} | {WIN_MISSING: ""}

DEFAULT_CONSISTENCY_FLOOR = 0.6


def winner_codes(names: Sequence[str | None]) -> np.ndarray:
    """'a' / 'b' / 'tie' / 'error' / '' or None as codes."""
    return np.array([WINNER_CODES.get(n or "", WIN_MISSING) for n in names], dtype=np.int8)


@dataclass(frozen=True)
class PairwiseMetrics:
    """One judge against the human comparisons of the pairs both have answered."""

    n_pairs: int                    # pairs with a human choice and a judge verdict (errors included)
    n_decided: int                  # of those, pairs the human did not call a tie
    n_errors: int                   # judge verdicts that are errors, among n_pairs
    accuracy: float | None          # judge == human over n_decided; a judge tie or error is wrong
    accuracy_ci: Interval | None
    accuracy_ties_half: float | None  # over n_pairs: 1 same, ½ when exactly one side is a tie, 0 else
    kappa: float | None             # Cohen's κ over {a, b, tie}, pairs where the judge answered
    n_both_orders: int              # pairs whose two orders were both read
    consistency: float | None       # same winner in both orders, over n_both_orders
    consistency_ci: Interval | None
    first_position_rate: float | None  # answers (a or b, either order) that chose the output shown first
    error_rate: float | None        # n_errors / n_pairs

    def as_dict(self) -> dict:
        return {
            "n_pairs": self.n_pairs, "n_decided": self.n_decided, "n_errors": self.n_errors,
            "accuracy": self.accuracy, "accuracy_ci": _listed(self.accuracy_ci),
            "accuracy_ties_half": self.accuracy_ties_half, "kappa": self.kappa,
            "n_both_orders": self.n_both_orders, "consistency": self.consistency,
            "consistency_ci": _listed(self.consistency_ci),
            "first_position_rate": self.first_position_rate, "error_rate": self.error_rate,
        }


def _listed(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def cohen_kappa(human: np.ndarray, judge: np.ndarray, n_classes: int = 3) -> float | None:
    """Cohen's κ for two raters over codes 0..n_classes-1 (as sklearn's cohen_kappa_score with
    labels=range(n_classes)). None when there is nothing to compare; 1.0 when both raters
    used one and the same class throughout, where the formula is 0/0 (sklearn answers nan)."""
    human, judge = np.asarray(human, np.int64), np.asarray(judge, np.int64)
    n = human.size
    if n == 0:
        return None
    confusion = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(confusion, (human, judge), 1.0)
    observed = np.trace(confusion) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else None
    return float((observed - expected) / (1.0 - expected))


def pairwise_metrics(
    human: np.ndarray, judge: np.ndarray, first: np.ndarray | None = None,
    second: np.ndarray | None = None,
) -> PairwiseMetrics:
    """`human`, `judge`: codes per pair (same length). `first`, `second`: the judge's winner
    in each order, both in canonical order (`first` with a shown first, `second` with b shown
    first), or None for judges asked once (external winners, rating and code judges)."""
    human, judge = np.asarray(human, np.int8), np.asarray(judge, np.int8)
    if human.shape != judge.shape:
        raise ValueError(f"human {human.shape} and judge {judge.shape} differ in shape")
    if np.any(human == WIN_ERROR):
        raise ValueError("a human choice cannot be an error")
    both = (human >= 0) & (judge != WIN_MISSING)
    h, j = human[both], judge[both]
    n_pairs = int(h.size)
    n_errors = int(np.count_nonzero(j == WIN_ERROR))
    decided = h != WIN_TIE
    n_decided = int(np.count_nonzero(decided))
    correct = int(np.count_nonzero(j[decided] == h[decided]))
    accuracy = correct / n_decided if n_decided else None
    answered = j >= 0
    half = np.where(j == h, 1.0, np.where(answered & ((j == WIN_TIE) ^ (h == WIN_TIE)), 0.5, 0.0))
    consistency = consistency_ci = first_rate = None
    n_both = 0
    if first is not None and second is not None:
        first, second = np.asarray(first, np.int8)[both], np.asarray(second, np.int8)[both]
        read = (first >= 0) & (second >= 0)
        n_both = int(np.count_nonzero(read))
        same = int(np.count_nonzero(first[read] == second[read]))
        consistency = same / n_both if n_both else None
        consistency_ci = wilson_interval(same, n_both)
        # The output shown first is a in the first order and b in the second.
        chose_first = np.count_nonzero(first == WIN_A) + np.count_nonzero(second == WIN_B)
        chose_either = np.count_nonzero(np.isin(first, (WIN_A, WIN_B))) + np.count_nonzero(
            np.isin(second, (WIN_A, WIN_B))
        )
        first_rate = float(chose_first / chose_either) if chose_either else None
    return PairwiseMetrics(
        n_pairs=n_pairs, n_decided=n_decided, n_errors=n_errors, accuracy=accuracy,
        accuracy_ci=wilson_interval(correct, n_decided),
        accuracy_ties_half=float(half.mean()) if n_pairs else None,
        kappa=cohen_kappa(h[answered], j[answered]),
        n_both_orders=n_both, consistency=consistency, consistency_ci=consistency_ci,
        first_position_rate=first_rate, error_rate=n_errors / n_pairs if n_pairs else None,
    )


@dataclass(frozen=True)
class PairwiseCandidate:
    validator_id: int
    name: str
    kind: str
    metrics: PairwiseMetrics
    cost: float = 0.0  # tokens per pair, or 0 for code and imported judges


@dataclass(frozen=True)
class PairwiseSelection:
    chosen: PairwiseCandidate | None
    reason: str
    floor: float
    min_comparisons: int
    # validator id → why it was not chosen
    why_not: dict[int, str] = field(default_factory=dict)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _blocker(c: PairwiseCandidate, floor: float, min_comparisons: int) -> str | None:
    m = c.metrics
    if m.n_decided < min_comparisons:
        return (f"{m.n_decided} human comparison{'s' if m.n_decided != 1 else ''} with a winner "
                f"on pairs it judged; at least {min_comparisons} needed")
    if m.consistency is not None and m.consistency < floor:
        return (f"position consistency {_fmt(m.consistency)} is below the floor {_fmt(floor)} "
                f"(it changes its answer when the outputs swap places)")
    return None


def _rank_key(c: PairwiseCandidate) -> tuple:
    m = c.metrics
    # Judges asked once have no consistency to report; they rank after any judge that has one
    # at equal accuracy, since nothing shows they are not position-biased.
    return (-(m.accuracy or 0.0), -(m.consistency if m.consistency is not None else -1.0), c.cost,
            c.validator_id)


def select_pairwise_judge(
    candidates: Sequence[PairwiseCandidate], *, floor: float = DEFAULT_CONSISTENCY_FLOOR,
    min_comparisons: int = 1, pinned: int | None = None, excluded: Sequence[int] = (),
) -> PairwiseSelection:
    """The highest accuracy among judges whose position consistency meets the floor (judges
    asked once are exempt), ties by consistency, then cost (DESIGN §4.6). Every other
    candidate gets the reason it lost."""
    why_not: dict[int, str] = {}
    qualifying = []
    for c in candidates:
        if c.validator_id in excluded:
            why_not[c.validator_id] = "excluded by an owner"
            continue
        blocker = _blocker(c, floor, min_comparisons)
        if blocker:
            why_not[c.validator_id] = blocker
        else:
            qualifying.append(c)
    if pinned is not None:
        chosen = next((c for c in candidates if c.validator_id == pinned), None)
        if chosen is not None:
            for c in candidates:
                if c.validator_id != pinned:
                    why_not.setdefault(c.validator_id, "an owner pinned another judge")
            return PairwiseSelection(chosen, "pinned by an owner", floor, min_comparisons, why_not)
    if not qualifying:
        reason = ("no judge qualifies: " + "; ".join(sorted({why_not[c.validator_id] for c in candidates}))
                  if candidates else "no pairwise judge has verdicts yet")
        return PairwiseSelection(None, reason, floor, min_comparisons, why_not)
    ranked = sorted(qualifying, key=_rank_key)
    chosen = ranked[0]
    cm = chosen.metrics
    for c in ranked[1:]:
        m = c.metrics
        if (m.accuracy or 0.0) < (cm.accuracy or 0.0):
            why_not[c.validator_id] = (f"accuracy {_fmt(m.accuracy)} is below {chosen.name}'s "
                                       f"{_fmt(cm.accuracy)}")
        elif (m.consistency if m.consistency is not None else -1.0) < (
            cm.consistency if cm.consistency is not None else -1.0
        ):
            why_not[c.validator_id] = (f"same accuracy as {chosen.name}, lower position consistency "
                                       f"({_fmt(m.consistency)} against {_fmt(cm.consistency)})")
        elif c.cost > chosen.cost:
            why_not[c.validator_id] = f"same accuracy and consistency as {chosen.name}, costs more"
        else:
            why_not[c.validator_id] = f"tied with {chosen.name}; the older judge is kept"
    reason = (f"highest accuracy ({_fmt(cm.accuracy)} on {cm.n_decided} comparisons) among judges whose "
              f"position consistency meets {_fmt(floor)}")
    return PairwiseSelection(chosen, reason, floor, min_comparisons, why_not)


def weighted_accuracy(human: np.ndarray, judge: np.ndarray, weights: np.ndarray) -> float | None:
    """Σ w·correct / Σ w over the pairs with a human winner (human ties left out, as in
    `pairwise_metrics`; a judge tie or error is wrong). With LURE weights
    (annotate.sampling_weights) on actively drawn pairs this estimates the full-data accuracy
    where the plain share would follow the draw. None when no weight falls on a decided pair."""
    human, judge = np.asarray(human, np.int8), np.asarray(judge, np.int8)
    weights = np.asarray(weights, np.float64)
    decided = (human >= 0) & (human != WIN_TIE) & (judge != WIN_MISSING)
    mass = float(weights[decided].sum())
    if mass <= 0:
        return None
    return float(weights[decided & (judge == human)].sum() / mass)


def weighted_consistency(first: np.ndarray, second: np.ndarray,
                         weights: np.ndarray) -> float | None:
    """Σ w·same / Σ w over the pairs whose two orders were both read (as `pairwise_metrics`'s
    consistency, weighted like `weighted_accuracy`)."""
    first, second = np.asarray(first, np.int8), np.asarray(second, np.int8)
    weights = np.asarray(weights, np.float64)
    read = (first >= 0) & (second >= 0)
    mass = float(weights[read].sum())
    if mass <= 0:
        return None
    return float(weights[read & (first == second)].sum() / mass)
