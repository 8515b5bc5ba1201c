"""Pairwise, rating and comparator judges through the API: creation, refusals, runs."""

import pytest

from annotate.services.imports import outputs_import
from tests.api.conftest import url
from validators.models import PairVerdict, Run, Validator
from validators.services.providers import provider_save

PAIRWISE = "Q: {input}\nOutput (a): {output_a}\nOutput (b): {output_b}\nWhich is better?"
COMPARATOR = "def compare(output_a, output_b, input, reference, meta):\n    return len(output_a) - len(output_b)\n"


@pytest.fixture
def provider(project):
    return provider_save(project=project, base_url="http://127.0.0.1:9/v1", model="judge")


@pytest.mark.django_db
class TestPairJudgesApi:
    def test_create_a_pairwise_llm_judge(self, owner_api, provider):
        answer = owner_api.post(url("validators/"), {
            "kind": "llm", "target": "pair", "name": "judge", "source": PAIRWISE,
            "answer_patterns": "Winner: (a|b|tie)", "inconsistent": "error",
        }, format="json")

        assert answer.status_code == 201
        assert {k: answer.json()[k] for k in ("kind", "target", "provider", "answer_patterns", "inconsistent_is_tie")} == {
            "kind": "llm", "target": "pair", "provider": "default", "answer_patterns": "Winner: (a|b|tie)",
            "inconsistent_is_tie": False,
        }

    def test_a_template_missing_output_b_is_refused_on_the_source(self, owner_api, provider):
        answer = owner_api.post(url("validators/"), {
            "kind": "llm", "target": "pair", "name": "judge", "source": "Is {output_a} good?",
        }, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "source",
            "message": "the template never uses {output_b}, so the judge would not see that output",
        }]}
        assert Validator.objects.count() == 0

    def test_bad_answer_pattern_names_the_line(self, owner_api, provider):
        answer = owner_api.post(url("validators/"), {
            "kind": "rating", "name": "rater", "source": "Rate {output}.", "answer_patterns": "Score: (\\d+)\n[",
        }, format="json")

        assert answer.status_code == 400
        [error] = answer.json()["errors"]
        assert error["field"] == "answer_patterns"
        assert error["message"].startswith("Line 2 of the answer patterns is not a regular expression")
        assert Validator.objects.count() == 0

    def test_external_kind_and_unknown_target_are_refused(self, owner_api, project):
        external = owner_api.post(url("validators/"), {"kind": "external", "name": "e", "source": "x"}, format="json")
        trio = owner_api.post(url("validators/"), {"kind": "code", "target": "trio", "name": "c", "source": COMPARATOR},
                              format="json")

        assert external.status_code == 400
        assert external.json()["errors"][0]["field"] == "kind"
        assert trio.status_code == 400
        assert trio.json()["errors"][0]["field"] == "target"
        assert Validator.objects.count() == 0

    def test_run_a_comparator_over_the_pairs(self, owner_api, project, django_capture_on_commit_callbacks):
        outputs_import(project=project, records=[
            {"item_id": f"p{i}", "input": f"Question {i}?", "system_a": None, "output_a": "short",
             "system_b": None, "output_b": "a longer answer", "human_preference": "b"}
            for i in range(2)
        ])
        comparator = owner_api.post(url("validators/"), {
            "kind": "code", "target": "pair", "name": "longer", "source": COMPARATOR,
        }, format="json").json()

        with django_capture_on_commit_callbacks(execute=True):
            answer = owner_api.post(url("runs/"), {"validators": [comparator["id"]]}, format="json")

        assert answer.status_code == 201
        run = Run.objects.get()
        assert (run.status, run.total, run.done, run.failed) == ("done", 2, 2, 0)
        assert list(PairVerdict.objects.values_list("winner", flat=True)) == ["b", "b"]

