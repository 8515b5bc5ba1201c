"""Styles live in static/ (app.css, or a page's own sheet linked from its head), not in templates."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


def test_no_template_carries_a_style_block():
    inline = [str(path.relative_to(ROOT)) for path in TEMPLATES if "<style" in path.read_text()]

    assert inline == []


def test_every_stylesheet_a_template_links_exists():
    linked = {
        name for path in TEMPLATES
        for name in re.findall(r"""{% static ['"]([^'"]+\.css)['"] %}""", path.read_text())
    }

    assert linked == {"vendor/pico.min.css", "app.css", "reading.css", "code.css", "review.css", "outputs.css"}
    assert all((ROOT / "static" / name).is_file() for name in linked)


def test_code_colours_are_what_the_generator_writes():
    """static/code.css is generated (python -m annotate.code_styles): a Pygments upgrade or a
    change of style must be regenerated, not patched by hand."""
    from annotate.code_styles import STYLESHEET, stylesheet

    assert STYLESHEET.read_text() == stylesheet()


def test_code_colours_have_a_dark_variant_for_every_light_token():
    from annotate.code_styles import stylesheet

    css = stylesheet()
    light = set(re.findall(r"^\.code-block (\.\w+) ", css, re.M))
    forced_dark = set(re.findall(r'^\[data-theme="dark"\] \.code-block (\.\w+) ', css, re.M))
    system_dark = set(re.findall(r'^  :root:not\(\[data-theme="light"\]\) \.code-block (\.\w+) ', css, re.M))

    assert ".kn" in light and len(light) > 40
    assert light <= forced_dark
    assert forced_dark == system_dark
    assert "@media (prefers-color-scheme: dark) {" in css


def test_no_page_forces_the_light_theme():
    base = (ROOT / "templates" / "base.html").read_text()

    assert re.search(r"<html[^>]*data-theme", base) is None
