"""Comfort in Chromium: every main page readable in the system's dark mode (and still light in
light mode), and usable on a 390 px phone: no sideways page scroll, keyboard grading intact.

The project is the demo `make run` loads (three systems, criteria, validators with verdicts,
grades, comparisons, Markdown, chat and long texts), plus disagreements and an open review
meeting, so tables are as wide as a real project makes them."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Browser, Page, expect

from annotate.models import Grade, Output
from annotate.services.grades import grade_submit
from annotate.services.review import meeting_start
from tests.browser.test_grading import press_and_wait_for_next_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# (name, path under /p/<slug>/ or None for the project list); owners see every page.
PAGES = [
    ("projects", None),
    ("dashboard", ""),
    ("grade", "grade/"),
    ("pairwise", "pairwise/"),
    ("history", "grade/history/"),
    ("criteria", "criteria/"),
    ("team", "team/"),
    ("validators", "validators/"),
    ("report-card", "report-card/"),
    ("verdict-matrix", "verdicts/"),
    ("review", "review/"),
    ("meeting", "review/meetings/{meeting}/"),
    ("meeting-item", "review/meetings/{meeting}/items/1/"),
    ("rankings", "rankings/"),
    ("import", "import/"),
    ("settings", "settings/"),
    ("exports", "exports/"),
]

# WCAG 2.x relative luminance and contrast, computed in the page from computed styles. The
# background of an element is the first opaque one found walking up its ancestors (a
# translucent one is blended over what lies below it).
CONTRAST_JS = """
(selector) => {
  // Computed colours come as rgb()/rgba(), or as color(srgb r g b / a) (0..1) for color-mix().
  const parse = (c) => {
    let m = c.match(/rgba?\\(([^)]+)\\)/);
    let scale = 1;
    if (!m) { m = c.match(/color\\(srgb ([^)]+)\\)/); scale = 255; }
    if (!m) throw new Error("unparsed colour " + c);
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0] * scale, p[1] * scale, p[2] * scale, p.length > 3 ? p[3] : 1];
  };
  const blend = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) colour = blend(layers[i], colour);
    return colour;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const el = document.querySelector(selector);
  if (!el) return null;
  const bg = background(el);
  const fg = blend(parse(getComputedStyle(el).color), bg);
  const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const rgb = (c) => "rgb(" + c.slice(0, 3).map(Math.round).join(", ") + ")";
  return { contrast: (l1 + 0.05) / (l2 + 0.05), background: luminance(bg), text: luminance(fg),
           colours: rgb(fg) + " on " + rgb(bg) + " (" + el.className + ")" };
}
"""

# Elements sticking out past the viewport's right edge, for the failure message.
OVERFLOW_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 0.5 && box.width > 0) {
      let scrolls = false;
      for (let p = el.parentElement; p; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (p !== document.body && p !== document.documentElement
            && ["auto", "scroll", "hidden", "clip"].includes(s.overflowX)) { scrolls = true; break; }
      }
      if (!scrolls) out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
        + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "")
        + " right=" + Math.round(box.right));
    }
  }
  return out.slice(0, 12);
}
"""


@pytest.fixture
def demo_project(db):
    """The demo project, two annotators disagreeing on a few outputs, an open meeting."""
    from validators.demo import demo_load

    project, _ = demo_load()
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["owner", "annotator", "reviewer"])}
    graded = Grade.objects.filter(project=project, annotator=users["annotator"]).select_related("output")[:4]
    for grade in graded:
        grade_submit(output=grade.output, annotator=users["owner"],
                     verdict="fail" if grade.verdict == "pass" else "pass", note="I read this differently")
    meeting = meeting_start(project=project, started_by=users["reviewer"], title="Weekly calibration")
    assert meeting.agenda_items.count() > 3
    return project, meeting


def log_in_demo(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"concord-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def page_url(base_url: str, project, meeting, path: str | None) -> str:
    if path is None:
        return f"{base_url}/"
    return f"{base_url}/p/{project.slug}/{path.format(meeting=meeting.pk)}"


def contrast(page: Page, selector: str) -> dict | None:
    return page.evaluate(CONTRAST_JS, selector)


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("load")


def test_dark_mode_follows_the_system_on_every_page(browser: Browser, live_server, demo_project, artifacts_dir):
    project, meeting = demo_project
    context = browser.new_context(color_scheme="dark", viewport=DESKTOP)
    page = context.new_page()
    log_in_demo(page, live_server.url, "owner")

    for name, path in PAGES:
        visit(page, page_url(live_server.url, project, meeting, path))
        assert page.evaluate("document.documentElement.dataset.theme") is None, name
        body = contrast(page, "body")
        assert body["background"] < 0.05, f"{name}: the page background is not dark"
        assert body["text"] > 0.3, f"{name}: the text is not light"
        assert body["contrast"] >= 4.5, f"{name}: body text contrast {body['contrast']:.2f}"
        for selector in ("main td", "main th", "main button:not([disabled])", "main .code-block",
                         "main .chip", "main .verdict", "main .flash", "main kbd", "main button kbd",
                         "main a[role=button] kbd", "main .band", "main .kind", "main .tag",
                         "main .selector-tag"):
            measured = contrast(page, selector)
            if measured is not None:
                assert measured["contrast"] >= 4.5, (
                    f"{name}: {selector} contrast {measured['contrast']:.2f}, {measured['colours']}")
        page.screenshot(path=os.path.join(artifacts_dir, f"dark-{name}.png"), full_page=True)

    # The grade page's Markdown: the highlighted code takes the dark token colours too.
    visit(page, page_url(live_server.url, project, meeting, "grade/"))
    keyword = page.locator(".code-block .kn, .code-block .k").first
    if keyword.count():
        assert keyword.evaluate("e => getComputedStyle(e).color") != "rgb(0, 128, 0)"

    # Charts draw their axes in the theme's muted text colour, not Chart.js' dark grey.
    visit(page, page_url(live_server.url, project, meeting, "team/"))
    page.wait_for_function("typeof Chart !== 'undefined' && Chart.defaults.color !== '#666'")
    assert page.evaluate("Chart.defaults.color") == page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--pico-muted-color').trim()")
    context.close()


def test_light_mode_stays_light_and_the_toggle_forces_a_theme(browser: Browser, live_server, demo_project, artifacts_dir):
    project, meeting = demo_project
    context = browser.new_context(color_scheme="light", viewport=DESKTOP)
    page = context.new_page()
    log_in_demo(page, live_server.url, "owner")

    for name, path in [("dashboard", ""), ("grade", "grade/"), ("verdict-matrix", "verdicts/"),
                       ("review", "review/"), ("meeting-item", "review/meetings/{meeting}/items/1/")]:
        visit(page, page_url(live_server.url, project, meeting, path))
        body = contrast(page, "body")
        assert body["background"] > 0.9, f"{name}: the page is not light"
        assert body["contrast"] >= 4.5
        for selector in ("main td", "main button:not([disabled])", "main kbd", "main button kbd"):
            measured = contrast(page, selector)
            if measured is not None:
                assert measured["contrast"] >= 4.5, (
                    f"{name}: {selector} contrast {measured['contrast']:.2f}, {measured['colours']}")
        page.screenshot(path=os.path.join(artifacts_dir, f"light-{name}.png"), full_page=True)

    # auto -> dark: dark although the system is light, and it stays dark on the next page.
    toggle = page.get_by_test_id("theme-toggle")
    expect(toggle).to_have_accessible_name("Colour theme: auto")
    toggle.click()
    expect(toggle).to_have_accessible_name("Colour theme: dark")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert contrast(page, "body")["background"] < 0.05
    visit(page, page_url(live_server.url, project, meeting, "rankings/"))
    assert contrast(page, "body")["background"] < 0.05
    page.screenshot(path=os.path.join(artifacts_dir, "forced-dark-rankings.png"), full_page=True)
    # dark -> light -> auto: back to following the system.
    page.get_by_test_id("theme-toggle").click()
    expect(page.get_by_test_id("theme-toggle")).to_have_accessible_name("Colour theme: light")
    assert contrast(page, "body")["background"] > 0.9
    page.get_by_test_id("theme-toggle").click()
    expect(page.get_by_test_id("theme-toggle")).to_have_accessible_name("Colour theme: auto")
    assert page.evaluate("document.documentElement.dataset.theme") is None
    context.close()


def test_every_page_fits_a_390_px_phone(browser: Browser, live_server, demo_project, artifacts_dir):
    project, meeting = demo_project
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log_in_demo(page, live_server.url, "owner")

    too_wide = {}
    for name, path in PAGES:
        visit(page, page_url(live_server.url, project, meeting, path))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = (width, page.evaluate(OVERFLOW_JS))
        page.screenshot(path=os.path.join(artifacts_dir, f"phone-{name}.png"), full_page=True)
    context.close()

    assert not too_wide, "\n".join(f"{name}: {width} px, sticking out: {elements}"
                                    for name, (width, elements) in too_wide.items())


def test_grading_by_keyboard_on_a_390_px_phone(browser: Browser, live_server, demo_project, artifacts_dir):
    project, _ = demo_project
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log_in_demo(page, live_server.url, "annotator")
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_test_id("output-text")).to_be_visible()
    before = Grade.objects.filter(project=project, annotator__username="annotator").count()
    output_id = Output.objects.get(
        assignments__pk=page.locator("#grade-form input[name=assignment]").get_attribute("value")
    ).pk

    # The sticky decision bar fits the screen, its buttons on it.
    bar = page.locator(".decision-bar").bounding_box()
    assert bar["x"] >= 0 and bar["x"] + bar["width"] <= PHONE["width"]
    for button in page.locator(".decision-bar .verdict").all():
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.screenshot(path=os.path.join(artifacts_dir, "phone-grade-before.png"))

    press_and_wait_for_next_item(page, "2", "Enter")

    assert Grade.objects.filter(project=project, annotator__username="annotator").count() == before + 1
    grade = Grade.objects.filter(project=project, annotator__username="annotator").latest("id")
    assert (grade.output_id, grade.verdict) == (output_id, "fail")
    expect(page.get_by_text("Saved: fail.")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=os.path.join(artifacts_dir, "phone-grade-after.png"))
    context.close()

