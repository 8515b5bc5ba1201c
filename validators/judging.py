"""Reading what an LLM judge answered (DESIGN §4.6), the first piece of issue 13: which output
a pairwise judge prefers, the number a rating judge gave, and one verdict from the two orders.
Pure: no Django, no network; patterns are per validator, with defaults that read the answers
judges really give (a bare "Output (a)", "[[A]]", a chain of thought ending "Therefore,
Output (b) is better.", "7/10", "Rating: 4").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

A, B, TIE = "a", "b", "tie"
INCONSISTENT = "inconsistent"

# The whole answer is the verdict: "A", "(b)", "Output (a)", "Output B.", "[[A]]", "tie".
_BARE = re.compile(
    r"^\W*(?:output|response|answer|assistant)?\s*\(?\[{0,2}\s*([ab])\s*\]{0,2}\)?\W*$", re.I
)
_BARE_TIE = re.compile(r"^\W*(?:tie|\[\[\s*(?:c|tie)\s*\]\]|equal(?:ly good)?|both)\W*$", re.I)
# MT-Bench's and Arena-Hard's "[[A]]", "[[B]]", "[[C]]" (C is a tie): the last one counts.
_BRACKETED = re.compile(r"\[\[\s*(a|b|c|tie)\s*\]\]", re.I)
_OUTPUT = r"(?:output|response|answer|assistant)\s*\(?\s*([ab])\s*\)?"
# "Output (b) is better", "Output (a) is the better one", "prefer Output (a)".
_PREFERRED = re.compile(
    rf"{_OUTPUT}\s+(?:is|was|would be|seems|appears)\s+(?:\w+\s+){{0,3}}"
    r"(?:better|preferred|superior|more (?:helpful|accurate|appropriate)|the winner)"
    rf"|(?:prefer|choose|pick|select|favou?r)\s+{_OUTPUT}",
    re.I,
)
_TIE_WORDS = re.compile(
    r"\b(?:it(?:'s| is) a tie|both (?:outputs |responses )?are equally"
    r"|equally (?:good|bad|helpful)|neither (?:output|response) is better)\b",
    re.I,
)
_RATING_LABELLED = re.compile(
    r"\b(?:rating|score|grade)\s*(?:is|of|:|=)?\s*\[{0,2}\s*(-?\d+(?:\.\d+)?)", re.I
)
_RATING_OUT_OF = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*\d+(?:\.\d+)?", re.I)
_RATING_BARE = re.compile(r"^\W*(-?\d+(?:\.\d+)?)\W*$")


def parse_pairwise_answer(text: str, patterns: Sequence[str] = ()) -> str | None:
    """'a', 'b' or 'tie' as the judge answered, or None when the answer names no winner (a
    refusal, a hedge, text about something else): the caller stores it as an `error` with the
    raw answer. A validator's own `patterns` are tried first: each must have one group that
    captures a, b, c or tie."""
    for pattern in patterns:
        found = re.findall(pattern, text, flags=re.I | re.M)
        if found:
            return _winner(found[-1] if isinstance(found[-1], str) else found[-1][0])
    stripped = text.strip()
    if match := _BARE.match(stripped):
        return match.group(1).lower()
    if _BARE_TIE.match(stripped):
        return TIE
    if bracketed := _BRACKETED.findall(text):
        return _winner(bracketed[-1])
    # A chain of thought weighs both outputs before it decides: the decision is the last.
    preferred = [a or b for a, b in _PREFERRED.findall(text)]
    last_line = stripped.splitlines()[-1] if stripped else ""
    if preferred:
        return preferred[-1].lower()
    if _TIE_WORDS.search(last_line) or _TIE_WORDS.search(text[-300:]):
        return TIE
    named = {m.lower() for m in re.findall(_OUTPUT, last_line, flags=re.I)}
    if len(named) == 1:
        return named.pop()
    return None


def _winner(token: str) -> str | None:
    token = token.strip().lower()
    if token in (A, B):
        return token
    if token in ("c", TIE):
        return TIE
    return None


def parse_rating(text: str, pattern: str | None = None) -> float | None:
    """The score a rating judge gave, or None. With a validator `pattern`, its first group's
    last match; otherwise the last "Rating: 7" / "score of 8", else the last "7/10", else an
    answer that is only a number."""
    candidates: list[str]
    if pattern:
        candidates = [m if isinstance(m, str) else m[0] for m in re.findall(pattern, text, re.I)]
    else:
        candidates = (_RATING_LABELLED.findall(text) or _RATING_OUT_OF.findall(text)
                      or _RATING_BARE.findall(text.strip()))
    for candidate in reversed(candidates):
        try:
            return float(candidate)
        except ValueError:
            continue
    return None


def winner_from_scores(score_a: float | None, score_b: float | None) -> str | None:
    """A rating judge used pairwise: the higher score wins, equal scores tie."""
    if score_a is None or score_b is None:
        return None
    if score_a == score_b:
        return TIE
    return A if score_a > score_b else B


def swap_back(winner: str | None) -> str | None:
    """The winner of the swapped order (output b shown first) in the original order."""
    return {A: B, B: A}.get(winner or "", winner)


def combine_orders(shown: str | None, swapped_back: str | None, *,
                   inconsistent_as_tie: bool = True) -> str | None:
    """One verdict from both orders (DESIGN §4.6): the winner when both agree; a tie, or
    `inconsistent` (an error) by setting, when they disagree; None when either is unread."""
    if shown is None or swapped_back is None:
        return None
    if shown == swapped_back:
        return shown
    return TIE if inconsistent_as_tie else INCONSISTENT
