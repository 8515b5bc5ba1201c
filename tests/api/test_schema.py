"""The OpenAPI schema and its docs page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_schema_is_served_and_lists_every_endpoint():
    answer = APIClient().get("/api/schema/?format=json")

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
def test_docs_page_points_at_the_schema():
    answer = APIClient().get("/api/docs/")

    assert answer.status_code == 200
    assert b"swagger-ui" in answer.content
    assert b"/api/schema/" in answer.content


def test_schema_generation_has_no_warnings_and_validates(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(tmp_path / "schema.yaml")],
        cwd=ROOT, env={**os.environ, "DEBUG": "1"}, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")
