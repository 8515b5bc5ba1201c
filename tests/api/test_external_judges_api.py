"""POST /api/projects/{slug}/validators/external/: judge verdicts from a file or a body."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.conftest import url
from validators.models import PairVerdict, Validator, VerdictRecord

pytestmark = pytest.mark.django_db
EXTERNAL = url("validators/external/")


def nothing_written() -> bool:
    return (Validator.objects.count(), VerdictRecord.objects.count(), PairVerdict.objects.count()) == (0, 0, 0)


def test_an_uploaded_csv_makes_a_pairwise_validator(owner_api, make_outputs):
    make_outputs(n_samples=2, systems=("alpha", "beta"))
    upload = SimpleUploadedFile(
        "arena.csv", b"validator,item_id,system_a,system_b,winner\narena,q0,beta,alpha,a\narena,q1,alpha,beta,tie\n",
        content_type="text/csv",
    )

    answer = owner_api.post(EXTERNAL, {"file": upload}, format="multipart")

    assert answer.status_code == 201, answer.json()
    validator = Validator.objects.get()
    assert answer.json() == {
        "validators": [{"id": validator.pk, "name": "arena", "target": "pair", "parent": None, "n_verdicts": 2}],
        "criteria_created": [],
        "message": "Imported 1 judge(s): 'arena' (2 verdicts).",
    }
    assert sorted(PairVerdict.objects.values_list("winner", flat=True)) == ["b", "tie"]


def test_records_in_the_body_with_create_criteria(owner_api, make_outputs):
    outputs = make_outputs(n_samples=1, systems=("alpha", "beta"))

    answer = owner_api.post(EXTERNAL, {"create_criteria": True, "records": [
        {"validator": "tone", "criterion": "tone", "output_id": outputs[0].pk, "score": 0.25},
        {"validator": "tone", "criterion": "tone", "output_id": outputs[1].pk, "score": 0.75},
    ]}, format="json")

    assert answer.status_code == 201, answer.json()
    assert answer.json()["criteria_created"] == ["tone"]
    assert answer.json()["validators"][0]["n_verdicts"] == 2
    assert sorted(VerdictRecord.objects.values_list("outcome", "score")) == [("score", 0.25), ("score", 0.75)]


def test_a_new_version_names_its_parent(owner_api, make_outputs):
    output = make_outputs(n_samples=1, systems=("alpha",))[0]
    body = {"records": [{"validator": "j", "output_id": output.pk, "outcome": "pass"}]}
    first = owner_api.post(EXTERNAL, body, format="json").json()["validators"][0]

    second = owner_api.post(EXTERNAL, body, format="json").json()["validators"][0]

    assert second["parent"] == first["id"]
    assert list(Validator.objects.order_by("pk").values_list("archived", flat=True)) == [True, False]


def test_problems_answer_400_with_record_and_field(owner_api, make_outputs):
    output = make_outputs(n_samples=1, systems=("alpha",))[0]

    answer = owner_api.post(EXTERNAL, {"records": [
        {"validator": "j", "output_id": output.pk, "outcome": "pass"},
        {"validator": "j", "output_id": output.pk, "score": "NaN"},
    ]}, format="json")

    assert answer.status_code == 400
    assert answer.json() == {"errors": [
        {"line": 2, "field": "score", "message": "must be a finite number, not 'NaN'"},
    ]}
    assert nothing_written()


@pytest.mark.parametrize(("body", "expected"), [
    ({"records": "everything"}, {"line": 0, "field": "records", "message": "must be a list of objects"}),
    ({"records": [], "create_criteria": "perhaps"},
     {"line": 0, "field": "create_criteria", "message": "must be true or false"}),
    ({"records": []}, {"line": 0, "field": "file", "message": "the file holds no verdicts"}),
    ({}, {"line": 0, "field": "file",
          "message": 'send a file (multipart field "file") or a JSON body {"records": [...]}'}),
    ([1, 2], {"line": 0, "field": "file",
              "message": 'send a file (multipart field "file") or a JSON body {"records": [...]}'}),
])
def test_bodies_that_are_no_import(owner_api, project, body, expected):
    answer = owner_api.post(EXTERNAL, body, format="json")

    assert answer.status_code == 400
    assert answer.json() == {"errors": [expected]}
    assert nothing_written()


def test_an_undecodable_upload_is_refused_as_a_file(owner_api, project):
    upload = SimpleUploadedFile("judge.jsonl", b"\xff\xfe\x00\x01binary", content_type="application/octet-stream")

    answer = owner_api.post(EXTERNAL, {"file": upload}, format="multipart")

    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"line": 0, "field": "file", "message": (
        "is not a text file (not valid UTF-8: byte 0xff at offset 0); export the verdicts as "
        "JSON Lines (.jsonl) or CSV (.csv)"
    )}]
    assert nothing_written()


def test_annotators_may_not_import(annotator_api, make_outputs):
    output = make_outputs(n_samples=1, systems=("alpha",))[0]

    answer = annotator_api.post(EXTERNAL, {"records": [
        {"validator": "j", "output_id": output.pk, "outcome": "pass"}]}, format="json")

    assert answer.status_code == 403
    assert nothing_written()
