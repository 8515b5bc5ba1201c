"""The criteria page and the team page in Chromium, as an owner finds and uses them: from the
overview's "No criteria yet." to a criterion added, refined with a reason, retired (gone from
the Grade page, history kept) and restored; and the team page after two annotators graded."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from annotate.models import CriterionVersion, Role, Verdict
from annotate.services.grades import grade_submit
from annotate.services.projects import membership_set
from tests.browser.test_grading import log_in
from tests.factories import OutputFactory, SampleFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def outputs(project):
    made = []
    for i in range(6):
        sample = SampleFactory(project=project, external_id=f"q{i}", input_text=f"Question {i}?")
        made.append(OutputFactory(sample=sample, project=project, system="alpha", text=f"Answer {i}."))
    return made


def test_criteria_page_add_refine_retire_restore(page: Page, live_server, project, outputs, artifacts_dir):
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/")
    # The overview no longer dead-ends at "No criteria yet.": it links to the criteria page.
    page.get_by_test_id("add-first-criterion").click()
    expect(page.get_by_role("heading", name="Criteria", exact=True)).to_be_visible()

    page.get_by_label("Name of the new criterion").fill("Grounded")
    page.get_by_label("Definition of the new criterion").fill("Every claim is in the article.")
    page.get_by_label("Reason for the new criterion").fill("customers were misled")
    page.get_by_role("button", name="Add criterion").click()
    card = page.locator("article[data-criterion=grounded]")
    expect(card).to_contain_text("grounded · v1")
    expect(card.locator(".definition")).to_have_text("Every claim is in the article.")

    # Refine: a reason is required, and the new version is what the card shows.
    page.get_by_test_id("refine-grounded").click()
    page.get_by_label("New definition of grounded").fill("Every claim is in the article or the input.")
    page.get_by_label("Reason for refining grounded").fill("the input counts as evidence too")
    page.get_by_role("button", name="Publish v2").click()
    expect(card).to_contain_text("grounded · v2")
    expect(card.locator(".definition")).to_have_text("Every claim is in the article or the input.")
    card.get_by_text("History (2 versions)").click()
    expect(card.locator("tr[data-version]")).to_have_count(2)
    expect(card.locator("tr[data-version='1']")).to_contain_text("customers were misled")
    expect(card.locator("tr[data-version='2']")).to_contain_text("the input counts as evidence too")
    assert list(
        CriterionVersion.objects.filter(criterion__project=project).order_by("number")
        .values_list("number", "reason")
    ) == [(1, "customers were misled"), (2, "the input counts as evidence too")]
    page.screenshot(path=os.path.join(artifacts_dir, "criteria-refined.png"), full_page=True)

    # The Grade page asks for it while it is live ...
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.locator(".criterion[data-criterion=grounded]")).to_be_visible()

    # ... and not once it is retired; the criteria page keeps it, marked, with its history.
    page.goto(f"{live_server.url}/p/{project.slug}/criteria/")
    page.get_by_test_id("retire-grounded").click()
    page.get_by_label("Reason for retiring grounded").fill("merged into faithfulness")
    page.get_by_role("button", name="Retire grounded").click()
    expect(card.get_by_test_id("retired-badge")).to_be_visible()
    card.get_by_text("History (2 versions, 1 retire/restore)").click()
    expect(card).to_contain_text("merged into faithfulness")
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.get_by_role("radiogroup", name="Verdict")).to_be_visible()
    expect(page.locator(".criterion[data-criterion=grounded]")).to_have_count(0)

    page.goto(f"{live_server.url}/p/{project.slug}/criteria/")
    page.get_by_test_id("restore-grounded").click()
    expect(card.get_by_test_id("retired-badge")).to_have_count(0)
    page.goto(f"{live_server.url}/p/{project.slug}/grade/")
    expect(page.locator(".criterion[data-criterion=grounded]")).to_be_visible()


def test_team_page_shows_each_annotator(page: Page, live_server, project, annotator, outputs, artifacts_dir):
    second = UserFactory(username="bea")
    membership_set(project=project, user=second, role=Role.ANNOTATOR)
    now = timezone.now()
    # Both grade the first four outputs and disagree on one of them; arjun alone grades two more.
    for i, output in enumerate(outputs[:4]):
        grade_submit(output=output, annotator=annotator, verdict=Verdict.PASS,
                     started_at=now - timedelta(seconds=20))
        grade_submit(output=output, annotator=second,
                     verdict=Verdict.FAIL if i == 0 else Verdict.PASS,
                     started_at=now - timedelta(seconds=40))
    for output in outputs[4:]:
        grade_submit(output=output, annotator=annotator, verdict=Verdict.FAIL)

    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/team/")
    table = page.get_by_test_id("team-table")
    arjun, bea = table.locator("tr[data-annotator=arjun]"), table.locator("tr[data-annotator=bea]")
    expect(arjun.locator("[data-stat=outputs_graded]")).to_have_text("6")
    expect(bea.locator("[data-stat=outputs_graded]")).to_have_text("4")
    # Four timed grades each; the two untimed ones are not counted.
    expect(arjun.locator("[data-stat=median_seconds]")).to_contain_text("(4 timed)")
    expect(bea.locator("[data-stat=median_seconds]")).to_contain_text("(4 timed)")
    # κ on the four shared outputs is defined for both (arjun passed all four, so κ = 0).
    expect(arjun.locator("[data-stat=kappa]")).to_contain_text("0.00")
    expect(arjun.locator("[data-stat=kappa]")).to_contain_text("1 partner")
    # The chart draws today's ten grades.
    chart = page.get_by_test_id("team-chart")
    expect(chart).to_be_visible()
    page.wait_for_function("() => document.getElementById('team-chart').chart !== undefined")
    total = page.evaluate(
        "() => document.getElementById('team-chart').chart.data.datasets"
        ".reduce((sum, d) => sum + d.data.reduce((a, b) => a + b, 0), 0)"
    )
    assert total == 10
    page.screenshot(path=os.path.join(artifacts_dir, "team-page.png"), full_page=True)

    # An annotator may not see it.
    page.context.clear_cookies()
    log_in(page, live_server, "arjun")
    response = page.goto(f"{live_server.url}/p/{project.slug}/team/")
    assert response.status == 403
