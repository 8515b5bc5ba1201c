"""External judges: verdicts, scores and winners imported from a file, never run (issue 13)."""

from __future__ import annotations

import io
import json

import pytest

from annotate.models import Criterion, Output
from annotate.services.criteria import criterion_create
from annotate.services.imports import outputs_import
from tests.factories import OutputFactory, SampleFactory
from validators.models import PairVerdict, Validator, VerdictRecord
from validators.services.external import external_verdicts_import

pytestmark = pytest.mark.django_db


def jsonl(*rows: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(row) + "\n" for row in rows).encode())


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def run_import(project, owner, source, filename="verdicts.jsonl", **options):
    return external_verdicts_import(
        project=project, stream_or_records=source, filename=filename, created_by=owner, **options,
    )


def problems(result) -> list[tuple[int, str, str]]:
    return [(p.line, p.field, p.message) for p in result.problems]


def assert_nothing_written() -> None:
    assert Validator.objects.count() == 0
    assert VerdictRecord.objects.count() == 0
    assert PairVerdict.objects.count() == 0


@pytest.fixture
def outputs(make_outputs) -> dict[tuple[str, str], Output]:
    """q0..q2, each answered by alpha and beta (created in that order)."""
    made = make_outputs(n_samples=3, systems=("alpha", "beta"))
    return {(o.sample.external_id, o.system): o for o in made}


@pytest.fixture
def llmbar_pairs(project):
    """Two pairs imported the way LLMBar is: anonymous systems, one input per pair."""
    result = outputs_import(project=project, records=[
        {"item_id": f"llmbar-{i}", "input": f"Instruction {i}", "output_a": f"first {i}",
         "output_b": f"second {i}"}
        for i in (1, 2)
    ])
    assert result.ok
    return {
        item: list(Output.objects.filter(sample__external_id=item).order_by("pk"))
        for item in ("llmbar-1", "llmbar-2")
    }


# -- per-output verdicts --------------------------------------------------------------------
def test_outcomes_by_output_id_and_by_item_and_system(project, owner, outputs):
    alpha0, beta0 = outputs["q0", "alpha"], outputs["q0", "beta"]

    result = run_import(project, owner, jsonl(
        {"validator": "promptfoo_helpful", "output_id": alpha0.pk, "outcome": "pass", "raw": "PASS: fine"},
        {"validator": "promptfoo_helpful", "item_id": "q0", "system": "beta", "outcome": "FAIL"},
        {"validator": "promptfoo_helpful", "item_id": "q1", "system": "alpha", "outcome": True},
        {"validator": "promptfoo_helpful", "item_id": "q1", "system": "beta", "outcome": 0},
        {"validator": "promptfoo_helpful", "item_id": "q2", "system": "alpha", "outcome": "error",
         "raw": "timeout"},
    ))

    assert result.ok, problems(result)
    validator = Validator.objects.get()
    assert (validator.kind, validator.target, validator.source, validator.origin) == (
        "external", "output", "", "imported")
    assert (validator.name, validator.criterion, validator.parent, validator.created_by) == (
        "promptfoo_helpful", None, None, owner)
    stored = {
        (v.output.sample.external_id, v.output.system): (v.outcome, v.score, v.detail)
        for v in VerdictRecord.objects.select_related("output__sample")
    }
    assert stored == {
        ("q0", "alpha"): ("pass", None, "PASS: fine"), ("q0", "beta"): ("fail", None, ""),
        ("q1", "alpha"): ("pass", None, ""), ("q1", "beta"): ("fail", None, ""),
        ("q2", "alpha"): ("error", None, "timeout"),
    }
    assert [j.to_dict() for j in result.judges] == [{
        "id": validator.pk, "name": "promptfoo_helpful", "target": "output", "parent": None,
        "n_verdicts": 5,
    }]
    assert beta0.verdicts.get().outcome == "fail"


def test_scores_with_a_threshold_become_pass_or_fail(project, owner, outputs):
    result = run_import(project, owner, jsonl(
        {"validator": "deepeval_relevancy", "item_id": "q0", "system": "alpha", "score": 0.5, "threshold": 0.5},
        {"validator": "deepeval_relevancy", "item_id": "q0", "system": "beta", "score": 0.49},
        {"validator": "deepeval_relevancy", "item_id": "q1", "system": "alpha", "outcome": "error", "raw": "rate limited"},
    ))

    assert result.ok, problems(result)
    validator = Validator.objects.get()
    assert validator.threshold == 0.5
    assert sorted(VerdictRecord.objects.values_list("outcome", "score", "detail")) == [
        ("error", None, "rate limited"), ("fail", 0.49, ""), ("pass", 0.5, ""),
    ]


def test_scores_without_a_threshold_are_stored_as_scores(project, owner, outputs):
    result = run_import(project, owner, jsonl(
        {"validator": "ragas_faithfulness", "output_id": outputs["q0", "alpha"].pk, "score": 0.91},
        {"validator": "ragas_faithfulness", "output_id": outputs["q0", "beta"].pk, "score": "0.2"},
    ))

    assert result.ok, problems(result)
    assert Validator.objects.get().threshold is None
    assert sorted(VerdictRecord.objects.values_list("outcome", "score")) == [("score", 0.2), ("score", 0.91)]


def test_csv_of_per_output_verdicts_with_a_known_criterion(project, owner, outputs):
    criterion_create(project=project, key="accuracy", name="Accuracy", definition="True.", author=owner)
    text = (
        "validator,criterion,item_id,system,outcome,score,raw\n"
        "langsmith_correct,accuracy,q0,alpha,pass,,\"Correct, \"\"grounded\"\"\"\n"
        "langsmith_correct,accuracy,q0,beta,fail,,\n"
        "langsmith_score,,q0,alpha,,7,\n"
    )

    result = run_import(project, owner, csv_file(text), filename="verdicts.csv")

    assert result.ok, problems(result)
    correct, score = Validator.objects.order_by("pk")
    assert (correct.name, correct.criterion.key, score.name, score.criterion) == (
        "langsmith_correct", "accuracy", "langsmith_score", None)
    assert sorted(correct.verdicts.values_list("outcome", "detail")) == [
        ("fail", ""), ("pass", 'Correct, "grounded"')]
    assert list(score.verdicts.values_list("outcome", "score")) == [("score", 7.0)]


def test_the_format_is_told_by_content_when_the_name_has_no_extension(project, owner, outputs):
    as_jsonl = jsonl({"validator": "j", "item_id": "q0", "system": "alpha", "outcome": "pass"})
    as_csv = csv_file("validator,item_id,system,outcome\nk,q0,beta,fail\n")

    first = run_import(project, owner, as_jsonl, filename="verdicts")
    second = run_import(project, owner, as_csv, filename="verdicts.txt")

    assert first.ok and second.ok, (problems(first), problems(second))
    assert sorted(VerdictRecord.objects.values_list("validator__name", "outcome")) == [("j", "pass"), ("k", "fail")]


# -- pairwise verdicts ----------------------------------------------------------------------
def test_winner_given_for_the_pair_as_b_then_a_is_stored_in_canonical_order(project, owner, outputs):
    alpha, beta = outputs["q0", "alpha"], outputs["q0", "beta"]
    assert alpha.pk < beta.pk

    result = run_import(project, owner, jsonl(
        {"validator": "arena", "item_id": "q0", "system_a": "beta", "system_b": "alpha",
         "winner": "A", "raw": "[[A]]", "score_a": 8, "score_b": 3},
        {"validator": "arena", "output_a_id": outputs["q1", "beta"].pk,
         "output_b_id": outputs["q1", "alpha"].pk, "winner": "b"},
        {"validator": "arena", "item_id": "q2", "system_a": "alpha", "system_b": "beta", "winner": "tie"},
    ))

    assert result.ok, problems(result)
    validator = Validator.objects.get()
    assert validator.target == "pair"
    stored = {
        v.output_a.sample.external_id: (
            v.output_a.system, v.output_b.system, v.winner, v.first_winner, v.second_winner,
            v.first_answer, v.score_a, v.score_b, v.inconsistent,
        )
        for v in PairVerdict.objects.select_related("output_a__sample", "output_b")
    }
    assert stored == {
        "q0": ("alpha", "beta", "b", "b", "", "[[A]]", 3.0, 8.0, False),
        "q1": ("alpha", "beta", "a", "a", "", "", None, None, False),
        "q2": ("alpha", "beta", "tie", "tie", "", "", None, None, False),
    }
    assert VerdictRecord.objects.count() == 0


def test_item_id_alone_names_the_pair_of_an_llmbar_import(project, owner, llmbar_pairs):
    first_a, first_b = llmbar_pairs["llmbar-1"]
    text = "validator,item_id,winner,raw\nllmbar_judge,llmbar-1,b,Output (b)\nllmbar_judge,llmbar-2,a,\n"

    result = run_import(project, owner, csv_file(text), filename="judge.csv")

    assert result.ok, problems(result)
    assert sorted(PairVerdict.objects.values_list("output_a_id", "output_b_id", "winner", "first_answer")) == [
        (first_a.pk, first_b.pk, "b", "Output (b)"),
        (llmbar_pairs["llmbar-2"][0].pk, llmbar_pairs["llmbar-2"][1].pk, "a", ""),
    ]


def test_a_pair_judged_by_two_scores_wins_by_the_higher_one(project, owner, llmbar_pairs):
    result = run_import(project, owner, jsonl(
        {"validator": "rating_pairs", "item_id": "llmbar-1", "score_a": 3, "score_b": 8},
        {"validator": "rating_pairs", "item_id": "llmbar-2", "score_a": 5, "score_b": 5},
    ))

    assert result.ok, problems(result)
    assert sorted(PairVerdict.objects.values_list("output_a__sample__external_id", "winner", "score_a", "score_b")) == [
        ("llmbar-1", "b", 3.0, 8.0), ("llmbar-2", "tie", 5.0, 5.0),
    ]


# -- criteria and versions ------------------------------------------------------------------
def test_an_unknown_criterion_is_refused_unless_asked_to_create_it(project, owner, outputs):
    rows = [{"validator": "tone_judge", "criterion": "tone", "item_id": "q0", "system": "alpha", "outcome": "pass"}]

    refused = run_import(project, owner, jsonl(*rows))

    assert problems(refused) == [(1, "criterion", (
        "unknown criterion 'tone' (this project has: none yet); fix the name, or ask the import "
        "to create missing criteria"
    ))]
    assert_nothing_written()
    assert Criterion.objects.count() == 0

    created = run_import(project, owner, jsonl(*rows), create_criteria=True)

    assert created.ok and created.criteria_created == ["tone"]
    assert Validator.objects.get().criterion.key == "tone"


def test_reimporting_a_name_makes_a_new_version_and_keeps_the_old_verdicts(project, owner, outputs):
    run_import(project, owner, jsonl(
        {"validator": "judge", "item_id": "q0", "system": "alpha", "outcome": "pass"},
        {"validator": "judge", "item_id": "q0", "system": "beta", "outcome": "pass"},
    ))
    old = Validator.objects.get()

    result = run_import(project, owner, jsonl(
        {"validator": "judge", "item_id": "q0", "system": "beta", "outcome": "fail"},
    ))

    assert result.ok, problems(result)
    new = Validator.objects.get(archived=False)
    old.refresh_from_db()
    assert (old.archived, new.parent_id, new.name, new.kind) == (True, old.pk, "judge", "external")
    assert sorted(old.verdicts.values_list("output__system", "outcome")) == [("alpha", "pass"), ("beta", "pass")]
    assert list(new.verdicts.values_list("output__system", "outcome")) == [("beta", "fail")]
    assert result.judges[0].to_dict()["parent"] == old.pk
    assert result.summary() == "Imported 1 judge(s): 'judge' (1 verdict, a new version)."


# -- refusals: every problem with its line and field, nothing written ---------------------
def test_every_problem_of_a_file_is_listed_with_its_line_and_field(project, owner, outputs):
    lines = [
        {"validator": "j", "output_id": 999999, "outcome": "pass"},
        {"validator": "j", "item_id": "nope", "system": "alpha", "outcome": "pass"},
        {"validator": "j", "item_id": "q0", "system": "gamma", "outcome": "pass"},
        {"validator": "p", "item_id": "q0", "system_a": "alpha", "system_b": "beta", "winner": "left"},
        {"validator": "s", "item_id": "q1", "system": "alpha", "score": "high"},
        {"item_id": "q1", "system": "beta", "outcome": "pass"},
        {"validator": "j", "item_id": "q2", "system": "alpha", "outcome": "maybe"},
        {"validator": "j", "item_id": "q2"},
        {"validator": "j"},
    ]

    result = run_import(project, owner, jsonl(*lines))

    assert problems(result) == [
        (1, "output_id", "no output with id 999999 in this project"),
        (2, "item_id", "no item 'nope' in this project"),
        (3, "system", "item 'q0' has no output of system 'gamma' (it has: alpha, beta)"),
        (4, "winner", "must be a, b or tie, not 'left'"),
        (5, "score", "must be a number, not 'high'"),
        (6, "validator", "is missing: give the judge's name"),
        (7, "outcome", "must be pass, fail or error (or true/false, 1/0), not 'maybe'"),
        (8, "winner", "is missing: give winner (a, b or tie), or score_a and score_b"),
        (9, "output_id", (
            "is missing: name the output (output_id, or item_id and system) or the pair "
            "(output_a_id and output_b_id, or item_id with system_a and system_b, or item_id "
            "alone when its input has exactly two outputs)"
        )),
    ]
    assert result.summary() == "Nothing was imported: the file has 9 problem(s)."
    assert_nothing_written()


def test_item_id_alone_is_ambiguous_when_the_input_has_three_outputs(project, owner, make_outputs):
    make_outputs(n_samples=1, systems=("alpha", "beta", "gamma"))

    result = run_import(project, owner, jsonl({"validator": "p", "item_id": "q0", "winner": "a"}))

    assert problems(result) == [(1, "item_id", (
        "item 'q0' has 3 outputs (alpha, beta, gamma), so item_id alone does not name a pair: "
        "give system_a and system_b"
    ))]
    assert_nothing_written()


def test_a_pair_of_outputs_of_two_inputs_is_refused(project, owner, outputs):
    result = run_import(project, owner, jsonl({
        "validator": "p", "output_a_id": outputs["q0", "alpha"].pk,
        "output_b_id": outputs["q1", "beta"].pk, "winner": "a",
    }))

    assert problems(result) == [(1, "output_b_id", (
        "is an output of another input than output_a_id: a pair compares two outputs of the "
        "same input"
    ))]
    assert_nothing_written()


@pytest.mark.parametrize(("text", "expected"), [
    ('{"validator": "j", "item_id": "q0", "system": "alpha", "score": NaN}\n',
     (1, "score", "must be a finite number, not NaN")),
    ('{"validator": "j", "item_id": "q0", "system": "alpha", "score": Infinity}\n',
     (1, "score", "must be a finite number, not Infinity")),
])
def test_non_finite_scores_are_refused_in_json(project, owner, outputs, text, expected):
    result = run_import(project, owner, io.BytesIO(text.encode()))

    assert problems(result) == [expected]
    assert_nothing_written()


def test_non_finite_scores_are_refused_in_csv(project, owner, outputs):
    text = "validator,item_id,system,score\nj,q0,alpha,nan\nj,q0,beta,1e999\n"

    result = run_import(project, owner, csv_file(text), filename="v.csv")

    assert problems(result) == [
        (2, "score", "must be a finite number, not 'nan'"),
        (3, "score", "must be a finite number, not '1e999'"),
    ]
    assert_nothing_written()


def test_duplicate_rows_name_both_lines(project, owner, outputs):
    alpha = outputs["q0", "alpha"]
    text = (
        "validator,output_id,item_id,system,system_a,system_b,winner,outcome\n"
        f"j,{alpha.pk},,,,,,pass\n"
        "j,,q0,alpha,,,,fail\n"
        "p,,q0,,alpha,beta,a,\n"
        "p,,q0,,beta,alpha,a,\n"
    )

    result = run_import(project, owner, csv_file(text), filename="v.csv")

    assert problems(result) == [
        (3, "validator", f"duplicate verdict: validator 'j' already judged output {alpha.pk} on line 2 (line 3 repeats it)"),
        (5, "validator", (
            f"duplicate verdict: validator 'p' already judged the pair of outputs {alpha.pk} and "
            f"{outputs['q0', 'beta'].pk} on line 4 (line 5 repeats it)"
        )),
    ]
    assert_nothing_written()


def test_one_validator_cannot_mix_targets_criteria_or_outcomes_with_scores(project, owner, outputs):
    criterion_create(project=project, key="accuracy", name="Accuracy", definition="True.", author=owner)

    result = run_import(project, owner, jsonl(
        {"validator": "j", "item_id": "q0", "system": "alpha", "outcome": "pass"},
        {"validator": "j", "item_id": "q0", "system_a": "alpha", "system_b": "beta", "winner": "a"},
        {"validator": "j", "item_id": "q1", "system": "alpha", "score": 0.3},
        {"validator": "j", "criterion": "accuracy", "item_id": "q1", "system": "beta", "outcome": "fail"},
        {"validator": "s", "item_id": "q2", "system": "alpha", "score": 0.3, "threshold": 0.5},
        {"validator": "s", "item_id": "q2", "system": "beta", "score": 0.6, "threshold": 0.7},
        {"validator": "t", "item_id": "q2", "system": "beta", "outcome": "pass", "threshold": 0.7},
    ))

    assert problems(result) == [
        (2, "system_a", "names a pair, but validator 'j' judges one output on line 1: all rows of a validator have the same target"),
        (3, "score", (
            "validator 'j' gives outcomes on line 1 and a score here: give every row of a "
            "validator an outcome, or every row a score (outcome 'error' marks an item the judge "
            "failed on)"
        )),
        (4, "criterion", (
            "is criterion 'accuracy' but validator 'j' judges the holistic verdict on line 1: one "
            "validator judges one criterion"
        )),
        (6, "threshold", "is 0.7, but validator 's' has threshold 0.5 on line 5: one threshold per validator"),
        (7, "threshold", (
            "applies to scores; this row gives an outcome (leave threshold out, or give a score instead)"
        )),
    ]
    assert_nothing_written()


def test_a_row_names_one_output_or_one_pair_never_both(project, owner, outputs):
    result = run_import(project, owner, jsonl(
        {"validator": "j", "output_id": outputs["q0", "alpha"].pk, "system_b": "beta", "outcome": "pass"},
        {"validator": "j", "output_id": outputs["q0", "alpha"].pk, "item_id": "q0", "outcome": "pass"},
        {"validator": "j", "item_id": "q0", "system": "alpha", "winner": "a"},
        {"validator": "p", "item_id": "q0", "outcome": "pass"},
    ))

    assert problems(result) == [
        (1, "system_b", "mixes a one-output target (output_id) with a pair target (system_b): a row judges one output or one pair"),
        (2, "item_id", "give either output_id, or item_id and system, not both"),
        (3, "winner", "is for a pair; this row names one output (give outcome or score)"),
        (4, "outcome", "is for one output; this row names a pair (give winner: a, b or tie, or score_a and score_b)"),
    ]
    assert_nothing_written()


@pytest.mark.parametrize(("content", "filename", "expected"), [
    (b"", "v.jsonl", (0, "file", "the file is empty")),
    (b"\n\n  \n", "v.jsonl", (0, "file", "the file holds no verdicts")),
    (b"validator,output_id,outcome\n", "v.csv", (0, "file", "the file holds no verdicts")),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "v.jsonl", (0, "file", (
        "is not a text file (not valid UTF-8: byte 0x89 at offset 0); export the verdicts as "
        "JSON Lines (.jsonl) or CSV (.csv)"
    ))),
    (b"PK\x03\x04", "v.parquet", (0, "file", (
        "cannot read 'v.parquet': judge verdicts are imported from JSON Lines (.jsonl) or CSV (.csv)"
    ))),
    (b'{"validator": j}\n', "v.jsonl", (1, "", "invalid JSON: Expecting value (column 15)")),
    (b"[1, 2]\n", "v.jsonl", (1, "", "each record must be a JSON object, not a list")),
])
def test_files_that_hold_no_verdicts_are_refused(project, owner, outputs, content, filename, expected):
    result = run_import(project, owner, io.BytesIO(content), filename=filename)

    assert problems(result) == [expected]
    assert_nothing_written()


def test_text_storage_cannot_hold_is_refused_with_its_field(project, owner, outputs):
    result = run_import(project, owner, jsonl(
        {"validator": "j", "item_id": "q0", "system": "alpha", "outcome": "pass", "raw": "ok\u0000"},
        {"validator": "j\ud800", "item_id": "q0", "system": "beta", "outcome": "pass"},
    ))

    assert problems(result) == [
        (1, "raw", "contains a NUL character (at character 3)"),
        (2, "validator", "contains an unpaired surrogate U+D800 (at character 2); the text is not valid Unicode"),
    ]
    assert_nothing_written()


def test_a_nul_byte_in_a_csv_cell_is_named_with_its_line(project, owner, outputs):
    text = "validator,item_id,system,outcome\nj,q0,alpha,pass\nj,q0\x00,beta,pass\n"

    result = run_import(project, owner, csv_file(text), filename="v.csv")

    assert problems(result) == [(3, "item_id", "contains a NUL character (at character 3)")]
    assert_nothing_written()


def test_records_from_the_api_are_numbered_as_records(project, owner, outputs):
    alpha = outputs["q0", "alpha"].pk

    result = run_import(project, owner, [
        {"validator": "j", "output_id": alpha, "outcome": "pass"},
        "not an object",
        {"validator": "j", "output_id": alpha, "outcome": "fail"},
    ], filename="")

    assert problems(result) == [
        (2, "", "each record must be a JSON object, not a string"),
        (3, "validator", f"duplicate verdict: validator 'j' already judged output {alpha} on record 1 (record 3 repeats it)"),
    ]
    assert_nothing_written()


def test_outputs_of_another_project_are_unknown(project, owner, outputs, make_outputs):
    from tests.factories import ProjectFactory

    other = make_outputs(n_samples=1, systems=("alpha",), target=ProjectFactory())[0]

    result = run_import(project, owner, jsonl({"validator": "j", "output_id": other.pk, "outcome": "pass"}))

    assert problems(result) == [(1, "output_id", f"no output with id {other.pk} in this project")]
    assert_nothing_written()


def test_the_row_and_size_limits(project, owner, outputs):
    rows = [{"validator": "j", "item_id": item, "system": system, "outcome": "pass"}
            for item, system in (("q0", "alpha"), ("q0", "beta"), ("q1", "alpha"))]

    too_many = run_import(project, owner, jsonl(*rows), max_rows=2)
    too_big = run_import(project, owner, jsonl(*rows), max_bytes=10)

    assert problems(too_many) == [(3, "file", "the file has more than 2 rows; split it into smaller files")]
    assert problems(too_big)[0][:2] == (0, "file")
    assert problems(too_big)[0][2].startswith("the file is 2")
    assert problems(too_big)[0][2].endswith("the import limit is 10 B. Split it into smaller files.")
    assert_nothing_written()


def test_problems_beyond_a_hundred_are_counted_not_listed(project, owner, outputs):
    rows = [{"validator": "j", "output_id": 10**9 + i, "outcome": "pass"} for i in range(150)]

    result = run_import(project, owner, jsonl(*rows))

    assert (len(result.problems), result.problem_count) == (100, 150)
    assert result.summary() == "Nothing was imported: the file has 150 problem(s) (showing the first 100; 50 more)."
    assert_nothing_written()


def test_the_sample_file_imports_into_a_project_that_has_its_items(project, owner):
    from validators.services.external import SAMPLE_JSONL

    def output(pk, item, system):
        sample = project.samples.filter(external_id=item).first() or SampleFactory(
            project=project, external_id=item)
        return OutputFactory(pk=pk, sample=sample, project=project, system=system)

    output(1, "q1", "alpha"), output(2, "q1", "beta")
    output(3, "llmbar-7", "anonymous-a"), output(4, "llmbar-7", "anonymous-b")
    output(17, "q2", "alpha"), output(18, "q2", "beta")
    output(19, "q3", "alpha"), output(20, "q3", "beta")

    result = run_import(project, owner, io.BytesIO(SAMPLE_JSONL.encode()), filename="judge-verdicts-sample.jsonl")

    assert result.ok, problems(result)
    assert [(j.validator.name, j.validator.target, j.n_verdicts) for j in result.judges] == [
        ("gpt4o_helpfulness", "output", 2), ("deepeval_relevancy", "output", 2),
        ("ragas_faithfulness", "output", 1), ("arena_judge", "pair", 2),
        ("llmbar_judge", "pair", 1), ("rating_judge_pairs", "pair", 1),
    ]
