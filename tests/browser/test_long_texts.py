"""A 200 KB output (the default import limit) on the grade page: shown collapsed with
"Show all", nothing lost, and the page stays fast (a 12 MB one once took 14 s)."""

import time

import pytest
from playwright.sync_api import Page, expect

from annotate.services.imports import outputs_import
from tests.browser.test_grading import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINE = "The refund window is thirty days from the date on the receipt. "  # 64 characters
LONG_OUTPUT = "".join(f"{i:05d} {LINE[:57]}\n" for i in range(3200))  # 204,800 characters


@pytest.fixture
def long_output(project):
    result = outputs_import(project=project, records=[{
        "item_id": "ticket-1", "input": "Can I get a refund after 20 days?", "system": "verbose",
        "output": LONG_OUTPUT,
    }])
    assert result.ok and len(LONG_OUTPUT.encode()) == 200 * 1024
    return project


def test_server_renders_the_grade_page_fast(client, annotator, long_output):
    client.force_login(annotator)
    client.get(f"/p/{long_output.slug}/grade/")  # claims the output; templates compiled

    started = time.perf_counter()
    response = client.get(f"/p/{long_output.slug}/grade/")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0
    page = response.content.decode()
    assert "Show all 204800 characters" in page
    # Nothing is lost: the shown part and the rest together are the whole output.
    assert page.count("00000 The refund window") == 1 and page.count("03199 The refund window") == 1


def test_long_output_collapsed_then_shown_in_full(page: Page, live_server, annotator, long_output):
    log_in(page, live_server, "arjun")

    started = time.perf_counter()
    page.goto(f"{live_server.url}/p/{long_output.slug}/grade/", wait_until="load")
    loaded = time.perf_counter() - started

    assert loaded < 3.0  # Chromium on a shared 2-core machine; the server part is < 1 s above
    output = page.get_by_test_id("output-text")
    rest = page.get_by_test_id("output-text-rest")
    expect(output).to_be_visible()
    expect(rest).not_to_have_attribute("open", "")
    expect(output.get_by_text("00000 The refund window")).to_be_visible()
    expect(page.get_by_text("03199 The refund window")).to_be_hidden()
    # Collapsed: the block is no taller than the pane allows (52vh of a 720 px viewport).
    assert output.bounding_box()["height"] <= 0.52 * page.viewport_size["height"] + 1

    page.get_by_text("Show all 204800 characters").click()

    expect(rest).to_have_attribute("open", "")
    expect(page.get_by_text("Show less")).to_be_visible()
    last = page.get_by_text("03199 The refund window")
    last.scroll_into_view_if_needed()
    expect(last).to_be_visible()
    assert page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=output-text] pre')]"
        ".map(p => p.textContent).join('')"
    ) == LONG_OUTPUT
