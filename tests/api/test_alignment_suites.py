"""Grades flow into the report card; a suite is saved and exported."""

import json
import subprocess
import sys

import pytest

from tests.api.conftest import url
from validators.models import Suite

MENTIONS_ALPHA = "def check(output, input, reference, meta):\n    return 'alpha' in output\n"
ALWAYS = "def check(output, input, reference, meta):\n    return True\n"


@pytest.fixture
def ran(owner_api, make_outputs, django_capture_on_commit_callbacks):
    """Eight outputs (alpha and beta on four inputs) and two holistic validators, run."""
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    ids = {}
    for name, source in (("mentions alpha", MENTIONS_ALPHA), ("always", ALWAYS)):
        ids[name] = owner_api.post(url("validators/"), {
            "kind": "code", "name": name, "source": source,
        }, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        owner_api.post(url("runs/"), {"validators": "all"}, format="json")
    return outputs, ids


def grade_all(client, outputs) -> None:
    """People pass alpha's answers and fail beta's."""
    for output in outputs:
        answer = client.post(url("grades/"), {
            "output": output.pk, "verdict": "pass" if output.system == "alpha" else "fail",
        }, format="json")
        assert answer.status_code == 201


def holistic(body: dict) -> dict:
    return next(c for c in body["criteria"] if c["key"] == "__holistic__")


@pytest.mark.django_db
class TestAlignment:
    def test_before_any_grade_nothing_is_chosen(self, reviewer_api, ran):
        answer = reviewer_api.get(url("alignment/"))

        assert answer.status_code == 200
        body = answer.json()
        entry = holistic(body)
        assert (entry["chosen"], entry["n_human_pass"], entry["n_human_fail"]) == (None, 0, 0)
        assert body["n_grades"] == 0
        assert (body["suite"]["coverage"], body["suite"]["ffr"]) == (None, None)

    def test_grades_through_the_api_choose_the_aligned_validator(
        self, annotator_api, reviewer_api, ran
    ):
        outputs, ids = ran

        grade_all(annotator_api, outputs)
        body = reviewer_api.get(url("alignment/")).json()

        entry = holistic(body)
        assert (entry["chosen"], entry["n_human_pass"], entry["n_human_fail"]) == (
            ids["mentions alpha"], 4, 4)
        candidates = {c["validator"]: c for c in entry["candidates"]}
        aligned, lenient = candidates[ids["mentions alpha"]], candidates[ids["always"]]
        assert {k: aligned[k] for k in ("coverage", "ffr", "alignment", "n_pass", "n_fail",
                                        "status", "rank")} == {
            "coverage": 1.0, "ffr": 0.0, "alignment": 1.0, "n_pass": 4, "n_fail": 4,
            "status": "chosen", "rank": 1,
        }
        assert aligned["confusion"] == {"tp": 4, "fn": 0, "fp": 0, "tn": 4}
        assert (lenient["coverage"], lenient["ffr"]) == (0.0, 0.0)
        assert body["suite"]["validators"] == [ids["mentions alpha"]]
        assert (body["suite"]["coverage"], body["suite"]["ffr"]) == (1.0, 0.0)
        assert body["n_grades"] == 8

    def test_an_always_pass_validator_alone_is_never_chosen(
        self, owner_api, annotator_api, reviewer_api, make_outputs,
        django_capture_on_commit_callbacks,
    ):
        outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
        ids = {"always": owner_api.post(url("validators/"), {
            "kind": "code", "name": "always", "source": ALWAYS,
        }, format="json").json()["id"]}
        with django_capture_on_commit_callbacks(execute=True):
            owner_api.post(url("runs/"), {"validators": "all"}, format="json")

        grade_all(annotator_api, outputs)
        body = reviewer_api.get(url("alignment/")).json()

        entry = holistic(body)
        assert (entry["chosen"], entry["reason"]) == (None, "no candidate catches any failure yet")
        assert [(c["validator"], c["status"], c["reason"], c["coverage"], c["ffr"])
                for c in entry["candidates"]] == [
            (ids["always"], "catches_nothing",
             "catches none of the 4 failing grades (coverage 0.00)", 0.0, 0.0),
        ]
        assert body["suite"]["validators"] == []


@pytest.mark.django_db
class TestSuites:
    def test_save_list_and_export_as_json(self, owner_api, reviewer_api, annotator_api, ran):
        outputs, ids = ran
        grade_all(annotator_api, outputs)

        saved = owner_api.post(url("suites/"), {"name": "First card"}, format="json")

        assert saved.status_code == 201
        suite = Suite.objects.get()
        body = saved.json()
        assert {k: body[k] for k in ("id", "name", "coverage", "ffr", "n_grades", "validators",
                                     "created_by")} == {
            "id": suite.pk, "name": "First card", "coverage": 1.0, "ffr": 0.0, "n_grades": 8,
            "validators": [ids["mentions alpha"]], "created_by": "olivia",
        }
        assert body["export"] == {
            "json": f"/api/suites/{suite.pk}/export/?format=json",
            "py": f"/api/suites/{suite.pk}/export/?format=py",
        }
        listed = reviewer_api.get(url("suites/")).json()["results"]
        assert [s["id"] for s in listed] == [suite.pk]
        exported = reviewer_api.get(body["export"]["json"])
        assert exported.status_code == 200
        assert exported["Content-Disposition"] == 'attachment; filename="support-bot_suite.json"'
        data = exported.json()
        assert (data["name"], data["project"], data["coverage"]) == ("First card", "support-bot", 1.0)
        assert [v["name"] for v in data["validators"]] == ["mentions alpha"]

    def test_export_as_a_python_module_that_runs(self, owner_api, annotator_api, ran, tmp_path):
        outputs, _ = ran
        grade_all(annotator_api, outputs)
        suite_id = owner_api.post(url("suites/"), {}, format="json").json()["id"]

        exported = owner_api.get(f"/api/suites/{suite_id}/export/?format=py")

        assert exported.status_code == 200
        assert exported["Content-Type"] == "text/x-python; charset=utf-8"
        assert exported["Content-Disposition"] == 'attachment; filename="support-bot_suite.py"'
        module = tmp_path / "suite.py"
        module.write_bytes(exported.content)
        data = tmp_path / "outputs.jsonl"
        data.write_text(
            json.dumps({"item_id": "x", "system": "alpha", "output": "alpha says hi"}) + "\n"
            + json.dumps({"item_id": "x", "system": "beta", "output": "beta says hi"}) + "\n"
        )
        ran_module = subprocess.run(
            [sys.executable, str(module), str(data)], capture_output=True, text=True, timeout=60,
            check=True,
        )
        assert [json.loads(line)["suite"] for line in ran_module.stdout.splitlines()] == [
            "pass", "fail",
        ]

    def test_nothing_chosen_nothing_saved(self, owner_api, ran):
        answer = owner_api.post(url("suites/"), {"name": "Too early"}, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "",
            "message": "No criterion has a chosen validator yet, so there is nothing to save.",
        }]}
        assert Suite.objects.count() == 0

    def test_unknown_format_and_foreign_suites(self, owner_api, annotator_api, api_for,
                                               outsider, ran):
        outputs, _ = ran
        grade_all(annotator_api, outputs)
        suite_id = owner_api.post(url("suites/"), {}, format="json").json()["id"]

        unknown = owner_api.get(f"/api/suites/{suite_id}/export/?format=xml")
        foreign = api_for(outsider).get(f"/api/suites/{suite_id}/export/?format=py")

        assert unknown.status_code == 404
        assert (foreign.status_code, foreign["Content-Type"]) == (404, "application/json")
        assert foreign.json() == {"errors": [{"field": "", "message": "Not found."}]}
