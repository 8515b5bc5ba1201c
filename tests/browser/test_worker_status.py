"""What an owner sees in Chromium when a run or an export waits for a worker that is not there,
and the history of a retried error verdict."""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from annotate.models import Export
from tests.browser.helpers import log_in
from validators.models import Run, VerdictHistory, VerdictRecord
from validators.services.authoring import validator_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_EMAIL = "def check(output, input, reference, meta):\n    return '@' not in output\n"


def test_run_and_export_pages_say_no_worker_is_running(page: Page, live_server, project, owner, make_outputs, broker_without_worker):
    make_outputs(n_samples=2)
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    run = Run.objects.create(project=project, total=4, heartbeat_at=timezone.now())
    run.validators.set([check])
    Export.objects.create(project=project, format="csv", requested_by=owner, heartbeat_at=timezone.now())
    log_in(page, live_server, "olivia")

    page.goto(f"{live_server.url}/p/{project.slug}/runs/{run.pk}/")
    warning = page.locator("#run-progress #worker-warning")
    expect(warning).to_have_text("No worker is running: start one with celery -A config worker.")
    expect(warning.locator("code")).to_have_text("celery -A config worker")
    expect(page.locator("#run-progress")).to_contain_text("Queued · 0 of 4 verdicts (0%)")
    # The progress partial is polled: the warning survives the swaps.
    page.wait_for_timeout(1500)
    expect(page.locator("#run-progress #worker-warning")).to_have_count(1)

    page.goto(f"{live_server.url}/p/{project.slug}/exports/")
    expect(page.locator("#export-list #worker-warning")).to_have_text(
        "No worker is running: start one with celery -A config worker."
    )
    expect(page.locator("#export-list .status-queued")).to_have_text("Queued")


def test_finished_run_shows_no_warning_and_validator_page_shows_retried_errors(page: Page, live_server, project, owner, make_outputs, broker_without_worker):
    outputs = make_outputs(n_samples=1, systems=("alpha",))
    check = validator_create(project=project, kind="code", name="no @", source=NO_EMAIL)
    earlier = Run.objects.create(project=project, total=1, status="done")
    later = Run.objects.create(project=project, total=1, status="done", done=1)
    for run in (earlier, later):
        run.validators.set([check])
    VerdictRecord.objects.create(validator=check, output=outputs[0], outcome="pass", run=later)
    VerdictHistory.objects.create(
        validator=check, output=outputs[0], outcome="error", detail="Provider answered 502 Bad Gateway", latency_ms=812.0,
        run=earlier, stored_at=timezone.now(), replaced_by=later,
    )
    log_in(page, live_server, "olivia")

    page.goto(f"{live_server.url}/p/{project.slug}/runs/{later.pk}/")
    expect(page.locator("#run-progress")).to_contain_text("Done · 1 of 1 verdicts (100%)")
    expect(page.locator("#worker-warning")).to_have_count(0)
    expect(page.locator("#retried")).to_have_text(
        "1 earlier error verdict computed again; the old answers are kept in each verdict's history."
    )

    page.goto(f"{live_server.url}/p/{project.slug}/validators/{check.pk}/")
    row = page.locator("#verdict-history tbody tr")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("q0 · alpha")
    expect(cells.nth(1)).to_have_text("error")
    expect(cells.nth(2)).to_have_text("Provider answered 502 Bad Gateway")
    expect(cells.nth(3)).to_have_text("812 ms")
    expect(cells.nth(4)).to_contain_text(f"run #{earlier.pk}")
    expect(cells.nth(5)).to_have_text("pass")
    expect(cells.nth(6)).to_contain_text(f"run #{later.pk}")
