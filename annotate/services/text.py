"""Refusing text a person typed that storage cannot hold, in the services every entry point
(browser, API, tasks, commands) goes through. The rule itself is annotate.untrusted_text."""

from __future__ import annotations

from annotate.untrusted_text import unstorable_in


def unstorable_field(**texts: str | None) -> tuple[str, str] | None:
    """(field, message) for the first of `texts` that storage cannot hold, or None. The
    message names the field, e.g. "The note field contains a NUL character (at character 3)."
    """
    found = unstorable_in({name: text for name, text in texts.items() if text is not None})
    if found is None:
        return None
    field, problem = found
    return field, f"The {field.replace('_', ' ')} field {problem}."
