"""Long texts on the grading pages: the beginning is shown, the rest waits behind "Show all".

A closed <details> is not laid out by the browser, so a 200 KB output costs the page little
until the annotator asks for it (a 12 MB one once took 14 s to render).
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template

register = template.Library()

# About a screen of text in the output pane.
SHOWN_CHARACTERS = 3000
# The cut prefers the end of a line within this many characters before the limit.
LINE_SLACK = 500


@dataclass(frozen=True)
class LongText:
    head: str
    tail: str

    @property
    def total(self) -> int:
        return len(self.head) + len(self.tail)


@register.filter
def long_text(text: str | None) -> LongText:
    """The text split where the collapsed view stops; `tail` is empty for a short text."""
    text = text or ""
    if len(text) <= SHOWN_CHARACTERS:
        return LongText(text, "")
    cut = text.rfind("\n", SHOWN_CHARACTERS - LINE_SLACK, SHOWN_CHARACTERS)
    cut = SHOWN_CHARACTERS if cut == -1 else cut + 1
    return LongText(text[:cut], text[cut:])
