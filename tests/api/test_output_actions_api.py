"""POST /api/projects/{slug}/outputs/bulk/."""

import pytest

from annotate.models import OutputAssignee, OutputExclusion, RegradeRequest
from annotate.services.projects import project_create
from tests.api.conftest import url
from tests.factories import OutputFactory, SampleFactory

pytestmark = pytest.mark.django_db
BULK = url("outputs/bulk/")


def test_the_schema_lists_it(owner_api):
    schema = owner_api.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/projects/{slug}/outputs/bulk/"]["post"]
    assert operation["summary"] == "Act on many outputs at once (owners, reviewers)"


def test_a_reviewer_sends_back(reviewer_api, reviewer, make_outputs):
    outputs = make_outputs(n_samples=1)

    answer = reviewer_api.post(BULK, {"action": "regrade", "outputs": [o.pk for o in outputs],
                                      "reason": "tone"}, format="json")

    assert answer.status_code == 200
    assert answer.json() == {"action": "regrade", "changed": 2, "unchanged": 0,
                             "message": "2 outputs sent back for re-grading."}
    assert set(RegradeRequest.objects.values_list("requested_by", flat=True)) == {reviewer.pk}


def test_an_owner_assigns(owner_api, annotator, make_outputs):
    outputs = make_outputs(n_samples=1)

    answer = owner_api.post(BULK, {"action": "assign", "outputs": [o.pk for o in outputs],
                                   "annotators": [annotator.pk]}, format="json")

    assert answer.status_code == 200
    assert answer.json()["changed"] == 2
    assert OutputAssignee.objects.filter(annotator=annotator).count() == 2


@pytest.mark.parametrize("who,status", [("annotator_api", 403), ("outsider_api", 404)])
def test_others_may_not(request, make_outputs, who, status):
    outputs = make_outputs(n_samples=1)

    answer = request.getfixturevalue(who).post(
        BULK, {"action": "exclude", "outputs": [outputs[0].pk], "reason": "dup"}, format="json"
    )

    assert answer.status_code == status
    assert OutputExclusion.objects.count() == 0


def test_anonymous_gets_401(api_for, project, make_outputs):
    outputs = make_outputs(n_samples=1)

    answer = api_for().post(BULK, {"action": "exclude", "outputs": [outputs[0].pk], "reason": "x"}, format="json")

    assert answer.status_code == 401


@pytest.mark.parametrize("body,field", [
    ({"action": "drop", "outputs": [1]}, "action"),
    ({"action": "exclude", "outputs": [], "reason": "x"}, "outputs"),
    ({"action": "exclude", "outputs": ["x"], "reason": "x"}, "outputs.0"),
    ({"action": "exclude", "outputs": [2**70], "reason": "x"}, "outputs.0"),
    ({"action": "exclude", "outputs": "1", "reason": "x"}, "outputs"),
    ({"action": "exclude", "outputs": [1], "reason": "a\x00b"}, "reason"),
    ({"action": "assign", "outputs": [1], "annotators": [999999]}, "annotators"),
    ({"action": "assign", "outputs": [1]}, "annotators"),
])
def test_bad_bodies_are_400_naming_the_field(owner_api, make_outputs, body, field):
    outputs = make_outputs(n_samples=1)
    body = {**body, "outputs": [outputs[0].pk if v == 1 else v for v in body["outputs"]]} \
        if isinstance(body["outputs"], list) else body

    answer = owner_api.post(BULK, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == field
    assert OutputExclusion.objects.count() == OutputAssignee.objects.count() == 0


def test_a_foreign_output_refuses_the_request(owner_api, owner, make_outputs):
    mine = make_outputs(n_samples=1)
    other = project_create(name="Other", slug="other", owner=owner)
    theirs = OutputFactory(project=other, sample=SampleFactory(project=other), system="alpha")

    answer = owner_api.post(BULK, {"action": "exclude", "outputs": [mine[0].pk, theirs.pk], "reason": "x"},
                            format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "outputs"
    assert OutputExclusion.objects.count() == 0
