"""An owner meets issue 12's honest labels and the validators import in Chromium."""

import json
import os

import pytest
from playwright.sync_api import Page, expect

from annotate.models import Criterion
from annotate.services.criteria import criterion_create
from annotate.services.grades import grade_submit
from tests.browser.helpers import log_in
from validators.models import Validator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECK = "def check(output, input, reference, meta):\n    return '@' not in output\n"


def test_a_typo_in_a_validators_file_is_refused_until_the_owner_asks_to_create_it(
    page: Page, live_server, project, owner, tmp_path, artifacts_dir,
):
    criterion_create(project=project, key="privacy", author=owner)
    path = tmp_path / "validators.json"
    path.write_text(json.dumps({"validators": [
        {"name": "no email", "criterion": "privacy", "kind": "code", "source": CHECK},
        {"name": "no email again", "criterion": "privcy", "kind": "code", "source": CHECK + "\n"},
    ]}))
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/validators/")

    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page.get_by_text(
        "Nothing was imported: the file names criteria this project lacks: privcy."
    )).to_be_visible()
    page.screenshot(path=os.path.join(artifacts_dir, "validators-import-refused.png"))
    assert Validator.objects.count() == 0
    assert list(Criterion.objects.values_list("key", flat=True)) == ["privacy"]

    page.get_by_label("File").set_input_files(str(path))
    page.get_by_label("Create missing criteria").check()
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page.get_by_text("Imported 2 validator(s).")).to_be_visible()
    assert sorted(Criterion.objects.values_list("key", flat=True)) == ["privacy", "privcy"]
    assert Validator.objects.count() == 2


def test_the_owner_turns_on_inferred_labels_and_the_card_counts_them_apart(
    page: Page, live_server, project, owner, annotator, make_outputs, artifacts_dir,
):
    outputs = make_outputs(n_samples=5, systems=("alpha", "beta"))
    criterion_create(project=project, key="tone", name="Tone", author=owner)
    for index, output in enumerate(outputs):
        # Seven holistic passes, three fails; one explicit tone verdict (a fail) on output 0.
        grade_submit(
            output=output, annotator=annotator, verdict="pass" if index < 7 else "fail",
            criteria={"tone": "fail"} if index == 0 else None,
        )
    log_in(page, live_server, "olivia")
    tone = page.locator('[data-criterion="tone"]')

    page.goto(f"{live_server.url}/p/{project.slug}/report-card/")
    expect(tone).to_contain_text("Measured on 0 passing and 1 failing human labels")

    page.goto(f"{live_server.url}/p/{project.slug}/settings/")
    page.get_by_label("A holistic pass means every criterion passed").check()
    page.get_by_role("button", name="Save settings").click()
    page.goto(f"{live_server.url}/p/{project.slug}/report-card/")

    expect(tone).to_contain_text(
        "Measured on 6 passing (6 inferred from holistic passes) and 1 failing human labels"
    )
    page.screenshot(path=os.path.join(artifacts_dir, "report-card-inferred.png"), full_page=True)
    project.refresh_from_db()
    assert project.holistic_pass_implies_criteria is True
