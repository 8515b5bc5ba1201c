"""How well an automated validator agrees with human grades (DESIGN §4.1).

Pure numpy, no Django import. *Fail* is the class an assertion exists to catch, so the
confusion matrix is oriented with fail as the positive class: a true positive is an output the
validator fails and a human failed.

Encodings (`annotate.statistics`): human labels (int8) 1 pass, 0 fail, -1 no label;
validator verdicts (int8) 1 pass, 0 fail, -1 error, -2 missing (not run).

Every figure that is undefined for the data at hand (a ratio with an empty denominator) is
`None`, never 0 or 1. Where scikit-learn differs on purpose:

- `matthews_corrcoef` returns 0.0 when a row or column of the confusion matrix is empty; the
  coefficient is 0/0 there, so `mcc` is `None`.
- `cohen_kappa_score` returns NaN (with a warning) when the expected agreement is 1; `kappa`
  is `None`.

Importance weights: when an active selector chose which outputs people graded, each graded
output carries a weight, its importance ratio (1 for a uniformly random choice). The weighted
figures (`weighted_confusion_counts`, `metrics_from_weighted_counts`, `alignment_table(...,
weights=...)`) are the same formulas on sums of weights instead of counts, so they estimate the
population figures rather than those of the biased sample; they equal scikit-learn's with
`sample_weight`. Their intervals are Wilson intervals at the weighted proportion with Kish's
effective sample size (Σw)² / Σw² in place of n (Kish 1965, "Survey Sampling", §11.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from annotate.statistics import (
    LABEL_FAIL,
    LABEL_PASS,
    NO_LABEL,
    VERDICT_ERROR,
    VERDICT_FAIL,
    VERDICT_MISSING,
    VERDICT_PASS,
    Interval,
    wilson_interval,
    wilson_interval_float,
)


@dataclass(frozen=True)
class AlignmentMetrics:
    """Agreement of one validator with the human labels of one criterion.

    Counts cover labelled outputs only. `n_pass`/`n_fail` are human labels among the outputs
    the validator gave a pass or fail verdict on; `n_error` and `n_missing` are labelled
    outputs it errored on or was not run on. `skip_rate` is n_error over the outputs it was
    run on (missing verdicts are not skips). Fail is the positive class: tp = (validator
    fails, human fails), fn = (validator passes, human fails), fp = (validator fails, human
    passes), tn = (validator passes, human passes).
    """

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
    accuracy: float | None
    kappa: float | None
    mcc: float | None
    # True when the rates and intervals are importance-weighted (`metrics_from_weighted_counts`);
    # the integer counts are raw either way.
    weighted: bool = False

    @property
    def n_labelled(self) -> int:
        """Labelled outputs with a pass/fail verdict: the size of the confusion matrix."""
        return self.n_pass + self.n_fail

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: intervals become [low, high] lists, undefined values stay None.

        Weighted metrics add "weighted": True; unweighted ones keep the original keys only.
        """
        as_dict: dict[str, Any] = {
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
            "coverage_ci": _interval_list(self.coverage_ci),
            "false_failure_rate": self.false_failure_rate,
            "ffr_ci": _interval_list(self.ffr_ci),
            "alignment": self.alignment,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "mcc": self.mcc,
        }
        if self.weighted:
            as_dict["weighted"] = True
        return as_dict


def _interval_list(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


class _Rates(NamedTuple):
    coverage: float | None
    false_failure_rate: float | None
    alignment: float | None
    accuracy: float | None
    kappa: float | None
    mcc: float | None


def _rates(tp: float, fn: float, fp: float, tn: float) -> _Rates:
    """The rates of a 2x2 table (fail = positive), undefined as None.

    The cells are counts or sums of weights. Given Python ints, every product and sum stays an
    exact integer until the one division per figure; given floats, the same expressions.
    """
    n_fail = tp + fn
    n_pass = fp + tn
    n = n_fail + n_pass

    coverage = tp / n_fail if n_fail else None
    false_failure_rate = fp / n_pass if n_pass else None
    alignment = None
    if n_fail and n_pass:
        # Harmonic mean of coverage tp/n_fail and specificity tn/n_pass with one division.
        # Both zero is the limit 0, not undefined: the harmonic mean is at most twice the
        # smaller term.
        denominator = tp * n_pass + tn * n_fail
        alignment = 2 * tp * tn / denominator if denominator else 0.0

    # Cohen's kappa for a 2x2 table in closed form: (po - pe) / (1 - pe) =
    # 2(tp*tn - fn*fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)); the denominator is 0 exactly
    # when the expected agreement pe is 1.
    kappa_denominator = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    kappa = 2 * (tp * tn - fn * fp) / kappa_denominator if kappa_denominator else None

    # Matthews (1975); 0/0 when any row or column of the table is empty.
    marginals = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    mcc = (tp * tn - fp * fn) / math.sqrt(marginals) if marginals else None

    return _Rates(
        coverage=coverage,
        false_failure_rate=false_failure_rate,
        alignment=alignment,
        accuracy=(tp + tn) / n if n else None,
        kappa=kappa,
        mcc=mcc,
    )


def _check_counts(
    tp: int, fn: int, fp: int, tn: int, n_error: int, n_missing: int
) -> tuple[int, ...]:
    counts = tuple(int(c) for c in (tp, fn, fp, tn, n_error, n_missing))
    if min(counts) < 0:
        raise ValueError("counts must be non-negative")
    return counts


def _metrics(
    counts: tuple[int, ...],
    rates: _Rates,
    coverage_ci: Interval | None,
    ffr_ci: Interval | None,
    *,
    weighted: bool,
) -> AlignmentMetrics:
    tp, fn, fp, tn, n_error, n_missing = counts
    n_run = tp + fn + fp + tn + n_error
    return AlignmentMetrics(
        n_pass=fp + tn,
        n_fail=tp + fn,
        n_error=n_error,
        n_missing=n_missing,
        skip_rate=n_error / n_run if n_run else None,
        tp=tp,
        fn=fn,
        fp=fp,
        tn=tn,
        coverage=rates.coverage,
        coverage_ci=coverage_ci,
        false_failure_rate=rates.false_failure_rate,
        ffr_ci=ffr_ci,
        alignment=rates.alignment,
        accuracy=rates.accuracy,
        kappa=rates.kappa,
        mcc=rates.mcc,
        weighted=weighted,
    )


def metrics_from_counts(
    *, tp: int, fn: int, fp: int, tn: int, n_error: int = 0, n_missing: int = 0
) -> AlignmentMetrics:
    """Every figure of `AlignmentMetrics` from the confusion counts (fail = positive).

    Exposed so counts aggregated elsewhere (for example in SQL) give the same figures.
    """
    counts = _check_counts(tp, fn, fp, tn, n_error, n_missing)
    tp, fn, fp, tn = counts[:4]
    return _metrics(
        counts,
        _rates(tp, fn, fp, tn),
        wilson_interval(tp, tp + fn),
        wilson_interval(fp, fp + tn),
        weighted=False,
    )


def metrics_from_weighted_counts(
    *,
    tp: int,
    fn: int,
    fp: int,
    tn: int,
    n_error: int = 0,
    n_missing: int = 0,
    w_tp: float,
    w_fn: float,
    w_fp: float,
    w_tn: float,
    n_eff_fail: float,
    n_eff_pass: float,
) -> AlignmentMetrics:
    """`AlignmentMetrics` under importance weights (one row of `weighted_confusion_counts`).

    The integer fields (counts, n_pass, n_fail, skip_rate) are the raw counts: what the
    confusion matrix shows and what minimum-label rules count. Coverage, false failure rate,
    alignment, accuracy, kappa and MCC are the formulas of `metrics_from_counts` on the sums
    of weights `w_*`, with the same undefined cases. The intervals are Wilson intervals at the
    weighted coverage and false failure rate with the Kish effective sizes `n_eff_fail` and
    `n_eff_pass` as n.
    """
    counts = _check_counts(tp, fn, fp, tn, n_error, n_missing)
    raw = dict(zip(("tp", "fn", "fp", "tn"), counts[:4], strict=True))
    sums = {}
    for name, value in (("w_tp", w_tp), ("w_fn", w_fn), ("w_fp", w_fp), ("w_tn", w_tn)):
        value = float(value)
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite sum of weights >= 0, got {value}")
        if (value > 0.0) != (raw[name[2:]] > 0):
            raise ValueError(
                f"{name}={value} does not fit {name[2:]}={raw[name[2:]]}: a sum of positive"
                " weights is 0 exactly when its count is"
            )
        sums[name] = value
    for name, value, n in (
        ("n_eff_fail", n_eff_fail, raw["tp"] + raw["fn"]),
        ("n_eff_pass", n_eff_pass, raw["fp"] + raw["tn"]),
    ):
        value = float(value)
        # Kish's n_eff lies in [1, n]; the slack allows for rounding in (Σw)² / Σw².
        if not (
            math.isfinite(value) and (value == 0.0 if n == 0 else 0.0 < value <= n * (1 + 1e-9))
        ):
            raise ValueError(
                f"{name} must be an effective sample size in (0, {n}] for {n} outputs"
                f" (0 for none), got {value}"
            )

    # Every figure is invariant to the scale of the weights. Rescaling by a power of two, so
    # that the total lies in [0.5, 1), is exact and keeps the products of four sums away from
    # overflow.
    total = sums["w_tp"] + sums["w_fn"] + sums["w_fp"] + sums["w_tn"]
    exponent = math.frexp(total)[1]
    w_tp_, w_fn_, w_fp_, w_tn_ = (
        math.ldexp(sums[name], -exponent) for name in ("w_tp", "w_fn", "w_fp", "w_tn")
    )
    rates = _rates(w_tp_, w_fn_, w_fp_, w_tn_)
    return _metrics(
        counts,
        rates,
        None if rates.coverage is None else wilson_interval_float(rates.coverage, n_eff_fail),
        None
        if rates.false_failure_rate is None
        else wilson_interval_float(rates.false_failure_rate, n_eff_pass),
        weighted=True,
    )


def check_human_labels(human: np.ndarray) -> np.ndarray:
    """The labels as an array, or ValueError unless 1-D with codes 1, 0 and -1."""
    human = np.asarray(human)
    if human.ndim != 1:
        raise ValueError(f"human labels must be 1-D, got shape {human.shape}")
    if human.size and (human.min() < NO_LABEL or human.max() > LABEL_PASS):
        raise ValueError("human label codes must be 1 (pass), 0 (fail) or -1 (no label)")
    return human


def _by_validator(
    human: np.ndarray, verdict_matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The labelled rows' verdicts with validators along rows, (n_validators, n_rows), fail
    rows first; the output index of each column; and the number of fail rows."""
    human = check_human_labels(human)
    verdict_matrix = np.asarray(verdict_matrix)
    if verdict_matrix.ndim != 2 or verdict_matrix.shape[0] != human.shape[0]:
        raise ValueError(
            f"verdict matrix must be (n_outputs, n_validators) with n_outputs={human.shape[0]},"
            f" got shape {verdict_matrix.shape}"
        )
    labelled = np.flatnonzero(human != NO_LABEL)
    labelled_human = human[labelled]
    fail_rows = labelled[labelled_human == LABEL_FAIL]
    pass_rows = labelled[labelled_human == LABEL_PASS]
    rows = np.concatenate([fail_rows, pass_rows])
    # np.take is the fastest gather on a C-contiguous matrix but, in numpy 2.4, about eight
    # times slower than fancy indexing on a strided view such as a column slice.
    if verdict_matrix.flags.c_contiguous:
        gathered = np.take(verdict_matrix, rows, axis=0)
    else:
        gathered = verdict_matrix[rows]
    # Validators along rows, so that each count below is a contiguous reduction.
    by_validator = np.ascontiguousarray(gathered.T)
    if by_validator.size and (
        by_validator.min() < VERDICT_MISSING or by_validator.max() > VERDICT_PASS
    ):
        raise ValueError("verdict codes must be 1 (pass), 0 (fail), -1 (error) or -2 (missing)")
    return by_validator, rows, fail_rows.size


def _counts(
    by_validator: np.ndarray, n_fail_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fails = by_validator == VERDICT_FAIL
    passes = by_validator == VERDICT_PASS
    tp = np.count_nonzero(fails[:, :n_fail_rows], axis=1)
    fp = np.count_nonzero(fails[:, n_fail_rows:], axis=1)
    fn = np.count_nonzero(passes[:, :n_fail_rows], axis=1)
    tn = np.count_nonzero(passes[:, n_fail_rows:], axis=1)
    n_error = np.count_nonzero(by_validator == VERDICT_ERROR, axis=1)
    n_missing = by_validator.shape[1] - tp - fp - fn - tn - n_error
    counts = np.stack([tp, fn, fp, tn, n_error, n_missing], axis=1).astype(np.int64)
    return counts, fails, passes


def confusion_counts(human: np.ndarray, verdict_matrix: np.ndarray) -> np.ndarray:
    """Counts per validator over labelled outputs, shape (n_validators, 6), int64, columns
    tp, fn, fp, tn, n_error, n_missing.

    Unlabelled rows are dropped first, so passing every output or only the labelled ones
    costs about the same. Verdict codes are checked on labelled rows only.
    """
    by_validator, _, n_fail_rows = _by_validator(human, verdict_matrix)
    return _counts(by_validator, n_fail_rows)[0]


def check_weights(weights: np.ndarray, human: np.ndarray) -> np.ndarray:
    """The weights as float64, or ValueError unless 1-D, one per output, finite and > 0 on
    labelled outputs. Weights of unlabelled outputs are ignored (they may be anything)."""
    human = check_human_labels(human)
    try:
        weights = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"weights must be numbers: {error}") from None
    if weights.shape != human.shape:
        raise ValueError(
            f"weights must be 1-D with one weight per output (n_outputs={human.shape[0]}),"
            f" got shape {weights.shape}"
        )
    labelled_weights = weights[human != NO_LABEL]
    if not np.isfinite(labelled_weights).all():
        bad = int(np.flatnonzero(human != NO_LABEL)[~np.isfinite(labelled_weights)][0])
        raise ValueError(
            f"weights must be finite on labelled outputs; output {bad} has weight {weights[bad]}"
        )
    if labelled_weights.size and not (labelled_weights > 0.0).all():
        bad = int(np.flatnonzero(human != NO_LABEL)[~(labelled_weights > 0.0)][0])
        raise ValueError(
            f"weights must be > 0 on labelled outputs; output {bad} has weight {weights[bad]}"
        )
    return weights


def weighted_confusion_counts(
    human: np.ndarray, verdict_matrix: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`confusion_counts` plus their importance-weighted versions, per validator:

    - counts: int64 (n_validators, 6), exactly `confusion_counts(human, verdict_matrix)`;
    - weighted: float64 (n_validators, 4), sums of weights over the cells tp, fn, fp, tn;
    - effective: float64 (n_validators, 2), Kish effective sizes (Σw)² / Σw² over the fail
      rows and over the pass rows with a pass/fail verdict from that validator (0 where there
      are none). It lies in [1, n]; rounding is clipped to n.

    `weights` has one entry per output (length n_outputs), finite and > 0 on labelled outputs.

    The sums are BLAS matrix products (about ten times faster than masked reductions), so a
    validator's sums may differ in the last bits with the number of validators in the call.
    """
    weights = check_weights(weights, human)
    by_validator, rows, n_fail_rows = _by_validator(human, verdict_matrix)
    counts, fails, passes = _counts(by_validator, n_fail_rows)
    # Every sum below is of weights rescaled by a power of two so that the largest is in
    # [0.5, 1): exact, and Σw² can neither overflow nor underflow for any sensible ratio of
    # weights. Kish's ratio is scale-free; the sums of weights are scaled back, again exactly.
    row_weights = weights[rows]
    exponent = math.frexp(float(row_weights.max()))[1] if row_weights.size else 0
    scaled = np.ldexp(row_weights, -exponent)
    by_weight = np.stack([scaled, scaled * scaled], axis=1)
    fail_part, pass_part = slice(None, n_fail_rows), slice(n_fail_rows, None)
    # Cells tp, fn, fp, tn; columns Σw, Σw². A 0/1 matrix times two columns is one BLAS
    # product per cell over contiguous rows.
    sums = np.stack(
        [
            mask[:, part].astype(np.float64) @ by_weight[part]
            for mask, part in (
                (fails, fail_part),
                (passes, fail_part),
                (fails, pass_part),
                (passes, pass_part),
            )
        ],
        axis=1,
    )
    weighted = np.ldexp(sums[:, :, 0], exponent)

    # Judged fail rows are tp + fn, judged pass rows fp + tn.
    side_sums = sums[:, 0::2] + sums[:, 1::2]
    n = (counts[:, 0:4:2] + counts[:, 1:4:2]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kish = np.where(n > 0, side_sums[:, :, 0] ** 2 / side_sums[:, :, 1], 0.0)
    # Mathematically 1 <= n_eff <= n; the clip removes rounding (equal weights give n).
    effective = np.clip(kish, np.minimum(n, 1.0), n)
    return counts, weighted, effective


def alignment_table(
    human: np.ndarray, verdict_matrix: np.ndarray, weights: np.ndarray | None = None
) -> list[AlignmentMetrics]:
    """`AlignmentMetrics` for every column of an (n_outputs, n_validators) verdict matrix
    against one criterion's human labels (length n_outputs; -1 where unlabelled).

    With `weights` (importance ratios, one per output), the rates and intervals are
    importance-weighted (`metrics_from_weighted_counts`); the counts stay raw.
    """
    if weights is None:
        return [
            metrics_from_counts(tp=tp, fn=fn, fp=fp, tn=tn, n_error=n_error, n_missing=n_missing)
            for tp, fn, fp, tn, n_error, n_missing in confusion_counts(
                human, verdict_matrix
            ).tolist()
        ]
    counts, weighted, effective = weighted_confusion_counts(human, verdict_matrix, weights)
    return [
        metrics_from_weighted_counts(
            tp=tp,
            fn=fn,
            fp=fp,
            tn=tn,
            n_error=n_error,
            n_missing=n_missing,
            w_tp=w_tp,
            w_fn=w_fn,
            w_fp=w_fp,
            w_tn=w_tn,
            n_eff_fail=n_eff_fail,
            n_eff_pass=n_eff_pass,
        )
        for (tp, fn, fp, tn, n_error, n_missing), (w_tp, w_fn, w_fp, w_tn), (
            n_eff_fail,
            n_eff_pass,
        ) in zip(counts.tolist(), weighted.tolist(), effective.tolist(), strict=True)
    ]


def alignment_metrics(
    human: np.ndarray, verdicts: np.ndarray, weights: np.ndarray | None = None
) -> AlignmentMetrics:
    """`AlignmentMetrics` of one validator's verdicts (length n_outputs), optionally
    importance-weighted as in `alignment_table`."""
    verdicts = np.asarray(verdicts)
    if verdicts.ndim != 1:
        raise ValueError(f"verdicts must be 1-D, got shape {verdicts.shape}")
    return alignment_table(human, verdicts[:, np.newaxis], weights)[0]
