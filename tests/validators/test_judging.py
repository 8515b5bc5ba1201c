"""Reading judges' answers (issue 13, DESIGN §4.6) on answers written the way real judges
answer: bare labels, MT-Bench brackets, chains of thought, scores, refusals."""

import pytest

from validators.judging import (
    combine_orders,
    parse_pairwise_answer,
    parse_rating,
    swap_back,
    winner_from_scores,
)

CHAIN_OF_THOUGHT_B = (
    "Output (a) lists three rhymes, but two of them do not rhyme with the word, so it does not "
    "precisely execute the instruction. Output (a) is more verbose as well.\n\n"
    "Output (b) gives exactly two rhymes, as asked, and both are correct.\n\n"
    "Therefore, Output (b) is better."
)
WEIGHS_BOTH_THEN_A = (
    "At first glance Output (b) seems better because it is longer. However, Output (b) "
    "invents a date. Considering these factors, Output (a) is better as it precisely "
    "executes the instruction. Therefore, Output (a) is better."
)


@pytest.mark.parametrize(("answer", "expected"), [
    ("Output (a)", "a"), ("Output (b)", "b"), ("output (B).", "b"), ("A", "a"), (" b\n", "b"),
    ("[[A]]", "a"), ("[[B]]", "b"), ("[[C]]", "tie"), ("tie", "tie"), ("Tie.", "tie"),
    ("My final verdict is: [[B]]", "b"),
    (CHAIN_OF_THOUGHT_B, "b"),
    (WEIGHS_BOTH_THEN_A, "a"),
    ("Both responses are equally helpful, so it's a tie.", "tie"),
    ("I prefer Output (a) because it answers the question.", "a"),
    ("I'm sorry, but I cannot determine which output is better without more context.", None),
    ("As an AI language model, I can't help with that.", None),
    ("", None),
])
def test_pairwise_answers_are_read_as_the_judge_meant(answer, expected):
    assert parse_pairwise_answer(answer) == expected


def test_a_validators_own_pattern_comes_first():
    answer = "Verdict=B. Output (a) is better in style only."

    assert parse_pairwise_answer(answer) == "a"
    assert parse_pairwise_answer(answer, patterns=[r"verdict=([ab])"]) == "b"
    assert parse_pairwise_answer("Verdict unclear", patterns=[r"verdict=([ab])"]) is None


@pytest.mark.parametrize(("answer", "expected"), [
    ("7/10", 7.0), ("Rating: 4", 4.0), ("I would give it a score of 8.5 out of 10.", 8.5),
    ("The response is clear. Score: [[6]]", 6.0), ("9", 9.0),
    ("It is accurate (9/10) but long; overall 7/10.", 7.0),
    ("I cannot rate this output.", None),
])
def test_ratings_are_read_from_the_answer(answer, expected):
    assert parse_rating(answer) == expected


def test_a_rating_pattern_of_the_validators_own():
    assert parse_rating("quality=3; fluency=5", pattern=r"quality=(\d+)") == 3.0


def test_two_scores_make_a_pairwise_verdict():
    assert [winner_from_scores(8, 6), winner_from_scores(5, 7.5), winner_from_scores(7, 7),
            winner_from_scores(None, 7)] == ["a", "b", "tie", None]


@pytest.mark.parametrize(("shown", "swapped", "as_tie", "expected"), [
    ("a", "b", True, "a"),        # b shown first in the swap, so "b" there means a
    ("b", "a", True, "b"),
    ("a", "a", True, "tie"),      # the judge picked whatever came first: position bias
    ("a", "a", False, "inconsistent"),
    ("tie", "tie", True, "tie"),
    ("a", None, True, None),
])
def test_both_orders_make_one_verdict(shown, swapped, as_tie, expected):
    assert combine_orders(shown, swap_back(swapped), inconsistent_as_tie=as_tie) == expected
