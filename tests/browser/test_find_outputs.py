"""A reviewer searches the outputs, watches the list narrow as they type (htmx), opens an
output and reads its grade history and validator verdicts, then reaches the same kind of page
from the verdict matrix."""

import os
import re

import pytest
from playwright.sync_api import Page, expect

from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit
from annotate.views.outputs import OUTPUTS_PER_PAGE
from tests.browser.helpers import log_in
from tests.factories import OutputFactory, SampleFactory
from validators.models import Validator, VerdictRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWERS = [
    ("Can I get a refund after 20 days?", {
        "alpha": "Yes: within 30 days you can request a **refund** under Billing > Orders.",
        "beta": "Refunds are only possible within 14 days, so no, sorry.",
    }),
    ("What is the largest file I can upload?", {
        "alpha": "Up to 5 GB in the browser and 50 GB with the desktop app.",
        "beta": "There is no limit at all, upload whatever you like.",
    }),
    ("How do I add a colleague to my team?", {
        "alpha": "Ask a team admin to invite them from Admin > Members > Invite.",
        "beta": "Just share your login with them, that is the quickest way.",
    }),
]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture
def support_outputs(project, owner, annotator):
    grounded = criterion_create(
        project=project, key="grounded", name="Grounded", author=owner, reason="initial rubric",
        definition="Every claim is supported by the help centre.",
    )
    outputs = {}
    for i, (question, answers) in enumerate(ANSWERS):
        sample = SampleFactory(project=project, external_id=f"ticket-{i}", input_text=question,
                               reference="See the help centre.")
        for system, text in answers.items():
            outputs[(i, system)] = OutputFactory(sample=sample, project=project, system=system, text=text)
    judge = Validator.objects.create(project=project, name="no shortcuts", kind="code", source="x")
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=judge, output=o, outcome="pass" if system == "alpha" else "fail",
                      detail=f"checked {system}")
        for (_, system), o in outputs.items()
    ])
    refund = outputs[(0, "alpha")]
    grade_submit(output=refund, annotator=annotator, verdict="fail", criteria={"grounded": "fail"},
                 note="first read: the 30 days look invented")
    criterion_version_publish(criterion=grounded, author=owner, reason="sources",
                              definition="Every claim cites a help-centre article.")
    grade_submit(output=refund, annotator=annotator, verdict="pass", criteria={"grounded": "pass"},
                 note="the help centre says 30 days indeed")
    return outputs, judge


def test_search_then_open_an_output(page: Page, live_server, project, reviewer, support_outputs, artifacts_dir):
    outputs, judge = support_outputs
    refund = outputs[(0, "alpha")]
    log_in(page, live_server, "rita")

    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.get_by_role("link", name="Outputs", exact=True).click()
    rows = page.get_by_test_id("output-results").locator("tbody tr")
    expect(rows).to_have_count(6)
    expect(page.get_by_test_id("output-count")).to_contain_text("6 outputs")

    page.get_by_label("Search").fill("refund")
    # Typing narrows the list without a page load; the address keeps the search.
    expect(rows).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/outputs/\?q=refund"))
    expect(page.get_by_test_id("output-count")).to_contain_text("2 outputs match")
    page.screenshot(path=os.path.join(artifacts_dir, "find-outputs-search.png"), full_page=True)

    page.get_by_label("Labelled").select_option("yes")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"labelled=yes"))

    rows.first.get_by_test_id("output-link").click()
    expect(page.get_by_role("heading", name=re.compile(rf"Output {refund.pk}"))).to_be_visible()
    history = page.get_by_test_id("grade-history")
    expect(history).to_contain_text("the help centre says 30 days indeed")
    expect(history).to_contain_text("first read: the 30 days look invented")
    expect(history.locator("tr.superseded")).to_have_count(1)
    expect(history.get_by_test_id("stale-mark")).to_contain_text("stale: now v2")
    verdicts = page.get_by_test_id("validator-verdicts")
    expect(verdicts.locator(f'tr[data-validator="{judge.pk}"]')).to_contain_text("pass")
    expect(verdicts).to_contain_text("no shortcuts")
    # The output is rendered as Markdown, with the raw text one key away.
    expect(page.get_by_test_id("output-text").locator("strong")).to_have_text("refund")
    page.keyboard.press("Shift+R")
    expect(page.get_by_test_id("output-text-raw")).to_contain_text("**refund**")
    page.keyboard.press("Shift+R")
    expect(page.get_by_test_id("output-text")).to_be_visible()
    page.screenshot(path=os.path.join(artifacts_dir, "find-outputs-output-page.png"), full_page=True)

    page.go_back()
    expect(rows).to_have_count(1)


def test_from_the_verdict_matrix_to_the_output_page(page: Page, live_server, project, reviewer, support_outputs, artifacts_dir):
    outputs, judge = support_outputs
    upload = outputs[(1, "beta")]
    log_in(page, live_server, "rita")

    page.goto(f"{live_server.url}/p/{project.slug}/verdicts/")
    page.locator(f'tr[data-output="{upload.pk}"]').get_by_test_id("matrix-output-link").click()

    expect(page.get_by_role("heading", name=re.compile(rf"Output {upload.pk}"))).to_be_visible()
    expect(page.get_by_test_id("output-text")).to_contain_text("There is no limit at all")
    expect(page.get_by_test_id("validator-verdicts")).to_contain_text("checked beta")
    page.screenshot(path=os.path.join(artifacts_dir, "find-outputs-from-matrix.png"), full_page=True)


def test_the_list_by_keyboard(page: Page, live_server, project, reviewer, support_outputs, artifacts_dir):
    outputs, _ = support_outputs
    refund = outputs[(0, "alpha")]
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/p/{project.slug}/outputs/")
    rows = page.get_by_test_id("output-results").locator("tbody tr")
    expect(rows).to_have_count(6)

    # / goes to the search; letters typed there are text, not shortcuts; Escape leaves it.
    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.keyboard.type("refund")
    expect(rows).to_have_count(2)
    page.keyboard.press("Escape")

    # j marks the first row and focuses its link; x checks its box; k stays on the first row.
    page.keyboard.press("j")
    first = rows.nth(0)
    expect(first).to_have_class(re.compile(r"\bis-current\b"))
    expect(first.get_by_test_id("output-link")).to_be_focused()
    page.keyboard.press("x")
    expect(first.locator('input[type="checkbox"]')).to_be_checked()
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-current\b"))
    expect(first).not_to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("x")
    page.keyboard.press("x")
    expect(rows.nth(1).locator('input[type="checkbox"]')).not_to_be_checked()
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(first.get_by_test_id("output-link")).to_be_focused()
    page.screenshot(path=os.path.join(artifacts_dir, "find-outputs-keyboard.png"), full_page=True)

    # Enter follows the focused link to the output page.
    opened = first.get_attribute("data-output")
    assert opened in {str(refund.pk), str(outputs[(0, "beta")].pk)}
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(rf"Output {opened}"))).to_be_visible()


def test_pages_by_keyboard(page: Page, live_server, project, reviewer, support_outputs):
    sample = SampleFactory(project=project, external_id="many")
    for i in range(OUTPUTS_PER_PAGE):
        OutputFactory(sample=sample, project=project, system=f"s{i}", text=f"filler {i}")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/p/{project.slug}/outputs/")
    count = page.get_by_test_id("output-count")
    expect(count).to_contain_text("page 1 of 2")

    page.keyboard.press("n")
    expect(count).to_contain_text("page 2 of 2")
    expect(page).to_have_url(re.compile(r"page=2"))
    # The rows of the new page take j from their first one.
    page.keyboard.press("j")
    expect(page.get_by_test_id("output-results").locator("tbody tr").first).to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("p")
    expect(count).to_contain_text("page 1 of 2")
