"""Honest labels (DESIGN §4.1, issue 12): criterion labels come only from criterion verdicts.

The reported bug: one explicit "lead copying" verdict became a gold label on every holistically
graded output. These tests drive the report card, the review agenda and meeting view, and the
gold export (CSV, JSON Lines, Parquet) over the same grades, with the project option
"a holistic pass means every criterion passed" off and on.
"""

import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.urls import reverse

from annotate.gold import GoldOptions, write_gold
from annotate.labels import inferred_outputs, load_votes
from annotate.models import Criterion, Grade, GradeCriterion, Output, Project
from annotate.review.agenda import review_agenda
from annotate.review.agreement_tables import agreement_tables
from annotate.review.output_review import output_review
from annotate.services.criteria import criterion_create
from annotate.services.grades import grade_submit
from annotate.services.imports import outputs_import
from annotate.services.projects import membership_set, project_create
from annotate.statistics import NO_LABEL, majority
from tests.factories import UserFactory
from validators.matrix import forget
from validators.models import CriterionSetting, Validator, VerdictRecord
from validators.report_card import report_card

KEY = "lead_copying"
N_OUTPUTS = 20
N_HOLISTIC_PASS = 14  # outputs 0..13 pass holistically, 14..19 fail
EXPLICIT = 1          # the one output with a lead_copying verdict: fail (its holistic is pass)
# The pinned validator fails these, and passes the explicit one: people and it disagree there.
CAUGHT = (0, 2, 3, 4)


@pytest.fixture(autouse=True)
def fresh_matrix_cache():
    forget()
    yield
    forget()


@pytest.fixture
def reported(project, annotator, owner, make_outputs):
    """The reported case, small: 20 holistic grades and one explicit criterion verdict."""
    outputs = make_outputs(n_samples=10, systems=("alpha", "beta"))
    criterion = criterion_create(project=project, key=KEY, name="Lead copying", author=owner)
    for index, output in enumerate(outputs):
        verdict = "pass" if index < N_HOLISTIC_PASS else "fail"
        criteria = {KEY: "fail"} if index == EXPLICIT else None
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria=criteria)
    validator = Validator.objects.create(
        project=project, name="copies_lead", kind="code", criterion=criterion,
        source="def check(output, input, reference, meta):\n    return True",
    )
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=validator, output=o, outcome="fail" if i in CAUGHT else "pass")
        for i, o in enumerate(outputs)
    ])
    # Pinned, so it is the chosen validator whatever the label counts, and the agenda
    # compares the human labels with it.
    CriterionSetting.objects.create(project=project, criterion=criterion, pinned=validator)
    return outputs, criterion, validator


def infer(project: Project, on: bool = True) -> None:
    project.holistic_pass_implies_criteria = on
    project.save(update_fields=["holistic_pass_implies_criteria"])


def card_entry(project):
    return next(c for c in report_card(project).criteria if c.key == KEY)


def gold_rows(project, fmt: str) -> list[dict]:
    buffer = io.BytesIO()
    write_gold(project, fmt, buffer, options=GoldOptions())
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(buffer.getvalue().decode())))
    buffer.seek(0)
    return pq.read_table(buffer).to_pylist()


def criterion_rows(rows: list[dict]) -> dict[int, tuple]:
    """output index -> (gold, gold_status, label_source, n_pass, n_fail) of the KEY rows."""
    first = min(int(r["output_id"]) for r in rows)
    return {
        int(r["output_id"]) - first: (
            r["gold"] or "", r["gold_status"], r["label_source"] or "", int(r["n_pass"]),
            int(r["n_fail"]),
        )
        for r in rows if r["criterion"] == KEY
    }


UNLABELLED = ("", "unlabelled", "", 0, 0)
GIVEN_FAIL = ("fail", "majority", "given", 0, 1)
INFERRED_PASS = ("pass", "majority", "inferred", 1, 0)


# -- the regression: option off ---------------------------------------------------------------
@pytest.mark.django_db
class TestOneExplicitVerdictIsOneLabel:
    def test_on_the_report_card(self, project, reported):
        entry = card_entry(project)

        assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (0, 0, 1)
        [ranked] = entry.selection.ranked
        metrics = ranked.candidate.metrics
        assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (0, 1, 0, 0)
        assert (metrics.coverage, metrics.false_failure_rate) == (0.0, None)

    def test_on_the_report_card_page_and_api(self, client, project, reported, reviewer):
        client.force_login(reviewer)

        page = client.get(reverse("report-card", args=[project.slug])).content.decode()
        body = client.get(f"/api/projects/{project.slug}/alignment/").json()

        assert "Measured on 0 passing and 1 failing human labels" in page
        entry = next(c for c in body["criteria"] if c["key"] == KEY)
        assert (entry["n_human_pass"], entry["n_human_pass_inferred"], entry["n_human_fail"]) == (
            0, 0, 1)

    def test_on_the_agenda(self, project, reported):
        outputs, _, _ = reported

        items = [e for e in review_agenda(project) if e.kind == "validator"]

        assert [(e.output_id, e.title) for e in items] == [
            (outputs[EXPLICIT].pk, "q0 · beta: humans say fail on lead_copying, copies_lead says pass"),
        ]
        assert items[0].detail["targets"][0]["label_source"] == "given"

    @pytest.mark.parametrize("fmt", ["csv", "parquet"])
    def test_in_the_gold_export(self, project, reported, fmt):
        rows = criterion_rows(gold_rows(project, fmt))

        assert rows == {i: GIVEN_FAIL if i == EXPLICIT else UNLABELLED for i in range(N_OUTPUTS)}

    def test_in_the_jsonl_export(self, project, reported):
        buffer = io.BytesIO()
        write_gold(project, "jsonl", buffer)

        records = [json.loads(line) for line in buffer.getvalue().decode().splitlines()]
        assert [r["human"].get("criteria") for r in records] == [
            {KEY: 0} if i == EXPLICIT else None for i in range(N_OUTPUTS)
        ]
        assert [r["gold"]["criteria"][KEY]["label_source"] for r in records] == [
            "given" if i == EXPLICIT else "" for i in range(N_OUTPUTS)
        ]

    def test_a_holistic_fail_implies_nothing_even_with_the_option(self, project, reported):
        infer(project)

        rows = criterion_rows(gold_rows(project, "csv"))

        assert [rows[i] for i in range(N_HOLISTIC_PASS, N_OUTPUTS)] == [UNLABELLED] * 6


# -- the option on: inferred labels, counted apart --------------------------------------------
@pytest.mark.django_db
class TestInferredLabels:
    def test_the_card_counts_them_apart_and_measures_with_them(self, project, reported):
        infer(project)

        entry = card_entry(project)

        # 13 holistic passes without a verdict (all but the explicit output) + 1 given fail.
        assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (13, 13, 1)
        metrics = entry.selection.ranked[0].candidate.metrics
        assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (0, 1, 4, 9)
        assert metrics.false_failure_rate == pytest.approx(4 / 13)

    def test_the_page_and_api_say_how_many_are_inferred(self, client, project, reported, reviewer):
        infer(project)
        client.force_login(reviewer)

        page = client.get(reverse("report-card", args=[project.slug])).content.decode()
        body = client.get(f"/api/projects/{project.slug}/alignment/").json()

        assert "Measured on 13 passing (13 inferred from holistic passes) and 1 failing human labels" in page
        entry = next(c for c in body["criteria"] if c["key"] == KEY)
        assert (entry["n_human_pass"], entry["n_human_pass_inferred"], entry["n_human_fail"]) == (
            13, 13, 1)

    def test_the_agenda_marks_them_and_lists_given_labels_first(self, project, reported):
        outputs, _, _ = reported
        infer(project)

        items = [e for e in review_agenda(project) if e.kind == "validator"]

        assert [(e.output_id, e.detail["targets"][0]["label_source"]) for e in items] == [
            (outputs[EXPLICIT].pk, "given"),
            *[(outputs[i].pk, "inferred") for i in (0, 2, 3, 4)],
        ]
        assert items[1].title == (
            "q0 · alpha: humans say pass (inferred) on lead_copying, copies_lead says fail"
        )

    def test_the_meeting_view_marks_inferred_votes(self, project, reported):
        outputs, _, _ = reported
        infer(project)

        [_, inferred_view] = output_review(outputs[0])
        [_, given_view] = output_review(outputs[EXPLICIT])

        assert [(v.annotator, v.verdict, v.inferred) for v in inferred_view.votes] == [
            ("arjun", "pass", True)]
        assert (inferred_view.majority, inferred_view.inferred) == ("pass", True)
        assert [(v.annotator, v.verdict, v.inferred) for v in given_view.votes] == [
            ("arjun", "fail", False)]
        assert given_view.inferred is False

    def test_the_meeting_page_shows_them_as_inferred(self, client, project, reported, reviewer):
        from annotate.services.review import meeting_start

        infer(project)
        meeting = meeting_start(project=project, started_by=reviewer)
        client.force_login(reviewer)

        given, inferred = (
            client.get(reverse("review-meeting-item", args=[project.slug, meeting.pk, n])).content.decode()
            for n in (1, 2)
        )

        assert "q0 · beta: humans say fail on lead_copying" in given
        assert ">arjun · fail</span>" in given and 'data-testid="inferred"' not in given
        assert "q0 · alpha: humans say pass (inferred) on lead_copying" in inferred
        assert ">arjun · pass (inferred)</span>" in inferred
        assert '<small class="muted" data-testid="inferred">inferred</small>' in inferred

    @pytest.mark.parametrize("fmt", ["csv", "parquet"])
    def test_the_export_marks_them(self, project, reported, fmt):
        infer(project)

        rows = criterion_rows(gold_rows(project, fmt))

        assert rows == {
            i: GIVEN_FAIL if i == EXPLICIT else INFERRED_PASS if i < N_HOLISTIC_PASS else UNLABELLED
            for i in range(N_OUTPUTS)
        }

    def test_jsonl_keeps_them_out_of_human_and_marks_them_in_gold(self, project, reported):
        infer(project)
        buffer = io.BytesIO()
        write_gold(project, "jsonl", buffer, options=GoldOptions(all_grades=True))

        records = [json.loads(line) for line in buffer.getvalue().decode().splitlines()]
        assert [r["human"].get("criteria") for r in records] == [
            {KEY: 0} if i == EXPLICIT else None for i in range(N_OUTPUTS)
        ]
        sources = [r["gold"]["criteria"][KEY]["label_source"] for r in records]
        assert sources == [
            "given" if i == EXPLICIT else "inferred" if i < N_HOLISTIC_PASS else ""
            for i in range(N_OUTPUTS)
        ]
        assert [(g["verdict"], g["label_source"], g["criterion_version"])
                for g in records[0]["gold"]["criteria"][KEY]["grades"]] == [("pass", "inferred", None)]

    def test_an_adjudication_is_given_even_over_inferred_votes(self, project, reported, reviewer):
        outputs, criterion, _ = reported
        infer(project)
        from annotate.models import Adjudication

        Adjudication.objects.create(output=outputs[0], criterion=criterion, verdict="fail", reviewer=reviewer)

        rows = criterion_rows(gold_rows(project, "csv"))
        assert rows[0] == ("fail", "adjudicated", "given", 1, 0)

    def test_the_option_leaves_stored_grades_as_they_are(self, project, reported):
        before = list(GradeCriterion.objects.values_list("id", "grade_id", "criterion_id", "verdict"))
        grades_before = list(Grade.objects.order_by("id").values_list("id", "verdict"))

        infer(project)
        card_entry(project)
        gold_rows(project, "csv")

        assert list(GradeCriterion.objects.values_list("id", "grade_id", "criterion_id", "verdict")) == before
        assert len(before) == 1
        assert list(Grade.objects.order_by("id").values_list("id", "verdict")) == grades_before

    def test_agreement_is_over_given_votes_only(self, project, reported):
        infer(project)

        tables = {row.key: row for row in agreement_tables(project)}

        assert (tables[KEY].n_items, tables[KEY].n_ratings) == (1, 1)


# -- the rule on an output with several annotators ---------------------------------------------
@pytest.mark.django_db
def test_inferred_votes_never_mix_with_given_ones(project, owner, annotator, make_outputs):
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role="annotator")
    criterion = criterion_create(project=project, key=KEY, author=owner)
    outputs = make_outputs(n_samples=2, systems=("alpha",))
    # q0: bea says fail on the criterion; two holistic passes without a verdict do not outvote it.
    grade_submit(output=outputs[0], annotator=bea, verdict="fail", criteria={KEY: "fail"})
    grade_submit(output=outputs[0], annotator=annotator, verdict="pass")
    grade_submit(output=outputs[0], annotator=owner, verdict="pass")
    # q1: only holistic verdicts: the passes are inferred, the fail implies nothing.
    grade_submit(output=outputs[1], annotator=annotator, verdict="pass")
    grade_submit(output=outputs[1], annotator=owner, verdict="fail")
    infer(project)

    votes = load_votes(project)
    ids = np.array(sorted(o.pk for o in outputs), dtype=np.int64)

    assert majority(ids, votes.output_ids, votes.codes(criterion.pk)).tolist() == [0, 1]
    assert inferred_outputs(ids, votes, criterion.pk).tolist() == [False, True]
    assert int(np.count_nonzero(votes.codes(criterion.pk) != NO_LABEL)) == 2
    rows = criterion_rows(gold_rows(project, "csv"))
    assert rows == {0: ("fail", "majority", "given", 0, 1), 1: ("pass", "majority", "inferred", 1, 0)}


@pytest.mark.django_db
@pytest.mark.parametrize("on", [False, True])
def test_gold_export_and_labels_agree(project, reported, on):
    """annotate.labels (what the card and the agenda read) and annotate.gold agree, label for
    label and source for source."""
    outputs, criterion, _ = reported
    infer(project, on)
    votes = load_votes(project)
    ids = np.array([o.pk for o in Output.objects.filter(project=project).order_by("id")])
    labels = majority(ids, votes.output_ids, votes.codes(criterion.pk))
    inferred = inferred_outputs(ids, votes, criterion.pk)

    rows = criterion_rows(gold_rows(project, "csv"))

    names = {-1: "", 0: "fail", 1: "pass"}
    assert [rows[i][0] for i in range(N_OUTPUTS)] == [names[int(code)] for code in labels]
    assert [rows[i][2] == "inferred" for i in range(N_OUTPUTS)] == inferred.tolist()


# -- never re-imported as given ----------------------------------------------------------------
@pytest.mark.django_db
def test_a_round_trip_imports_only_given_labels(project, reported, owner, tmp_path):
    infer(project)
    path = tmp_path / "gold.jsonl"
    call_command("export_gold", project.slug, "--format", "jsonl", "--out", str(path))
    copy = project_create(name="Copy", slug="copy", owner=owner)

    call_command("import_outputs", "copy", str(path), "--with-labels")

    assert list(GradeCriterion.objects.filter(grade__project=copy).values_list(
        "criterion__key", "verdict", "grade__output__sample__external_id", "grade__output__system",
    )) == [(KEY, "fail", "q0", "beta")]
    assert Grade.objects.filter(project=copy).count() == N_OUTPUTS
    entry = card_entry(copy)
    assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (0, 0, 1)
    # A copy with the option infers again what the original inferred, still marked.
    infer(copy)
    assert criterion_rows(gold_rows(copy, "csv")) == criterion_rows(gold_rows(project, "csv"))


@pytest.mark.django_db
def test_the_api_import_with_labels_brings_back_only_given_labels(client, project, reported, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    infer(project)
    buffer = io.BytesIO()
    write_gold(project, "jsonl", buffer)
    copy = project_create(name="Copy", slug="copy", owner=owner)
    infer(copy)
    client.force_login(owner)

    answer = client.post(
        "/api/projects/copy/import/?with_labels=1",
        {"file": SimpleUploadedFile("gold.jsonl", buffer.getvalue())},
    )

    assert answer.status_code == 201
    assert (answer.json()["outputs"], answer.json()["grades"]) == (N_OUTPUTS, N_OUTPUTS)
    assert list(GradeCriterion.objects.filter(grade__project=copy).values_list(
        "criterion__key", "verdict")) == [(KEY, "fail")]
    entry = card_entry(copy)
    assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (13, 13, 1)


@pytest.mark.django_db
def test_the_importer_skips_a_criterion_label_its_export_marked_inferred(project):
    record = {
        "item_id": "q0", "input": "Question?", "system": "alpha", "output": "An answer.",
        "human": {"label": 1, "criteria": {KEY: 1, "tone": 0}},
        "gold": {"criteria": {KEY: {"gold": "pass", "label_source": "inferred"},
                              "tone": {"gold": "fail", "label_source": "given"}}},
    }

    result = outputs_import(project=project, records=[record], with_labels=True)

    assert result.ok and result.grades_created == 1
    assert list(GradeCriterion.objects.values_list("criterion__key", "verdict")) == [("tone", "fail")]
    assert not Criterion.objects.filter(project=project, key=KEY).exists()


# -- the setting ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_settings_form_sets_the_option(client, project, owner):
    client.force_login(owner)
    page = client.get(reverse("project-settings", args=[project.slug])).content.decode()
    assert 'name="holistic_pass_implies_criteria"' in page
    assert "A holistic pass means every criterion passed" in page

    form = {
        "name": project.name, "description": "", "guidelines": "", "default_selector": "random",
        "overlap": 1, "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1,
        "scale": "binary", "annotators_may_edit_criteria": "on",
        "holistic_pass_implies_criteria": "on",
    }
    response = client.post(reverse("project-settings", args=[project.slug]), form)

    assert response.status_code == 302
    project.refresh_from_db()
    assert project.holistic_pass_implies_criteria is True


@pytest.mark.django_db
def test_the_api_sets_the_option_and_refuses_a_non_boolean(client, project, owner, annotator):
    client.force_login(annotator)
    refused = client.patch(
        f"/api/projects/{project.slug}/", {"settings": {"holistic_pass_implies_criteria": True}},
        content_type="application/json",
    )
    client.force_login(owner)
    bad = client.patch(
        f"/api/projects/{project.slug}/", {"settings": {"holistic_pass_implies_criteria": "often"}},
        content_type="application/json",
    )
    project.refresh_from_db()
    assert refused.status_code == 403 and bad.status_code == 400
    assert "holistic_pass_implies_criteria" in json.dumps(bad.json())
    assert project.holistic_pass_implies_criteria is False

    answer = client.patch(
        f"/api/projects/{project.slug}/", {"settings": {"holistic_pass_implies_criteria": True}},
        content_type="application/json",
    )

    assert answer.status_code == 200
    assert answer.json()["settings"]["holistic_pass_implies_criteria"] is True
    project.refresh_from_db()
    assert project.holistic_pass_implies_criteria is True


# -- the rule against a plain-Python oracle ------------------------------------------------------
def oracle_labels(project: Project, criterion: Criterion, *, infer_passes: bool) -> dict[int, tuple]:
    """output id -> (label, source) by DESIGN §4.1 read literally, one grade row at a time."""
    current_version = criterion.versions.order_by("-number").first().pk
    superseded = set(Grade.objects.filter(project=project).exclude(supersedes=None)
                     .values_list("supersedes_id", flat=True))
    current = [g for g in Grade.objects.filter(project=project).order_by("id")
               if g.pk not in superseded and not g.retracted]
    verdicts = {gc.grade_id: gc for gc in GradeCriterion.objects.filter(criterion=criterion)}
    labels = {}
    for output_id in {g.output_id for g in current}:
        grades = [g for g in current if g.output_id == output_id]
        given = [verdicts[g.pk].verdict for g in grades
                 if g.pk in verdicts and verdicts[g.pk].criterion_version_id == current_version]
        source, votes = "given", given
        if not given and infer_passes:
            source = "inferred"
            votes = ["pass" for g in grades if g.verdict == "pass" and g.pk not in verdicts]
        n_pass, n_fail = votes.count("pass"), votes.count("fail")
        label = "pass" if n_pass > n_fail else "fail" if n_fail > n_pass else ""
        labels[output_id] = (label, source if label else "")
    return labels


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_card_and_export_follow_the_oracle(project, owner, annotator, make_outputs, seed):
    from annotate.services.criteria import criterion_version_publish

    rng = np.random.default_rng(seed)
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role="annotator")
    criterion = criterion_create(project=project, key=KEY, author=owner)
    outputs = make_outputs(n_samples=15, systems=("alpha", "beta"))
    verdicts = ["pass", "fail", "unsure"]

    def grade(output, user):
        given = rng.random() < 0.35
        grade_submit(
            output=output, annotator=user, verdict=str(rng.choice(verdicts, p=[0.6, 0.3, 0.1])),
            criteria={KEY: str(rng.choice(verdicts, p=[0.5, 0.4, 0.1]))} if given else None,
        )

    for output in outputs:
        for user in (annotator, owner, bea):
            if rng.random() < 0.7:
                grade(output, user)
    # Some verdicts become stale, and some grades are edited after the new version.
    criterion_version_publish(criterion=criterion, author=owner, definition="Stricter.", reason="drift")
    for output in outputs[::4]:
        grade(output, annotator)

    for on in (False, True):
        infer(project, on)
        expected = oracle_labels(project, criterion, infer_passes=on)
        votes = load_votes(project)
        ids = np.array(sorted(o.pk for o in outputs), dtype=np.int64)
        codes = majority(ids, votes.output_ids, votes.codes(criterion.pk))
        inferred = inferred_outputs(ids, votes, criterion.pk)
        names = {-1: "", 0: "fail", 1: "pass"}
        got = {
            int(o): (names[int(c)], ("inferred" if i else "given") if c >= 0 else "")
            for o, c, i in zip(ids, codes, inferred, strict=True) if int(o) in expected
        }
        assert got == expected
        rows = {int(r["output_id"]): r for r in gold_rows(project, "csv") if r["criterion"] == KEY}
        exported = {
            o: (rows[o]["gold"] if rows[o]["gold"] in ("pass", "fail") else "",
                rows[o]["label_source"] if rows[o]["gold"] in ("pass", "fail") else "")
            for o in expected
        }
        assert exported == expected
        entry = card_entry(project)
        assert (entry.n_human_pass, entry.n_human_pass_inferred, entry.n_human_fail) == (
            sum(1 for label, _ in expected.values() if label == "pass"),
            sum(1 for label, source in expected.values() if source == "inferred"),
            sum(1 for label, _ in expected.values() if label == "fail"),
        )
        assert any(source == "inferred" for _, source in expected.values()) is on
