"""Code comparators in the sandbox: compare(output_a, output_b, input, reference, meta) runs with
every guarantee of a check, and its return is read as a winner."""

from collections.abc import Iterator

import pytest

from validators.sandbox import CompareItem, CompareResult, SandboxPool, check_source
from validators.sandbox.pool import _verdicts
from validators.sandbox.protocol import FrameError

ITEMS = [CompareItem("long answer", "short", "q"), CompareItem("short", "long answer", "q"),
         CompareItem("same", "same", "q")]


def _compare(body: str) -> str:
    return f"def compare(output_a, output_b, input, reference, meta):\n    {body}\n"


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1, timeout_seconds=1.0, memory_mb=256) as shared:
        yield shared


def test_a_number_names_the_winner_by_its_sign(pool):
    results = pool.compare(_compare("return len(output_a) - len(output_b)"), ITEMS)

    assert [(r.winner, r.score, r.detail) for r in results] == [("a", 6.0, ""), ("b", -6.0, ""), ("tie", 0.0, "")]


def test_named_winners_are_read_whatever_their_case(pool):
    results = pool.compare(_compare("return {'l': ' A ', 's': 'b'}[output_a[0]] if output_a != output_b else 'TIE'"), ITEMS)

    assert [(r.winner, r.score) for r in results] == [("a", None), ("b", None), ("tie", None)]


@pytest.mark.parametrize(("body", "detail"), [
    ("return 'left'", "compare returned 'left'; expected 'a', 'b', 'tie' or a number"),
    ("return True", "compare returned a bool; expected 'a', 'b', 'tie' or a number"),
    ("return None", "compare returned None"),
    ("return [1]", "compare returned list; expected 'a', 'b', 'tie' or a number"),
    ("return float('nan')", "check returned NaN"),
])
def test_anything_else_is_an_error_that_says_what_came_back(pool, body, detail):
    [result] = pool.compare(_compare(body), ITEMS[:1])

    assert result == CompareResult("error", None, detail.replace("check returned", "compare returned"), result.latency_ms)


def test_a_source_without_compare_is_an_error_for_every_pair(pool):
    results = pool.compare("def check(output, input, reference, meta):\n    return True\n", ITEMS)

    assert {r.detail for r in results} == {
        "the assertion must define a function compare(output_a, output_b, input, reference, meta)"}
    assert {r.winner for r in results} == {"error"}


def test_a_comparator_that_hangs_times_out_on_its_pair_only(pool):
    source = _compare("while output_a == 'short':\n        pass\n    return 'a'")

    results = pool.compare(source, ITEMS)

    assert [r.winner for r in results] == ["a", "error", "a"]
    assert results[1].detail == "timed out after 1.0 s"


def test_the_isolation_is_the_same_as_for_checks(pool):
    assert check_source(_compare("return 'a'").replace("def compare", "import os\ndef compare"), "compare") == [
        "Line 1: import of 'os' is not allowed (allowed: re, json, math, string, difflib, unicodedata, "
        "statistics, collections, itertools, datetime)"]
    [result] = pool.compare(_compare("return output_a.__class__"), ITEMS[:1])
    assert result.winner == "error"


def test_the_parent_refuses_a_forged_winner():
    with pytest.raises(FrameError, match="a winner result without a winner"):
        _verdicts({"results": [["winner", "me", "", 5]]}, 1, None, "compare")
