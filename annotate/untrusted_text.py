"""The one rule for characters that storage cannot hold (issue 11 §6).

PostgreSQL refuses NUL in text columns and every UTF-8 encoder refuses lone surrogates (which
JSON's "\\ud800" escapes produce), so such text reaching `save()` is a 500 or a failed run.
Text typed or uploaded by a person is *refused* with the field named, so they can fix it; text
produced by a machine (an assertion's exception, an LLM answer) is *escaped*, so a verdict is
still stored and a run never fails because of what a detail says.

Pure module: no Django import, usable from forms, serializers, importers and the sandbox.
"""

from __future__ import annotations

import re

# A NUL, or a UTF-16 surrogate code point on its own (a valid pair never survives decoding into
# a Python str as two code points, so every surrogate seen here is unpaired).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, in words a person can act on, or None when it can."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    position = match.start() + 1
    if match.group() == "\x00":
        return f"contains a NUL character (at character {position})"
    return (f"contains an unpaired surrogate U+{ord(match.group()):04X} "
            f"(at character {position}); the text is not valid Unicode")


def escape_unstorable_text(text: str) -> str:
    """`text` with each NUL and lone surrogate written as its escape (`\\x00`, `\\ud800`):
    storable, and a reader still sees what was there."""
    return _UNSTORABLE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    code_point = ord(match.group())
    return "\\x00" if code_point == 0 else f"\\u{code_point:04x}"


def unstorable_in(value: object, *, path: str = "") -> tuple[str, str] | None:
    """The first (path, problem) inside a JSON-like value, keys included, or None. Paths use
    dots and [index] so an import error can name `metadata.tags[2]`."""
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        where, current = stack.pop()
        if isinstance(current, str):
            problem = unstorable_text_problem(current)
            if problem:
                return where, problem
        elif isinstance(current, dict):
            for key, item in current.items():
                key_text = str(key)
                child = f"{where}.{key_text}" if where else key_text
                problem = unstorable_text_problem(key_text)
                if problem:
                    return child, f"key {problem}"
                stack.append((child, item))
        elif isinstance(current, list | tuple):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(current))
    return None
