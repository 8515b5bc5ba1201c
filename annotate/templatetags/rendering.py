"""Texts as a person reads them (Markdown, chat transcripts, code) and an output's
differences from its reference; the rendering itself lives in annotate/text_rendering.

Rendered texts are kept in Django's cache under the hash of the text, so an output rendered
once is not rendered again by another worker process (with a shared cache such as Redis), by
the next annotator of the same output, or after the in-process LRU cache has dropped it. The
key carries a digest of the renderer's code and library versions: a change to either renders
afresh instead of serving HTML the new code would not produce.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from django import template
from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

from annotate import text_rendering
from annotate.text_rendering import Reading, render_reading, word_diff_html

register = template.Library()

# Below this size rendering costs about what a cache round trip to Redis does.
CACHED_FROM_CHARACTERS = 300
# A week: outputs are read in bursts (grading, then a review meeting), not forever.
CACHE_SECONDS = 7 * 24 * 3600


def _renderer_digest() -> str:
    source = Path(text_rendering.__file__).read_bytes()
    libraries = ",".join(version(name) for name in ("markdown-it-py", "nh3", "pygments"))
    return hashlib.sha256(source + libraries.encode()).hexdigest()[:12]


RENDERER_DIGEST = _renderer_digest()


def reading_cache_key(text: str) -> str:
    return f"reading:{RENDERER_DIGEST}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


def cached_reading(text: str) -> Reading:
    """`render_reading(text)`, from Django's cache when another request rendered it already."""
    if len(text) < CACHED_FROM_CHARACTERS:
        return render_reading(text)
    key = reading_cache_key(text)
    rendered = cache.get(key)
    if not isinstance(rendered, Reading):
        rendered = render_reading(text)
        cache.set(key, rendered, CACHE_SECONDS)
    return rendered


@dataclass(frozen=True)
class ReadingView:
    kind: str
    head: SafeString
    tail: SafeString
    total: int


@register.filter
def reading(text: str | None) -> ReadingView:
    """The text rendered; `kind` "plain" means: too long to render, show it raw."""
    rendered = cached_reading(text or "")
    # Safe: text_rendering escapes every character of the text and nh3 cleans what it builds.
    return ReadingView(rendered.kind, mark_safe(rendered.head), mark_safe(rendered.tail),
                       rendered.total)


@register.filter
def diff_from(output: str | None, reference: str | None) -> SafeString | None:
    """The output word by word against the reference; None when too long to compare."""
    diff = word_diff_html(reference or "", output or "")
    return None if diff is None else mark_safe(diff)
