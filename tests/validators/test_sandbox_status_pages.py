"""What users are told about the sandbox (issue 11 §3, §4): a validator broken for this data is
reported when it is created or imported, and the validators page and the API say which
barriers hold, or that code validators are off where the platform refuses namespaces."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from rest_framework.test import APIClient

from validators import queries
from validators.models import Validator, VerdictRecord
from validators.sandbox import pool as sandbox_pool
from validators.services.authoring import validator_create
from validators.services.runs import run_start

BROKEN_FOR_THIS_DATA = (
    "def check(output, input, reference, meta):\n    return meta['rubric_score'] > 3\n"
)
FINE = "def check(output, input, reference, meta):\n    return len(output) > 3\n"
WARNING = ("'needs rubric' answered error on every one of the project's first 5 outputs; "
           "the first said: KeyError: 'rubric_score' (line 2)")


@pytest.fixture
def owner_api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def namespaces_refused():
    """The process-wide pool as on a platform that refuses namespaces, no admin override."""
    sandbox_pool.configure(bwrap=None, allow_weak_isolation=False)
    queries.forget_sandbox_summary()
    yield
    sandbox_pool.configure(allow_weak_isolation=django_settings.CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION)
    queries.forget_sandbox_summary()


@pytest.mark.django_db
class TestBrokenForThisData:
    def test_the_api_reports_it_at_creation(self, owner_api, project, make_outputs):
        make_outputs(n_samples=3, systems=("alpha", "beta"))

        broken = owner_api.post(f"/api/projects/{project.slug}/validators/", {
            "kind": "code", "name": "needs rubric", "source": BROKEN_FOR_THIS_DATA,
        }, format="json")
        fine = owner_api.post(f"/api/projects/{project.slug}/validators/", {
            "kind": "code", "name": "long enough", "source": FINE,
        }, format="json")

        assert (broken.status_code, broken.json()["warnings"]) == (201, [WARNING])
        assert (fine.status_code, fine.json()["warnings"]) == (201, [])

    def test_the_api_reports_it_at_import_and_still_refuses_what_does_not_compile(
        self, owner_api, project, make_outputs
    ):
        make_outputs(n_samples=3, systems=("alpha", "beta"))
        url = f"/api/projects/{project.slug}/validators/import/"

        refused = owner_api.post(url, [
            {"name": "fine", "kind": "code", "source": FINE},
            {"name": "typo", "kind": "code", "source": "def check(output, input:\n"},
        ], format="json")
        imported = owner_api.post(url, [
            {"name": "needs rubric", "kind": "code", "source": BROKEN_FOR_THIS_DATA},
            {"name": "fine", "kind": "code", "source": FINE},
        ], format="json")

        assert refused.status_code == 400
        assert [(e["line"], e["field"]) for e in refused.json()["errors"]] == [(2, "source")]
        assert imported.status_code == 201
        assert {v["name"]: v["warnings"] for v in imported.json()["validators"]} == {
            "needs rubric": [WARNING], "fine": [],
        }

    def test_the_page_reports_it_at_creation_and_import(self, client, owner, project,
                                                         make_outputs):
        make_outputs(n_samples=3, systems=("alpha", "beta"))
        client.force_login(owner)

        created = client.post(reverse("validator-create", args=[project.slug]), {
            "kind": "code", "name": "needs rubric", "source": BROKEN_FOR_THIS_DATA,
        }, follow=True)
        upload = io.BytesIO(json.dumps({"validators": [
            {"name": "needs rubric", "kind": "code", "source": BROKEN_FOR_THIS_DATA + "\n"},
        ]}).encode())
        upload.name = "validators.json"
        imported = client.post(reverse("validators-import", args=[project.slug]),
                               {"file": upload}, follow=True)

        for page in (created, imported):
            assert WARNING.replace("'", "&#x27;") in page.content.decode()
        assert Validator.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_the_page_and_the_api_list_the_active_barriers(client, owner, project):
    queries.forget_sandbox_summary()
    client.force_login(owner)

    page = client.get(reverse("validator-list", args=[project.slug])).content.decode()
    status = client.get("/api/sandbox/").json()

    assert status["code_validators_enabled"] is True
    if status["mode"] == "namespaces":
        assert status["missing_barriers"] == []
        assert f"Code sandbox: full isolation ({len(status['active_barriers'])} barriers)." in page
    assert "seccomp filter" in page and "pid namespace" in page


@pytest.mark.django_db
def test_where_namespaces_are_refused_code_validators_are_off_and_say_why(
    namespaces_refused, client, owner, project, make_outputs, django_capture_on_commit_callbacks
):
    make_outputs(n_samples=2, systems=("alpha",))
    client.force_login(owner)
    validator = validator_create(project=project, kind="code", name="fine", source=FINE)

    page = client.get(reverse("validator-list", args=[project.slug])).content.decode()
    status = client.get("/api/sandbox/").json()
    with django_capture_on_commit_callbacks(execute=True):
        run_start(project=project, validators=[validator])

    assert "Code validators are off on this server." in page
    assert "CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION=1" in page
    assert (status["mode"], status["code_validators_enabled"]) == ("weak", False)
    assert "minimal read-only root" in status["missing_barriers"]
    details = set(VerdictRecord.objects.filter(validator=validator).values_list("detail", flat=True))
    assert len(details) == 1
    assert details.pop().startswith("could not evaluate: SandboxDisabled: code validators are off")
