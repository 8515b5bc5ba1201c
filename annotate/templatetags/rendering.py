"""Texts as a person reads them (Markdown, chat transcripts, code) and an output's
differences from its reference; the rendering itself lives in annotate/text_rendering."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotate.text_rendering import render_reading, word_diff_html

register = template.Library()


@dataclass(frozen=True)
class ReadingView:
    kind: str
    head: SafeString
    tail: SafeString
    total: int


@register.filter
def reading(text: str | None) -> ReadingView:
    """The text rendered; `kind` "plain" means: too long to render, show it raw."""
    rendered = render_reading(text or "")
    # Safe: text_rendering escapes every character of the text and nh3 cleans what it builds.
    return ReadingView(rendered.kind, mark_safe(rendered.head), mark_safe(rendered.tail),
                       rendered.total)


@register.filter
def diff_from(output: str | None, reference: str | None) -> SafeString | None:
    """The output word by word against the reference; None when too long to compare."""
    diff = word_diff_html(reference or "", output or "")
    return None if diff is None else mark_safe(diff)
