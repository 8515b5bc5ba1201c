"""Gold-label export: the rules of annotate.gold on real grades, the three file formats, the
job (service, Celery task, page, download, admin action), the command and the JSONL round trip."""

import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate.evidence import ChosenVerdicts
from annotate.gold import (
    STATUSES,
    GoldOptions,
    gold_label,
    iter_gold,
    status_codes,
    write_gold,
)
from annotate.labels import load_votes
from annotate.models import Adjudication, Criterion, Export, ExportStatus, Grade, Output, Role
from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.exports import ExportError, export_run, export_start
from annotate.services.grades import grade_retract, grade_submit
from annotate.services.projects import membership_set, project_create
from annotate.statistics import (
    LABEL_FAIL,
    LABEL_NAMES,
    LABEL_PASS,
    human_majority,
    majority,
    majority_codes,
)
from tests.factories import UserFactory

# -- a chosen-validator provider for tests (annotate.evidence's interface, no validators app) --
CHOSEN: dict = {}


def stub_chosen(project):
    if not CHOSEN:
        return ChosenVerdicts(output_ids=np.zeros(0, np.int64))
    return ChosenVerdicts(output_ids=CHOSEN["output_ids"], by_criterion=CHOSEN["by_criterion"])


@pytest.fixture
def stub_validator(settings):
    settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = "tests.annotate.test_gold_export.stub_chosen"
    CHOSEN.clear()
    yield CHOSEN
    CHOSEN.clear()


@pytest.fixture
def bea(project):
    user = UserFactory(username="bea")
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def graded(project, owner, annotator, bea, reviewer, make_outputs):
    """Eight outputs (q0..q3 x alpha, beta) with the cases the rules have to tell apart."""
    grounded = criterion_create(
        project=project, key="grounded", name="Grounded", definition="Claims are supported.",
        author=owner,
    )
    criterion_create(
        project=project, key="helpful", name="Helpful", definition="Answers the question.",
        author=owner,
    )
    o = make_outputs()  # o[0] q0/alpha, o[1] q0/beta, ... o[7] q3/beta
    # q2/alpha: a grounded verdict under version 1, made stale by version 2.
    grade_submit(output=o[4], annotator=annotator, verdict="fail", criteria={"grounded": "pass"})
    criterion_version_publish(
        criterion=grounded, author=owner, definition="Every claim is supported by the article.",
        reason="narrowed",
    )
    grade_submit(output=o[4], annotator=owner, verdict="fail", criteria={"grounded": "fail"})
    # q0/alpha: 2 pass 1 fail holistic; grounded split 1-1 (bea gave no grounded verdict, so
    # casts no grounded vote); nobody judged helpful, so it has no label anywhere.
    grade_submit(output=o[0], annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
    grade_submit(output=o[0], annotator=owner, verdict="pass", criteria={"grounded": "fail"})
    grade_submit(output=o[0], annotator=bea, verdict="fail", note="needs a privacy criterion")
    # q0/beta: a tie, adjudicated twice; the latest adjudication wins.
    grade_submit(output=o[1], annotator=annotator, verdict="pass")
    grade_submit(output=o[1], annotator=owner, verdict="fail")
    Adjudication.objects.create(output=o[1], verdict="pass", reviewer=reviewer)
    Adjudication.objects.create(output=o[1], verdict="fail", reviewer=reviewer, reason="wrong")
    # q1/alpha: only unsure. q1/beta: nobody.
    grade_submit(output=o[2], annotator=annotator, verdict="unsure")
    # q2/beta: a retracted grade and an edited one.
    first = grade_submit(output=o[5], annotator=annotator, verdict="pass")
    grade_retract(grade=first, annotator=annotator)
    grade_submit(output=o[5], annotator=owner, verdict="fail")
    grade_submit(output=o[5], annotator=owner, verdict="pass")
    # q3/alpha: unanimous fail; q3/beta: pass and unsure.
    grade_submit(output=o[6], annotator=annotator, verdict="fail")
    grade_submit(output=o[6], annotator=bea, verdict="fail")
    grade_submit(output=o[7], annotator=annotator, verdict="pass")
    grade_submit(output=o[7], annotator=bea, verdict="unsure")
    return o


def export_csv(project, chunk_size=10_000, **options) -> list[dict]:
    buffer = io.BytesIO()
    write_gold(project, "csv", buffer, options=GoldOptions(**options), chunk_size=chunk_size)
    return list(csv.DictReader(io.StringIO(buffer.getvalue().decode())))


def by_key(rows):
    return {(r["item_id"], r["system"], r["criterion"]): r for r in rows}


SHORT = ("gold", "gold_status", "human_majority", "n_annotators", "n_pass", "n_fail",
         "n_unsure", "agreement", "stale", "n_stale", "criterion_version")


def short(row):
    return tuple(row[c] for c in SHORT)


# -- the rules -------------------------------------------------------------------------------
@pytest.mark.parametrize(("counts", "expected"), [
    ((0, 0, 0), ("", None)),
    ((2, 1, 0), ("pass", 2 / 3)),
    ((1, 2, 1), ("fail", 0.5)),
    ((1, 1, 0), ("tie", 0.5)),
    ((1, 1, 2), ("tie", 0.25)),
    ((0, 0, 3), ("unsure", 1.0)),
    ((1, 0, 2), ("pass", 1 / 3)),
])
def test_human_majority_and_agreement(counts, expected):
    assert human_majority(*counts) == expected


def test_adjudication_overrides_the_majority_but_keeps_it():
    label = gold_label(1, 1, 0, adjudication=("fail", "rita"))

    assert (label.gold, label.status, label.majority, label.agreement, label.adjudicated_by) == (
        "fail", "adjudicated", "tie", 0.5, "rita"
    )


def test_the_arrays_follow_the_same_rules_as_one_label_at_a_time():
    counts = np.array([(p, f, u) for p in range(5) for f in range(5) for u in range(5)])

    codes, agreement = majority_codes(counts[:, 0], counts[:, 1], counts[:, 2])
    statuses = status_codes(codes)

    for (p, f, u), code, share, status in zip(counts, codes, agreement, statuses, strict=True):
        label = gold_label(int(p), int(f), int(u))
        assert (LABEL_NAMES[code + 1], STATUSES[status]) == (label.majority, label.status)
        assert (None if np.isnan(share) else share) == label.agreement


# -- CSV rows on real grades -------------------------------------------------------------------
@pytest.mark.django_db
class TestGoldRows:
    def test_every_output_and_target_once_with_exact_values(self, project, graded):
        rows = export_csv(project)

        assert len(rows) == 8 * 3
        assert list(rows[0]) == [
            "output_id", "item_id", "system", "input", "reference", "output", "criterion",
            "criterion_version", "gold", "gold_status", "label_source", "human_majority",
            "n_annotators", "n_pass", "n_fail", "n_unsure", "agreement", "stale", "n_stale",
            "adjudicated_by", "validator", "validator_verdict", "excluded_from_sampling",
        ]
        got = by_key(rows)
        two_thirds = str(2 / 3)
        assert short(got[("q0", "alpha", "")]) == (
            "pass", "majority", "pass", "3", "2", "1", "0", two_thirds, "false", "0", "")
        # Criterion labels come only from criterion verdicts (DESIGN §4.1).
        assert short(got[("q0", "alpha", "grounded")]) == (
            "tie", "tie", "tie", "2", "1", "1", "0", "0.5", "false", "0", "2")
        assert short(got[("q0", "alpha", "helpful")]) == (
            "", "unlabelled", "", "0", "0", "0", "0", "", "false", "0", "1")
        assert short(got[("q0", "beta", "")]) == (
            "fail", "adjudicated", "tie", "2", "1", "1", "0", "0.5", "false", "0", "")
        assert got[("q0", "beta", "")]["adjudicated_by"] == "rita"
        assert got[("q0", "beta", "grounded")]["gold_status"] == "unlabelled"
        assert [got[k]["label_source"] for k in (
            ("q0", "alpha", ""), ("q0", "alpha", "grounded"), ("q0", "alpha", "helpful"),
            ("q0", "beta", ""), ("q1", "beta", ""),
        )] == ["given", "given", "", "given", ""]
        assert short(got[("q1", "alpha", "")]) == (
            "unsure", "unsure", "unsure", "1", "0", "0", "1", "1", "false", "0", "")
        assert short(got[("q1", "beta", "")]) == (
            "", "unlabelled", "", "0", "0", "0", "0", "", "false", "0", "")
        assert short(got[("q3", "beta", "")]) == (
            "pass", "majority", "pass", "2", "1", "0", "1", "0.5", "false", "0", "")
        assert short(got[("q3", "alpha", "")])[:3] == ("fail", "majority", "fail")
        alpha = got[("q0", "alpha", "")]
        assert (alpha["input"], alpha["output"], alpha["reference"]) == (
            "Question 0?", "alpha answers 0.", "The reference answer.")

    def test_stale_verdicts_are_flagged_and_left_out_unless_included(self, project, graded):
        # q2/alpha's first grounded verdict was given under version 1.
        left_out = by_key(export_csv(project))[("q2", "alpha", "grounded")]
        counted = by_key(export_csv(project, include_stale=True))[("q2", "alpha", "grounded")]

        assert short(left_out) == (
            "fail", "majority", "fail", "1", "0", "1", "0", "1", "true", "1", "2")
        assert short(counted) == ("tie", "tie", "tie", "2", "1", "1", "0", "0.5", "true", "1", "2")

    def test_retracted_and_superseded_grades_do_not_vote(self, project, graded):
        row = by_key(export_csv(project))[("q2", "beta", "")]

        assert short(row) == ("pass", "majority", "pass", "1", "1", "0", "0", "1", "false", "0", "")

    def test_all_grades_option_lists_each_counted_vote(self, project, graded):
        rows = by_key(export_csv(project, all_grades=True))

        grades = json.loads(rows[("q0", "alpha", "grounded")]["grades"])
        assert sorted((g["annotator"], g["verdict"], g["criterion_version"], g["stale"]) for g in grades) == [
            ("arjun", "pass", 2, False), ("olivia", "fail", 2, False),
        ]
        assert [(g["annotator"], g["stale"]) for g in json.loads(rows[("q2", "alpha", "grounded")]["grades"])] == [
            ("olivia", False),
        ]
        stale = json.loads(
            by_key(export_csv(project, all_grades=True, include_stale=True))[
                ("q2", "alpha", "grounded")]["grades"]
        )
        assert sorted((g["annotator"], g["verdict"], g["criterion_version"], g["stale"]) for g in stale) == [
            ("arjun", "pass", 1, True), ("olivia", "fail", 2, False),
        ]
        holistic = json.loads(rows[("q0", "alpha", "")]["grades"])
        assert sorted((g["annotator"], g["verdict"], g["note"]) for g in holistic) == [
            ("arjun", "pass", ""), ("bea", "fail", "needs a privacy criterion"),
            ("olivia", "pass", ""),
        ]

    def test_labelled_only_leaves_out_rows_without_votes(self, project, graded):
        rows = export_csv(project, labelled_only=True)

        # 7 holistic labels, grounded on q0/alpha and q2/alpha, helpful on none.
        assert len(rows) == 7 + 2 + 0
        assert ("q1", "beta", "") not in by_key(rows)

    def test_gold_agrees_with_the_report_card_labels(self, project, graded):
        """annotate.labels (load_votes + majority) is what the report card aligns against."""
        for include_stale in (False, True):
            rows = by_key(export_csv(project, include_stale=include_stale))
            votes = load_votes(project, include_stale=include_stale)
            outputs = Output.objects.filter(project=project).order_by("id")
            ids = np.array([o.pk for o in outputs])
            for criterion in [None, *Criterion.objects.filter(project=project)]:
                labels = majority(ids, votes.output_ids, votes.codes(criterion and criterion.pk))
                for output, label in zip(outputs, labels, strict=True):
                    row = rows[(output.sample.external_id, output.system, criterion.key if criterion else "")]
                    expected = {LABEL_PASS: "pass", LABEL_FAIL: "fail"}.get(int(label))
                    assert (row["human_majority"] if row["human_majority"] in ("pass", "fail") else None) == expected

    def test_chosen_validator_verdicts_per_target(self, project, graded, stub_validator):
        ids = np.array(sorted(o.pk for o in graded), dtype=np.int64)
        stub_validator["output_ids"] = ids[:6]
        stub_validator["by_criterion"] = {
            None: (7, "length_ok", np.array([1, 0, -1, -2, 1, 1], dtype=np.int8)),
            "grounded": (9, "cites_article", np.array([0, 0, 0, 1, 1, 1], dtype=np.int8)),
        }

        got = by_key(export_csv(project))

        assert [(got[(f"q{i // 2}", ("alpha", "beta")[i % 2], "")]["validator"],
                 got[(f"q{i // 2}", ("alpha", "beta")[i % 2], "")]["validator_verdict"])
                for i in range(8)] == [
            ("length_ok", "pass"), ("length_ok", "fail"), ("length_ok", "error"),
            ("length_ok", ""), ("length_ok", "pass"), ("length_ok", "pass"),
            ("length_ok", ""), ("length_ok", ""),
        ]
        assert got[("q0", "alpha", "grounded")]["validator_verdict"] == "fail"
        assert got[("q0", "alpha", "helpful")]["validator"] == ""

    def test_real_chosen_validator_through_the_configured_provider(self, project, graded):
        from validators.models import Validator, VerdictRecord

        project.min_labels_per_class = 1
        project.save()
        validator = Validator.objects.create(
            project=project, name="agrees", kind="code",
            source="def check(output, input, reference, meta):\n    return True",
        )
        passing = {graded[0].pk, graded[5].pk, graded[7].pk}
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=validator, output=o, outcome="pass" if o.pk in passing else "fail")
            for o in graded
        ])

        rows = export_csv(project)

        assert [(r["validator"], r["validator_verdict"]) for r in rows if r["criterion"] == ""] == [
            ("agrees", "pass"), ("agrees", "fail"), ("agrees", "fail"), ("agrees", "fail"),
            ("agrees", "fail"), ("agrees", "pass"), ("agrees", "fail"), ("agrees", "pass"),
        ]
        assert {r["validator"] for r in rows if r["criterion"] != ""} == {""}

    def test_memory_is_bounded_by_the_chunk(self, project, graded):
        chunks = list(iter_gold(project, chunk_size=3))

        assert [len(chunk) for chunk in chunks] == [3, 3, 2]
        assert [int(i) for chunk in chunks for i in chunk.output_ids] == sorted(o.pk for o in graded)
        assert by_key(export_csv(project)) == by_key(export_csv(project, chunk_size=3))


# -- Parquet and JSON Lines -------------------------------------------------------------------
@pytest.mark.django_db
class TestFormats:
    def test_parquet_has_the_same_rows_as_csv(self, project, graded, tmp_path):
        path = tmp_path / "gold.parquet"
        with path.open("wb") as stream:
            rows = write_gold(project, "parquet", stream, chunk_size=3)

        table = pq.read_table(path).to_pandas()
        assert rows == len(table) == 24
        assert str(table.dtypes["stale"]) == "bool"
        holistic = table[table.criterion.isna()].set_index(["item_id", "system"])
        assert holistic.loc[("q0", "beta"), ["gold", "gold_status", "human_majority"]].tolist() == [
            "fail", "adjudicated", "tie"
        ]
        assert holistic.loc[("q1", "beta"), "agreement"] != holistic.loc[("q1", "beta"), "agreement"]
        csv_rows = export_csv(project)
        assert sorted(table.gold.fillna("").tolist()) == sorted(r["gold"] for r in csv_rows)
        assert table.criterion_version.dropna().astype(int).tolist().count(2) == 8

    def test_parquet_with_all_grades_keeps_the_list_as_json(self, project, graded, tmp_path):
        path = tmp_path / "gold.parquet"
        with path.open("wb") as stream:
            write_gold(project, "parquet", stream, options=GoldOptions(all_grades=True))

        table = pq.read_table(path).to_pandas()
        row = table[(table.item_id == "q3") & (table.system == "beta") & table.criterion.isna()]
        assert sorted(g["verdict"] for g in json.loads(row.grades.iloc[0])) == ["pass", "unsure"]

    def test_jsonl_is_one_importable_record_per_output(self, project, graded):
        buffer = io.BytesIO()
        lines = write_gold(project, "jsonl", buffer)

        records = [json.loads(line) for line in buffer.getvalue().decode().splitlines()]
        assert lines == len(records) == 8
        first = records[0]
        assert {k: first[k] for k in ("item_id", "input", "reference", "system", "output")} == {
            "item_id": "q0", "input": "Question 0?", "reference": "The reference answer.",
            "system": "alpha", "output": "alpha answers 0.",
        }
        assert first["human"] == {"label": 1}
        assert first["gold"]["criteria"]["grounded"]["version"] == 2
        assert first["gold"]["holistic"]["agreement"] == pytest.approx(2 / 3)
        tie = records[1]
        assert tie["human"] == {"label": 0}
        assert tie["gold"]["holistic"]["status"] == "adjudicated"
        assert tie["gold"]["criteria"]["grounded"]["status"] == "unlabelled"
        assert records[4]["human"] == {"label": 0, "criteria": {"grounded": 0}}
        assert records[4]["gold"]["criteria"]["grounded"]["label_source"] == "given"
        assert records[2]["human"] == {"label": None}


@pytest.mark.django_db
def test_jsonl_lines_with_and_without_every_grade_agree(project, graded, stub_validator):
    ids = np.array(sorted(o.pk for o in graded), dtype=np.int64)
    stub_validator.update(output_ids=ids, by_criterion={
        "grounded": (9, "cites_article", np.array([0, 1, 0, -1, 1, 1, 0, -2], dtype=np.int8)),
    })
    plain, full = io.BytesIO(), io.BytesIO()
    write_gold(project, "jsonl", plain, chunk_size=3)
    write_gold(project, "jsonl", full, options=GoldOptions(all_grades=True))

    plain_records = [json.loads(line) for line in plain.getvalue().splitlines()]
    full_records = [json.loads(line) for line in full.getvalue().splitlines()]
    for record in full_records:
        for label in [record["gold"]["holistic"], *record["gold"]["criteria"].values()]:
            assert isinstance(label.pop("grades"), list)
    assert plain_records == full_records
    assert [r["gold"]["criteria"]["grounded"]["validator_verdict"] for r in plain_records] == [
        "fail", "pass", "fail", "error", "pass", "pass", "fail", ""
    ]


@pytest.mark.django_db
def test_jsonl_round_trip_reproduces_the_labels(project, owner, graded, tmp_path):
    path = tmp_path / "gold.jsonl"
    call_command("export_gold", project.slug, "--format", "jsonl", "--out", str(path))
    copy = project_create(name="Copy", slug="copy", owner=owner)

    call_command("import_outputs", "copy", str(path), "--with-labels")

    before, after = by_key(export_csv(project)), by_key(export_csv(copy))
    # Nobody judged 'helpful', so no line names it and the copy never learns of it.
    assert (len(before), len(after)) == (24, 16)
    decided_before = {k: r["gold"] for k, r in before.items() if r["gold"] in ("pass", "fail")}
    decided_after = {k: r["gold"] for k, r in after.items() if r["gold"] in ("pass", "fail")}
    assert len(decided_before) == 7
    assert decided_after == decided_before
    imported = Output.objects.get(project=copy, sample__external_id="q0", system="alpha")
    assert imported.metadata["gold"]["holistic"]["n_annotators"] == 3
    assert Grade.objects.filter(project=copy).count() == 6


@pytest.mark.django_db
def test_round_trip_derives_a_holistic_verdict_only_from_decided_criteria(project, owner, make_outputs, annotator, tmp_path):
    """The importer's documented caveat: no holistic label + decided criteria => derived."""
    criterion_create(project=project, key="tone", name="Tone", author=owner)
    [output, *_] = make_outputs(1, systems=("alpha",))
    grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"tone": "fail"})
    grade_submit(output=output, annotator=owner, verdict="fail", criteria={"tone": "fail"})
    path = tmp_path / "gold.jsonl"
    call_command("export_gold", project.slug, "--format", "jsonl", "--out", str(path))
    project_create(name="Copy", slug="copy", owner=owner)

    call_command("import_outputs", "copy", str(path), "--with-labels")

    copy = by_key(export_csv(project.__class__.objects.get(slug="copy")))
    assert by_key(export_csv(project))[("q0", "alpha", "")]["gold"] == "tie"
    assert (copy[("q0", "alpha", "")]["gold"], copy[("q0", "alpha", "tone")]["gold"]) == ("fail", "fail")


# -- the command -------------------------------------------------------------------------------
@pytest.mark.django_db
class TestCommand:
    def test_csv_to_a_file_with_options(self, project, graded, tmp_path, capsys):
        path = tmp_path / "out.csv"

        call_command("export_gold", project.slug, "--format", "csv", "--out", str(path),
                     "--all-grades", "--include-stale")

        assert f"Wrote 24 rows to {path}." in capsys.readouterr().out
        rows = list(csv.DictReader(path.open()))
        assert rows[0]["grades"].startswith("[")
        assert by_key(rows)[("q2", "alpha", "grounded")]["gold"] == "tie"

    def test_stdout(self, project, graded, capsysbinary):
        call_command("export_gold", project.slug, "--format", "jsonl", "--out", "-")

        assert len(capsysbinary.readouterr().out.decode().splitlines()) == 8

    def test_parquet_needs_a_file_and_unknown_project_is_refused(self, project, tmp_path):
        with pytest.raises(CommandError, match="Parquet cannot go to stdout"):
            call_command("export_gold", project.slug, "--format", "parquet", "--out", "-")
        with pytest.raises(CommandError, match="No project with the slug 'nope'"):
            call_command("export_gold", "nope", "--out", str(tmp_path / "x.csv"))
        assert not (tmp_path / "x.csv").exists()


# -- the job: service, task, page, download, admin ---------------------------------------------
@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
class TestExportJob:
    def test_start_queues_then_the_task_writes_the_file(
        self, project, owner, graded, media, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            export = export_start(
                project=project, fmt="parquet", options={"include_stale": True}, requested_by=owner,
            )
            assert Export.objects.get().status == ExportStatus.QUEUED

        assert len(callbacks) == 1
        export.refresh_from_db()
        assert (export.status, export.rows, export.error) == (ExportStatus.DONE, 24, "")
        assert export.options == {"all_grades": False, "include_stale": True, "labelled_only": False}
        assert export.file.name == f"exports/{project.pk}/gold-{export.pk}.parquet"
        assert pq.read_table(media / export.file.name).num_rows == 24
        assert export.finished_at is not None

    def test_running_it_again_is_harmless(self, project, owner, graded, media):
        export = export_start(project=project, fmt="csv", requested_by=owner)
        export_run(export_id=export.pk)
        first = Export.objects.get(pk=export.pk)

        again = export_run(export_id=export.pk)

        assert (again.file.name, again.finished_at, again.rows) == (first.file.name, first.finished_at, 24)
        assert len(list((media / "exports" / str(project.pk)).iterdir())) == 1

    @pytest.mark.parametrize(("fmt", "options", "message"), [
        ("xlsx", {}, "Unknown format 'xlsx'; use csv, jsonl or parquet."),
        ("csv", {"everything": True}, "Unknown export option(s): everything."),
    ])
    def test_bad_requests_are_refused_without_a_row(self, project, owner, fmt, options, message):
        with pytest.raises(ExportError) as caught:
            export_start(project=project, fmt=fmt, options=options, requested_by=owner)

        assert str(caught.value) == message
        assert Export.objects.count() == 0

    def test_a_failure_is_reported_on_the_row(self, project, owner, media, monkeypatch):
        export = export_start(project=project, fmt="csv", requested_by=owner)

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr("annotate.services.exports.write_gold", broken)
        result = export_run(export_id=export.pk)

        assert (result.status, result.error, result.file.name) == (
            ExportStatus.FAILED, "RuntimeError: disk full", ""
        )


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_export_reads_one_snapshot(project, owner, make_outputs, annotator, media):
    """The worker's case: on PostgreSQL the export runs in one REPEATABLE READ transaction."""
    outputs = make_outputs(2)
    grade_submit(output=outputs[0], annotator=annotator, verdict="fail")
    export = export_start(project=project, fmt="csv", requested_by=owner)

    done = export_run(export_id=export.pk)

    assert (done.status, done.rows) == (ExportStatus.DONE, 4)
    rows = list(csv.DictReader((media / done.file.name).open()))
    assert [(r["item_id"], r["system"], r["gold"]) for r in rows] == [
        ("q0", "alpha", "fail"), ("q0", "beta", ""), ("q1", "alpha", ""), ("q1", "beta", ""),
    ]


@pytest.mark.django_db
class TestExportPages:
    def test_owner_starts_an_export_and_downloads_it(
        self, client, project, owner, graded, media, django_capture_on_commit_callbacks
    ):
        client.force_login(owner)
        url = reverse("exports", args=[project.slug])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"format": "jsonl", "labelled_only": "on"})

        assert response.status_code == 302
        export = Export.objects.get()
        assert (export.status, export.format, export.rows) == (ExportStatus.DONE, "jsonl", 7)
        page = client.get(url).content.decode()
        download = reverse("export-download", args=[project.slug, export.pk])
        assert download in page and "7 lines" in page
        response = client.get(download)
        assert response.status_code == 200
        assert response["Content-Disposition"] == (
            f'attachment; filename="support-bot-gold-{export.pk}.jsonl"'
        )
        assert len(b"".join(response.streaming_content).splitlines()) == 7

    def test_bad_form_is_refused_without_a_row(self, client, project, owner):
        client.force_login(owner)

        response = client.post(reverse("exports", args=[project.slug]), {"format": "xml"})

        assert response.status_code == 400
        assert Export.objects.count() == 0

    @pytest.mark.parametrize(("who", "status"), [
        ("annotator", 403), ("reviewer", 403), ("outsider", 404),
    ])
    def test_only_owners_and_staff(self, client, request, project, owner, media, who, status):
        export = export_start(project=project, fmt="csv", requested_by=owner)
        export_run(export_id=export.pk)
        client.force_login(request.getfixturevalue(who))

        assert client.get(reverse("exports", args=[project.slug])).status_code == status
        assert client.post(reverse("exports", args=[project.slug]), {"format": "csv"}).status_code == status
        assert client.get(reverse("export-download", args=[project.slug, export.pk])).status_code == status
        assert Export.objects.count() == 1

    def test_staff_may_download(self, client, project, owner, graded, media):
        export = export_start(project=project, fmt="csv", requested_by=owner)
        export = export_run(export_id=export.pk)
        client.force_login(UserFactory(username="admin", is_staff=True))

        response = client.get(reverse("export-download", args=[project.slug, export.pk]))

        assert response.status_code == 200
        assert response["Content-Disposition"] == (
            f'attachment; filename="support-bot-gold-{export.pk}.csv"'
        )
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows == export_csv(project)
        # One row per output and criterion: 8 outputs x (holistic, grounded, helpful).
        assert (len(rows), export.rows) == (24, 24)

    def test_an_export_of_another_project_is_not_found(self, client, project, owner, media):
        other = project_create(name="Other", slug="other", owner=owner)
        export = export_start(project=other, fmt="csv", requested_by=owner)
        client.force_login(owner)

        assert client.get(reverse("export-download", args=[project.slug, export.pk])).status_code == 404

    def test_admin_action_queues_an_export_per_project(
        self, client, project, owner, graded, media, django_capture_on_commit_callbacks
    ):
        admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
        client.force_login(admin)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:annotate_project_changelist"),
                {"action": "export_gold_csv", "_selected_action": [project.pk]}, follow=True,
            )

        export = Export.objects.get()
        assert (export.project, export.format, export.status, export.requested_by) == (
            project, "csv", ExportStatus.DONE, admin
        )
        assert "Queued a gold-label export (CSV) of 1 project" in response.content.decode()


@pytest.mark.django_db
def test_excluded_outputs_stay_in_the_export_with_a_flag(project, owner, graded):
    from annotate.services.output_actions import outputs_exclude, outputs_include

    outputs_exclude(project=project, output_ids=[graded[0].pk, graded[5].pk], reason="duplicate", by=owner)
    outputs_include(project=project, output_ids=[graded[5].pk], by=owner)

    rows = export_csv(project, chunk_size=3)
    lines = io.BytesIO()
    write_gold(project, "jsonl", lines, chunk_size=3)

    flagged = {(r["item_id"], r["system"]) for r in rows if r["excluded_from_sampling"] == "true"}
    assert flagged == {("q0", "alpha")}
    assert len(rows) == 8 * 3
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [r["gold"]["excluded_from_sampling"] for r in records] == [True] + [False] * 7
