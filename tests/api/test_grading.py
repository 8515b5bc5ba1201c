"""The queue, grades and comparisons through the API."""

import pytest

from annotate.models import Assignment, Comparison, Grade, GradeCriterion
from tests.api.conftest import url


@pytest.mark.django_db
class TestQueue:
    def test_claims_an_output_without_its_system(self, annotator_api, annotator, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("alpha",))

        answer = annotator_api.post(url("queue/next/"), {}, format="json")

        assert answer.status_code == 200
        body = answer.json()
        claim = Assignment.objects.get()
        assert (body["assignment"], body["mode"], body["selector"], body["outputs"]) == (
            claim.pk, "single", "random", None)
        assert body["why"] == "chosen at random from 1 item"
        assert body["output"]["id"] == outputs[0].pk
        assert "system" not in body["output"]
        assert body["output"]["sample"]["input"] == "Question 0?"
        assert (claim.annotator, claim.status) == (annotator, "active")

    def test_asking_again_returns_the_same_claim(self, annotator_api, make_outputs):
        make_outputs(n_samples=3, systems=("alpha",))

        first = annotator_api.post(url("queue/next/"), {"mode": "single"}, format="json").json()
        second = annotator_api.post(url("queue/next/"), {"mode": "single"}, format="json").json()

        assert first["assignment"] == second["assignment"]
        assert Assignment.objects.count() == 1

    def test_204_when_nothing_is_left(self, annotator_api, annotator, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        claim = annotator_api.post(url("queue/next/"), {}, format="json").json()
        annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "pass", "assignment": claim["assignment"],
        }, format="json")

        answer = annotator_api.post(url("queue/next/"), {}, format="json")

        assert answer.status_code == 204
        assert answer.content == b""
        assert Assignment.objects.filter(status="active").count() == 0

    def test_204_on_an_empty_project(self, annotator_api):
        assert annotator_api.post(url("queue/next/"), {}, format="json").status_code == 204

    def test_pair_mode_claims_two_outputs_of_one_input(self, annotator_api, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("alpha", "beta"))

        answer = annotator_api.post(url("queue/next/"), {"mode": "pair"}, format="json")

        assert answer.status_code == 200
        body = answer.json()
        assert (body["mode"], body["output"]) == ("pair", None)
        assert sorted(o["id"] for o in body["outputs"]) == [outputs[0].pk, outputs[1].pk]

    def test_unknown_mode_and_selector_are_refused(self, annotator_api, make_outputs):
        make_outputs(n_samples=1)

        answer = annotator_api.post(url("queue/next/"), {"mode": "triple", "selector": "magic"},
                                    format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "selector", "message": '"magic" is not a valid choice.'},
            {"field": "mode", "message": '"triple" is not a valid choice.'},
        ]}
        assert Assignment.objects.count() == 0


@pytest.mark.django_db
class TestGrades:
    def test_grade_under_a_claim_with_criteria(self, annotator_api, annotator, make_outputs,
                                               accuracy):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        claim = annotator_api.post(url("queue/next/"), {}, format="json").json()

        answer = annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "fail", "criteria": {"accuracy": "fail"},
            "note": "wrong city", "assignment": claim["assignment"],
            "started_at": "2020-01-01T00:00:00Z",
        }, format="json")

        assert answer.status_code == 201
        body = answer.json()
        grade = Grade.objects.get()
        assert body["id"] == grade.pk
        assert {k: body[k] for k in ("output", "annotator", "verdict", "criteria", "note",
                                     "selector", "assignment", "supersedes")} == {
            "output": output.pk, "annotator": "arjun", "verdict": "fail",
            "criteria": {"accuracy": "fail"}, "note": "wrong city", "selector": "random",
            "assignment": claim["assignment"], "supersedes": None,
        }
        assert Assignment.objects.get().status == "submitted"
        assert body["started_at"] == "2020-01-01T00:00:00Z"

    def test_second_grade_supersedes_the_first(self, annotator_api, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        first = annotator_api.post(url("grades/"), {"output": output.pk, "verdict": "pass"},
                                   format="json").json()

        second = annotator_api.post(url("grades/"), {"output": output.pk, "verdict": "fail"},
                                    format="json")

        assert second.status_code == 201
        assert second.json()["supersedes"] == first["id"]
        assert Grade.objects.count() == 2

    def test_unknown_criterion_is_refused_by_name(self, annotator_api, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]

        answer = annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "pass", "criteria": {"tone": "pass"},
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "criteria.tone", "message": "Unknown criterion 'tone'."},
        ]}
        assert Grade.objects.count() == 0

    def test_bad_verdicts_are_refused(self, annotator_api, make_outputs, accuracy):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]

        answer = annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "maybe", "criteria": {"accuracy": "meh"},
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "verdict", "message": '"maybe" is not a valid choice.'},
            {"field": "criteria.accuracy", "message": '"meh" is not a valid choice.'},
        ]}
        assert (Grade.objects.count(), GradeCriterion.objects.count()) == (0, 0)

    def test_missing_verdict_on_a_binary_project(self, annotator_api, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]

        answer = annotator_api.post(url("grades/"), {"output": output.pk}, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "verdict", "message": "Choose pass, fail or unsure."},
        ]}

    def test_output_of_another_project_is_404(self, annotator_api, owner, make_outputs):
        from annotate.services.projects import project_create

        other = project_create(name="Other", slug="other", owner=owner)
        foreign = make_outputs(n_samples=1, systems=("alpha",), target=other)[0]

        answer = annotator_api.post(url("grades/"), {"output": foreign.pk, "verdict": "pass"},
                                    format="json")

        assert answer.status_code == 404
        assert Grade.objects.count() == 0

    def test_someone_elses_assignment_is_refused(self, annotator_api, owner_api, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        claim = owner_api.post(url("queue/next/"), {}, format="json").json()

        answer = annotator_api.post(url("grades/"), {
            "output": output.pk, "verdict": "pass", "assignment": claim["assignment"],
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "assignment",
            "message": f"You hold no assignment {claim['assignment']} in this project.",
        }]}
        assert Grade.objects.count() == 0
        assert Assignment.objects.get().status == "active"

    def test_rating_scale_grade_by_score(self, annotator_api, project, make_outputs):
        project.scale, project.scale_min, project.scale_max, project.pass_threshold = (
            "rating", 1, 5, 4)
        project.save()
        output = make_outputs(n_samples=1, systems=("alpha",))[0]

        scored = annotator_api.post(url("grades/"), {"output": output.pk, "score": 3},
                                    format="json")
        outside = annotator_api.post(url("grades/"), {"output": output.pk, "score": 9},
                                     format="json")

        assert (scored.status_code, scored.json()["verdict"], scored.json()["score"]) == (
            201, "fail", 3.0)
        assert outside.status_code == 400
        assert outside.json() == {"errors": [
            {"field": "score", "message": "The score must lie between 1 and 5."},
        ]}
        assert Grade.objects.count() == 1


@pytest.mark.django_db
class TestComparisons:
    def test_compare_a_claimed_pair(self, annotator_api, make_outputs):
        make_outputs(n_samples=1, systems=("alpha", "beta"))
        claim = annotator_api.post(url("queue/next/"), {"mode": "pair"}, format="json").json()
        left, right = (o["id"] for o in claim["outputs"])

        answer = annotator_api.post(url("comparisons/"), {
            "output_a": left, "output_b": right, "choice": "a", "note": "shorter",
            "assignment": claim["assignment"],
        }, format="json")

        assert answer.status_code == 201
        comparison = Comparison.objects.get()
        assert {k: answer.json()[k] for k in ("id", "output_a", "output_b", "choice", "note",
                                              "annotator")} == {
            "id": comparison.pk, "output_a": left, "output_b": right, "choice": "a",
            "note": "shorter", "annotator": "arjun",
        }
        assert Assignment.objects.get().status == "submitted"

    def test_outputs_of_different_inputs_are_refused(self, annotator_api, make_outputs):
        outputs = make_outputs(n_samples=2, systems=("alpha",))

        answer = annotator_api.post(url("comparisons/"), {
            "output_a": outputs[0].pk, "output_b": outputs[1].pk, "choice": "tie",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "output_b", "message": "Both outputs must answer the same input."},
        ]}
        assert Comparison.objects.count() == 0

    def test_bad_choice_is_refused(self, annotator_api, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("alpha", "beta"))

        answer = annotator_api.post(url("comparisons/"), {
            "output_a": outputs[0].pk, "output_b": outputs[1].pk, "choice": "both",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "choice", "message": '"both" is not a valid choice.'},
        ]}
