import pytest

from annotate.untrusted_text import (
    escape_unstorable_text,
    unstorable_in,
    unstorable_text_problem,
)


def test_plain_text_and_valid_pairs_have_no_problem():
    assert unstorable_text_problem("héllo 😀 \u4e2d") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ab\x00c", "contains a NUL character (at character 3)"),
        ("a\ud800", "contains an unpaired surrogate U+D800 (at character 2); "
                    "the text is not valid Unicode"),
    ],
)
def test_problems_name_the_character_and_where_it_is(text, expected):
    assert unstorable_text_problem(text) == expected


def test_escaping_keeps_everything_else_and_encodes_as_utf8():
    escaped = escape_unstorable_text("a\x00b\udc80c😀")
    assert escaped == "a\\x00b\\udc80c😀"
    escaped.encode("utf-8")
    assert unstorable_text_problem(escaped) is None


def test_nested_values_report_the_path_of_the_first_problem():
    assert unstorable_in({"a": [1, "ok", {"b": "x\x00"}]}, path="metadata") == (
        "metadata.a[2].b", "contains a NUL character (at character 2)")
    assert unstorable_in({"k\ud800": 1})[0] == "k\ud800"
    assert unstorable_in({"fine": ["yes", 2.5, None]}) is None
