"""Bulk actions from the Outputs list in Chromium: a reviewer searches, checks three outputs and
sends them back for re-grading, is told what was refused and why, assigns two, excludes one and
brings it back from the "excluded" filter; the rows' flags follow each action without a page
load, and the annotator is then served the re-grade first."""

import os

import pytest
from playwright.sync_api import Page, expect

from annotate.models import OutputAssignee, OutputExclusion, RegradeRequest
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


def row(page: Page, output):
    return page.locator(f"tr[data-output='{output.pk}']")


def test_reviewer_sends_back_and_assigns(page: Page, live_server, project, reviewer, annotator,
                                         make_outputs, artifacts_dir):
    outputs = make_outputs(n_samples=3)
    alphas = [outputs[i] for i in (0, 2, 4)]
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/p/{project.slug}/outputs/")
    page.locator("#output-search").fill("alpha")
    expect(page.get_by_test_id("output-count")).to_contain_text("3 outputs")
    boxes = page.locator("[data-testid=output-results] input[name=output]")
    for i in range(3):
        boxes.nth(i).check()

    page.get_by_label("Action").select_option("regrade")
    page.get_by_label("Reason").fill("the tone rule changed")
    page.get_by_test_id("bulk-apply").click()

    expect(page.get_by_test_id("bulk-result")).to_have_text("3 outputs sent back for re-grading.")
    for output in alphas:  # the list is read again: the flags show, the search stays
        expect(row(page, output)).to_contain_text("re-grade requested")
    expect(page.get_by_test_id("output-count")).to_contain_text("3 outputs")
    page.screenshot(path=os.path.join(artifacts_dir, "bulk-regrade.png"), full_page=True)
    assert sorted(RegradeRequest.objects.values_list("output_id", flat=True)) == sorted(
        outputs[i].pk for i in (0, 2, 4)
    )

    # Excluding needs a reason: the refusal names it and nothing changes.
    page.get_by_label("Action").select_option("exclude")
    page.get_by_label("Reason").fill("")
    page.get_by_test_id("bulk-apply").click()
    expect(page.get_by_test_id("bulk-result")).to_contain_text("the reason field is required")
    assert OutputExclusion.objects.count() == 0

    boxes.nth(1).check()
    boxes.nth(2).check()
    page.get_by_label("Action").select_option("assign")
    page.get_by_test_id("bulk-annotators").select_option(str(annotator.pk))
    page.get_by_test_id("bulk-apply").click()
    expect(page.get_by_test_id("bulk-result")).to_have_text("2 outputs assigned (2 assignments).")
    assert sorted(OutputAssignee.objects.values_list("output_id", "annotator_id")) == sorted(
        (outputs[i].pk, annotator.pk) for i in (2, 4)
    )
    expect(row(page, alphas[1])).to_contain_text("assigned to arjun")

    # Exclude one with a reason; find it again under "excluded" and bring it back.
    boxes.nth(0).check()
    page.get_by_label("Action").select_option("exclude")
    page.get_by_label("Reason").fill("prompt leaked into the output")
    page.get_by_test_id("bulk-apply").click()
    expect(row(page, alphas[0]).get_by_test_id("excluded-flag")).to_be_visible()
    page.locator("#output-search").fill("")
    page.get_by_label("excluded from sampling").check()
    expect(page.get_by_test_id("output-count")).to_contain_text("1 output")
    page.locator("[data-testid=output-results] input[name=output]").first.check()
    page.get_by_label("Action").select_option("include")
    page.get_by_test_id("bulk-apply").click()
    expect(page.get_by_test_id("no-outputs")).to_be_visible()
    exclusion = OutputExclusion.objects.get()
    assert (exclusion.output_id, exclusion.reason, exclusion.excluded_by_id, exclusion.restored_by_id) == (
        alphas[0].pk, "prompt leaked into the output", reviewer.pk, reviewer.pk
    )

    # The annotator's queue: the oldest re-grade request first, with the reason.
    page.context.clear_cookies()
    log_in(page, live_server, "arjun")
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_test_id("why")).to_contain_text("sent back for re-grading by a reviewer: the tone rule changed")
    page.screenshot(path=os.path.join(artifacts_dir, "bulk-regrade-served.png"), full_page=True)


def test_annotators_get_no_controls(page: Page, live_server, project, annotator, make_outputs):
    make_outputs(n_samples=1)
    log_in(page, live_server, "arjun")

    page.goto(f"{live_server.url}/p/{project.slug}/outputs/")

    expect(page.get_by_role("heading", name="Outputs")).to_be_visible()
    expect(page.get_by_test_id("output-bulk-actions")).to_have_count(0)
