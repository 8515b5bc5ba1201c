"""GET …/outputs/ with its filters; criteria and their versions."""

import pytest

from annotate.models import Criterion, CriterionVersion
from annotate.services.grades import grade_retract, grade_submit
from tests.api.conftest import url


@pytest.mark.django_db
class TestOutputs:
    def test_outputs_carry_their_input(self, reviewer_api, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("alpha",))

        answer = reviewer_api.get(url("outputs/"))

        assert answer.status_code == 200
        body = answer.json()
        assert (body["count"], body["next"], body["previous"]) == (1, None, None)
        result = body["results"][0]
        assert result["id"] == outputs[0].pk
        assert (result["system"], result["text"]) == ("alpha", "alpha answers 0.")
        assert {k: result["sample"][k] for k in ("external_id", "input", "reference")} == {
            "external_id": "q0", "input": "Question 0?", "reference": "The reference answer.",
        }

    def test_pages_of_fifty(self, reviewer_api, make_outputs):
        make_outputs(n_samples=30, systems=("alpha", "beta"))

        first = reviewer_api.get(url("outputs/")).json()
        second = reviewer_api.get(url("outputs/") + "?page=2").json()

        assert (first["count"], len(first["results"]), len(second["results"])) == (60, 50, 10)
        assert first["next"].endswith("/api/projects/support-bot/outputs/?page=2")

    def test_filter_by_system_labelled_and_criterion(
        self, reviewer_api, make_outputs, annotator, owner, accuracy
    ):
        outputs = make_outputs(n_samples=3, systems=("alpha", "beta"))
        grade_submit(output=outputs[0], annotator=annotator, verdict="pass",
                     criteria={"accuracy": "pass"})
        grade_submit(output=outputs[1], annotator=annotator, verdict="fail")
        undone = grade_submit(output=outputs[2], annotator=owner, verdict="fail")
        grade_retract(grade=undone, annotator=owner)

        def ids(query: str) -> list[int]:
            return [o["id"] for o in reviewer_api.get(url("outputs/") + query).json()["results"]]

        assert ids("?system=beta") == [outputs[1].pk, outputs[3].pk, outputs[5].pk]
        assert ids("?labelled=true") == [outputs[0].pk, outputs[1].pk]
        assert ids("?labelled=false") == [o.pk for o in outputs[2:]]
        assert ids("?criterion=accuracy") == [outputs[0].pk]
        assert ids("?criterion=accuracy&system=beta") == []
        assert ids("?labelled=true&system=beta") == [outputs[1].pk]
        # What people type, not only what django-filter's widget reads.
        assert ids("?labelled=1") == ids("?labelled=yes") == ids("?labelled=True") == [outputs[0].pk, outputs[1].pk]
        assert ids("?labelled=0") == ids("?labelled=no") == [o.pk for o in outputs[2:]]
        refused = reviewer_api.get(url("outputs/") + "?labelled=maybe")
        assert refused.status_code == 400
        assert refused.json() == {"errors": [
            {"field": "labelled", "message": "must be true or false (or 1 / 0, yes / no), not 'maybe'"}
        ]}

    def test_outputs_of_other_projects_never_show(self, reviewer_api, make_outputs, owner):
        from annotate.services.projects import project_create

        other = project_create(name="Other", slug="other", owner=owner)
        make_outputs(n_samples=2, target=other)

        assert reviewer_api.get(url("outputs/")).json()["count"] == 0


@pytest.mark.django_db
class TestCriteria:
    def test_create_and_list_with_versions(self, annotator_api, reviewer_api, project):
        created = annotator_api.post(url("criteria/"), {
            "name": "Grounded answer", "definition": "Every claim is in the article.",
            "reason": "hallucinations seen",
        }, format="json")

        assert created.status_code == 201
        body = created.json()
        assert (body["key"], body["current"]["number"], body["current"]["author"]) == (
            "grounded_answer", 1, "arjun")
        listed = reviewer_api.get(url("criteria/")).json()["results"]
        assert [(c["key"], [v["name"] for v in c["versions"]]) for c in listed] == [
            ("grounded_answer", ["Grounded answer"]),
        ]

    def test_new_version_marks_the_definition_change(self, owner_api, reviewer_api, accuracy):
        answer = owner_api.post(url("criteria/accuracy/versions/"), {
            "definition": "Says only true things, numbers included.", "reason": "numbers drift",
        }, format="json")

        assert answer.status_code == 201
        assert {k: answer.json()[k] for k in ("number", "name", "reason", "author")} == {
            "number": 2, "name": "Accuracy", "reason": "numbers drift", "author": "olivia",
        }
        listed = reviewer_api.get(url("criteria/")).json()["results"][0]
        assert [v["number"] for v in listed["versions"]] == [1, 2]
        assert listed["current"]["definition"] == "Says only true things, numbers included."

    def test_unchanged_definition_is_refused(self, owner_api, accuracy):
        answer = owner_api.post(url("criteria/accuracy/versions/"), {
            "definition": "Says only true things.", "reason": "again",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "definition", "message": "The definition is unchanged."},
        ]}
        assert CriterionVersion.objects.filter(criterion=accuracy).count() == 1

    def test_version_needs_a_reason(self, owner_api, accuracy):
        answer = owner_api.post(url("criteria/accuracy/versions/"), {"definition": "New."},
                                format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "reason", "message": "This field is required."},
        ]}

    def test_unknown_criterion_is_404(self, owner_api, project):
        answer = owner_api.post(url("criteria/nope/versions/"), {
            "definition": "x", "reason": "y",
        }, format="json")

        assert answer.status_code == 404

    def test_duplicate_and_malformed_keys_are_refused_on_the_key(self, owner_api, accuracy):
        duplicate = owner_api.post(url("criteria/"), {"key": "accuracy", "name": "Again"},
                                   format="json")
        malformed = owner_api.post(url("criteria/"), {"key": "Bad Key", "name": "Bad"},
                                   format="json")

        assert duplicate.status_code == 400
        assert duplicate.json() == {"errors": [
            {"field": "key", "message": "The criterion 'accuracy' already exists."},
        ]}
        assert malformed.json() == {"errors": [
            {"field": "key", "message": "Use letters, digits, '_' and '-' (no spaces)."},
        ]}
        assert Criterion.objects.count() == 1

    def test_annotators_may_not_edit_when_the_project_says_so(self, annotator_api, project,
                                                             accuracy):
        project.annotators_may_edit_criteria = False
        project.save()

        created = annotator_api.post(url("criteria/"), {"name": "Tone"}, format="json")
        refined = annotator_api.post(url("criteria/accuracy/versions/"), {
            "definition": "Stricter.", "reason": "drift"}, format="json")

        assert (created.status_code, refined.status_code) == (403, 403)
        assert created.json() == {"errors": [{
            "field": "", "message": "Your role in this project (annotator) may not change its criteria.",
        }]}
        assert Criterion.objects.count() == 1
        assert CriterionVersion.objects.count() == 1
