"""A criteria-drift review meeting driven end to end in Chromium, as a reviewer runs it on a
shared screen: start, step through the agenda by keyboard, adjudicate, publish a criterion
version, send an output back, end, download the summary, find the version on the timeline."""

import os

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotate.evidence import ChosenVerdicts
from annotate.models import Adjudication, CriterionVersion, RegradeRequest, ReviewMeeting, Role
from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit
from annotate.services.projects import membership_set
from tests.browser.helpers import log_in
from tests.factories import OutputFactory, SampleFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWERS = [
    ("How do I reset my password?",
     "Open Settings > Security and choose Reset password. We email you a link valid for 30 minutes.",
     "You can't reset it yourself; please contact the support team and wait for a reply."),
    ("What is the largest file I can upload?",
     "Up to 5 GB in the browser and 50 GB with the desktop app.",
     "There is no limit at all, upload whatever you like."),
    ("Can I get a refund after 20 days?",
     "Yes: within 30 days you can request a refund under Billing > Orders.",
     "Refunds are only possible within 14 days, so no, sorry."),
    ("How do I add a colleague to my team?",
     "Ask a team admin to invite them from Admin > Members > Invite. Each member uses one seat.",
     "Just share your login with them (it's jane.doe@example.com), that is the quickest way."),
]
CHOSEN: dict = {}


def stub_chosen(project):
    return ChosenVerdicts(output_ids=CHOSEN["output_ids"], by_criterion=CHOSEN["by_criterion"])


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}, "accept_downloads": True}


@pytest.fixture
def meeting_project(project, owner, annotator, settings):
    """Two criteria (one refined since), eight answers graded by three annotators with
    disagreements, a note asking for a criterion nobody has, and a chosen validator."""
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    grounded = criterion_create(
        project=project, key="grounded", name="Grounded", author=owner, reason="initial rubric",
        definition="Every factual claim is supported by the help-centre article.",
    )
    criterion_create(
        project=project, key="helpful", name="Helpful", author=owner, reason="initial rubric",
        definition="Tells the customer what to do about the question they asked.",
    )
    criterion_version_publish(
        criterion=grounded, author=annotator, reason="numbers must match the article exactly",
        definition="Every factual claim, and every number, is supported by the help-centre article.",
    )
    outputs = []
    for i, (question, good, bad) in enumerate(ANSWERS):
        sample = SampleFactory(project=project, external_id=f"ticket-{i + 1}",
                               input_text=f"Customer asks: {question}", reference=good)
        outputs.append(OutputFactory(sample=sample, project=project, system="assistant-v1", text=good))
        outputs.append(OutputFactory(sample=sample, project=project, system="assistant-v2", text=bad))
    votes = {  # output index -> (arjun, olivia, bea)
        0: ("pass", "pass", "pass"), 1: ("fail", "pass", "fail"), 2: ("pass", "pass", "fail"),
        3: ("fail", "fail", "fail"), 4: ("pass", "fail", "pass"), 5: ("fail", "fail", "pass"),
        6: ("pass", "pass", "pass"), 7: ("fail", "pass", "fail"),
    }
    for index, verdicts in votes.items():
        for user, verdict in zip((annotator, owner, bea), verdicts, strict=True):
            note = "Shares a customer's email: we need a privacy criterion" if (index, user) == (7, bea) else ""
            grade_submit(output=outputs[index], annotator=user, verdict=verdict, note=note)
    grade_submit(output=outputs[6], annotator=annotator, verdict="pass", note="privacy?")
    settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = "tests.browser.test_review_meeting.stub_chosen"
    CHOSEN.update(
        output_ids=np.array([o.pk for o in outputs], dtype=np.int64),
        by_criterion={None: (4, "no_invented_policy", np.array([1, 0, 1, 0, 1, 1, 0, 0], dtype=np.int8))},
    )
    yield outputs
    CHOSEN.clear()


def test_review_meeting_end_to_end(page: Page, live_server, project, meeting_project, reviewer, artifacts_dir, tmp_path):
    outputs = meeting_project
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/p/{project.slug}/review/")

    # The review page: agreement, chart, agenda preview, timeline.
    expect(page.get_by_role("heading", name="Criteria review")).to_be_visible()
    table = page.get_by_test_id("agreement-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tr[data-criterion='']")).to_contain_text("no_invented_policy")
    expect(page.locator("#agreement-chart")).to_be_visible()
    page.wait_for_function("() => window.Chart && Chart.getChart('agreement-chart')")
    expect(page.get_by_test_id("agenda-preview")).to_contain_text("Notes mention “privacy”")
    expect(page.locator("[data-version='grounded-v2']")).to_contain_text("numbers must match the article exactly")
    page.screenshot(path=os.path.join(artifacts_dir, "review-page.png"), full_page=True)

    # Start a meeting; its agenda is frozen.
    page.get_by_label("Meeting title").fill("Weekly review")
    page.get_by_role("button", name="Start a meeting").click()
    meeting = ReviewMeeting.objects.get()
    total = meeting.agenda_items.count()
    expect(page.get_by_test_id("step-count")).to_have_text(f"1 / {total}")
    expect(page.get_by_test_id("agenda-item")).to_contain_text("“Grounded” (grounded) changed: v1 → v2")
    page.screenshot(path=os.path.join(artifacts_dir, "review-meeting-definition.png"))

    # Step through by keyboard: j next, k previous.
    page.keyboard.press("j")
    expect(page.get_by_test_id("step-count")).to_have_text(f"2 / {total}")
    page.keyboard.press("j")
    expect(page.get_by_test_id("step-count")).to_have_text(f"3 / {total}")
    page.keyboard.press("k")
    expect(page.get_by_test_id("step-count")).to_have_text(f"2 / {total}")
    assert page.url.endswith(f"/review/meetings/{meeting.pk}/items/2/")
    item = meeting.agenda_items.get(position=2)
    assert item.kind == "disagreement"
    item_output = item.output
    expect(page.get_by_test_id("agenda-item")).to_contain_text(item_output.text)

    # Adjudicate the output on screen by keyboard: a reason, f for fail, Enter submits.
    form = page.get_by_test_id("adjudicate-form")
    form.get_by_label("Reason for the adjudication").fill("invents a policy")
    page.keyboard.press("Escape")
    page.keyboard.press("f")
    expect(form.locator("input[name=verdict][value=fail]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("notice")).to_contain_text(
        f"Adjudicated {item_output.sample.external_id} · {item_output.system} on the holistic verdict: fail."
    )
    expect(page.get_by_test_id("adjudicated").first).to_have_text("fail")
    adjudication = Adjudication.objects.get()
    assert (adjudication.output, adjudication.verdict, adjudication.meeting, adjudication.reviewer) == (
        item_output, "fail", meeting, reviewer)

    # Publish a new version of "grounded" with a reason: v opens the panel and puts the
    # cursor in its first criterion's form, on screen.
    page.keyboard.press("v")
    focused = page.locator(":focus")
    expect(focused).to_be_in_viewport()
    assert focused.evaluate("el => !!el.closest('details.action-panel[open] details.refine-one[open]')")
    refine = page.locator("details.refine-one[data-criterion=grounded]")
    if not refine.evaluate("d => d.open"):
        refine.locator("summary").click()
    refine.get_by_label("Definition of grounded").fill(
        "Every factual claim, number and policy is supported by the help-centre article; "
        "a policy the article does not state fails."
    )
    refine.get_by_label("Reason for changing grounded").fill("invented policies count as ungrounded")
    refine.get_by_role("button", name="Publish v3").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "Published grounded v3; earlier grades of it are now stale."
    )

    # Send the next disagreement back for re-grading.
    page.keyboard.press("j")
    expect(page.get_by_test_id("step-count")).to_have_text(f"3 / {total}")
    regrade_output = meeting.agenda_items.get(position=3).output
    page.keyboard.press("r")
    send_back = page.get_by_test_id("send-back-form")
    send_back.get_by_label("Reason for re-grading").fill("grade again under grounded v3")
    send_back.get_by_role("button", name="Send back").click()
    expect(page.get_by_test_id("notice")).to_contain_text("back for re-grading")
    expect(page.locator(".agenda-list li.current .outcome")).to_have_text("✓ sent back")
    page.screenshot(path=os.path.join(artifacts_dir, "review-meeting.png"), full_page=False)

    page.locator(".agenda-list li").last.locator("a").click()
    expect(page.get_by_test_id("agenda-item")).to_contain_text("“privacy”")
    page.screenshot(path=os.path.join(artifacts_dir, "review-meeting-proposal.png"))

    # End the meeting.
    page.get_by_label("Meeting notes").fill("Next time: decide on a privacy criterion.")
    page.get_by_role("button", name="End meeting").click()
    expect(page.get_by_role("heading", name="Criteria review")).to_be_visible()
    meeting.refresh_from_db()
    assert meeting.ended_at is not None

    # Download the Markdown summary and read it.
    with page.expect_download() as download_info:
        page.locator(f"#meeting-{meeting.pk}").get_by_role("link", name="Summary (.md)").click()
    download = download_info.value
    assert download.suggested_filename == f"support-bot-meeting-{meeting.pk}.md"
    path = tmp_path / "summary.md"
    download.save_as(path)
    summary = path.read_text()
    assert summary.startswith("# Weekly review\n")
    assert "- Attendees: rita\n" in summary
    assert ("- **grounded v3** “Grounded”: Every factual claim, number and policy is supported by the "
            "help-centre article; a policy the article does not state fails.  \n"
            "  Reason: invented policies count as ungrounded (by rita)") in summary
    assert (f"- {regrade_output.sample.external_id} · {regrade_output.system} (output {regrade_output.pk}): "
            "grade again under grounded v3") in summary
    assert (f"| {item_output.sample.external_id} · {item_output.system} | holistic | fail | "
            "invents a policy | rita |") in summary
    assert summary.endswith("## Notes\n\nNext time: decide on a privacy criterion.\n")

    # The new version is on the timeline, linked to the meeting's summary.
    entry = page.locator("[data-version='grounded-v3']")
    expect(entry).to_contain_text("invented policies count as ungrounded")
    link = entry.get_by_role("link", name="Weekly review (summary)")
    expect(link).to_have_attribute("href", f"/p/{project.slug}/review/meetings/{meeting.pk}/summary.md")
    version = CriterionVersion.objects.get(criterion__key="grounded", number=3)
    assert (version.decided_in, version.author) == (meeting, reviewer)
    request = RegradeRequest.objects.get()
    assert (request.output, request.decision.meeting, request.reason) == (
        regrade_output, meeting, "grade again under grounded v3")
    assert regrade_output.pk in {o.pk for o in outputs}
    entry.scroll_into_view_if_needed()
    page.screenshot(path=os.path.join(artifacts_dir, "review-timeline.png"), full_page=True)


def test_owner_exports_gold_labels_and_downloads_them(page: Page, live_server, project, meeting_project, settings, artifacts_dir, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/exports/")

    page.get_by_label("JSON Lines").check()
    page.get_by_label("Only outputs with at least one vote").check()
    page.get_by_role("button", name="Export gold labels").click()

    row = page.locator("#export-list tbody tr").first
    expect(row).to_contain_text("Done")
    expect(row).to_contain_text("8 lines")
    expect(row).to_contain_text("labelled_only")
    page.screenshot(path=os.path.join(artifacts_dir, "exports.png"))
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    path = tmp_path / "gold.jsonl"
    download_info.value.save_as(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 8
    assert '"item_id": "ticket-1"' in lines[0]
