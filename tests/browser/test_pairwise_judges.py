"""An owner of a pairwise project meets issue 13 in Chromium: writes a pairwise LLM judge,
tries it (both orders side by side), saves and runs it against a real loopback LLM server,
and reads which judge the report card keeps and why."""

import os

import pytest
from playwright.sync_api import Page, expect

from annotate.services.imports import outputs_import
from concord_testing.llm_stub import LLMStubServer
from tests.browser.helpers import log_in
from tests.validators.test_pair_runs import CORRECT, PAIR_RECORDS, PAIRWISE_TEMPLATE
from validators.models import PairVerdict, Validator
from validators.services.authoring import validator_create
from validators.services.providers import provider_save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RIGHT_ANSWERS = (*CORRECT, "Lima")


def chain_of_thought_judge(prompt: str) -> str:
    """Reasons, then decides for the output naming the right city, wherever it is shown."""
    right_at = min(prompt.index(city) for city in RIGHT_ANSWERS if city in prompt)
    better = "a" if prompt.index("Output (a):") < right_at < prompt.index("Output (b):") else "b"
    worse = "b" if better == "a" else "a"
    return (f"Output ({worse}) names the wrong city, while Output ({better}) answers the "
            f"question correctly.\n\nTherefore, Output ({better}) is better.")


LONGER_WINS = "def compare(output_a, output_b, input, reference, meta):\n    return len(output_a) - len(output_b)\n"


@pytest.fixture
def judged_project(project, owner, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Human comparisons come with the file; a second pair set makes "longer wins" wrong twice.
    records = PAIR_RECORDS + [
        {"item_id": "p4", "input": "What is the capital of Peru?", "system_a": None,
         "output_a": "Lima.", "system_b": None,
         "output_b": "It is probably Cusco, the old Inca capital city.", "human_preference": "a"},
    ]
    assert outputs_import(project=project, records=records, with_labels=True).ok
    project.min_labels_per_class = 1
    project.save()
    validator_create(project=project, kind="code", target="pair", name="longer_wins", source=LONGER_WINS,
                     created_by=owner)
    return project


def test_owner_writes_a_pairwise_judge_tries_it_runs_it_and_reads_the_card(
    page: Page, live_server, judged_project, owner, artifacts_dir,
):
    project = judged_project
    with LLMStubServer(responder=chain_of_thought_judge) as stub:
        provider_save(project=project, base_url=stub.base_url, model="judge-model", concurrency=4)
        log_in(page, live_server, "olivia")
        page.goto(f"{live_server.url}/p/{project.slug}/validators/")

        form = page.locator("#validator-form")
        form.get_by_label("Kind").select_option("llm")
        form.get_by_label("Target").select_option("pair")
        form.get_by_label("Name").fill("cot judge")
        form.get_by_label("Source").fill(PAIRWISE_TEMPLATE)
        form.get_by_label("Provider").select_option(label="default (judge-model)")
        form.get_by_label("When the two orders disagree").select_option("error")
        page.get_by_role("button", name="Try it (5 outputs, or 3 pairs)").click()

        # Both orders side by side, each with its answer and the winner read from it.
        first = page.locator("table.try-pair").first
        expect(first.get_by_role("columnheader", name="Order 1 (a first)")).to_be_visible()
        expect(first.get_by_role("columnheader", name="Order 2 (b first)")).to_be_visible()
        expect(first).to_contain_text("Therefore, Output (")
        expect(page.locator("table.try-pair")).to_have_count(3)
        page.screenshot(path=os.path.join(artifacts_dir, "pairwise-judge-try.png"), full_page=True)

        form.get_by_role("button", name="Save validator").click()
        judge = Validator.objects.get(name="cot judge")
        assert (judge.kind, judge.target, judge.inconsistent_is_tie) == ("llm", "pair", False)

        page.goto(f"{live_server.url}/p/{project.slug}/validators/")
        page.get_by_role("button", name="Run selected (or all)").click()
        expect(page.get_by_text("done").first).to_be_visible(timeout=30000)

    verdicts = PairVerdict.objects.filter(validator=judge)
    assert verdicts.count() == 4 and not verdicts.filter(winner="error").exists()

    page.goto(f"{live_server.url}/p/{project.slug}/report-card/")
    card = page.locator("[data-pairwise]")
    expect(card.locator(f"[data-pairwise-chosen='{judge.pk}']")).to_have_text("cot judge")
    chosen_row = card.locator(f"tr[data-judge='{judge.pk}']")
    expect(chosen_row.locator("td").nth(1)).to_have_text("4")
    expect(chosen_row.locator("td").nth(2)).to_contain_text("1.00")
    loser = Validator.objects.get(name="longer_wins")
    expect(card.locator(f"tr[data-judge='{loser.pk}'] [data-why]")).to_contain_text("is below cot judge's 1.00")
    page.screenshot(path=os.path.join(artifacts_dir, "pairwise-judge-card.png"), full_page=True)
