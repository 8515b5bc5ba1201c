"""Overlap-first with two annotators in two browsers: the second is served what the first
graded, so the team page has agreement to show."""

import os

import pytest
from playwright.sync_api import Browser, Page, expect

from annotate.models import Grade, Role
from annotate.services.projects import membership_set
from tests.browser.helpers import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORT = {"width": 1400, "height": 1000}


def assignment_id(page: Page) -> str:
    return page.locator("#grade-form input[name=assignment]").get_attribute("value")


def grade_by_keyboard(page: Page, verdict_key: str) -> str:
    """Grade the item on screen with one key and Enter; the text that was graded."""
    text = page.get_by_test_id("output-text-raw").text_content()
    before = assignment_id(page)
    page.keyboard.press(verdict_key)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "before => { const el = document.querySelector('input[name=assignment]');"
        " return !el || el.value !== before; }",
        arg=before,
    )
    return text


def test_second_annotator_is_served_the_first_ones_outputs(
    browser: Browser, live_server, project, owner, annotator, make_outputs, artifacts_dir,
):
    project.overlap, project.overlap_first = 2, True
    project.save()
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    make_outputs(n_samples=10)  # 20 outputs: a random draw would rarely repeat arjun's three
    verdict_keys = ["1", "2", "1"]  # pass, fail, pass: both classes, so kappa is defined

    arjun_context = browser.new_context(viewport=VIEWPORT)
    bea_context = browser.new_context(viewport=VIEWPORT)
    arjun, bea_page = arjun_context.new_page(), bea_context.new_page()
    try:
        log_in(arjun, live_server, "arjun")
        arjun.goto(f"{live_server.url}/p/{project.slug}/grade/")
        graded_by_arjun = [grade_by_keyboard(arjun, key) for key in verdict_keys]
        arjun.screenshot(path=os.path.join(artifacts_dir, "queue-overlap-first-annotator.png"))

        log_in(bea_page, live_server, "bea")
        bea_page.goto(f"{live_server.url}/p/{project.slug}/grade/")
        expect(bea_page.get_by_test_id("why")).to_contain_text("completing overlap")
        bea_page.screenshot(path=os.path.join(artifacts_dir, "queue-overlap-first-second-annotator.png"))
        served_to_bea = []
        for _ in verdict_keys:
            text = bea_page.get_by_test_id("output-text-raw").text_content()
            served_to_bea.append(text)
            # Bea agrees with arjun, so the team page's kappa is 1; anything else is unsure.
            same_verdict = verdict_keys[graded_by_arjun.index(text)] if text in graded_by_arjun else "3"
            grade_by_keyboard(bea_page, same_verdict)

        assert sorted(served_to_bea) == sorted(graded_by_arjun)
        doubly = {
            output_id for output_id in Grade.objects.filter(annotator=annotator).values_list("output_id", flat=True)
        } & set(Grade.objects.filter(annotator=bea).values_list("output_id", flat=True))
        assert len(doubly) == 3
    finally:
        arjun_context.close()
        bea_context.close()

    owner_context = browser.new_context(viewport=VIEWPORT)
    page = owner_context.new_page()
    try:
        log_in(page, live_server, "olivia")
        page.goto(f"{live_server.url}/p/{project.slug}/team/")
        for name in ("arjun", "bea"):
            row = page.locator(f'tr[data-annotator="{name}"]')
            expect(row.locator('[data-stat="outputs_graded"]')).to_have_text("3")
            expect(row.locator('[data-stat="kappa"]')).to_have_text("1.00 (1 partner)")
        page.screenshot(path=os.path.join(artifacts_dir, "queue-overlap-first-team.png"), full_page=True)
    finally:
        owner_context.close()
