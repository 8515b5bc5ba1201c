"""Provider keys stay secret (issue 11 §5): only admin-allowed variable names are read, no
link-local or metadata address is called, and a key a hostile provider echoes back appears in
no page, API answer, export, stored detail or log."""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.services import exports as export_services
from concord_testing.llm_stub import LLMStubServer
from validators import provider_rules
from validators.models import Provider, Run, VerdictRecord
from validators.services.authoring import validator_create
from validators.services.providers import provider_save
from validators.services.runs import run_start

SECRET = "sk-live-CONCORD-TEST-0123456789abcdef"
KEY_NAME = "CONCORD_LLM_KEY_TEAM"
GROUNDED = "Answer: {output}\nIs it grounded? Answer YES or NO."
POLICY = provider_rules.KeyPolicy(names=("OPENAI_API_KEY",), prefix="CONCORD_LLM_KEY_")


# --- the rules alone ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "OPENAI_API_KEY", "CONCORD_LLM_KEY_TEAM"])
def test_allowed_key_names(name):
    assert provider_rules.api_key_env_problem(name, POLICY) == ""


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "CONCORD_LLM_KEY", "HOME"])
def test_other_names_are_refused_with_the_allowed_ones(name):
    assert provider_rules.api_key_env_problem(name, POLICY) == (
        "The server reads provider keys only from environment variables an admin allowed: "
        f"CONCORD_LLM_KEY_…, OPENAI_API_KEY. '{name}' is not one of them."
    )


def test_a_key_in_place_of_a_name_is_refused_as_such():
    assert provider_rules.api_key_env_problem("sk-abc-123", POLICY).startswith(
        "Give the NAME of the environment variable")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://169.254.10.1/v1", "http://[fe80::1]/v1",
    "http://[fd00:ec2::254]/v1", "http://100.100.100.200/v1", "http://metadata.google.internal/v1",
    "http://[::ffff:169.254.169.254]/v1", "https://METADATA.GOOGLE.INTERNAL./v1",
])
def test_link_local_and_metadata_addresses_are_refused(url):
    problem = provider_rules.base_url_problem(url, allow_link_local=False, resolve=False)
    assert problem.startswith("The base URL points at a link-local or cloud-metadata address")
    assert provider_rules.base_url_problem(url, allow_link_local=True, resolve=False) == ""


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "https://api.example.com/v1",
                                 "http://10.0.0.5/v1", "http://[::1]:9/v1"])
def test_ordinary_addresses_pass(url):
    assert provider_rules.base_url_problem(url, allow_link_local=False, resolve=False) == ""


def test_redaction_replaces_every_occurrence():
    text = f"Bearer {SECRET} ... {SECRET}"
    assert provider_rules.redact(text, [SECRET, None]) == "Bearer [redacted key] ... [redacted key]"


# --- at save: API and page, owners only ------------------------------------------------------


@pytest.fixture
def owner_api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL"])
def test_the_api_refuses_a_server_secret_as_the_key_variable(owner_api, project, name):
    answer = owner_api.post(f"/api/projects/{project.slug}/providers/", {
        "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": name,
    }, format="json")

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == "api_key_env"
    assert "CONCORD_LLM_KEY_…" in error["message"] and f"'{name}' is not one of them" in error["message"]
    assert Provider.objects.count() == 0


@pytest.mark.django_db
def test_the_api_refuses_the_metadata_address_unless_allowed(owner_api, project, settings):
    body = {"base_url": "http://169.254.169.254/v1", "model": "m"}

    refused = owner_api.post(f"/api/projects/{project.slug}/providers/", body, format="json")
    settings.CONCORD_LLM_ALLOW_LINK_LOCAL = True
    allowed = owner_api.post(f"/api/projects/{project.slug}/providers/", body, format="json")

    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "base_url"
    assert allowed.status_code == 201


@pytest.mark.django_db
def test_the_page_refuses_a_server_secret_and_names_the_allowed_variables(client, owner, project):
    client.force_login(owner)

    page = client.post(reverse("provider-save", args=[project.slug]), {
        "name": "default", "base_url": "http://127.0.0.1:9/v1", "model": "m",
        "api_key_env": "SECRET_KEY", "concurrency": 4, "timeout_seconds": 10, "temperature": 0,
    })

    assert page.status_code == 400
    assert "only from environment variables an admin allowed" in page.content.decode()
    assert Provider.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("member", ["annotator", "reviewer"])
def test_only_owners_create_providers(project, request, member):
    client = APIClient()
    client.force_authenticate(request.getfixturevalue(member))

    answer = client.post(f"/api/projects/{project.slug}/providers/", {
        "base_url": "http://127.0.0.1:9/v1", "model": "m",
    }, format="json")

    assert answer.status_code == 403
    assert Provider.objects.count() == 0


@pytest.mark.django_db
def test_a_provider_saved_before_the_rule_is_not_used_and_nothing_is_sent(
    project, make_outputs, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv("SECRET_KEY", SECRET)
    make_outputs(n_samples=2, systems=("alpha",))
    with LLMStubServer() as stub:
        # As if written before the rule existed: straight into the table.
        provider = Provider.objects.create(project=project, name="old", base_url=stub.base_url,
                                           model="m", api_key_env="SECRET_KEY")
        grader = validator_create(project=project, kind="llm", name="g",
                                           source=GROUNDED, provider=provider)
        with django_capture_on_commit_callbacks(execute=True):
            run = run_start(project=project, validators=[grader])

        assert stub.requests == []
    verdicts = VerdictRecord.objects.filter(validator=grader)
    assert Run.objects.get(pk=run.pk).status == "done"
    assert {v.outcome for v in verdicts} == {"error"}
    assert "provider 'old' cannot be used" in verdicts[0].detail
    assert SECRET not in verdicts[0].detail


# --- a hostile provider echoes the key: it shows up nowhere ----------------------------------


@pytest.mark.django_db
def test_a_key_echoed_by_the_provider_appears_in_no_page_answer_export_or_log(
    project, owner, make_outputs, django_capture_on_commit_callbacks, monkeypatch, caplog,
    settings, tmp_path,
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setenv(KEY_NAME, SECRET)
    caplog.set_level(logging.DEBUG)
    make_outputs(n_samples=3, systems=("alpha", "beta"))
    with LLMStubServer(echo_authorization=True) as echoing, \
            LLMStubServer(api_key="the-right-key", echo_authorization=True) as refusing:
        answering = provider_save(project=project, name="echo", base_url=echoing.base_url,
                                           model="m", api_key_env=KEY_NAME)
        rejecting = provider_save(project=project, name="refuse",
                                           base_url=refusing.base_url, model="m",
                                           api_key_env=KEY_NAME)
        graders = [
            validator_create(project=project, kind="llm", name=name, source=GROUNDED,
                                      provider=provider)
            for name, provider in (("echoed", answering), ("rejected", rejecting))
        ]
        with django_capture_on_commit_callbacks(execute=True):
            run_start(project=project, validators=graders)

        # The key did go where it belonged, and came back in the answers and errors.
        assert echoing.requests[0].authorization == f"Bearer {SECRET}"
        assert refusing.requests[0].status == 401

    details = list(VerdictRecord.objects.values_list("detail", flat=True))
    assert len(details) == 12
    assert all("[redacted key]" in detail for detail in details)

    client = APIClient()
    client.force_login(owner)
    seen = []
    for path in (
        reverse("validator-list", args=[project.slug]),
        reverse("verdict-matrix", args=[project.slug]),
        reverse("report-card", args=[project.slug]),
        *(reverse("validator-detail", args=[project.slug, g.pk]) for g in graders),
        f"/api/projects/{project.slug}/providers/",
        f"/api/projects/{project.slug}/validators/",
        f"/api/projects/{project.slug}/alignment/",
        reverse("validators-export", args=[project.slug]),
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        seen.append(answer.content.decode())
    for export_format in ("csv", "jsonl"):
        started = export_services.export_start(project=project, fmt=export_format,
                                               requested_by=owner)
        export = export_services.export_run(export_id=started.pk)
        with export.file.open("rb") as handle:
            seen.append(handle.read().decode())
    seen.append(json.dumps([r.getMessage() for r in caplog.records]))
    seen.append(caplog.text)

    assert all(SECRET not in text for text in seen)
