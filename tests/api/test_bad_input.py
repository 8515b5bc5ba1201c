"""The 500s of issue 12 met through the API and the settings page: each is now a 4xx whose
`errors` name the field, with nothing written; a value stored before the rule stays harmless."""

import json

import pytest
from django.urls import reverse

from annotate.models import Criterion, CriterionVersion, Project
from annotate.services.grades import grade_submit
from tests.api.conftest import url
from validators.models import Provider, Suite, Validator


def post_json(client, path: str, body: str):
    """A hand-written JSON body: json.dumps refuses to write a lone surrogate."""
    return client.post(path, body, content_type="application/json")


@pytest.mark.django_db
class TestMinLabelsPerClass:
    def test_api_refuses_zero(self, owner_api, project):
        answer = owner_api.patch(url(""), {"settings": {"min_labels_per_class": 0}}, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "settings.min_labels_per_class",
            "message": "Ensure this value is greater than or equal to 1.",
        }]}
        assert Project.objects.get().min_labels_per_class == 3

    def test_settings_page_refuses_zero(self, client, owner, project):
        client.force_login(owner)
        form = {
            "name": "Support bot", "description": "", "guidelines": "", "default_selector": "random",
            "overlap": 1, "default_ffr_ceiling": 0.25, "min_labels_per_class": 0, "random_mix": 0.1,
            "scale": "binary",
        }

        response = client.post(reverse("project-settings", args=[project.slug]), form)

        assert response.status_code == 400
        assert response.context["form"].errors == {
            "min_labels_per_class": ["Ensure this value is greater than or equal to 1."],
        }
        assert Project.objects.get().min_labels_per_class == 3

    def test_a_stored_zero_reads_as_one(self, owner_api, client, owner, annotator, project,
                                        accuracy, make_outputs,
                                        django_capture_on_commit_callbacks):
        outputs = make_outputs(n_samples=2)
        validator_id = owner_api.post(url("validators/"), {
            "kind": "code", "name": "mentions alpha", "criterion": "accuracy",
            "source": "def check(output, input, reference, meta):\n    return 'alpha' in output",
        }, format="json").json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            owner_api.post(url("runs/"), {"validators": "all"}, format="json")
        for output in outputs:
            grade_submit(output=output, annotator=annotator, verdict="pass",
                         criteria={"accuracy": "pass" if output.system == "alpha" else "fail"})
        # Stored before the settings refused it (the model allowed 0).
        Project.objects.filter(pk=project.pk).update(min_labels_per_class=0)
        client.force_login(owner)

        alignment = owner_api.get(url("alignment/"))
        card = client.get(reverse("report-card", args=[project.slug]))
        suite = owner_api.post(url("suites/"), {}, format="json")

        assert alignment.status_code == 200
        (criterion,) = [c for c in alignment.json()["criteria"] if c["key"] == "accuracy"]
        # Two passes and two fails meet a minimum of one of each.
        assert criterion["chosen"] == validator_id
        assert card.status_code == 200
        assert "mentions alpha" in card.content.decode()
        assert suite.status_code == 201, suite.json()
        assert Suite.objects.count() == 1


@pytest.mark.django_db
class TestValidatorsImport:
    def test_provider_given_as_a_list(self, owner_api, project):
        body = {"validators": [{"name": "judge", "criterion": None, "kind": "llm",
                                "provider": ["a"], "source": "Answer: {output}. YES or NO?"}]}

        answer = owner_api.post(url("validators/import/"), body, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"entry": 1, "line": 1, "field": "provider", "message": "must be a provider name or null"},
        ]}
        assert Validator.objects.count() == 0

    def test_kind_given_as_an_object(self, owner_api, project):
        body = [{"name": "x", "kind": {"a": 1}, "source": "def check(o, i, r, m):\n    return 1"}]

        answer = owner_api.post(url("validators/import/"), body, format="json")

        assert answer.status_code == 400
        (error,) = answer.json()["errors"]
        assert (error["line"], error["field"]) == (1, "kind")
        assert error["message"].startswith("must be one of code, llm")
        assert Validator.objects.count() == 0

    def test_nul_in_a_criterion_name(self, owner_api, project):
        body = [{"name": "x", "criterion": "acc\u0000uracy", "kind": "code",
                 "source": "def check(output, input, reference, meta):\n    return True"}]

        answer = owner_api.post(url("validators/import/"), body, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "entry": 1, "line": 1, "field": "criterion",
            "message": "The criterion field contains a NUL character (at character 4).",
        }]}
        assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)

    def test_infinite_threshold(self, owner_api, project):
        body = '[{"name": "x", "kind": "code", "threshold": 1e999, "source": "def check(o, i, r, m):\\n    return 1"}]'

        answer = post_json(owner_api, url("validators/import/"), body)

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"entry": 1, "line": 1, "field": "threshold", "message": "must be a finite number"},
        ]}
        assert Validator.objects.count() == 0


@pytest.mark.django_db
class TestNamesStorageCannotHold:
    PROVIDER = {"name": "default", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                "api_key_env": ""}

    def test_nul_in_a_provider_name(self, owner_api, project):
        answer = owner_api.post(url("providers/"), {**self.PROVIDER, "name": "de\u0000fault"},
                                format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "name", "message": "Null characters are not allowed."},
        ]}
        assert Provider.objects.count() == 0

    def test_lone_surrogate_in_a_provider_name(self, owner_api, project):
        body = json.dumps({**self.PROVIDER, "name": "PLACEHOLDER"}).replace("PLACEHOLDER", "\\ud83d")

        answer = post_json(owner_api, url("providers/"), body)

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "name",
            "message": "Surrogate characters are not allowed: U+D83D.",
        }]}
        assert Provider.objects.count() == 0

    def test_nul_in_a_criterion_name(self, owner_api, project):
        answer = owner_api.post(url("criteria/"), {"name": "Tone\u0000", "definition": "Polite."},
                                format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "name", "message": "Null characters are not allowed."},
        ]}
        assert Criterion.objects.count() == 0

    def test_lone_surrogate_in_a_criterion_definition(self, owner_api, project):
        body = '{"name": "Tone", "definition": "Polite \\udc00", "reason": "r"}'

        answer = post_json(owner_api, url("criteria/"), body)

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "definition",
            "message": "Surrogate characters are not allowed: U+DC00.",
        }]}
        assert (Criterion.objects.count(), CriterionVersion.objects.count()) == (0, 0)

    def test_lone_surrogate_in_a_grade_note(self, annotator_api, project, make_outputs):
        output = make_outputs(n_samples=1)[0]
        body = f'{{"output": {output.pk}, "verdict": "pass", "note": "\\ud800"}}'

        answer = post_json(annotator_api, url("grades/"), body)

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "note",
            "message": "Surrogate characters are not allowed: U+D800.",
        }]}
        assert output.grades.count() == 0


@pytest.mark.django_db
class TestUnknownRoutes:
    @pytest.mark.parametrize("path", ["/api/runs/-1/", "/api/suites/abc/export/", "/api/nothing/"])
    def test_api_answers_json(self, owner_api, path):
        answer = owner_api.get(path)

        assert answer.status_code == 404
        assert answer["Content-Type"] == "application/json"
        assert answer.json() == {"errors": [{"field": "", "message": "Not found."}]}

    def test_pages_keep_the_html_page(self, client, owner):
        client.force_login(owner)

        answer = client.get("/p/support-bot/nothing/")

        assert answer.status_code == 404
        assert answer["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.django_db
def test_validator_naming_a_criterion_with_a_nul(owner_api, project, accuracy):
    answer = owner_api.post(url("validators/"), {
        "kind": "code", "name": "x", "criterion": "accu\u0000racy",
        "source": "def check(output, input, reference, meta):\n    return True",
    }, format="json")

    assert answer.status_code == 400
    assert answer.json() == {"errors": [
        {"field": "criterion", "message": "contains a NUL character (at character 5)"},
    ]}
    assert Validator.objects.count() == 0
