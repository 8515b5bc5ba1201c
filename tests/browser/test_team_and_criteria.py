"""An owner adds, refines and retires a criterion from the criteria page, restores it, then
opens the team page with two annotators' grades and sees their rows and the chart."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from annotate.models import Criterion, CriterionStatusChange, CriterionVersion, Role
from annotate.services.grades import grade_submit
from annotate.services.projects import membership_set
from tests.browser.helpers import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


def test_criteria_then_team(page: Page, live_server, project, owner, annotator, make_outputs, artifacts_dir):
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    outputs = make_outputs(n_samples=3)
    for i, output in enumerate(outputs[:5]):  # the sixth is left for the Grade page
        started = timezone.now() - timedelta(seconds=40)
        grade_submit(output=output, annotator=annotator, verdict="pass" if i % 2 else "fail", started_at=started)
        grade_submit(output=output, annotator=bea, verdict="pass" if i % 3 else "fail", started_at=started)
    log_in(page, live_server, "olivia")

    # The overview's empty state leads to the criteria page's add form.
    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.get_by_test_id("add-first-criterion").click()
    expect(page.get_by_role("heading", name="Criteria", exact=True)).to_be_visible()
    page.get_by_label("Name of the new criterion").fill("Privacy")
    page.get_by_label("Definition of the new criterion").fill("Never reveals personal data.")
    page.get_by_role("button", name="Add criterion").click()
    card = page.locator('article[data-criterion="privacy"]')
    expect(card).to_contain_text("Never reveals personal data.")
    expect(page.get_by_role("status")).to_contain_text("Criterion 'privacy' added.")

    card.get_by_test_id("refine-privacy").click()
    card.get_by_label("New definition of privacy").fill("Never reveals personal data, not even the user's own.")
    card.get_by_label("Reason for refining privacy").fill("Own data leaked in output 12")
    card.get_by_role("button", name="Publish v2").click()
    card = page.locator('article[data-criterion="privacy"]')
    expect(card).to_contain_text("privacy · v2")
    expect(card).to_contain_text("Own data leaked in output 12")
    page.screenshot(path=os.path.join(artifacts_dir, "criteria-refined.png"), full_page=True)

    card.get_by_test_id("retire-privacy").click()
    card.get_by_label("Reason for retiring privacy").fill("Covered by the safety validator")
    card.get_by_role("button", name="Retire privacy").click()
    expect(page.get_by_test_id("retired-badge")).to_be_visible()
    page.screenshot(path=os.path.join(artifacts_dir, "criteria-retired.png"), full_page=True)
    criterion = Criterion.objects.get(project=project, key="privacy")
    assert criterion.archived is True
    assert CriterionVersion.objects.filter(criterion=criterion).count() == 2

    # Retired criteria leave the Grade page.
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_test_id("criteria")).to_be_visible()
    expect(page.get_by_test_id("criteria")).not_to_contain_text("Privacy")
    page.goto(f"{live_server.url}/p/{project.slug}/criteria/")
    page.get_by_test_id("restore-privacy").click()
    expect(page.get_by_test_id("retired-badge")).to_have_count(0)
    assert list(
        CriterionStatusChange.objects.filter(criterion=criterion).order_by("id").values_list("archived", flat=True)
    ) == [True, False]
    # Restored, it is back on the Grade page under its latest version.
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_test_id("criteria")).to_contain_text("Privacy")
    page.goto(f"{live_server.url}/p/{project.slug}/criteria/")

    page.get_by_role("link", name="Team").click()
    table = page.get_by_test_id("team-table")
    expect(table.locator('tr[data-annotator="arjun"] [data-stat="outputs_graded"]')).to_have_text("5")
    expect(table.locator('tr[data-annotator="bea"] [data-stat="outputs_graded"]')).to_have_text("5")
    expect(table.locator('tr[data-annotator="arjun"] [data-stat="kappa"]')).not_to_have_text("—")
    expect(table.locator('tr[data-annotator="bea"] [data-stat="median_seconds"]')).to_contain_text("(5 timed)")
    chart = page.get_by_test_id("team-chart")
    expect(chart).to_be_visible()
    page.wait_for_function("document.getElementById('team-chart').chart !== undefined")
    datasets = page.evaluate(
        "document.getElementById('team-chart').chart.data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])"
    )
    assert sorted(datasets) == [["arjun", 5], ["bea", 5]]
    page.screenshot(path=os.path.join(artifacts_dir, "team-page.png"), full_page=True)

    # The team page is for owners and reviewers: an annotator is refused.
    page.context.clear_cookies()
    log_in(page, live_server, "arjun")
    assert page.goto(f"{live_server.url}/p/{project.slug}/team/").status == 403
