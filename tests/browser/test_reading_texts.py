"""Reading texts in Chromium: an output in Markdown with a code block, an input that is a chat
transcript, an XSS attempt that must stay text, and the raw and diff views by keyboard."""

import json
import os

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_grading import log_in, press_and_wait_for_next_item
from tests.factories import OutputFactory, SampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRANSCRIPT = json.dumps([
    {"role": "system", "content": "You are the support assistant."},
    {"role": "user", "content": [{"type": "text", "text": "How do I get **all** my refunds?"}]},
])
OUTPUT = (
    "## Refunds by script\n\n"
    "Call the API:\n\n"
    "```python\nimport requests\nrequests.get(\"https://api.example/refunds\")\n```\n\n"
    "<img src=x onerror=\"window.__xss = 1\"> <script>window.__xss = 2</script>\n\n"
    "[help](javascript:window.__xss=3)\n"
)
REFERENCE = "Call the API: the refunds endpoint lists them."


@pytest.fixture
def reading_project(project):
    sample = SampleFactory(project=project, external_id="ticket-md", input_text=TRANSCRIPT,
                           reference=REFERENCE)
    OutputFactory(sample=sample, project=project, system="assistant-v1", text=OUTPUT)
    other = SampleFactory(project=project, external_id="ticket-2", input_text="Plain question?",
                          reference="")
    OutputFactory(sample=other, project=project, system="assistant-v1", text="Plain answer.")
    return project


def test_markdown_chat_code_raw_and_diff(page: Page, live_server, annotator, reading_project, artifacts_dir):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server, "arjun")
    page.goto(f"{live_server.url}/p/{reading_project.slug}/grade/")
    # The queue draws at random: when the plain item comes first, grade it to reach ours.
    plain_first = page.get_by_test_id("input-text").get_attribute("class").find("kind-chat") == -1
    if plain_first:
        press_and_wait_for_next_item(page, "1", "Enter")

    # What a person sees: a heading, a highlighted code block, a conversation.
    output = page.get_by_test_id("output-text")
    expect(output.get_by_role("heading", name="Refunds by script")).to_be_visible()
    code = output.locator("pre.code-block[data-language=python]")
    expect(code).to_be_visible()
    expect(code.locator("span.kn")).to_have_text("import")
    assert code.locator("span.kn").evaluate("e => getComputedStyle(e).color") == "rgb(0, 128, 0)"
    conversation = page.get_by_test_id("input-text")
    expect(conversation.locator(".message .role")).to_have_text(["system", "user"])
    expect(conversation.locator(".role-user strong")).to_have_text("all")

    # The attack stays text: nothing ran, nothing was built, the link is gone.
    expect(output).to_contain_text('<img src=x onerror="window.__xss = 1">')
    expect(output).to_contain_text("<script>window.__xss = 2</script>")
    assert output.locator("img, script").count() == 0
    assert output.locator("a").count() == 0
    assert page.evaluate("() => window.__xss") is None
    page.screenshot(path=os.path.join(artifacts_dir, "reading-rendered.png"), full_page=True)

    # Shift+R: the raw text; again: rendered.
    page.keyboard.press("Shift+R")
    raw = page.get_by_test_id("output-text-raw")
    expect(raw).to_be_visible()
    expect(output).to_be_hidden()
    assert raw.text_content() == OUTPUT
    expect(page.get_by_test_id("toggle-raw")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=os.path.join(artifacts_dir, "reading-raw.png"), full_page=True)
    page.keyboard.press("Shift+R")
    expect(output).to_be_visible()
    expect(raw).to_be_hidden()

    # Shift+D: the output against the reference, word by word.
    page.keyboard.press("Shift+D")
    diff = page.get_by_test_id("output-text-diff")
    expect(diff).to_be_visible()
    expect(output).to_be_hidden()
    expect(diff.locator("pre del")).to_have_text(["the refunds endpoint lists them."])
    expect(diff.locator("pre ins")).to_have_count(2)
    expect(diff.locator("pre ins").first).to_have_text("## Refunds by script")
    page.screenshot(path=os.path.join(artifacts_dir, "reading-diff.png"), full_page=True)

    # Both keys are listed in the shortcuts dialog.
    page.keyboard.press("?")
    expect(page.get_by_role("dialog")).to_contain_text("Show the texts raw, or rendered again")
    expect(page.get_by_role("dialog")).to_contain_text("Show the output's differences from the reference")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()

    # Grading still works, and the next item keeps the chosen view (diff: none without a reference).
    if not plain_first:
        press_and_wait_for_next_item(page, "1", "Enter")
        expect(page.get_by_test_id("output-text")).to_have_text("Plain answer.")
        expect(page.get_by_test_id("output-text")).to_be_visible()
        expect(page.get_by_test_id("output-text-diff")).to_have_count(0)
    assert dialogs == []
    assert page.evaluate("() => window.__xss") is None
