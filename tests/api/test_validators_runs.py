"""Providers, validators (create, import, export) and runs through the API."""

import pytest

from annotate.models import Criterion
from concord_testing.llm_stub import LLMStubServer, keyword_responder
from tests.api.conftest import url
from validators.models import Provider, Run, Validator, VerdictRecord

MENTIONS_ALPHA = "def check(output, input, reference, meta):\n    return 'alpha' in output\n"
LENGTH = "def check(output, input, reference, meta):\n    return len(output) / 100\n"
GROUNDED = "Answer: {output}\nIs the answer supported? Answer YES or NO."


@pytest.mark.django_db
class TestValidators:
    def test_create_a_code_assertion_for_a_criterion(self, owner_api, owner, accuracy):
        answer = owner_api.post(url("validators/"), {
            "criterion": "accuracy", "kind": "code", "name": "mentions alpha",
            "source": MENTIONS_ALPHA,
        }, format="json")

        assert answer.status_code == 201
        validator = Validator.objects.get()
        assert {k: answer.json()[k] for k in ("id", "criterion", "kind", "name", "source",
                                              "threshold", "provider", "origin", "verdicts")} == {
            "id": validator.pk, "criterion": "accuracy", "kind": "code", "name": "mentions alpha",
            "source": MENTIONS_ALPHA, "threshold": None, "provider": None, "origin": "human",
            "verdicts": None,
        }
        assert (validator.criterion, validator.created_by) == (accuracy, owner)

    def test_source_that_does_not_compile_is_refused_on_the_source(self, owner_api, project):
        answer = owner_api.post(url("validators/"), {
            "kind": "code", "name": "broken", "source": "def check(:\n",
        }, format="json")

        assert answer.status_code == 400
        [error] = answer.json()["errors"]
        assert error["field"] == "source"
        assert Validator.objects.count() == 0

    def test_forbidden_import_is_refused(self, owner_api, project):
        answer = owner_api.post(url("validators/"), {
            "kind": "code", "name": "os", "source": "import os\ndef check(output, input, reference, meta):\n    return True\n",
        }, format="json")

        assert answer.status_code == 400
        [error] = answer.json()["errors"]
        assert error["field"] == "source"
        assert "os" in error["message"]
        assert Validator.objects.count() == 0

    def test_unknown_criterion_and_provider_are_named(self, owner_api, project):
        answer = owner_api.post(url("validators/"), {
            "criterion": "tone", "kind": "llm", "name": "g", "source": GROUNDED,
            "provider": "nowhere",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "criterion", "message": "No criterion 'tone' in this project."},
            {"field": "provider", "message": "No provider 'nowhere' in this project."},
        ]}

    def test_llm_grader_without_a_provider_says_how_to_add_one(self, owner_api, project):
        answer = owner_api.post(url("validators/"), {"kind": "llm", "name": "g",
                                                     "source": GROUNDED}, format="json")

        assert answer.status_code == 400
        [error] = answer.json()["errors"]
        assert error["field"] == "provider"
        assert "add an OpenAI-compatible endpoint" in error["message"]

    def test_provider_then_llm_grader(self, owner_api, project):
        provider = owner_api.post(url("providers/"), {
            "name": "default", "base_url": "http://127.0.0.1:9/v1", "model": "stub-model",
            "api_key_env": "CONCORD_LLM_KEY_STUB",
        }, format="json")
        grader = owner_api.post(url("validators/"), {
            "kind": "llm", "name": "grounded", "source": GROUNDED, "provider": "default",
        }, format="json")

        assert provider.status_code == 201
        assert {k: provider.json()[k] for k in ("name", "base_url", "model", "api_key_env")} == {
            "name": "default", "base_url": "http://127.0.0.1:9/v1", "model": "stub-model",
            "api_key_env": "CONCORD_LLM_KEY_STUB",
        }
        assert (grader.status_code, grader.json()["provider"]) == (201, "default")

    def test_provider_refuses_a_key_in_place_of_its_variable_name(self, owner_api, project):
        answer = owner_api.post(url("providers/"), {
            "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "sk-abc-123",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "api_key_env",
            "message": "Give the NAME of the environment variable that holds the key, not the key.",
        }]}
        assert Provider.objects.count() == 0

    def test_list_shows_verdict_counts(self, reviewer_api, project, make_outputs):
        outputs = make_outputs(n_samples=1, systems=("alpha", "beta"))
        check = Validator.objects.create(project=project, kind="code", name="c",
                                         source=MENTIONS_ALPHA)
        VerdictRecord.objects.create(validator=check, output=outputs[0], outcome="pass")
        VerdictRecord.objects.create(validator=check, output=outputs[1], outcome="fail")

        answer = reviewer_api.get(url("validators/"))

        assert answer.status_code == 200
        assert [(v["name"], v["verdicts"]) for v in answer.json()["results"]] == [
            ("c", {"pass": 1, "fail": 1, "error": 0}),
        ]


@pytest.mark.django_db
class TestImportExport:
    FILE = {"validators": [
        {"name": "mentions alpha", "criterion": "accuracy", "kind": "code", "threshold": None,
         "source": MENTIONS_ALPHA},
        {"name": "long enough", "criterion": None, "kind": "code", "threshold": 0.1,
         "source": LENGTH},
    ]}

    def test_import_creates_missing_criteria_when_asked(self, owner_api, project):
        answer = owner_api.post(
            url("validators/import/") + "?create_criteria=true", self.FILE, format="json"
        )

        assert answer.status_code == 201
        assert answer.json()["created"] == 2
        assert [(v["name"], v["criterion"], v["origin"]) for v in answer.json()["validators"]] == [
            ("mentions alpha", "accuracy", "imported"), ("long enough", None, "imported"),
        ]
        assert list(Criterion.objects.filter(project=project).values_list("key", flat=True)) == [
            "accuracy"
        ]

    def test_unknown_criteria_are_refused_with_their_names(self, owner_api, project, accuracy):
        # Given a project with 'accuracy' and a file naming it, a typo of it and another one
        file = [
            {"name": "a", "criterion": "accuracy", "kind": "code", "source": MENTIONS_ALPHA},
            {"name": "b", "criterion": "acuracy", "kind": "code", "source": MENTIONS_ALPHA},
            {"name": "c", "criterion": "tone", "kind": "code", "source": LENGTH},
            {"name": "d", "criterion": "acuracy", "kind": "code", "source": LENGTH},
        ]

        # When
        answer = owner_api.post(url("validators/import/"), file, format="json")

        # Then
        assert answer.status_code == 400
        hint = "(this project has: accuracy); ask the import to create missing criteria to add it"
        assert answer.json() == {"errors": [
            {"entry": 2, "line": 2, "field": "criterion", "message": f"unknown criterion 'acuracy' {hint}"},
            {"entry": 3, "line": 3, "field": "criterion", "message": f"unknown criterion 'tone' {hint}"},
            {"entry": 4, "line": 4, "field": "criterion", "message": f"unknown criterion 'acuracy' {hint}"},
        ]}
        assert Validator.objects.count() == 0
        assert list(Criterion.objects.values_list("key", flat=True)) == ["accuracy"]

    @pytest.mark.parametrize("value", ["false", "0", ""])
    def test_create_criteria_false_refuses_too(self, owner_api, project, value):
        answer = owner_api.post(
            url("validators/import/") + f"?create_criteria={value}", self.FILE, format="json"
        )

        assert answer.status_code == 400
        assert [(e["line"], e["field"]) for e in answer.json()["errors"]] == [(1, "criterion")]
        assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)

    def test_a_create_criteria_that_is_not_a_boolean_is_refused(self, owner_api, project):
        answer = owner_api.post(
            url("validators/import/") + "?create_criteria=maybe", self.FILE, format="json"
        )

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"line": 0, "field": "create_criteria", "message": "must be true or false"},
        ]}
        assert (Validator.objects.count(), Criterion.objects.count()) == (0, 0)

    def test_import_takes_a_bare_list_and_skips_what_is_there(self, owner_api, project, accuracy):
        owner_api.post(url("validators/import/"), self.FILE, format="json")

        again = owner_api.post(url("validators/import/"), self.FILE["validators"], format="json")

        assert (again.status_code, again.json()) == (200, {"created": 0, "validators": []})
        assert Validator.objects.count() == 2

    def test_import_problems_name_the_entry_and_nothing_is_written(self, owner_api, project):
        bad = {"validators": [
            self.FILE["validators"][0],
            {"name": "broken", "kind": "code", "source": "def check(:\n"},
            {"name": "t", "kind": "code", "source": LENGTH, "threshold": "high"},
        ]}

        answer = owner_api.post(
            url("validators/import/") + "?create_criteria=true", bad, format="json"
        )

        assert answer.status_code == 400
        errors = answer.json()["errors"]
        assert [(e["line"], e["field"]) for e in errors] == [(2, "source"), (3, "threshold")]
        assert errors[1]["message"] == "must be a number or null"
        assert Validator.objects.count() == 0
        assert Criterion.objects.count() == 0

    def test_malformed_criterion_key_in_the_file(self, owner_api, project):
        answer = owner_api.post(url("validators/import/"), [
            {"name": "x", "criterion": "Not A Key", "kind": "code", "source": LENGTH},
        ], format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "entry": 1, "line": 1, "field": "criterion",
            "message": "Criterion key 'Not A Key': Use letters, digits, '_' and '-' (no spaces).",
        }]}
        assert Validator.objects.count() == 0

    def test_export_round_trips(self, owner_api, reviewer_api, project, accuracy):
        owner_api.post(url("validators/import/"), self.FILE, format="json")

        answer = reviewer_api.get(url("validators/export/"))

        assert answer.status_code == 200
        assert answer.json() == self.FILE


@pytest.fixture
def two_validators(project, accuracy):
    from validators.services.authoring import validator_create

    return (
        validator_create(project=project, kind="code", name="mentions alpha",
                         source=MENTIONS_ALPHA),
        validator_create(project=project, kind="code", name="long", source=LENGTH,
                         threshold=0.5, criterion=accuracy),
    )


@pytest.mark.django_db
class TestRuns:
    def test_run_all_then_poll_until_done(self, owner_api, reviewer_api, make_outputs,
                                          two_validators, django_capture_on_commit_callbacks):
        make_outputs(n_samples=2, systems=("alpha", "beta"))

        with django_capture_on_commit_callbacks(execute=True):
            started = owner_api.post(url("runs/"), {"validators": "all"}, format="json")

        assert started.status_code == 201
        run = Run.objects.get()
        assert {k: started.json()[k] for k in ("id", "status", "total", "done", "failed")} == {
            "id": run.pk, "status": "queued", "total": 8, "done": 0, "failed": 0,
        }
        polled = reviewer_api.get(f"/api/runs/{run.pk}/")
        assert polled.status_code == 200
        assert {k: polled.json()[k] for k in ("status", "total", "done", "failed", "project")} == {
            "status": "done", "total": 8, "done": 8, "failed": 0, "project": "support-bot",
        }
        assert sorted(polled.json()["validators"]) == sorted(v.pk for v in two_validators)
        assert VerdictRecord.objects.filter(outcome="pass", validator=two_validators[0]).count() == 2

    def test_run_chosen_validators(self, owner_api, make_outputs, two_validators,
                                   django_capture_on_commit_callbacks):
        make_outputs(n_samples=2, systems=("alpha", "beta"))

        with django_capture_on_commit_callbacks(execute=True):
            started = owner_api.post(url("runs/"), {"validators": [two_validators[0].pk]},
                                     format="json")

        assert (started.status_code, started.json()["total"]) == (201, 4)
        assert VerdictRecord.objects.filter(validator=two_validators[1]).count() == 0
        assert VerdictRecord.objects.filter(validator=two_validators[0]).count() == 4

    def test_unknown_validator_ids_are_refused(self, owner_api, owner, make_outputs,
                                               two_validators):
        from annotate.services.projects import project_create
        from validators.services.authoring import validator_create

        other = project_create(name="Other", slug="other", owner=owner)
        foreign = validator_create(project=other, kind="code", name="f", source=LENGTH,
                                   threshold=0.1)

        answer = owner_api.post(url("runs/"), {"validators": [two_validators[0].pk, foreign.pk]},
                                format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "validators", "message": f"No active validator {foreign.pk} in this project."},
        ]}
        assert Run.objects.count() == 0

    def test_malformed_and_empty_choices(self, owner_api, project, two_validators):
        malformed = owner_api.post(url("runs/"), {"validators": "some"}, format="json")
        empty = owner_api.post(url("runs/"), {"validators": []}, format="json")

        assert malformed.json() == {"errors": [
            {"field": "validators", "message": 'Give a list of validator ids or "all".'},
        ]}
        assert empty.json() == {"errors": [
            {"field": "validators", "message": "There are no validators to run."},
        ]}
        assert Run.objects.count() == 0

    def test_llm_run_against_a_stub(self, owner_api, make_outputs,
                                    django_capture_on_commit_callbacks):
        make_outputs(n_samples=2, systems=("alpha", "beta"))
        with LLMStubServer(responder=keyword_responder("alpha")) as stub:
            owner_api.post(url("providers/"), {"base_url": stub.base_url, "model": "stub-model"},
                           format="json")
            grader = owner_api.post(url("validators/"), {
                "kind": "llm", "name": "grounded", "source": GROUNDED,
            }, format="json").json()
            with django_capture_on_commit_callbacks(execute=True):
                started = owner_api.post(url("runs/"), {}, format="json")

        run = owner_api.get(f"/api/runs/{started.json()['id']}/").json()
        assert (run["status"], run["done"], run["failed"]) == ("done", 4, 0)
        assert sorted(
            VerdictRecord.objects.filter(validator_id=grader["id"])
            .values_list("output__system", "outcome")
        ) == [("alpha", "pass"), ("alpha", "pass"), ("beta", "fail"), ("beta", "fail")]

    def test_runs_of_other_projects_are_hidden(self, api_for, outsider, owner_api, project,
                                               two_validators, make_outputs):
        make_outputs(n_samples=1)
        run_id = owner_api.post(url("runs/"), {}, format="json").json()["id"]

        assert api_for(outsider).get(f"/api/runs/{run_id}/").status_code == 404
        assert owner_api.get("/api/runs/999999/").status_code == 404

    def test_runs_are_listed(self, reviewer_api, owner_api, project, two_validators):
        run_id = owner_api.post(url("runs/"), {}, format="json").json()["id"]

        answer = reviewer_api.get(url("runs/"))

        assert [r["id"] for r in answer.json()["results"]] == [run_id]
