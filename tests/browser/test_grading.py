"""The grading and pairwise pages driven in Chromium, by keyboard, as an annotator works."""

import os

import pytest
from playwright.sync_api import Page, expect

from annotate.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Criterion,
    Grade,
    GradeCriterion,
)
from annotate.services.criteria import criterion_create
from tests.browser.helpers import log_in
from tests.factories import OutputFactory, SampleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWERS = [
    ("How do I reset my password?",
     "Open Settings > Security and choose Reset password.\nWe email you a link that works for 30 minutes.",
     "Happy to help!\n\n1. Go to Settings > Security.\n2. Click \"Reset password\".\n3. Follow the link in the email (valid for 30 minutes).",
     "You can't reset it yourself; please contact the support team and wait for a reply."),
    ("What is the largest file I can upload?",
     "Up to 5 GB in the browser and 50 GB with the desktop app.",
     "Up to 5 GB in the browser. The desktop app raises that to 50 GB.",
     "There is no limit at all, upload whatever you like."),
    ("Can I get a refund after 20 days?",
     "Refunds are possible within 30 days of purchase from Billing > Orders.",
     "Yes: within 30 days you can request a refund under Billing > Orders.",
     "Refunds are only possible within 14 days, so no, sorry."),
    ("How do I add a colleague to my team?",
     "A team admin invites members from Admin > Members > Invite; each member takes one seat.",
     "Ask a team admin to invite them from Admin > Members > Invite. Each member uses one seat.",
     "Just share your login with them, that is the quickest way."),
]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture
def support_project(project, owner):
    project.guidelines = (
        "Grade what a customer would experience.\nFail an answer that invents a policy or a number."
    )
    project.save()
    criterion_create(
        project=project, key="grounded", name="Grounded", author=owner, reason="initial rubric",
        definition="Every factual claim is supported by the help-centre article.",
    )
    criterion_create(
        project=project, key="helpful", name="Helpful", author=owner, reason="initial rubric",
        definition="Tells the customer what to do about the question they asked.",
    )
    for i, (question, reference, good, bad) in enumerate(ANSWERS):
        sample = SampleFactory(
            project=project, external_id=f"ticket-{i + 1}", input_text=f"Customer asks: {question}",
            reference=reference, context={"article": reference, "plan": "Basic"},
        )
        OutputFactory(sample=sample, project=project, system="assistant-v1", text=good)
        OutputFactory(sample=sample, project=project, system="assistant-v2", text=bad)
    return project


def assignment_id(page: Page) -> str:
    return page.locator("#grade-form input[name=assignment], #pair-form input[name=assignment]").get_attribute("value")


def press_and_wait_for_next_item(page: Page, *keys: str) -> None:
    before = assignment_id(page)
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_function(
        "before => { const el = document.querySelector('input[name=assignment]');"
        " return el && el.value !== before; }",
        arg=before,
    )


def htmx_complaints(page: Page) -> list[str]:
    """Console errors htmx logs, e.g. a double-submit guard whose selector matches nothing."""
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text) if message.type in ("error", "warning") else None)
    return complaints


def test_grade_by_keyboard_undo_and_criteria_drift(page: Page, live_server, support_project, annotator, owner, artifacts_dir):
    complaints = htmx_complaints(page)
    log_in(page, live_server, "arjun")
    page.goto(f"{live_server.url}/p/{support_project.slug}/grade/")
    expect(page.get_by_test_id("why")).to_have_text("chosen at random from 8 items")
    expect(page.get_by_test_id("selector")).to_have_text("random")

    # Three outputs by keyboard only: pass; fail with "grounded" failed (q twice); unsure.
    page.evaluate("window.sameDocument = 42")
    # The raw view holds the text as stored (the rendered one turns "1." into a list).
    shown = [page.get_by_test_id("output-text-raw").text_content()]
    press_and_wait_for_next_item(page, "1", "Enter")
    shown.append(page.get_by_test_id("output-text-raw").text_content())
    press_and_wait_for_next_item(page, "2", "q", "q", "Enter")
    shown.append(page.get_by_test_id("output-text-raw").text_content())
    press_and_wait_for_next_item(page, "3", "Enter")
    expect(page.get_by_test_id("my-progress")).to_have_text("3/4")
    assert page.evaluate("window.sameDocument") == 42  # swapped in place, never reloaded
    assert complaints == []

    grades = list(Grade.objects.filter(annotator=annotator).order_by("id"))
    assert [(g.verdict, g.output.text) for g in grades] == list(zip(["pass", "fail", "unsure"], shown, strict=True))
    assert list(GradeCriterion.objects.values_list("grade_id", "criterion__key", "verdict")) == [
        (grades[1].pk, "grounded", "fail")
    ]
    assert all(g.started_at is not None and g.started_at <= g.submitted_at for g in grades)
    assert len({g.output_id for g in grades}) == 3

    # Typing in the note never triggers a shortcut.
    page.keyboard.press("n")
    page.keyboard.type("1 2 u s q")
    expect(page.locator("input[name=note]")).to_have_value("1 2 u s q")
    expect(page.locator("input[name=verdict]:checked")).to_have_count(0)
    page.keyboard.press("Escape")
    assert Grade.objects.filter(annotator=annotator).count() == 3

    # ? lists every shortcut.
    page.keyboard.press("?")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("dialog")).to_contain_text("Undo your last submission")
    expect(page.get_by_role("dialog")).to_contain_text("Grounded: cycle — → pass → fail → unsure")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()

    # Undo the third grade: it is withdrawn and the output comes back, its answer preselected.
    press_and_wait_for_next_item(page, "u")
    expect(page.get_by_test_id("notice")).to_contain_text("Undone: your unsure grade is withdrawn.")
    expect(page.get_by_test_id("output-text-raw")).to_have_text(shown[2])
    expect(page.locator("input[name=verdict][value=unsure]")).to_be_checked()
    latest = Grade.objects.filter(annotator=annotator).order_by("-id").first()
    assert (latest.retracted, latest.supersedes_id) == (True, grades[2].pk)

    # Add a criterion inline; grading goes on, and the next item has it too.
    page.keyboard.press("+")
    page.get_by_label("New criterion name").fill("Privacy")
    page.get_by_label("New criterion definition").fill("Shows no personal data such as emails or ticket numbers.")
    page.get_by_label("Reason for the new criterion").fill("an answer leaked an agent's email")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("notice")).to_have_text("Criterion 'privacy' added.")
    expect(page.locator("[data-criterion=privacy]")).to_contain_text("Privacy")
    assert Criterion.objects.get(key="privacy").versions.get().author == annotator
    press_and_wait_for_next_item(page, "3", "Enter")
    privacy_row = page.locator("[data-criterion=privacy]")
    expect(privacy_row).to_contain_text("Shows no personal data such as emails or ticket numbers.")
    expect(privacy_row.locator("kbd")).to_have_text("e")
    page.keyboard.press("1")
    page.keyboard.press("w")
    expect(page.locator("input[name=c_helpful][value=pass]")).to_be_checked()
    page.wait_for_timeout(500)  # let the key-press highlight fade before the picture
    page.screenshot(path=os.path.join(artifacts_dir, "grading.png"))

    # Refine "grounded": the fail given under v1 is kept and shown as stale in the history.
    grounded = page.locator("[data-criterion=grounded]")
    grounded.get_by_text("Refine").click()
    grounded.get_by_label("New definition of Grounded").fill(
        "Every factual claim, number and menu path appears in the help-centre article."
    )
    grounded.get_by_label("Reason for refining Grounded").fill("menu paths were being guessed")
    grounded.get_by_label("Reason for refining Grounded").press("Enter")
    expect(page.get_by_test_id("notice")).to_contain_text("'Grounded' is now v2")
    expect(grounded).to_contain_text("v2")
    page.get_by_role("link", name="History").click()
    expect(page.get_by_test_id("stale-mark")).to_have_text("stale: graded under v1, now v2")
    assert GradeCriterion.objects.get().criterion_version.number == 1

    # Reopening that grade shows the stale mark on the item itself.
    page.locator(f"tr[data-output='{grades[1].output_id}']").get_by_role("button", name="Reopen").click()
    expect(page.get_by_test_id("output-text-raw")).to_have_text(shown[1])
    expect(page.get_by_test_id("stale-mark")).to_have_text("stale: Grounded graded under v1, now v2")
    expect(page.get_by_test_id("why")).to_have_text("reopened from your history")


def test_skip_and_a_criterion_added_by_someone_else(page: Page, live_server, support_project, owner, annotator):
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{support_project.slug}/grade/")
    expect(page.locator("[data-criterion]")).to_have_count(2)
    skipped = assignment_id(page)
    press_and_wait_for_next_item(page, "s")
    expect(page.get_by_test_id("notice")).to_have_text("Skipped.")
    assert Assignment.objects.get(pk=skipped).status == AssignmentStatus.SKIPPED
    assert Grade.objects.count() == 0

    criterion_create(
        project=support_project, name="Privacy", definition="No personal data.", reason="leak",
        author=annotator,
    )
    press_and_wait_for_next_item(page, "1", "Enter")

    expect(page.locator("[data-criterion]")).to_have_count(3)
    expect(page.locator("[data-criterion=privacy]")).to_contain_text("No personal data.")


def test_pairwise_choice_by_keyboard(page: Page, live_server, support_project, annotator, artifacts_dir):
    complaints = htmx_complaints(page)
    log_in(page, live_server, "arjun")
    page.goto(f"{live_server.url}/p/{support_project.slug}/pairwise/")
    # The raw views hold the texts as stored (the rendered ones turn "1." into a list).
    left = page.get_by_test_id("output-a-raw").text_content()
    right = page.get_by_test_id("output-b-raw").text_content()
    expect(page.locator("body")).not_to_contain_text("assistant-v1")
    expect(page.locator("body")).not_to_contain_text("assistant-v2")
    page.keyboard.press("b")
    page.keyboard.press("n")
    page.keyboard.type("A invents a policy")
    page.keyboard.press("Escape")
    page.screenshot(path=os.path.join(artifacts_dir, "pairwise.png"))

    press_and_wait_for_next_item(page, "Enter")

    comparison = Comparison.objects.get()
    assert (comparison.output_a.text, comparison.output_b.text) == (left, right)
    assert (comparison.choice, comparison.note, comparison.annotator) == ("b", "A invents a policy", annotator)
    assert comparison.swapped == (comparison.output_a_id > comparison.output_b_id)
    expect(page.get_by_test_id("my-progress")).to_have_text("1")

    press_and_wait_for_next_item(page, "t", "Enter")
    assert list(Comparison.objects.order_by("id").values_list("choice", flat=True)) == ["b", "tie"]
    assert complaints == []


def test_non_member_cannot_open_the_grading_pages(page: Page, live_server, support_project, outsider):
    log_in(page, live_server, "mallory")

    grading = page.goto(f"{live_server.url}/p/{support_project.slug}/grade/")
    pairwise = page.goto(f"{live_server.url}/p/{support_project.slug}/pairwise/")

    assert (grading.status, pairwise.status) == (404, 404)
    expect(page.locator("body")).not_to_contain_text("Customer asks")
    assert Grade.objects.count() == 0
