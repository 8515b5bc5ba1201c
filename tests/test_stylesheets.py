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

    assert linked == {"vendor/pico.min.css", "app.css", "reading.css", "review.css"}
    assert all((ROOT / "static" / name).is_file() for name in linked)
