"""POST …/import/ with the files an outside check sent (issue 12): each one is a 400 naming
the line and the field, never a 500, and nothing is written."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Comparison, Criterion, Grade, Output, Sample
from tests.api.conftest import url


def record(**changes) -> dict:
    return {"item_id": "q1", "input": "Capital of France?", "reference": "Paris",
            "system": "alpha", "output": "Paris.", **changes}


def post_file(client, name: str, content: bytes, *, with_labels: bool = False):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    path = url("import/") + ("?with_labels=1" if with_labels else "")
    return client.post(path, {"file": upload}, format="multipart")


def lines(*texts: str) -> bytes:
    """JSON Lines written by hand: json.dumps cannot write some of what attackers send."""
    return "".join(text + "\n" for text in texts).encode("utf-8", "surrogatepass")


GOOD_LINE = json.dumps(record(item_id="q0"))


def assert_nothing_written():
    assert (Sample.objects.count(), Output.objects.count(), Grade.objects.count(),
            Comparison.objects.count(), Criterion.objects.count()) == (0, 0, 0, 0, 0)


def assert_refused(answer, errors: list[dict]):
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"errors": errors}
    assert_nothing_written()


@pytest.fixture
def rating_project(project):
    project.scale, project.scale_min, project.scale_max, project.pass_threshold = (
        "rating", 1.0, 5.0, 3.0,
    )
    project.save()
    return project


@pytest.mark.django_db
class TestHostileJsonLines:
    def test_metadata_nested_100000_deep(self, owner_api):
        deep = '{"item_id": "q1", "input": "i", "system": "a", "output": "o", "metadata": ' + (
            '{"a": ' * 100_000) + "1" + "}" * 100_001

        answer = post_file(owner_api, "deep.jsonl", lines(GOOD_LINE, deep))

        assert_refused(answer, [
            {"line": 2, "field": "", "message": "invalid JSON: nested too deeply (at most 64 levels)"},
        ])

    def test_metadata_nested_just_past_the_limit(self, owner_api):
        nested = 1
        for _ in range(65):
            nested = {"a": nested}

        answer = post_file(owner_api, "deep.jsonl", lines(json.dumps(record(metadata=nested))))

        assert_refused(answer, [{
            "line": 1, "field": "metadata" + ".a" * 63,
            "message": "is nested more than 64 levels deep",
        }])

    def test_infinity_in_metadata(self, owner_api):
        answer = post_file(owner_api, "inf.jsonl", lines(
            GOOD_LINE, '{"item_id": "q1", "input": "i", "system": "a", "output": "o", '
                       '"metadata": {"weight": Infinity}}',
        ))

        assert_refused(answer, [
            {"line": 2, "field": "metadata.weight", "message": "must be a finite number, not Infinity"},
        ])

    def test_nul_in_a_field(self, owner_api):
        answer = post_file(owner_api, "nul.jsonl", lines(json.dumps(record(output="Par\u0000is"))))

        assert_refused(answer, [
            {"line": 1, "field": "output", "message": "contains a NUL character (at character 4)"},
        ])

    def test_nul_in_a_key(self, owner_api):
        answer = post_file(owner_api, "nul.jsonl", lines(
            json.dumps(record(metadata={"ta\u0000g": "x"}))
        ))

        assert_refused(answer, [{
            "line": 1, "field": "metadata.ta\x00g",
            "message": "key contains a NUL character (at character 3)",
        }])

    def test_lone_surrogate(self, owner_api):
        answer = post_file(owner_api, "surrogate.jsonl", lines(
            GOOD_LINE, '{"item_id": "q1", "input": "\\ud800 alone", "system": "a", "output": "o"}',
        ))

        assert_refused(answer, [{
            "line": 2, "field": "input",
            "message": "contains an unpaired surrogate U+D800 (at character 1); "
                       "the text is not valid Unicode",
        }])

    def test_criterion_key_with_spaces_and_punctuation(self, owner_api):
        bad = record(human={"label": 1, "criteria": {"bad key!": 1}})

        answer = post_file(owner_api, "keys.jsonl", lines(json.dumps(bad)), with_labels=True)

        assert_refused(answer, [{
            "line": 1, "field": "human.criteria.bad key!",
            "message": "the criterion key 'bad key!' is not valid: use letters, digits, '_' and "
                       "'-' (no spaces), starting with a letter or digit",
        }])

    def test_criterion_key_of_500_characters(self, owner_api):
        bad = record(human={"label": 1, "criteria": {"k" * 500: 1}})

        answer = post_file(owner_api, "keys.jsonl", lines(json.dumps(bad)), with_labels=True)

        assert_refused(answer, [{
            "line": 1, "field": "human.criteria." + "k" * 37 + "...",
            "message": "the criterion key is longer than 64 characters",
        }])

    def test_label_of_5000_digits(self, owner_api):
        bad = '{"item_id": "q1", "input": "i", "system": "a", "output": "o", "human": {"label": ' + (
            "9" * 5000) + "}}"

        answer = post_file(owner_api, "label.jsonl", lines(GOOD_LINE, bad), with_labels=True)

        assert answer.status_code == 400
        (error,) = answer.json()["errors"]
        assert (error["line"], error["field"]) == (2, "")
        assert error["message"].startswith("invalid JSON: Exceeds the limit (4300 digits)")
        assert_nothing_written()

    def test_label_of_4000_digits_is_quoted_short(self, owner_api):
        bad = '{"item_id": "q1", "input": "i", "system": "a", "output": "o", "human": {"label": ' + (
            "9" * 4000) + "}}"

        answer = post_file(owner_api, "label.jsonl", lines(bad), with_labels=True)

        assert_refused(answer, [{
            "line": 1, "field": "human.label",
            "message": "must be 0, 1 or null, not " + "9" * 37 + "...",
        }])


@pytest.mark.django_db
class TestHostileCsv:
    def test_nul_in_a_csv_file(self, owner_api):
        content = b"item_id,input,system,output\nq1,Capital?,alpha,Par\x00is\n"

        answer = post_file(owner_api, "nul.csv", content)

        assert_refused(answer, [
            {"line": 2, "field": "output", "message": "contains a NUL character (at character 4)"},
        ])

    def test_infinity_in_a_json_column(self, owner_api):
        content = b'item_id,input,system,output,metadata\nq1,Capital?,alpha,Paris,"{""w"": -Infinity}"\n'

        answer = post_file(owner_api, "inf.csv", content)

        assert_refused(answer, [
            {"line": 2, "field": "metadata.w", "message": "must be a finite number, not -Infinity"},
        ])


@pytest.mark.django_db
class TestScoresOffTheScale:
    @pytest.mark.parametrize(("score", "shown"), [
        ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"),
    ])
    def test_non_finite_scores_on_a_rating_project(self, owner_api, rating_project, score, shown):
        bad = ('{"item_id": "q1", "input": "i", "system": "a", "output": "o", '
               f'"human": {{"score": {score}}}}}')

        answer = post_file(owner_api, "scores.jsonl", lines(bad), with_labels=True)

        assert_refused(answer, [
            {"line": 1, "field": "human.score", "message": f"must be a finite number, not {shown}"},
        ])

    def test_score_outside_the_scale(self, owner_api, rating_project):
        good = record(item_id="q0", human={"score": 4})
        bad = record(human={"score": 99, "criteria_scores": {"fluency": 0}})

        answer = post_file(owner_api, "scores.jsonl", lines(json.dumps(good), json.dumps(bad)),
                           with_labels=True)

        assert_refused(answer, [
            {"line": 2, "field": "human.score",
             "message": "99 is outside the project's scale (1 to 5)"},
            {"line": 2, "field": "human.criteria_scores.fluency",
             "message": "0 is outside the project's scale (1 to 5)"},
        ])

    def test_score_outside_the_scale_is_fine_without_labels(self, owner_api, rating_project):
        answer = post_file(owner_api, "scores.jsonl", lines(json.dumps(record(human={"score": 99}))))

        assert answer.status_code == 201
        assert (Output.objects.count(), Grade.objects.count()) == (1, 0)

    @pytest.mark.parametrize(("score", "shown"), [("NaN", "NaN"), ("1e309", "Infinity")])
    def test_non_finite_scores_on_a_binary_project(self, owner_api, score, shown):
        bad = ('{"item_id": "q1", "input": "i", "system": "a", "output": "o", '
               f'"human": {{"label": 1, "score": {score}}}}}')

        answer = post_file(owner_api, "scores.jsonl", lines(bad), with_labels=True)

        assert_refused(answer, [
            {"line": 1, "field": "human.score", "message": f"must be a finite number, not {shown}"},
        ])


@pytest.mark.django_db
class TestTextSize:
    def test_output_over_the_limit_is_refused_with_line_and_field(self, owner_api, settings):
        settings.CONCORD_MAX_TEXT_BYTES = 1000
        fits = record(item_id="q0", output="é" * 500)  # 1,000 bytes
        too_big = record(output="x" * 1001, reference="r" * 2000)

        answer = post_file(owner_api, "big.jsonl", lines(json.dumps(fits), json.dumps(too_big)))

        assert_refused(answer, [
            {"line": 2, "field": "reference",
             "message": "is 2,000 bytes; the limit is 1,000 bytes (CONCORD_MAX_TEXT_BYTES)"},
            {"line": 2, "field": "output",
             "message": "is 1,001 bytes; the limit is 1,000 bytes (CONCORD_MAX_TEXT_BYTES)"},
        ])

    def test_default_limit_is_200_kb(self, owner_api):
        too_big = record(input="x" * (200 * 1024 + 1))

        answer = post_file(owner_api, "big.jsonl", lines(json.dumps(too_big)))

        assert_refused(answer, [
            {"line": 1, "field": "input",
             "message": "is 204,801 bytes; the limit is 204,800 bytes (CONCORD_MAX_TEXT_BYTES)"},
        ])

    def test_pairwise_outputs_are_measured_too(self, owner_api, settings):
        settings.CONCORD_MAX_TEXT_BYTES = 100
        pair = {"item_id": "p1", "input": "i", "output_a": "a" * 101, "output_b": "b"}

        answer = post_file(owner_api, "pairs.jsonl", lines(json.dumps(pair)))

        assert_refused(answer, [
            {"line": 1, "field": "output_a",
             "message": "is 101 bytes; the limit is 100 bytes (CONCORD_MAX_TEXT_BYTES)"},
        ])


@pytest.mark.django_db
class TestJsonBody:
    def test_records_with_a_lone_surrogate(self, owner_api):
        body = '{"records": [{"item_id": "q1", "input": "i", "system": "a", "output": "\\udfff"}]}'

        answer = owner_api.post(url("import/"), body, content_type="application/json")

        assert_refused(answer, [{
            "line": 1, "field": "output",
            "message": "contains an unpaired surrogate U+DFFF (at character 1); "
                       "the text is not valid Unicode",
        }])

    def test_records_nested_100000_deep(self, owner_api):
        body = '{"records": [' + "[" * 100_000 + "]" * 100_000 + "]}"

        answer = owner_api.post(url("import/"), body, content_type="application/json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"line": 0, "field": "", "message": "JSON parse error - nested too deeply"},
        ]}
        assert_nothing_written()

    def test_body_over_the_size_limit_answers_json(self, owner_api, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        body = json.dumps({"records": [record(output="x" * 2000)]})

        answer = owner_api.post(url("import/"), body, content_type="application/json")

        assert answer.status_code == 413
        assert answer["Content-Type"] == "application/json"
        assert answer.json() == {"errors": [{
            "field": "", "message":
                f"The request body is {len(body):,} bytes; the limit is 1,000 bytes "
                "(DATA_UPLOAD_MAX_MEMORY_SIZE). Send large imports as a file upload.",
        }]}
        assert_nothing_written()
