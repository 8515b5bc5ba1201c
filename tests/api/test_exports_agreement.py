import csv
import io

import pytest
from django.test import override_settings

from annotate.models import Export
from annotate.services.grades import grade_submit
from tests.factories import OutputFactory, SampleFactory, UserFactory


@pytest.fixture
def graded(project, owner, annotator, make_outputs):
    second = UserFactory(username="second")
    from annotate.services.projects import membership_set

    membership_set(project=project, user=second, role="annotator")
    outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
    for output in outputs:
        grade_submit(output=output, annotator=annotator, verdict="pass" if output.system == "alpha" else "fail")
        grade_submit(output=output, annotator=second, verdict="pass")
    return outputs


@pytest.fixture
def owner_api(api_for, owner):
    return api_for(owner)


@pytest.mark.django_db
def test_export_job_then_file(owner_api, graded, tmp_path, django_capture_on_commit_callbacks):
    with override_settings(MEDIA_ROOT=tmp_path):
        with django_capture_on_commit_callbacks(execute=True):
            started = owner_api.post("/api/projects/support-bot/exports/", {"format": "csv"}, format="json")
        detail = owner_api.get(f"/api/exports/{started.json()['id']}/").json()
        download = owner_api.get(detail["file_url"])

    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert started.status_code == 201
    assert (detail["status"], detail["rows"], detail["format"]) == ("done", 4, "csv")
    assert sorted((r["system"], r["gold"], r["gold_status"], r["n_annotators"]) for r in rows) == [
        ("alpha", "pass", "majority", "2"), ("alpha", "pass", "majority", "2"),
        ("beta", "tie", "tie", "2"), ("beta", "tie", "tie", "2")]
    assert Export.objects.count() == 1


@pytest.mark.django_db
def test_export_can_leave_out_unlabelled_outputs(
    owner_api, graded, project, tmp_path, django_capture_on_commit_callbacks
):
    # Given two more outputs nobody graded
    sample = SampleFactory(project=project, external_id="ungraded", input_text="Question?")
    for system in ("alpha", "beta"):
        OutputFactory(sample=sample, project=project, system=system, text=f"{system} answers.")
    with override_settings(MEDIA_ROOT=tmp_path):
        with django_capture_on_commit_callbacks(execute=True):
            everything = owner_api.post(
                "/api/projects/support-bot/exports/", {"format": "csv"}, format="json"
            ).json()
            labelled = owner_api.post(
                "/api/projects/support-bot/exports/", {"format": "csv", "labelled_only": True},
                format="json",
            ).json()
        detail = owner_api.get(f"/api/exports/{labelled['id']}/").json()
        download = owner_api.get(detail["file_url"])

    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert everything["options"] == {"all_grades": False, "include_stale": False, "labelled_only": False}
    assert labelled["options"] == {"all_grades": False, "include_stale": False, "labelled_only": True}
    assert owner_api.get(f"/api/exports/{everything['id']}/").json()["rows"] == 6
    assert detail["rows"] == 4
    assert sorted(r["system"] for r in rows) == ["alpha", "alpha", "beta", "beta"]


@pytest.mark.django_db
def test_bad_format_is_a_field_error(owner_api, project):
    answer = owner_api.post("/api/projects/support-bot/exports/", {"format": "xlsx"}, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "format"
    assert Export.objects.count() == 0


@pytest.mark.django_db
def test_agreement_table(owner_api, graded):
    body = owner_api.get("/api/projects/support-bot/agreement/").json()

    holistic = body["criteria"][0]
    assert holistic["percent_agreement"] == pytest.approx(0.5)
