"""Rendered texts kept in Django's cache under their hash (annotate/templatetags/rendering.py)."""

from django.core.cache import cache

from annotate.templatetags.rendering import (
    CACHED_FROM_CHARACTERS,
    RENDERER_DIGEST,
    cached_reading,
    reading,
    reading_cache_key,
)
from annotate.text_rendering import Reading, render_reading

ANSWER = "## Steps\n\n" + "".join(f"{n}. Open **Settings** and check field {n}.\n" for n in range(1, 12)) + (
    "\n```python\nclient.upload('report.pdf')\n```\n"
)


def test_a_rendered_text_is_stored_under_its_hash_and_served_from_there():
    assert len(ANSWER) >= CACHED_FROM_CHARACTERS
    key = reading_cache_key(ANSWER)
    assert cache.get(key) is None

    first = reading(ANSWER)

    assert cache.get(key) == render_reading(ANSWER)
    assert str(first.head) == render_reading(ANSWER).head
    # What another process stored is what this one shows: no second rendering.
    cache.set(key, Reading("markdown", "<p>from the cache</p>", "", len(ANSWER)))
    assert str(reading(ANSWER).head) == "<p>from the cache</p>"


def test_the_key_changes_with_the_text_and_carries_the_renderer_digest():
    key = reading_cache_key(ANSWER)

    assert key.startswith(f"reading:{RENDERER_DIGEST}:")
    assert key != reading_cache_key(ANSWER + " ")
    assert len(RENDERER_DIGEST) == 12


def test_short_texts_are_rendered_without_the_cache():
    short = "Open **Billing**."

    assert cached_reading(short).head == "<p>Open <strong>Billing</strong>.</p>\n"
    assert cache.get(reading_cache_key(short)) is None


def test_something_else_under_the_key_is_rendered_afresh_and_replaced():
    key = reading_cache_key(ANSWER)
    cache.set(key, "<script>alert(1)</script>")

    rendered = cached_reading(ANSWER)

    assert rendered == render_reading(ANSWER)
    assert cache.get(key) == rendered


def test_hostile_markdown_stays_inert_through_the_cache():
    attack = "# Hi\n\n" + "<img src=x onerror=alert(1)> [x](javascript:alert(2)) " * 20

    for _ in range(2):  # rendered, then from the cache
        html = str(reading(attack).head)
        assert "<img" not in html
        assert "<a " not in html and "href" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html

