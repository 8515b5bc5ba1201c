"""An owner brings a judge's verdicts from elsewhere, in Chromium: the problems of a file show
in place with their lines, and a fixed file lands in the list."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_labels_and_validator_import import log_in
from validators.models import PairVerdict, Validator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_wrong_file_shows_its_problems_and_a_fixed_one_is_listed(
    page: Page, live_server, project, owner, make_outputs, tmp_path,
):
    make_outputs(n_samples=2, systems=("alpha", "beta"))
    wrong = tmp_path / "arena.csv"
    wrong.write_text("validator,item_id,system_a,system_b,winner\narena,q0,alpha,beta,left\narena,q7,alpha,beta,a\n")
    fixed = tmp_path / "arena-fixed.csv"
    fixed.write_text("validator,item_id,system_a,system_b,winner\narena,q0,alpha,beta,b\narena,q1,beta,alpha,a\n")
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/validators/")

    page.get_by_label("Judge verdicts (.jsonl or .csv)").set_input_files(str(wrong))
    page.get_by_role("button", name="Import verdicts").click()

    problems = page.locator("table.external-problems")
    expect(page.get_by_text("Nothing was imported: the file has 2 problem(s).")).to_be_visible()
    expect(problems.get_by_role("row").nth(1)).to_have_text("2winnermust be a, b or tie, not 'left'")
    expect(problems.get_by_role("row").nth(2)).to_have_text("3item_idno item 'q7' in this project")
    assert Validator.objects.count() == 0

    page.get_by_label("Judge verdicts (.jsonl or .csv)").set_input_files(str(fixed))
    page.get_by_role("button", name="Import verdicts").click()

    expect(page.get_by_text("Imported 1 judge(s): 'arena' (2 verdicts).")).to_be_visible()
    expect(page.get_by_role("row", name="arena")).to_contain_text("Imported verdicts pairs · 2 verdicts")
    assert PairVerdict.objects.count() == 2
