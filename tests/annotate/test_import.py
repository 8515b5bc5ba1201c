import io
import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from annotate.models import Comparison, Criterion, Grade, GradeCriterion, Output, Sample
from annotate.services.imports import outputs_import


def record(item="q1", system="alpha", output="An answer.", **extra):
    return {"item_id": item, "input": f"Question {item}?", "reference": "Ref.", "system": system,
            "output": output, **extra}


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def import_bytes(project, data: bytes, filename="outputs.jsonl", **kwargs):
    return outputs_import(project=project, stream=io.BytesIO(data), filename=filename, **kwargs)


def assert_nothing_written(project):
    assert Sample.objects.filter(project=project).count() == 0
    assert Output.objects.filter(project=project).count() == 0
    assert Grade.objects.filter(project=project).count() == 0
    assert Criterion.objects.filter(project=project).count() == 0


@pytest.mark.django_db
class TestGoodFiles:
    def test_jsonl_creates_samples_and_outputs(self, project):
        records = [record("q1", "alpha"), record("q1", "beta"), record("q2", "alpha")]

        result = import_bytes(project, jsonl(records))

        assert result.ok
        assert (result.samples_created, result.outputs_created) == (2, 3)
        assert sorted(Output.objects.filter(project=project).values_list("sample__external_id", "system")) == [
            ("q1", "alpha"), ("q1", "beta"), ("q2", "alpha")
        ]
        assert Sample.objects.get(project=project, external_id="q1").reference == "Ref."

    def test_reimport_creates_nothing_and_says_so(self, project):
        data = jsonl([record("q1", "alpha"), record("q2", "alpha")])
        import_bytes(project, data)

        again = import_bytes(project, data)

        assert again.ok and again.nothing_new
        assert again.outputs_unchanged == 2
        assert again.summary() == "Nothing new: all 2 outputs in the file were already imported."
        assert Output.objects.filter(project=project).count() == 2

    def test_reimport_with_one_new_line_adds_only_it(self, project):
        import_bytes(project, jsonl([record("q1", "alpha")]))

        result = import_bytes(project, jsonl([record("q1", "alpha"), record("q1", "gamma")]))

        assert (result.outputs_created, result.outputs_unchanged, result.samples_created) == (1, 1, 0)

    def test_with_labels_creates_grades_and_criteria(self, project):
        human = {"label": 0, "score": -5.0, "criteria": {"accuracy": 0, "fluency": 1}}
        records = [record("q1", "alpha", human=human), record("q1", "beta", human={"label": 1})]

        result = import_bytes(project, jsonl(records), with_labels=True)

        assert result.ok
        assert result.grades_created == 2
        assert result.criteria_created == ["accuracy", "fluency"]
        grade = Grade.objects.get(output__system="alpha")
        assert (grade.verdict, grade.score, grade.annotator.username) == ("fail", -5.0, "import")
        assert dict(GradeCriterion.objects.filter(grade=grade).values_list("criterion__key", "verdict")) == {
            "accuracy": "fail", "fluency": "pass"
        }
        assert Grade.objects.get(output__system="beta").verdict == "pass"

    def test_with_labels_twice_does_not_duplicate_grades(self, project):
        data = jsonl([record("q1", "alpha", human={"label": 1})])
        import_bytes(project, data, with_labels=True)

        again = import_bytes(project, data, with_labels=True)

        assert again.nothing_new
        assert Grade.objects.filter(project=project).count() == 1

    def test_labels_ignored_without_flag(self, project):
        result = import_bytes(project, jsonl([record(human={"label": 1})]))

        assert result.ok and result.grades_created == 0
        assert Grade.objects.count() == 0

    def test_rating_scale_project_uses_scores(self, project):
        project.scale, project.scale_min, project.scale_max, project.pass_threshold = "rating", 1, 5, 4
        project.save()
        human = {"score": 3.5, "label": None, "criteria_scores": {"coherence": 4.0, "fluency": 2.0}}

        import_bytes(project, jsonl([record(human=human)]), with_labels=True)

        grade = Grade.objects.get()
        assert (grade.verdict, grade.score) == ("fail", 3.5)
        assert dict(grade.criterion_verdicts.values_list("criterion__key", "verdict")) == {
            "coherence": "pass", "fluency": "fail"
        }

    def test_pairwise_with_labels_creates_comparisons(self, project):
        pairs = [
            {"item_id": "p1", "input": "Say hi", "system_a": "llama", "output_a": "Hi",
             "system_b": "opt", "output_b": "Hello", "human_preference": "b", "input_id": 7},
            {"item_id": "p2", "input": "Say hi", "system_a": "llama", "output_a": "Hi",
             "system_b": "bloom", "output_b": "", "human_preference": "a", "input_id": 7},
        ]

        result = import_bytes(project, jsonl(pairs), with_labels=True)

        assert result.ok, result.problems
        assert (result.samples_created, result.outputs_created, result.comparisons_created) == (1, 3, 2)
        assert sorted(Comparison.objects.values_list("output_a__system", "output_b__system", "choice")) == [
            ("llama", "bloom", "a"), ("llama", "opt", "b")
        ]

    def test_a_system_with_a_second_text_for_one_input_keeps_both(self, project):
        """PandaLM: the same model answered one prompt twice with different texts. Grouping by
        input_id would force one text per system there; the second pair gets its own input."""
        pairs = [
            {"item_id": "p1", "input": "Say hi", "system_a": "llama", "output_a": "Hi",
             "system_b": "opt", "output_b": "Hello", "human_preference": "b", "input_id": 7},
            {"item_id": "p2", "input": "Say hi", "system_a": "llama", "output_a": "Hi there!",
             "system_b": "bloom", "output_b": "Yo", "human_preference": "a", "input_id": 7},
            {"item_id": "p3", "input": "Say hi", "system_a": "opt", "output_a": "Hello",
             "system_b": "bloom", "output_b": "Yo", "human_preference": "tie", "input_id": 7},
        ]

        result = import_bytes(project, jsonl(pairs), with_labels=True)

        assert result.ok, result.problems
        assert (result.samples_created, result.outputs_created, result.comparisons_created) == (2, 5, 3)
        texts = sorted(Output.objects.values_list("sample__external_id", "system", "text"))
        assert texts == [("7", "bloom", "Yo"), ("7", "llama", "Hi"), ("7", "opt", "Hello"),
                         ("p2", "bloom", "Yo"), ("p2", "llama", "Hi there!")]
        assert Sample.objects.get(external_id="p2").metadata == {"input_id": "7"}
        assert sorted(Comparison.objects.values_list("output_a__text", "output_b__text", "choice")) == [
            ("Hello", "Yo", "tie"), ("Hi", "Hello", "b"), ("Hi there!", "Yo", "a"),
        ]

    def test_a_second_text_met_in_a_later_import_is_kept_too(self, project):
        first = {"item_id": "p1", "input": "Say hi", "system_a": "llama", "output_a": "Hi",
                 "system_b": "opt", "output_b": "Hello", "input_id": 7}
        second = {**first, "item_id": "p2", "output_a": "Hi there!"}
        assert import_bytes(project, jsonl([first])).ok

        result = import_bytes(project, jsonl([second]))

        assert result.ok, result.problems
        assert sorted(Output.objects.filter(system="llama").values_list("sample__external_id", "text")) == [
            ("7", "Hi"), ("p2", "Hi there!"),
        ]

    def test_anonymous_pairwise_systems_get_one_sample_per_pair(self, project):
        pairs = [{"item_id": f"p{i}", "input": "Q", "system_a": None, "output_a": "x",
                  "system_b": None, "output_b": "y", "human_preference": "a"} for i in range(3)]

        result = import_bytes(project, jsonl(pairs))

        assert (result.samples_created, result.outputs_created) == (3, 6)

    def test_csv_with_json_columns(self, project):
        text = (
            'item_id,input,reference,system,output,human\n'
            'q1,"Question, with comma?",,alpha,"Line one\nline two","{""label"": 1}"\n'
            'q1,"Question, with comma?",,beta,Short,\n'
        )

        result = import_bytes(project, text.encode(), filename="o.csv", with_labels=True)

        assert result.ok, result.problems
        assert result.outputs_created == 2 and result.grades_created == 1
        assert Output.objects.get(system="alpha").text == "Line one\nline two"
        assert Sample.objects.get().reference is None

    def test_parquet(self, project, tmp_path):
        frame = pd.DataFrame([record("q1", "alpha"), record("q2", "beta")])
        path = tmp_path / "o.parquet"
        frame.to_parquet(path)

        with path.open("rb") as stream:
            result = outputs_import(project=project, stream=stream, filename="o.parquet")

        assert result.ok and result.outputs_created == 2

    def test_json_body_records(self, project):
        result = outputs_import(project=project, records=[record("q1"), record("q2")])

        assert result.ok and result.outputs_created == 2

    def test_chunked_import_of_many_records(self, project, settings):
        settings.CONCORD_IMPORT_CHUNK_SIZE = 7
        records = [record(f"q{i // 3}", f"s{i % 3}") for i in range(50)]

        result = import_bytes(project, jsonl(records), with_labels=False)

        assert result.outputs_created == 50
        assert result.samples_created == 17


@pytest.mark.django_db
class TestBadFiles:
    def test_bad_json_on_line_812_names_the_line_and_writes_nothing(self, project):
        lines = [json.dumps(record(f"q{i}")) for i in range(1, 1000)]
        lines[811] = '{"item_id": "q812", "input": "x", '
        data = ("\n".join(lines) + "\n").encode()

        result = import_bytes(project, data)

        assert not result.ok
        assert [(p.line, p.message.split(":")[0]) for p in result.problems] == [(812, "invalid JSON")]
        assert_nothing_written(project)

    def test_problem_after_the_first_chunk_rolls_back_earlier_chunks(self, project, settings):
        settings.CONCORD_IMPORT_CHUNK_SIZE = 10
        records = [record(f"q{i}") for i in range(40)]
        records[35].pop("output")

        result = import_bytes(project, jsonl(records))

        assert [(p.line, p.field, p.message) for p in result.problems] == [(36, "output", "is missing")]
        assert_nothing_written(project)

    def test_missing_output_and_wrong_types(self, project):
        records = [record("q1"), {"item_id": "q2", "input": "x", "system": "a"},
                   {"item_id": "q3", "input": ["x"], "system": "a", "output": 5},
                   record("q4", human={"label": 2})]

        result = import_bytes(project, jsonl(records))

        assert [(p.line, p.field, p.message) for p in result.problems] == [
            (2, "output", "is missing"),
            (3, "input", "must be a string, not a list"),
            (3, "output", "must be a string, not a number"),
            (4, "human.label", "must be 0, 1 or null, not 2"),
        ]
        assert_nothing_written(project)

    def test_duplicate_item_system_inside_the_file(self, project):
        records = [record("q1", "alpha"), record("q2", "alpha"), record("q1", "alpha")]

        result = import_bytes(project, jsonl(records))

        assert [(p.line, p.field) for p in result.problems] == [(3, "system")]
        assert "first on line 1" in result.problems[0].message
        assert_nothing_written(project)

    def test_same_item_with_two_inputs(self, project):
        records = [record("q1", "alpha"), {**record("q1", "beta"), "input": "Another question"}]

        result = import_bytes(project, jsonl(records))

        assert [(p.line, p.field) for p in result.problems] == [(2, "input")]
        assert_nothing_written(project)

    def test_empty_file(self, project):
        result = import_bytes(project, b"")

        assert [(p.line, p.field, p.message) for p in result.problems] == [(0, "file", "the file is empty")]

    def test_file_of_only_blank_lines(self, project):
        result = import_bytes(project, b"\n\n  \n")

        assert [p.message for p in result.problems] == ["the file holds no records"]

    def test_two_gigabyte_file_is_refused_before_reading(self, project, tmp_path):
        path = tmp_path / "huge.jsonl"
        with path.open("wb") as f:
            f.truncate(2 * 1024**3)  # sparse: takes no disk

        with path.open("rb") as stream:
            result = outputs_import(project=project, stream=stream, filename="huge.jsonl")

        assert len(result.problems) == 1
        assert result.problems[0].message.startswith("the file is 2.0 GB; the import limit is 1.0 GB")
        assert_nothing_written(project)

    def test_csv_with_stray_quote(self, project):
        text = 'item_id,input,system,output\nq1,Q,alpha,fine\nq2,Q,alpha,"broken "quote" here\n'

        result = import_bytes(project, text.encode(), filename="o.csv")

        assert not result.ok
        assert result.problems[0].line == 3
        assert result.problems[0].message.startswith("malformed CSV")
        assert_nothing_written(project)

    def test_non_utf8_jsonl(self, project):
        data = jsonl([record("q1")]) + '{"item_id": "q2", "input": "caf\xe9", "system": "a", "output": "x"}\n'.encode("latin-1")

        result = import_bytes(project, data)

        assert [(p.line, p.message) for p in result.problems] == [(2, "not valid UTF-8 (byte 0xe9 at column 32)")]
        assert_nothing_written(project)

    def test_non_utf8_csv(self, project):
        data = "item_id,input,system,output\nq1,caf\xe9,a,x\n".encode("latin-1")

        result = import_bytes(project, data, filename="o.csv")

        assert not result.ok and "not valid UTF-8" in result.problems[0].message
        assert_nothing_written(project)

    def test_existing_output_with_different_text_is_refused(self, project):
        import_bytes(project, jsonl([record("q1", "alpha", output="Original")]))

        result = import_bytes(project, jsonl([record("q2", "alpha"), record("q1", "alpha", output="Changed")]))

        assert [(p.line, p.field) for p in result.problems] == [(2, "output")]
        assert "never overwrites" in result.problems[0].message
        assert Output.objects.get(sample__external_id="q1").text == "Original"
        assert not Sample.objects.filter(external_id="q2").exists()

    def test_unknown_extension(self, project):
        result = import_bytes(project, b"x", filename="outputs.xlsx")

        assert "cannot tell the format" in result.problems[0].message

    def test_not_an_object(self, project):
        result = import_bytes(project, b'[1, 2]\n')

        assert result.problems[0].line == 1 and not result.ok

    def test_mixed_formats(self, project):
        pair = {"item_id": "p", "input": "Q", "output_a": "x", "output_b": "y"}

        result = import_bytes(project, jsonl([record("q1"), pair]))

        assert [(p.line, p.message) for p in result.problems] == [
            (2, "mixes formats: the file started as per_output records")
        ]

    def test_error_list_is_capped_but_counted(self, project):
        records = [{"item_id": f"q{i}", "input": "x", "system": "a"} for i in range(250)]

        result = import_bytes(project, jsonl(records))

        assert len(result.problems) == 100 and result.problem_count == 250
        assert "showing the first 100; 150 more" in result.summary()


@pytest.mark.django_db
class TestCommand:
    def test_import_outputs_command(self, project, tmp_path, capsys):
        path = tmp_path / "o.jsonl"
        path.write_bytes(jsonl([record("q1", human={"label": 1})]))

        call_command("import_outputs", project.slug, str(path), "--with-labels")

        assert "Imported 1 samples, 1 outputs, 1 grades." in capsys.readouterr().out
        assert Grade.objects.count() == 1

    def test_import_outputs_command_reports_problems(self, project, tmp_path, capsys):
        path = tmp_path / "o.jsonl"
        path.write_bytes(b'{"item_id": 1}\n')

        with pytest.raises(CommandError, match="Nothing was imported"):
            call_command("import_outputs", project.slug, str(path))

        assert "line 1, input: is missing" in capsys.readouterr().err
        assert_nothing_written(project)

    def test_unknown_project(self, tmp_path, db):
        path = tmp_path / "o.jsonl"
        path.write_bytes(b"{}\n")
        with pytest.raises(CommandError, match="No project with the slug 'nope'"):
            call_command("import_outputs", "nope", str(path))


@pytest.mark.django_db
class TestReferences:
    """A human reference "system" has no reference of its own; the input's reference must
    still reach the sample whichever record comes first or last."""

    @pytest.mark.parametrize("order", ["reference first", "reference last"])
    def test_sample_keeps_the_reference_any_record_of_its_input_gives(self, project, order):
        with_ref = record("q1", "alpha")
        without = record("q1", "ref-A", reference=None)
        records = [with_ref, without] if order == "reference first" else [without, with_ref]

        result = import_bytes(project, jsonl(records))

        assert result.ok, result.problems
        assert Sample.objects.get(project=project, external_id="q1").reference == "Ref."

    def test_reference_met_only_in_a_later_chunk_completes_the_sample(self, project, settings):
        settings.CONCORD_IMPORT_CHUNK_SIZE = 2
        records = [record("q1", "ref-A", reference=None), record("q2", "alpha"),
                   record("q1", "alpha"), record("q1", "beta")]

        result = import_bytes(project, jsonl(records))

        assert result.ok, result.problems
        assert Sample.objects.get(project=project, external_id="q1").reference == "Ref."

    def test_two_different_references_for_one_input_are_refused(self, project):
        records = [record("q1", "alpha"), record("q1", "beta", reference="Another ref.")]

        result = import_bytes(project, jsonl(records))

        assert [(p.line, p.field) for p in result.problems] == [(2, "reference")]
        assert "item_id 'q1' on line 1" in result.problems[0].message
        assert_nothing_written(project)
