"""The OpenAPI schema and its docs page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_schema_is_served_and_lists_every_endpoint(owner):
    answer = logged_in(owner).get("/api/schema/?format=json")

    assert answer.status_code == 200
    schema = answer.json()
    assert schema["info"]["title"] == "Concord API"
    assert {
        "/api/auth/token/", "/api/projects/", "/api/projects/{slug}/",
        "/api/projects/{slug}/members/", "/api/projects/{slug}/import/",
        "/api/projects/{slug}/outputs/", "/api/projects/{slug}/criteria/",
        "/api/projects/{slug}/criteria/{key}/versions/", "/api/projects/{slug}/providers/",
        "/api/projects/{slug}/validators/", "/api/projects/{slug}/validators/import/",
        "/api/projects/{slug}/validators/export/", "/api/projects/{slug}/runs/",
        "/api/runs/{id}/", "/api/projects/{slug}/queue/next/", "/api/projects/{slug}/grades/",
        "/api/projects/{slug}/comparisons/", "/api/projects/{slug}/alignment/",
        "/api/projects/{slug}/suites/", "/api/suites/{id}/export/",
    } <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


@pytest.mark.django_db
def test_docs_page_points_at_the_schema(client, owner):
    client.force_login(owner)
    answer = client.get("/api/docs/")

    assert answer.status_code == 200
    assert b"swagger-ui" in answer.content
    assert b"/api/schema/" in answer.content


@pytest.mark.django_db
def test_anonymous_visitors_get_neither_schema_nor_docs(client):
    schema = APIClient().get("/api/schema/?format=json")
    docs = client.get("/api/docs/")

    assert (schema.status_code, schema["WWW-Authenticate"]) == (401, "Token")
    assert schema.json() == {"errors": [
        {"field": "", "message": "Authentication credentials were not provided."},
    ]}
    assert b"paths" not in schema.content
    assert (docs.status_code, docs["Location"]) == (302, "/login/?next=/api/docs/")


@pytest.mark.django_db
def test_a_token_opens_the_schema(owner):
    token = APIClient().post(
        "/api/auth/token/", {"username": "olivia", "password": "pw-for-tests"}, format="json"
    ).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    answer = client.get("/api/schema/?format=json")

    assert (answer.status_code, answer.json()["info"]["title"]) == (200, "Concord API")


@pytest.mark.django_db
def test_the_setting_makes_schema_and_docs_public(client, settings):
    settings.CONCORD_PUBLIC_API_SCHEMA = True

    schema = APIClient().get("/api/schema/?format=json")
    docs = client.get("/api/docs/")

    assert (schema.status_code, schema.json()["info"]["title"]) == (200, "Concord API")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_the_environment_variable_sets_it():
    code = "from django.conf import settings; print(settings.CONCORD_PUBLIC_API_SCHEMA)"
    answers = [
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
            env={**os.environ, "DEBUG": "1", "CONCORD_PUBLIC_API_SCHEMA": value,
                 "DJANGO_SETTINGS_MODULE": "config.settings"},
            capture_output=True, text=True, timeout=60,
        ).stdout.strip()
        for value in ("1", "0")
    ]
    assert answers == ["True", "False"]


def test_schema_generation_has_no_warnings_and_validates(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(tmp_path / "schema.yaml")],
        cwd=ROOT, env={**os.environ, "DEBUG": "1"}, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")
