"""The validators page: importing judge verdicts, their errors, the sample file, the list."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from validators.models import PairVerdict, Validator, VerdictRecord
from validators.services.external import SAMPLE_JSONL

pytestmark = pytest.mark.django_db


def upload(text: str, name: str = "verdicts.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def test_owners_see_the_import_form_and_reviewers_do_not(client, project, owner, reviewer):
    page = reverse("validator-list", args=[project.slug])
    client.force_login(owner)
    as_owner = client.get(page).content.decode()
    client.force_login(reviewer)
    as_reviewer = client.get(page).content.decode()

    assert "Import judge verdicts" in as_owner
    assert reverse("external-verdicts-sample", args=[project.slug]) in as_owner
    assert "Import judge verdicts" not in as_reviewer


def test_an_upload_imports_and_the_list_shows_the_judge_without_a_run_box(client, project, owner, make_outputs):
    make_outputs(n_samples=2, systems=("alpha", "beta"))
    client.force_login(owner)
    text = (
        '{"validator": "arena", "item_id": "q0", "system_a": "alpha", "system_b": "beta", "winner": "a"}\n'
        '{"validator": "arena", "item_id": "q1", "system_a": "beta", "system_b": "alpha", "winner": "a"}\n'
    )

    answer = client.post(reverse("external-verdicts-import", args=[project.slug]), {"file": upload(text)}, follow=True)

    page = answer.content.decode()
    validator = Validator.objects.get()
    assert answer.redirect_chain == [(reverse("validator-list", args=[project.slug]), 302)]
    assert "Imported 1 judge(s): &#x27;arena&#x27; (2 verdicts)." in page
    assert "Imported verdicts <small class=\"tag\">pairs</small> <small class=\"muted\">· 2 verdicts</small>" in page
    assert f'name="validators" value="{validator.pk}"' not in page
    assert PairVerdict.objects.count() == 2


def test_problems_are_shown_with_line_and_field_and_nothing_is_written(client, project, owner, make_outputs):
    make_outputs(n_samples=1, systems=("alpha", "beta"))
    client.force_login(owner)
    text = "validator,item_id,system,outcome\nj,q0,alpha,pass\nj,q9,alpha,pass\n,q0,beta,maybe\n"

    answer = client.post(
        reverse("external-verdicts-import", args=[project.slug]),
        {"file": upload(text, "v.csv"), "create_criteria": "1"},
    )

    page = answer.content.decode()
    assert answer.status_code == 400
    assert "Nothing was imported: the file has 3 problem(s)." in page
    assert '<td class="num">3</td><td><code>item_id</code></td><td>no item &#x27;q9&#x27; in this project</td>' in page
    assert '<td class="num">4</td><td><code>validator</code></td><td>is missing: give the judge&#x27;s name</td>' in page
    assert '<td class="num">4</td><td><code>outcome</code></td>' in page
    assert 'name="create_criteria" value="1" checked' in page
    assert (Validator.objects.count(), VerdictRecord.objects.count()) == (0, 0)


def test_with_htmx_only_the_form_comes_back(client, project, owner):
    client.force_login(owner)

    answer = client.post(
        reverse("external-verdicts-import", args=[project.slug]),
        {"file": SimpleUploadedFile("judge.jsonl", b"\x00\xff\xfe")},
        headers={"HX-Request": "true"},
    )

    page = answer.content.decode()
    assert answer.status_code == 400
    assert page.startswith('<section id="external-import"')
    assert '<td class="num">file</td><td><code>file</code></td>' in page
    assert "is not a text file" in page


def test_no_file_chosen(client, project, owner):
    client.force_login(owner)

    answer = client.post(reverse("external-verdicts-import", args=[project.slug]), {})

    assert answer.status_code == 400
    assert "choose a JSON Lines or CSV file of verdicts" in answer.content.decode()


def test_annotators_may_not_import_and_outsiders_do_not_see_the_project(client, project, annotator, outsider):
    target = reverse("external-verdicts-import", args=[project.slug])
    client.force_login(annotator)
    as_annotator = client.post(target, {"file": upload('{"validator": "j", "output_id": 1, "outcome": "pass"}\n')})
    client.force_login(outsider)
    as_outsider = client.post(target, {"file": upload('{"validator": "j", "output_id": 1, "outcome": "pass"}\n')})

    assert (as_annotator.status_code, as_outsider.status_code) == (403, 404)
    assert Validator.objects.count() == 0


def test_the_sample_file_downloads_for_every_member(client, project, reviewer, outsider):
    sample = reverse("external-verdicts-sample", args=[project.slug])
    client.force_login(reviewer)
    answer = client.get(sample)
    client.force_login(outsider)

    assert answer.status_code == 200
    assert answer["Content-Disposition"] == 'attachment; filename="judge-verdicts-sample.jsonl"'
    assert answer.content.decode() == SAMPLE_JSONL
    assert client.get(sample).status_code == 404


def test_running_all_validators_from_the_page_leaves_imported_ones_out(client, project, owner, make_outputs):
    from validators.models import Run
    from validators.services.authoring import validator_create
    from validators.services.external import external_verdicts_import

    output = make_outputs(n_samples=1, systems=("alpha",))[0]
    code = validator_create(project=project, kind="code", name="short", source=(
        "def check(output, input, reference, meta):\n    return len(output) < 80\n"))
    external_verdicts_import(project=project, created_by=owner, stream_or_records=[
        {"validator": "imported", "output_id": output.pk, "outcome": "pass"}])
    client.force_login(owner)

    answer = client.post(reverse("run-start", args=[project.slug]), {})

    run = Run.objects.get()
    assert answer.status_code == 302
    assert list(run.validators.values_list("pk", flat=True)) == [code.pk]
