"""The bulk-action controls in Chromium, inside a list's form as the outputs list hosts them:
a reviewer sends three outputs back for re-grading, is told what was refused and why, assigns
two; the annotator is then served the re-grade first."""

import os

import pytest
from playwright.sync_api import Page, expect

from annotate.models import OutputAssignee, OutputExclusion, RegradeRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def host_urls(settings):
    settings.ROOT_URLCONF = "tests.browser.bulk_actions_host"


def log_in(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def test_reviewer_sends_back_and_assigns(page: Page, live_server, host_urls, project, reviewer, annotator,
                                         make_outputs, artifacts_dir):
    outputs = make_outputs(n_samples=3)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/host/{project.slug}/outputs/")
    boxes = page.locator("#output-bulk-form input[name=output]")
    for i in (0, 2, 4):
        boxes.nth(i).check()

    page.get_by_label("Action").select_option("regrade")
    page.get_by_label("Reason").fill("the tone rule changed")
    page.get_by_test_id("bulk-apply").click()

    expect(page.get_by_test_id("bulk-result")).to_have_text("3 outputs sent back for re-grading.")
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

    boxes.nth(0).uncheck()
    page.get_by_label("Action").select_option("assign")
    page.get_by_test_id("bulk-annotators").select_option(str(annotator.pk))
    page.get_by_test_id("bulk-apply").click()
    expect(page.get_by_test_id("bulk-result")).to_have_text("2 outputs assigned (2 assignments).")
    assert sorted(OutputAssignee.objects.values_list("output_id", "annotator_id")) == sorted(
        (outputs[i].pk, annotator.pk) for i in (2, 4)
    )

    # The annotator's queue: the oldest re-grade request first, with the reason.
    page.context.clear_cookies()
    log_in(page, live_server, "arjun")
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_test_id("why")).to_contain_text("sent back for re-grading by a reviewer: the tone rule changed")
    page.screenshot(path=os.path.join(artifacts_dir, "bulk-regrade-served.png"), full_page=True)


def test_annotators_get_no_controls(page: Page, live_server, host_urls, project, annotator, make_outputs):
    make_outputs(n_samples=1)
    log_in(page, live_server, "arjun")

    page.goto(f"{live_server.url}/host/{project.slug}/outputs/")

    expect(page.get_by_role("heading", name="Outputs")).to_be_visible()
    expect(page.get_by_test_id("output-bulk-actions")).to_have_count(0)
