"""How well an automated validator agrees with human grades (DESIGN §4.1).

Pure numpy, no Django import. *Fail* is the class an assertion exists to catch, so the
confusion matrix is oriented with fail as the positive class: a true positive is an output the
validator fails and a human failed.

Encodings shared with the rest of the app:

- human labels (int8): 1 pass, 0 fail, -1 no label;
- annotator grades fed to `majority_labels`: 1 pass, 0 fail, 2 unsure;
- validator verdicts (int8): 1 pass, 0 fail, -1 error, -2 missing (not run).

Every figure that is undefined for the data at hand (a ratio with an empty denominator) is
`None`, never 0 or 1. Where scikit-learn differs on purpose:

- `matthews_corrcoef` returns 0.0 when a row or column of the confusion matrix is empty; the
  coefficient is 0/0 there, so `mcc` is `None`.
- `cohen_kappa_score` returns NaN (with a warning) when the expected agreement is 1; `kappa`
  is `None`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

HUMAN_PASS = 1
HUMAN_FAIL = 0
NO_LABEL = -1

GRADE_PASS = 1
GRADE_FAIL = 0
GRADE_UNSURE = 2

VERDICT_PASS = 1
VERDICT_FAIL = 0
VERDICT_ERROR = -1
VERDICT_MISSING = -2

# Two-sided 95%: scipy.stats.norm.isf(0.025) (as in statsmodels' proportion_confint) to 16 digits.
Z_95 = 1.959963984540054

Interval = tuple[float, float]


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Interval | None:
    """Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta
    2001 recommend it over the Wald interval for small n and proportions near 0 or 1).

    `None` when n == 0: a proportion of nothing has no interval.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    # At 0 and n the bound is exactly 0 or 1; the subtraction leaves a rounding residue.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return (low, high)


def majority_labels(output_index: np.ndarray, labels: np.ndarray, n_outputs: int) -> np.ndarray:
    """One label per output from several annotators' grades (DESIGN §4.1).

    `output_index[k]` is the output the grade `labels[k]` (1 pass, 0 fail, 2 unsure) was given
    to. The result is int8 per output: the majority of pass and fail votes; an output with a
    tie, only unsure votes or no votes gets -1 (no label).
    """
    output_index = np.asarray(output_index).astype(np.intp, copy=False)
    labels = np.asarray(labels)
    if output_index.shape != labels.shape or output_index.ndim != 1:
        raise ValueError("output_index and labels must be 1-D arrays of the same length")
    if labels.size and not np.isin(labels, (GRADE_PASS, GRADE_FAIL, GRADE_UNSURE)).all():
        raise ValueError("grade codes must be 1 (pass), 0 (fail) or 2 (unsure)")
    if output_index.size and (output_index.min() < 0 or output_index.max() >= n_outputs):
        raise ValueError(f"output_index must lie in [0, {n_outputs})")
    pass_votes = np.bincount(output_index[labels == GRADE_PASS], minlength=n_outputs)
    fail_votes = np.bincount(output_index[labels == GRADE_FAIL], minlength=n_outputs)
    majority = np.full(n_outputs, NO_LABEL, dtype=np.int8)
    majority[pass_votes > fail_votes] = HUMAN_PASS
    majority[fail_votes > pass_votes] = HUMAN_FAIL
    return majority


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

    @property
    def n_labelled(self) -> int:
        """Labelled outputs with a pass/fail verdict: the size of the confusion matrix."""
        return self.n_pass + self.n_fail

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: intervals become [low, high] lists, undefined values stay None."""
        return {
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


def _interval_list(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def metrics_from_counts(
    *, tp: int, fn: int, fp: int, tn: int, n_error: int = 0, n_missing: int = 0
) -> AlignmentMetrics:
    """Every figure of `AlignmentMetrics` from the confusion counts (fail = positive).

    Exposed so counts aggregated elsewhere (for example in SQL) give the same figures.
    """
    tp, fn, fp, tn, n_error, n_missing = (int(c) for c in (tp, fn, fp, tn, n_error, n_missing))
    if min(tp, fn, fp, tn, n_error, n_missing) < 0:
        raise ValueError("counts must be non-negative")
    n_fail = tp + fn
    n_pass = fp + tn
    n = n_fail + n_pass
    n_run = n + n_error

    coverage = tp / n_fail if n_fail else None
    false_failure_rate = fp / n_pass if n_pass else None
    alignment = None
    if n_fail and n_pass:
        # Harmonic mean of coverage tp/n_fail and specificity tn/n_pass, kept in integers
        # until the one division. Both zero is the limit 0, not undefined: the harmonic mean
        # is at most twice the smaller term.
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

    return AlignmentMetrics(
        n_pass=n_pass,
        n_fail=n_fail,
        n_error=n_error,
        n_missing=n_missing,
        skip_rate=n_error / n_run if n_run else None,
        tp=tp,
        fn=fn,
        fp=fp,
        tn=tn,
        coverage=coverage,
        coverage_ci=wilson_interval(tp, n_fail),
        false_failure_rate=false_failure_rate,
        ffr_ci=wilson_interval(fp, n_pass),
        alignment=alignment,
        accuracy=(tp + tn) / n if n else None,
        kappa=kappa,
        mcc=mcc,
    )


def check_human_labels(human: np.ndarray) -> np.ndarray:
    """The labels as an array, or ValueError unless 1-D with codes 1, 0 and -1."""
    human = np.asarray(human)
    if human.ndim != 1:
        raise ValueError(f"human labels must be 1-D, got shape {human.shape}")
    if human.size and (human.min() < NO_LABEL or human.max() > HUMAN_PASS):
        raise ValueError("human label codes must be 1 (pass), 0 (fail) or -1 (no label)")
    return human


def confusion_counts(human: np.ndarray, verdict_matrix: np.ndarray) -> np.ndarray:
    """Counts per validator over labelled outputs, shape (n_validators, 6), int64, columns
    tp, fn, fp, tn, n_error, n_missing.

    Unlabelled rows are dropped first, so passing every output or only the labelled ones
    costs about the same. Verdict codes are checked on labelled rows only.
    """
    human = check_human_labels(human)
    verdict_matrix = np.asarray(verdict_matrix)
    if verdict_matrix.ndim != 2 or verdict_matrix.shape[0] != human.shape[0]:
        raise ValueError(
            f"verdict matrix must be (n_outputs, n_validators) with n_outputs={human.shape[0]},"
            f" got shape {verdict_matrix.shape}"
        )
    labelled = np.flatnonzero(human != NO_LABEL)
    labelled_human = human[labelled]
    fail_rows = labelled[labelled_human == HUMAN_FAIL]
    pass_rows = labelled[labelled_human == HUMAN_PASS]
    n_fail_rows = fail_rows.size
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

    fails = by_validator == VERDICT_FAIL
    passes = by_validator == VERDICT_PASS
    errors = by_validator == VERDICT_ERROR
    tp = np.count_nonzero(fails[:, :n_fail_rows], axis=1)
    fp = np.count_nonzero(fails[:, n_fail_rows:], axis=1)
    fn = np.count_nonzero(passes[:, :n_fail_rows], axis=1)
    tn = np.count_nonzero(passes[:, n_fail_rows:], axis=1)
    n_error = np.count_nonzero(errors, axis=1)
    n_missing = by_validator.shape[1] - tp - fp - fn - tn - n_error
    return np.stack([tp, fn, fp, tn, n_error, n_missing], axis=1).astype(np.int64)


def alignment_table(human: np.ndarray, verdict_matrix: np.ndarray) -> list[AlignmentMetrics]:
    """`AlignmentMetrics` for every column of an (n_outputs, n_validators) verdict matrix
    against one criterion's human labels (length n_outputs; -1 where unlabelled)."""
    return [
        metrics_from_counts(tp=tp, fn=fn, fp=fp, tn=tn, n_error=n_error, n_missing=n_missing)
        for tp, fn, fp, tn, n_error, n_missing in confusion_counts(human, verdict_matrix).tolist()
    ]


def alignment_metrics(human: np.ndarray, verdicts: np.ndarray) -> AlignmentMetrics:
    """`AlignmentMetrics` of one validator's verdicts (length n_outputs)."""
    verdicts = np.asarray(verdicts)
    if verdicts.ndim != 1:
        raise ValueError(f"verdicts must be 1-D, got shape {verdicts.shape}")
    return alignment_table(human, verdicts[:, np.newaxis])[0]
