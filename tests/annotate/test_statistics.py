"""annotate.statistics: one Wilson interval in three shapes, the id alignment, the encodings."""

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from annotate import statistics
from annotate.statistics import (
    LABEL_NAMES,
    NO_LABEL,
    OUTCOME_CODES,
    OUTCOME_NAMES,
    VERDICT_CODES,
    Z_95,
    as_outcomes,
    majority,
    majority_codes,
    rows_of,
    sql_case,
    wilson_interval,
    wilson_interval_float,
    wilson_intervals,
)

COUNTS = [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (57, 211), (2.5, 7.25), (0.0, 0.4)]


def test_the_module_imports_no_django():
    tree = ast.parse(Path(statistics.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0] for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported == {"__future__", "collections", "math", "numpy"}


@pytest.mark.parametrize(("successes", "n"), COUNTS)
@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_every_shape_of_the_wilson_interval_matches_statsmodels(successes, n, alpha):
    z = Z_95 if alpha == 0.05 else norm.isf(alpha / 2)
    expected = proportion_confint(successes, n, alpha=alpha, method="wilson")

    scalar = wilson_interval(successes, n, z=z)
    weighted = wilson_interval_float(successes / n, n, z=z)
    lower, upper = wilson_intervals(np.array([successes]), np.array([n]), z=z)

    assert scalar == pytest.approx(expected, abs=1e-12)
    assert weighted == scalar
    assert (float(lower[0]), float(upper[0])) == scalar


def test_wilson_bounds_are_exact_at_zero_and_one_in_every_shape():
    n = np.arange(1, 400, dtype=float)
    lower, _ = wilson_intervals(np.zeros_like(n), n)
    _, upper = wilson_intervals(n, n)
    assert (lower == 0.0).all() and (upper == 1.0).all()
    assert all(wilson_interval(0, k)[0] == 0.0 and wilson_interval(k, k)[1] == 1.0 for k in range(1, 400))


def test_wilson_intervals_without_trials_span_everything():
    lower, upper = wilson_intervals(np.array([0, 3]), np.array([0, 4]))
    assert lower[0] == 0.0 and upper[0] == 1.0
    assert (lower[1], upper[1]) == pytest.approx(proportion_confint(3, 4, method="wilson"), abs=1e-12)


def test_z_95_is_the_two_sided_normal_quantile():
    assert Z_95 == pytest.approx(norm.isf(0.025), rel=1e-15)


def test_rows_of_finds_present_ids_and_flags_the_rest():
    ids = np.array([3, 5, 9])
    rows, found = rows_of(ids, np.array([9, 4, 3, 10, 1]))
    assert found.tolist() == [True, False, True, False, False]
    assert rows[found].tolist() == [2, 0]
    assert ((rows >= 0) & (rows < ids.size)).all()
    rows, found = rows_of(np.zeros(0, np.int64), np.array([1, 2]))
    assert rows.tolist() == [0, 0] and found.tolist() == [False, False]


def test_majority_leaves_out_votes_on_other_outputs_ties_and_unsure():
    targets = np.array([10, 20, 30, 40])
    voted_on = np.array([10, 10, 20, 20, 30, 99, 99])
    codes = np.array([1, 1, 1, 0, 2, 0, 0])
    assert majority(targets, voted_on, codes).tolist() == [1, NO_LABEL, NO_LABEL, NO_LABEL]


def test_majority_codes_name_ties_and_unsure():
    codes, agreement = majority_codes(np.array([2, 1, 0, 0, 1]), np.array([1, 1, 0, 0, 3]), np.array([0, 1, 2, 0, 0]))
    assert [LABEL_NAMES[c + 1] for c in codes] == ["pass", "tie", "unsure", "", "fail"]
    np.testing.assert_allclose(agreement, [2 / 3, 1 / 3, 1.0, np.nan, 3 / 4])


def test_encodings():
    assert VERDICT_CODES == {"fail": 0, "pass": 1, "unsure": 2}
    assert OUTCOME_CODES == {"pass": 1, "fail": 0, "error": -1}
    assert OUTCOME_NAMES == {1: "pass", 0: "fail", -1: "error", -2: ""}
    assert [LABEL_NAMES[VERDICT_CODES[name] + 1] for name in VERDICT_CODES] == list(VERDICT_CODES)
    np.testing.assert_array_equal(
        as_outcomes(np.array([1, 0, 2, -1, -2])), [1.0, 0.0, np.nan, np.nan, np.nan]
    )
    assert as_outcomes(np.array([1]), np.float32).dtype == np.float32
    assert sql_case("verdict", VERDICT_CODES, NO_LABEL) == (
        "CASE verdict WHEN 'fail' THEN 0 WHEN 'pass' THEN 1 WHEN 'unsure' THEN 2 ELSE -1 END"
    )
