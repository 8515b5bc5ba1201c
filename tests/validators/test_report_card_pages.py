import html
import json
import subprocess
import sys

import pytest
from django.urls import reverse

from annotate.services.grades import grade_submit
from validators.matrix import forget
from validators.models import CriterionSetting, Suite, Validator, VerdictRecord
from validators.report_card import report_card

CHECK_SHORT = "def check(output, input, reference, meta):\n    return len(output) < 20\n"
CHECK_MENTIONS = "import re\ndef check(output, input, reference, meta):\n    return not re.search(r'beta', output)\n"


@pytest.fixture
def card_project(project, annotator, make_outputs):
    forget()
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    # beta's answers are the bad ones.
    for output in outputs:
        grade_submit(output=output, annotator=annotator, verdict="fail" if output.system == "beta" else "pass")
    mentions = Validator.objects.create(project=project, name="no beta", kind="code", source=CHECK_MENTIONS)
    short = Validator.objects.create(project=project, name="short", kind="code", source=CHECK_SHORT)
    VerdictRecord.objects.bulk_create(
        [VerdictRecord(validator=mentions, output=o, outcome="fail" if o.system == "beta" else "pass") for o in outputs]
        + [VerdictRecord(validator=short, output=o, outcome="pass") for o in outputs]
    )
    yield project, outputs, mentions, short
    forget()


@pytest.mark.django_db
def test_report_card_page_shows_the_chosen_validator(client, card_project, reviewer):
    project, _, mentions, _ = card_project
    client.force_login(reviewer)

    page = client.get(reverse("report-card", args=[project.slug])).content.decode()

    assert f'data-chosen="{mentions.pk}"' in page
    assert 'data-metric="suite-coverage">1.00<' in page
    assert 'data-metric="suite-ffr">0.00<' in page
    assert "Measured on 4 passing and 4 failing human labels" in page


@pytest.mark.django_db
def test_htmx_refresh_returns_only_the_card(client, card_project, annotator):
    project, *_ = card_project
    client.force_login(annotator)

    response = client.get(reverse("report-card", args=[project.slug]), HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="report-card"')
    assert "<html" not in body


@pytest.mark.django_db
def test_undefined_ratios_are_dashes(client, project, reviewer):
    client.force_login(reviewer)

    page = client.get(reverse("report-card", args=[project.slug])).content.decode()

    assert 'data-metric="suite-coverage">—<' in page
    assert "no candidate validators" in page


@pytest.mark.django_db
def test_owner_pins_a_validator_and_annotator_cannot(client, card_project, owner, annotator):
    project, _, _, short = card_project
    url = reverse("criterion-setting", args=[project.slug, "__holistic__"])
    client.force_login(annotator)

    assert client.post(url, {"pinned": short.pk}).status_code == 403
    assert not CriterionSetting.objects.exists()

    client.force_login(owner)
    client.post(url, {"pinned": short.pk, "ffr_ceiling": "0.1"})

    setting = CriterionSetting.objects.get()
    assert (setting.pinned_id, setting.ffr_ceiling) == (short.pk, 0.1)
    page = client.get(reverse("report-card", args=[project.slug])).content.decode()
    assert f'data-chosen="{short.pk}"' in page and "pinned" in page


@pytest.mark.django_db
def test_save_suite_and_compare_with_today(client, card_project, owner):
    project, outputs, mentions, _ = card_project
    client.force_login(owner)

    response = client.post(reverse("suite-save", args=[project.slug]), {"name": "Before launch"})

    suite = Suite.objects.get()
    assert response["Location"] == reverse("suite-detail", args=[project.slug, suite.pk])
    assert (suite.name, suite.coverage, suite.false_failure_rate, suite.n_grades) == ("Before launch", 1.0, 0.0, 8)
    assert list(suite.validators.values_list("pk", flat=True)) == [mentions.pk]
    page = client.get(response["Location"]).content.decode()
    assert "Before launch" in page and "1.00 → 1.00" in page


@pytest.mark.django_db
@pytest.mark.parametrize("name, problem", [
    ("launch\x00", "contains a NUL character (at character 7)"),
    ("x" * 201, "Keep the suite's name to 200 characters."),
])
def test_a_suite_name_storage_cannot_hold_is_refused_with_why(client, card_project, owner, name, problem):
    project, *_ = card_project
    client.force_login(owner)

    response = client.post(reverse("suite-save", args=[project.slug]), {"name": name}, follow=True)

    assert response.status_code == 200
    assert problem in html.unescape(response.content.decode())
    assert not Suite.objects.exists()


@pytest.mark.django_db
def test_suite_page_builds_todays_card_once(client, card_project, owner, monkeypatch):
    from validators.views import report

    project, _, mentions, _ = card_project
    client.force_login(owner)
    client.post(reverse("suite-save", args=[project.slug]), {"name": "Before launch"})
    built = []

    def counted(target):
        built.append(target.pk)
        return report_card(target)

    monkeypatch.setattr(report, "report_card", counted)

    response = client.get(reverse("suite-detail", args=[project.slug, Suite.objects.get().pk]))

    assert response.status_code == 200
    assert built == [project.pk]
    assert response.context["card_today"].chosen_validator_ids == [mentions.pk]


@pytest.mark.django_db
def test_reviewer_cannot_save_a_suite(client, card_project, reviewer):
    project, *_ = card_project
    client.force_login(reviewer)

    assert client.post(reverse("suite-save", args=[project.slug]), {"name": "x"}).status_code == 403
    assert Suite.objects.count() == 0


@pytest.mark.django_db
def test_exported_python_module_runs_and_prints_verdicts(client, card_project, owner, tmp_path):
    project, *_ = card_project
    client.force_login(owner)
    client.post(reverse("suite-save", args=[project.slug]), {"name": "Export me"})
    suite = Suite.objects.get()

    module = client.get(reverse("suite-export", args=[project.slug, suite.pk]) + "?format=py")
    as_json = client.get(reverse("suite-export", args=[project.slug, suite.pk]) + "?format=json").json()

    assert as_json["name"] == "Export me" and as_json["suite"]["coverage"] == 1.0
    path = tmp_path / "suite.py"
    path.write_bytes(module.content)
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text(
        json.dumps({"item_id": "x1", "system": "s", "output": "all good here"}) + "\n"
        + json.dumps({"item_id": "x2", "system": "s", "output": "beta says hi"}) + "\n"
    )
    result = subprocess.run([sys.executable, str(path), str(outputs)], capture_output=True, text=True, timeout=30, env={})
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert [(line["item_id"], line["verdicts"], line["suite"]) for line in lines] == [
        ("x1", {"no beta": "pass"}, "pass"), ("x2", {"no beta": "fail"}, "fail"),
    ]


@pytest.mark.django_db
def test_non_member_gets_404_for_report_and_suite(client, card_project, outsider, owner):
    project, *_ = card_project
    client.force_login(owner)
    client.post(reverse("suite-save", args=[project.slug]), {"name": "s"})
    suite = Suite.objects.get()
    client.force_login(outsider)

    assert client.get(reverse("report-card", args=[project.slug])).status_code == 404
    assert client.get(reverse("suite-export", args=[project.slug, suite.pk])).status_code == 404


@pytest.mark.django_db
def test_page_says_when_rates_are_reweighted_for_an_active_selector(client, project, annotator, reviewer, make_outputs):
    import numpy as np

    from annotate.services.assignments import assignment_claim_next

    forget()
    outputs = make_outputs(n_samples=10, systems=("alpha", "beta"))
    strict = Validator.objects.create(project=project, name="strict", kind="code", source=CHECK_SHORT)
    lenient = Validator.objects.create(project=project, name="lenient", kind="code", source=CHECK_MENTIONS)
    VerdictRecord.objects.bulk_create(
        [VerdictRecord(validator=strict, output=o, outcome="fail" if i % 3 == 0 else "pass") for i, o in enumerate(outputs)]
        + [VerdictRecord(validator=lenient, output=o, outcome="pass") for o in outputs]
    )
    client.force_login(reviewer)
    before = client.get(reverse("report-card", args=[project.slug])).content.decode()
    for step in range(8):
        claim = assignment_claim_next(project=project, annotator=annotator, selector="validator_choice",
                                      rng=np.random.default_rng(step))
        grade_submit(output=claim.output, annotator=annotator, verdict="fail" if step % 2 else "pass",
                     assignment=claim)
        forget()

    page = client.get(reverse("report-card", args=[project.slug])).content.decode()

    assert "data-weighted" not in before
    assert "data-weighted" in page
    assert "reweighted by how likely each output was to be chosen" in page


@pytest.mark.django_db
def test_a_validator_that_catches_nothing_is_not_chosen_on_the_page(client, card_project, reviewer):
    # Given only the always-pass candidate ('short' passes all 8 outputs; people failed 4)
    project, _, mentions, short = card_project
    mentions.archived = True
    mentions.save(update_fields=["archived"])
    forget()
    client.force_login(reviewer)

    # When
    page = client.get(reverse("report-card", args=[project.slug])).content.decode()

    # Then nothing is chosen, the reason says why, and the suite holds no validator
    assert "data-chosen=" not in page
    assert '<p class="why-none" data-reason>no candidate catches any failure yet</p>' in page
    assert "catches none of the 4 failing grades (coverage 0.00)" in page
    assert 'data-metric="suite-coverage">—<' in page
    assert '<tr class="status-catches_nothing">' in page
