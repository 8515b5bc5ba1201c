"""Which validator to trust per criterion, and the suite the chosen ones form (DESIGN §4.2).

The per-criterion rule follows EvalGen (Shankar et al., "Who Validates the Validators?",
UIST 2024): keep candidates whose false failure rate is within a ceiling and pick the one with
the best alignment. The smallest suite reaching a coverage and FFR target is the integer
programme of SPADE (Shankar et al., "SPADE: Synthesizing Data Quality Assertions for Large
Language Model Pipelines", VLDB 2024). Pure numpy and scipy, no Django import.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, milp

from annotate.statistics import (
    LABEL_FAIL,
    LABEL_PASS,
    NO_LABEL,
    VERDICT_ERROR,
    VERDICT_FAIL,
    VERDICT_MISSING,
    VERDICT_PASS,
    Interval,
)
from validators.alignment import AlignmentMetrics, alignment_metrics, check_human_labels

KINDS = ("code", "llm", "rating", "external")
# Code assertions cost nothing to run, nor do imported verdicts; an LLM grader or rating judge
# costs a call per output.
_KIND_ORDER = {"code": 0, "external": 0, "llm": 1, "rating": 1}

STATUS_CHOSEN = "chosen"
STATUS_FFR_ABOVE_CEILING = "ffr_above_ceiling"
STATUS_TOO_FEW_LABELS = "too_few_labels"
STATUS_LOWER_ALIGNMENT = "lower_alignment"
# A qualifying candidate passed over only because an owner pinned a different one.
STATUS_NOT_PINNED = "not_pinned"
STATUS_EXCLUDED = "excluded"
STATUS_NO_VERDICTS = "no_verdicts"
# Alignment 0: it fails no output people failed (coverage 0), or every output they passed.
STATUS_CATCHES_NOTHING = "catches_nothing"
STATUSES = (
    STATUS_CHOSEN,
    STATUS_FFR_ABOVE_CEILING,
    STATUS_CATCHES_NOTHING,
    STATUS_TOO_FEW_LABELS,
    STATUS_LOWER_ALIGNMENT,
    STATUS_NOT_PINNED,
    STATUS_EXCLUDED,
    STATUS_NO_VERDICTS,
)

_QUALIFIES = "qualifies"

REASON_PINNED = "pinned by an owner"
REASON_NO_CANDIDATES = "no candidate validators"
REASON_ALL_EXCLUDED = "every candidate is excluded"
REASON_NO_VERDICTS = "no candidate has a pass/fail verdict on a labelled output"
REASON_CATCHES_NOTHING = "no candidate catches any failure yet"


@dataclass(frozen=True)
class Candidate:
    validator_id: int
    kind: str
    name: str
    metrics: AlignmentMetrics

    def __post_init__(self) -> None:
        if self.kind not in _KIND_ORDER:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class RankedCandidate:
    candidate: Candidate
    rank: int
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "validator_id": self.candidate.validator_id,
            "kind": self.candidate.kind,
            "name": self.candidate.name,
            "rank": self.rank,
            "status": self.status,
            "reason": self.reason,
            "metrics": self.candidate.metrics.to_dict(),
        }


@dataclass(frozen=True)
class CriterionSelection:
    chosen: Candidate | None
    reason: str
    ranked: list[RankedCandidate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": None if self.chosen is None else self.chosen.validator_id,
            "reason": self.reason,
            "ranked": [entry.to_dict() for entry in self.ranked],
        }


def _number(value: float) -> str:
    return f"{value:.2f}"


def _numbers_apart(low: float, high: float) -> tuple[str, str]:
    """Two values with the fewest decimals (at least 2) that still show they differ, so a
    reason never reads "FFR 0.25 above the ceiling 0.25"."""
    for decimals in range(2, 7):
        low_text, high_text = f"{low:.{decimals}f}", f"{high:.{decimals}f}"
        if low_text != high_text:
            return low_text, high_text
    return repr(low), repr(high)


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


class _RuleKey(NamedTuple):
    """Ascending order of the selection rule: higher alignment, then lower FFR, then code
    before llm, then lower skip rate, then lower id; undefined values sort last.

    Exact fractions of the confusion counts, so the order never hinges on rounding: distinct
    alignments closer than a float's precision still order correctly.
    """

    alignment_undefined: bool
    negative_alignment: Fraction
    ffr_undefined: bool
    ffr: Fraction
    kind_order: int
    skip_rate_undefined: bool
    skip_rate: Fraction
    validator_id: int


def _rule_key(candidate: Candidate) -> _RuleKey:
    metrics = candidate.metrics
    alignment = ffr = skip_rate = None
    if metrics.n_fail and metrics.n_pass:
        denominator = metrics.tp * metrics.n_pass + metrics.tn * metrics.n_fail
        alignment = (
            Fraction(2 * metrics.tp * metrics.tn, denominator) if denominator else Fraction(0)
        )
    if metrics.n_pass:
        ffr = Fraction(metrics.fp, metrics.n_pass)
    n_run = metrics.n_pass + metrics.n_fail + metrics.n_error
    if n_run:
        skip_rate = Fraction(metrics.n_error, n_run)
    zero = Fraction(0)
    return _RuleKey(
        alignment_undefined=alignment is None,
        negative_alignment=zero if alignment is None else -alignment,
        ffr_undefined=ffr is None,
        ffr=zero if ffr is None else ffr,
        kind_order=_KIND_ORDER[candidate.kind],
        skip_rate_undefined=skip_rate is None,
        skip_rate=zero if skip_rate is None else skip_rate,
        validator_id=candidate.validator_id,
    )


def _shortfall(metrics: AlignmentMetrics, min_labels: int) -> str | None:
    short_of_fails = metrics.n_fail < min_labels
    short_of_passes = metrics.n_pass < min_labels
    fails = _count(metrics.n_fail, "failing grade", "failing grades")
    passes = _count(metrics.n_pass, "passing grade", "passing grades")
    if short_of_fails and short_of_passes:
        return f"{fails} and {passes} so far; {min_labels} of each needed"
    if short_of_fails:
        return f"{fails} so far; {min_labels} needed"
    if short_of_passes:
        return f"{passes} so far; {min_labels} needed"
    return None


def _blocker(candidate: Candidate, *, ffr_ceiling: float, min_labels: int) -> tuple[str, str]:
    """(status, reason) for a candidate that does not qualify, or (_QUALIFIES, "")."""
    metrics = candidate.metrics
    if metrics.n_labelled == 0 and metrics.n_error + metrics.n_missing > 0:
        parts = []
        if metrics.n_error:
            parts.append(_count(metrics.n_error, "error", "errors"))
        if metrics.n_missing:
            parts.append(f"{metrics.n_missing} not run")
        return STATUS_NO_VERDICTS, (
            f"no pass/fail verdict on a labelled output ({', '.join(parts)})"
        )
    shortfall = _shortfall(metrics, min_labels)
    if shortfall is not None:
        return STATUS_TOO_FEW_LABELS, shortfall
    ffr = metrics.false_failure_rate
    assert ffr is not None  # min_labels >= 1 passing grades make it defined
    if ffr > ffr_ceiling:
        ffr_text, ceiling_text = _numbers_apart(ffr, ffr_ceiling)
        return STATUS_FFR_ABOVE_CEILING, f"FFR {ffr_text} above the ceiling {ceiling_text}"
    # An always-pass validator has FFR 0 and would otherwise win an empty contest, then sit in
    # the suite catching nothing (DESIGN §4.2).
    if metrics.coverage == 0:
        return STATUS_CATCHES_NOTHING, (
            f"catches none of the {_count(metrics.n_fail, 'failing grade', 'failing grades')}"
            " (coverage 0.00)"
        )
    if metrics.alignment == 0:
        return STATUS_CATCHES_NOTHING, "alignment 0.00: fails every output people passed"
    return _QUALIFIES, ""


def _first_difference(better: _RuleKey, worse: _RuleKey) -> str:
    """The first level of the rule that separates two qualifying candidates."""
    if better.negative_alignment != worse.negative_alignment:
        return "alignment"
    if better.ffr != worse.ffr:
        return "ffr"
    if better.kind_order != worse.kind_order:
        return "kind"
    if better.skip_rate != worse.skip_rate:
        return "skip_rate"
    return "validator_id"


def _ranks_below(loser: Candidate, winner: Candidate, keys: dict[int, _RuleKey]) -> str:
    loser_metrics, winner_metrics = loser.metrics, winner.metrics
    difference = _first_difference(keys[winner.validator_id], keys[loser.validator_id])
    if difference == "alignment":
        low, high = _numbers_apart(loser_metrics.alignment, winner_metrics.alignment)
        return f"lower alignment ({low} < {high})"
    same_alignment = _number(winner_metrics.alignment)
    if difference == "ffr":
        low, high = _numbers_apart(
            winner_metrics.false_failure_rate, loser_metrics.false_failure_rate
        )
        return f"same alignment ({same_alignment}), higher FFR ({high} > {low})"
    if difference == "kind":
        return f"same alignment ({same_alignment}) and FFR; {loser.kind} ranks after {winner.kind}"
    if difference == "skip_rate":
        low, high = _numbers_apart(winner_metrics.skip_rate, loser_metrics.skip_rate)
        return (
            f"same alignment ({same_alignment}), FFR and kind;"
            f" higher skip rate ({high} > {low})"
        )
    return (
        f"same alignment ({same_alignment}), FFR, kind and skip rate;"
        f" higher validator id ({loser.validator_id} > {winner.validator_id})"
    )


_TIE_BREAKS = {
    "ffr": "lower FFR",
    # "kind" is worded per pair in _chosen_reason: the winner may be external, not code.
    "skip_rate": "lower skip rate",
    "validator_id": "lower validator id",
}


def _chosen_reason(qualifying: list[Candidate], keys: dict[int, _RuleKey]) -> str:
    winner = qualifying[0]
    alignment = _number(winner.metrics.alignment)
    if len(qualifying) == 1:
        return f"the only qualifying candidate (alignment {alignment})"
    reason = f"highest alignment ({alignment}) among {len(qualifying)} qualifying candidates"
    difference = _first_difference(keys[winner.validator_id], keys[qualifying[1].validator_id])
    if difference == "kind":
        reason += (
            f"; tie broken by kind ({winner.kind} before {qualifying[1].kind}:"
            " fixed verdicts before LLM calls)"
        )
    elif difference != "alignment":
        reason += f"; tie broken by {_TIE_BREAKS[difference]}"
    return reason


def _nothing_qualifies(
    eligible: list[Candidate],
    blockers: dict[int, tuple[str, str]],
    *,
    ffr_ceiling: float,
    min_labels: int,
) -> str:
    """Why no candidate qualifies, naming the blocker nearest to being lifted."""
    above_ceiling = [
        c for c in eligible if blockers[c.validator_id][0] == STATUS_FFR_ABOVE_CEILING
    ]
    catches_nothing = [
        c for c in eligible if blockers[c.validator_id][0] == STATUS_CATCHES_NOTHING
    ]
    if catches_nothing and above_ceiling:
        best_ffr = min(c.metrics.false_failure_rate for c in above_ceiling)
        best_text, ceiling_text = _numbers_apart(best_ffr, ffr_ceiling)
        return (
            f"no candidate within the FFR ceiling {ceiling_text} catches any failure yet"
            f" (the others' best FFR: {best_text})"
        )
    if catches_nothing:
        return REASON_CATCHES_NOTHING
    if above_ceiling:
        best_ffr = min(c.metrics.false_failure_rate for c in above_ceiling)
        best_text, ceiling_text = _numbers_apart(best_ffr, ffr_ceiling)
        who = (
            "every candidate's false failure rate is"
            if len(above_ceiling) == len(eligible)
            else "every candidate with enough grades has a false failure rate"
        )
        return f"{who} above the ceiling {ceiling_text} (best: {best_text})"
    too_few = [c for c in eligible if blockers[c.validator_id][0] == STATUS_TOO_FEW_LABELS]
    if too_few:
        nearest = max(
            too_few,
            key=lambda c: (
                min(c.metrics.n_fail, min_labels) + min(c.metrics.n_pass, min_labels),
                c.metrics.n_labelled,
                -c.validator_id,
            ),
        )
        return blockers[nearest.validator_id][1]
    return REASON_NO_VERDICTS


def select_validator(
    candidates: Sequence[Candidate],
    *,
    ffr_ceiling: float,
    min_labels: int,
    pinned: int | None = None,
    excluded: Collection[int] = (),
) -> CriterionSelection:
    """Choose one validator for a criterion (DESIGN §4.2).

    A candidate qualifies with a defined FFR at most `ffr_ceiling`, at least `min_labels`
    human grades of each class among the outputs it gave a pass/fail verdict on, and an
    alignment above 0 (coverage 0 or alignment 0 never qualifies). The
    qualifying candidate with the highest alignment is chosen; ties go to lower FFR, then code
    before llm, then lower skip rate, then lower validator id.

    `pinned` overrides the rule whether or not the pinned candidate qualifies; a pin on an
    excluded candidate or on an id that is not a candidate is ignored, and the rule applies.
    Excluded candidates are never chosen. `ranked` lists every candidate: the chosen one first,
    then qualifying ones in rule order, then those over the ceiling, catching nothing, with
    too few grades, without verdicts, and excluded.
    """
    if not 0.0 <= ffr_ceiling <= 1.0:
        raise ValueError(f"ffr_ceiling must lie in [0, 1], got {ffr_ceiling}")
    if min_labels < 1:
        raise ValueError(f"min_labels must be at least 1, got {min_labels}")
    ids = [c.validator_id for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError("candidates must have distinct validator ids")
    if not candidates:
        return CriterionSelection(chosen=None, reason=REASON_NO_CANDIDATES, ranked=[])

    excluded_ids = frozenset(excluded)
    keys = {c.validator_id: _rule_key(c) for c in candidates}
    ordered = sorted(candidates, key=lambda c: keys[c.validator_id])
    eligible = [c for c in ordered if c.validator_id not in excluded_ids]
    blockers = {
        c.validator_id: _blocker(c, ffr_ceiling=ffr_ceiling, min_labels=min_labels)
        for c in eligible
    }
    qualifying = [c for c in eligible if blockers[c.validator_id][0] == _QUALIFIES]
    pinned_candidate = next((c for c in eligible if c.validator_id == pinned), None)

    entries: list[tuple[Candidate, str, str]] = []
    if pinned_candidate is not None:
        chosen: Candidate | None = pinned_candidate
        reason = REASON_PINNED
        pinned_blocker = blockers[pinned_candidate.validator_id][1]
        pinned_key = keys[pinned_candidate.validator_id]
        entries.append(
            (
                pinned_candidate,
                STATUS_CHOSEN,
                f"{REASON_PINNED}; {pinned_blocker}" if pinned_blocker else REASON_PINNED,
            )
        )
        for candidate in qualifying:
            if candidate is pinned_candidate:
                continue
            if not pinned_blocker and keys[candidate.validator_id] > pinned_key:
                entries.append(
                    (
                        candidate,
                        STATUS_LOWER_ALIGNMENT,
                        _ranks_below(candidate, pinned_candidate, keys),
                    )
                )
            else:
                entries.append(
                    (
                        candidate,
                        STATUS_NOT_PINNED,
                        f"qualifies, but an owner pinned {pinned_candidate.name}",
                    )
                )
    elif qualifying:
        chosen = qualifying[0]
        reason = _chosen_reason(qualifying, keys)
        entries.append((chosen, STATUS_CHOSEN, reason))
        entries.extend(
            (candidate, STATUS_LOWER_ALIGNMENT, _ranks_below(candidate, chosen, keys))
            for candidate in qualifying[1:]
        )
    else:
        chosen = None
        reason = (
            _nothing_qualifies(
                eligible, blockers, ffr_ceiling=ffr_ceiling, min_labels=min_labels
            )
            if eligible
            else REASON_ALL_EXCLUDED
        )

    for status in (
        STATUS_FFR_ABOVE_CEILING, STATUS_CATCHES_NOTHING, STATUS_TOO_FEW_LABELS, STATUS_NO_VERDICTS,
    ):
        entries.extend(
            (candidate, status, blockers[candidate.validator_id][1])
            for candidate in eligible
            if blockers[candidate.validator_id][0] == status and candidate is not chosen
        )
    entries.extend(
        (
            candidate,
            STATUS_EXCLUDED,
            "excluded; its pin is ignored" if candidate.validator_id == pinned else "excluded",
        )
        for candidate in ordered
        if candidate.validator_id in excluded_ids
    )
    ranked = [
        RankedCandidate(candidate=candidate, rank=rank, status=status, reason=entry_reason)
        for rank, (candidate, status, entry_reason) in enumerate(entries, start=1)
    ]
    return CriterionSelection(chosen=chosen, reason=reason, ranked=ranked)


@dataclass(frozen=True)
class SuiteMetrics:
    """Set-level figures of the chosen validators taken together (see `suite_verdicts`)."""

    n_validators: int
    n_pass: int
    n_fail: int
    n_error: int
    n_missing: int
    skip_rate: float | None
    tp: int
    fn: int
    fp: int
    tn: int
    coverage: float | None
    coverage_ci: Interval | None
    false_failure_rate: float | None
    ffr_ci: Interval | None
    alignment: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_validators": self.n_validators,
            "n_pass": self.n_pass,
            "n_fail": self.n_fail,
            "n_error": self.n_error,
            "n_missing": self.n_missing,
            "skip_rate": self.skip_rate,
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "tn": self.tn,
            "coverage": self.coverage,
            "coverage_ci": None if self.coverage_ci is None else list(self.coverage_ci),
            "false_failure_rate": self.false_failure_rate,
            "ffr_ci": None if self.ffr_ci is None else list(self.ffr_ci),
            "alignment": self.alignment,
        }


def _check_verdict_matrix(verdict_matrix: np.ndarray, n_outputs: int | None = None) -> np.ndarray:
    verdict_matrix = np.asarray(verdict_matrix)
    if verdict_matrix.ndim != 2 or (n_outputs is not None and verdict_matrix.shape[0] != n_outputs):
        raise ValueError(
            f"verdict matrix must be (n_outputs, n_validators), got shape {verdict_matrix.shape}"
        )
    if verdict_matrix.size and (
        verdict_matrix.min() < VERDICT_MISSING or verdict_matrix.max() > VERDICT_PASS
    ):
        raise ValueError("verdict codes must be 1 (pass), 0 (fail), -1 (error) or -2 (missing)")
    return verdict_matrix


def suite_verdicts(chosen_verdicts: np.ndarray) -> np.ndarray:
    """The suite's verdict per output from its validators' verdicts (n_outputs, n_chosen).

    A suite fails an output when any of its validators fails it, whatever the others said,
    and passes it only when every one of them passed it. Otherwise the verdict is unknown,
    because the validator that errored or did not run might have failed it: such an output is
    an error (-1) if some validator errored, else missing (-2). This keeps the suite's skip
    rate honest in the same way §4.1 leaves a single validator's errors out. With no
    validators every output is missing.
    """
    chosen_verdicts = _check_verdict_matrix(chosen_verdicts)
    n_outputs, n_chosen = chosen_verdicts.shape
    verdicts = np.full(n_outputs, VERDICT_MISSING, dtype=np.int8)
    if n_chosen == 0:
        return verdicts
    verdicts[(chosen_verdicts == VERDICT_ERROR).any(axis=1)] = VERDICT_ERROR
    verdicts[(chosen_verdicts == VERDICT_PASS).all(axis=1)] = VERDICT_PASS
    verdicts[(chosen_verdicts == VERDICT_FAIL).any(axis=1)] = VERDICT_FAIL
    return verdicts


def suite_metrics(
    human: np.ndarray, chosen_verdicts: np.ndarray, weights: np.ndarray | None = None
) -> SuiteMetrics:
    """Coverage and FFR of the suite (DESIGN §4.2, set level) over labelled outputs with a
    known suite verdict; see `suite_verdicts` for which outputs are left out. `weights` are
    per-output importance weights, as `alignment_table` takes them."""
    human = check_human_labels(human)
    chosen_verdicts = _check_verdict_matrix(chosen_verdicts, human.shape[0])
    labelled = np.flatnonzero(human != NO_LABEL)
    metrics = alignment_metrics(
        human[labelled], suite_verdicts(chosen_verdicts[labelled]),
        weights=None if weights is None else weights[labelled],
    )
    return SuiteMetrics(
        n_validators=chosen_verdicts.shape[1],
        n_pass=metrics.n_pass,
        n_fail=metrics.n_fail,
        n_error=metrics.n_error,
        n_missing=metrics.n_missing,
        skip_rate=metrics.skip_rate,
        tp=metrics.tp,
        fn=metrics.fn,
        fp=metrics.fp,
        tn=metrics.tn,
        coverage=metrics.coverage,
        coverage_ci=metrics.coverage_ci,
        false_failure_rate=metrics.false_failure_rate,
        ffr_ci=metrics.ffr_ci,
        alignment=metrics.alignment,
    )


def smallest_suite(
    human: np.ndarray,
    verdict_matrix: np.ndarray,
    *,
    min_coverage: float,
    max_ffr: float,
    max_enumerated: int = 20_000,
    time_limit: float = 30.0,
) -> list[int] | None:
    """The fewest columns whose suite reaches coverage >= `min_coverage` and FFR <=
    `max_ffr`, both defined and measured exactly as `suite_metrics` measures them; None when
    no set does. Among the smallest sets, one that catches the most failing outputs net of
    false failures (tp - fp). Column indices come back sorted.

    Sizes with at most `max_enumerated` subsets are searched exhaustively on bit-packed
    verdicts (about 6 microseconds per subset at 10,000 labelled outputs; ties go to the first
    subset in lexicographic order). From the first larger size on, SPADE's integer programme
    (`_smallest_by_programme`) takes over with that size as a lower bound. Exhaustive search
    comes first because the programme's linear relaxation is weak: HiGHS took seconds to
    prove that one validator out of 30 suffices on 5,000 outputs.

    The size is always proven minimal, or TimeoutError is raised when `time_limit` seconds
    are not enough. The tp - fp tie-break of the programme is proven only within the time
    left; past it, the best set found so far comes back (still of the smallest size).
    """
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must lie in (0, 1], got {min_coverage}")
    if not 0.0 <= max_ffr <= 1.0:
        raise ValueError(f"max_ffr must lie in [0, 1], got {max_ffr}")
    human = check_human_labels(human)
    verdict_matrix = _check_verdict_matrix(verdict_matrix, human.shape[0])
    n_validators = verdict_matrix.shape[1]
    fail_rows = verdict_matrix[human == LABEL_FAIL]
    pass_rows = verdict_matrix[human == LABEL_PASS]
    # Coverage and FFR are undefined for every set without outputs of both classes.
    if n_validators == 0 or fail_rows.shape[0] == 0 or pass_rows.shape[0] == 0:
        return None

    targets = (min_coverage, max_ffr)
    size = 1
    while size <= n_validators and math.comb(n_validators, size) <= max_enumerated:
        columns = _best_of_size(fail_rows, pass_rows, size, *targets)
        if columns is not None:
            return columns
        size += 1
    if size > n_validators:
        return None
    return _smallest_by_programme(
        fail_rows, pass_rows, *targets, min_size=size, time_limit=time_limit
    )


def _suite_counts(
    fail_rows: np.ndarray, pass_rows: np.ndarray, subsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """tp, fn, fp, tn of the suite of each subset (rows of column indices), by the rules of
    `suite_verdicts`: a suite fails an output if any member fails it and passes it only if
    every member passes it."""

    def packed(marked: np.ndarray) -> np.ndarray:
        return np.packbits(marked.T, axis=1)  # one bit per output, one row per validator

    def union_sizes(bits: np.ndarray) -> np.ndarray:
        return np.bitwise_count(np.bitwise_or.reduce(bits[subsets], axis=1)).sum(
            axis=1, dtype=np.int64
        )

    tp = union_sizes(packed(fail_rows == VERDICT_FAIL))
    fn = fail_rows.shape[0] - union_sizes(packed(fail_rows != VERDICT_PASS))
    fp = union_sizes(packed(pass_rows == VERDICT_FAIL))
    tn = pass_rows.shape[0] - union_sizes(packed(pass_rows != VERDICT_PASS))
    return tp, fn, fp, tn


def _best_of_size(
    fail_rows: np.ndarray,
    pass_rows: np.ndarray,
    size: int,
    min_coverage: float,
    max_ffr: float,
    chunk: int = 2048,
) -> list[int] | None:
    subsets = np.array(
        list(itertools.combinations(range(fail_rows.shape[1]), size)), dtype=np.intp
    ).reshape(-1, size)
    best_net, best_subset = None, None
    for start in range(0, subsets.shape[0], chunk):
        block = subsets[start : start + chunk]
        tp, fn, fp, tn = _suite_counts(fail_rows, pass_rows, block)
        with np.errstate(divide="ignore", invalid="ignore"):
            # The same float divisions as `metrics_from_counts`, so the same sets qualify.
            feasible = (
                (tp > 0)
                & (tp / (tp + fn) >= min_coverage)
                & (fp + tn > 0)
                & (fp / (fp + tn) <= max_ffr)
            )
        if not feasible.any():
            continue
        net = np.where(feasible, tp - fp, np.iinfo(np.int64).min)
        winner = int(np.argmax(net))
        if best_net is None or net[winner] > best_net:
            best_net, best_subset = int(net[winner]), block[winner]
    return None if best_subset is None else [int(j) for j in best_subset]


def _smallest_by_programme(
    fail_rows: np.ndarray,
    pass_rows: np.ndarray,
    min_coverage: float,
    max_ffr: float,
    *,
    min_size: int,
    time_limit: float,
) -> list[int] | None:
    """SPADE's integer programme, extended so that an output whose suite verdict is unknown
    (`suite_verdicts`) leaves numerator and denominator alike, as in `suite_metrics`.

    Binary x_j per validator, at least `min_size` of them. Per human-fail output: y (caught)
    <= the sum of x_j over validators failing it; u (missed) >= 1 - the sum of x_j over
    validators not passing it. Per human-pass output: z (falsely failed) >= each x_j of a
    validator failing it (and <= their sum); t (rightly passed) <= 1 - x_j for each validator
    not passing it and <= the sum of x_j over those passing it. Coverage >= a becomes
    (1 - a) sum y >= a sum u and FFR <= f becomes (1 - f) sum z <= f sum t, with sum y >= 1
    and sum z + sum t >= 1 so both are defined. First minimise sum x, then, at that size,
    maximise tp - fp within the time left.

    Only x need be integral: for fixed x the best y, u, z, t are 0 or 1. Outputs with the
    same verdicts and label share one weighted row. On a row where every validator passed or
    failed, u = 1 - y and t = 1 - z (the suite is never empty), so u and t exist only for
    rows with an error or a missing verdict; on a matrix without any, this is SPADE's own
    programme (sum y >= a n_fail, sum z <= f n_pass), which HiGHS solves several times faster
    than the general form.
    """
    n_validators = fail_rows.shape[1]
    fail_patterns, fail_weights = np.unique(fail_rows, axis=0, return_counts=True)
    pass_patterns, pass_weights = np.unique(pass_rows, axis=0, return_counts=True)
    fail_unknown = np.flatnonzero((fail_patterns < VERDICT_FAIL).any(axis=1))
    pass_unknown = np.flatnonzero((pass_patterns < VERDICT_FAIL).any(axis=1))
    fail_known_weight = fail_weights.sum() - fail_weights[fail_unknown].sum()
    pass_known_weight = pass_weights.sum() - pass_weights[pass_unknown].sum()

    sizes = np.cumsum(
        [0, n_validators, len(fail_patterns), len(fail_unknown), len(pass_patterns)]
    )
    n_variables = int(sizes[-1]) + len(pass_unknown)
    x, y, u, z, t = (
        np.arange(start, stop)
        for start, stop in zip(sizes, [*sizes[1:], n_variables], strict=True)
    )
    inf = np.inf

    def pattern_rows(marked: np.ndarray, own: np.ndarray, sign: float) -> sparse.csr_array:
        """Per pattern: its own variable + sign * the sum of x_j over its marked validators."""
        pattern_of, validator_of = np.nonzero(marked)
        n = marked.shape[0]
        rows = np.concatenate([np.arange(n), pattern_of])
        columns = np.concatenate([own, x[validator_of]])
        values = np.concatenate([np.ones(n), np.full(pattern_of.size, sign)])
        return sparse.csr_array((values, (rows, columns)), shape=(n, n_variables))

    def pair_rows(marked: np.ndarray, own: np.ndarray, sign: float) -> sparse.csr_array:
        """Per (pattern, marked validator): its own variable + sign * x_j."""
        pattern_of, validator_of = np.nonzero(marked)
        n = pattern_of.size
        rows = np.tile(np.arange(n), 2)
        columns = np.concatenate([own[pattern_of], x[validator_of]])
        values = np.concatenate([np.ones(n), np.full(n, sign)])
        return sparse.csr_array((values, (rows, columns)), shape=(n, n_variables))

    def row(*parts: tuple[np.ndarray, np.ndarray | float]) -> np.ndarray:
        coefficients = np.zeros(n_variables)
        for variables, values in parts:
            coefficients[variables] += values
        return coefficients

    fail_of_unknown = fail_patterns[fail_unknown]
    pass_of_unknown = pass_patterns[pass_unknown]
    blocks = [
        (pattern_rows(fail_patterns == VERDICT_FAIL, y, -1.0), -inf, 0.0),
        (pattern_rows(fail_of_unknown != VERDICT_PASS, u, 1.0), 1.0, inf),
        (pair_rows(pass_patterns == VERDICT_FAIL, z, -1.0), 0.0, inf),
        (pattern_rows(pass_of_unknown == VERDICT_FAIL, z[pass_unknown], -1.0), -inf, 0.0),
        (pair_rows(pass_of_unknown != VERDICT_PASS, t, 1.0), -inf, 1.0),
        (pattern_rows(pass_of_unknown == VERDICT_PASS, t, -1.0), -inf, 0.0),
    ]
    a, f = min_coverage, max_ffr
    size_row = row((x, 1.0))
    totals = [
        # (1 - a) caught - a missed >= 0, with missed = sum(1 - y) on known rows + sum u
        (
            row(
                (y, fail_weights),
                (y[fail_unknown], -a * fail_weights[fail_unknown]),
                (u, -a * fail_weights[fail_unknown]),
            ),
            a * fail_known_weight,
            inf,
        ),
        (row((y, fail_weights)), 1.0, inf),
        # (1 - f) false - f right <= 0, with right = sum(1 - z) on known rows + sum t
        (
            row(
                (z, pass_weights),
                (z[pass_unknown], -f * pass_weights[pass_unknown]),
                (t, -f * pass_weights[pass_unknown]),
            ),
            -inf,
            f * pass_known_weight,
        ),
        (
            row((z[pass_unknown], pass_weights[pass_unknown]), (t, pass_weights[pass_unknown])),
            1.0 - pass_known_weight,
            inf,
        ),
        (size_row, min_size, inf),
    ]
    constraints = [
        LinearConstraint(matrix, low, high) for matrix, low, high in blocks if matrix.shape[0]
    ]
    constraints.append(
        LinearConstraint(
            np.vstack([coefficients for coefficients, _, _ in totals]),
            [low for _, low, _ in totals],
            [high for _, _, high in totals],
        )
    )
    integrality = np.zeros(n_variables)
    integrality[x] = 1
    bounds = Bounds(np.zeros(n_variables), np.ones(n_variables))
    started = time.monotonic()
    result = milp(
        size_row, integrality=integrality, bounds=bounds, constraints=constraints,
        options={"time_limit": time_limit, "mip_rel_gap": 0.0},
    )
    if result.status == 2:
        return None
    _raise_unless_optimal(result)
    smallest = result.x[x]
    constraints.append(LinearConstraint(size_row, round(result.fun), round(result.fun)))
    # Proving the best tp - fp can take several times longer than proving the size, so it
    # gets what is left of the time limit and keeps the best set found by then.
    result = milp(
        row((y, -fail_weights), (z, pass_weights)),
        integrality=integrality, bounds=bounds, constraints=constraints,
        options={
            "time_limit": max(time_limit - (time.monotonic() - started), 1.0),
            "mip_rel_gap": 0.0,
        },
    )
    if result.status not in (0, 1):
        _raise_unless_optimal(result)
    if result.x is not None:
        smallest = result.x[x]
    return [int(j) for j in np.flatnonzero(smallest > 0.5)]


def _raise_unless_optimal(result: OptimizeResult) -> None:
    if result.status == 1:
        raise TimeoutError(f"smallest_suite: the solver stopped early ({result.message})")
    if result.status != 0:
        raise RuntimeError(f"smallest_suite: the solver failed ({result.message})")
