"""POST …/import/: files and record lists, all or nothing."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Comparison, Criterion, Grade, GradeCriterion, Output, Sample
from tests.api.conftest import url

RECORDS = [
    {"item_id": "q1", "input": "Capital of France?", "reference": "Paris", "system": "alpha",
     "output": "Paris.", "human": {"label": 1, "criteria": {"accuracy": 1}}},
    {"item_id": "q1", "input": "Capital of France?", "reference": "Paris", "system": "beta",
     "output": "Lyon.", "human": {"label": 0, "criteria": {"accuracy": 0}}},
    {"item_id": "q2", "input": "2 + 2?", "reference": None, "system": "alpha", "output": "4",
     "human": {"label": 1}},
]


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def rows() -> tuple[int, int, int, int]:
    return (Sample.objects.count(), Output.objects.count(), Grade.objects.count(),
            Comparison.objects.count())


@pytest.mark.django_db
class TestImport:
    def test_jsonl_upload_creates_samples_and_outputs(self, owner_api, project):
        answer = owner_api.post(url("import/"), {"file": upload("batch.jsonl", jsonl(RECORDS))},
                                format="multipart")

        assert answer.status_code == 201
        assert answer.json() == {
            "kind": "per_output", "records": 3, "samples": 2, "outputs": 3, "unchanged": 0,
            "grades": 0, "comparisons": 0, "criteria_created": [],
            "message": "Imported 2 samples, 3 outputs.",
        }
        assert rows() == (2, 3, 0, 0)
        assert Output.objects.get(system="beta").text == "Lyon."

    def test_reimport_says_nothing_new(self, owner_api, project):
        owner_api.post(url("import/"), {"file": upload("batch.jsonl", jsonl(RECORDS))},
                       format="multipart")

        again = owner_api.post(url("import/"), {"file": upload("again.jsonl", jsonl(RECORDS))},
                               format="multipart")

        assert again.status_code == 200
        body = again.json()
        assert (body["samples"], body["outputs"], body["unchanged"]) == (0, 0, 3)
        assert body["message"] == "Nothing new: all 3 outputs in the file were already imported."
        assert rows() == (2, 3, 0, 0)

    def test_records_in_a_json_body(self, owner_api, project):
        answer = owner_api.post(url("import/"), {"records": RECORDS[:2]}, format="json")

        assert answer.status_code == 201
        assert (answer.json()["samples"], answer.json()["outputs"]) == (1, 2)
        assert rows() == (1, 2, 0, 0)

    def test_problems_name_line_and_field_and_nothing_is_written(self, owner_api, project):
        bad = [RECORDS[0], {**RECORDS[1], "output": 42}, {"item_id": "q3", "system": "alpha",
                                                           "output": "x"}]

        answer = owner_api.post(url("import/"), {"file": upload("bad.jsonl", jsonl(bad))},
                                format="multipart")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"line": 2, "field": "output", "message": "must be a string, not a number"},
            {"line": 3, "field": "input", "message": "is missing"},
        ]}
        assert rows() == (0, 0, 0, 0)

    def test_invalid_json_line_is_reported_by_line(self, owner_api, project):
        content = jsonl(RECORDS[:1]) + b"{not json\n"

        answer = owner_api.post(url("import/"), {"file": upload("bad.jsonl", content)},
                                format="multipart")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "line": 2, "field": "",
            "message": "invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        }]}
        assert rows() == (0, 0, 0, 0)

    def test_unknown_file_type_is_refused(self, owner_api, project):
        answer = owner_api.post(url("import/"), {"file": upload("notes.txt", b"hello")},
                                format="multipart")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "line": 0, "field": "file",
            "message": "cannot tell the format of 'notes.txt': use .jsonl, .csv or .parquet",
        }]}

    def test_neither_file_nor_records(self, owner_api, project):
        answer = owner_api.post(url("import/"), {"rows": []}, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "line": 0, "field": "file",
            "message": 'send a file (multipart field "file") or a JSON body {"records": [...]}',
        }]}

    def test_csv_upload(self, owner_api, project):
        content = (
            b"item_id,input,reference,system,output\n"
            b"q1,Capital of France?,Paris,alpha,Paris.\n"
            b"q1,Capital of France?,Paris,beta,Lyon.\n"
        )

        answer = owner_api.post(url("import/"), {"file": upload("batch.csv", content)},
                                format="multipart")

        assert answer.status_code == 201
        assert (answer.json()["samples"], answer.json()["outputs"]) == (1, 2)

    def test_parquet_upload(self, owner_api, project):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([
            {k: v for k, v in r.items() if k != "human"} for r in RECORDS
        ])
        buffer = io.BytesIO()
        pq.write_table(table, buffer)

        answer = owner_api.post(url("import/"), {"file": upload("batch.parquet", buffer.getvalue())},
                                format="multipart")

        assert answer.status_code == 201
        assert (answer.json()["samples"], answer.json()["outputs"]) == (2, 3)

    def test_with_labels_turns_human_fields_into_grades(self, owner_api, project):
        answer = owner_api.post(
            url("import/") + "?with_labels=1", {"file": upload("batch.jsonl", jsonl(RECORDS))},
            format="multipart",
        )

        assert answer.status_code == 201
        assert (answer.json()["grades"], answer.json()["criteria_created"]) == (3, ["accuracy"])
        assert sorted(Grade.objects.values_list("output__system", "verdict", "annotator__username")) == [
            ("alpha", "pass", "import"), ("alpha", "pass", "import"), ("beta", "fail", "import"),
        ]
        assert Criterion.objects.filter(project=project, key="accuracy").exists()
        assert GradeCriterion.objects.count() == 2

    def test_labels_are_ignored_without_the_flag(self, owner_api, project):
        answer = owner_api.post(url("import/"), {"records": RECORDS}, format="json")

        assert answer.json()["grades"] == 0
        assert Grade.objects.count() == 0

    def test_pairwise_records_with_labels_become_comparisons(self, owner_api, project):
        pairs = [{"item_id": "p1", "input": "Say hi", "system_a": "alpha", "output_a": "Hi",
                  "system_b": "beta", "output_b": "Hello there", "human_preference": "b"}]

        answer = owner_api.post(url("import/") + "?with_labels=true", {"records": pairs},
                                format="json")

        assert answer.status_code == 201
        assert (answer.json()["kind"], answer.json()["outputs"], answer.json()["comparisons"]) == (
            "pairwise", 2, 1)
        assert Comparison.objects.get().choice == "b"
