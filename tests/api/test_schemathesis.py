"""Every operation of the live schema (/api/schema/), fed by schemathesis as a project owner
with a project and data in place: no answer is a 5xx, and every answer matches the schema
(status code, content type, body).

Fixed seed and a bounded number of examples per operation, so the test is repeatable and
stays under a minute. To look for more, run it with CONCORD_SCHEMATHESIS_SEED=<n> and
CONCORD_SCHEMATHESIS_EXAMPLES=<n>.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import got_request_exception
from django.test.client import ClientHandler
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode, checks

from annotate.services.criteria import criterion_create
from annotate.services.exports import export_start
from annotate.services.grades import grade_submit
from annotate.services.imports import outputs_import
from validators.services import run_start, suite_save, validators_import

SEED = int(os.environ.get("CONCORD_SCHEMATHESIS_SEED", "20261207"))
EXAMPLES = int(os.environ.get("CONCORD_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
    checks.response_schema_conformance,
]


class DjangoTestApp:
    """Django's test-client handler as a WSGI application: it keeps the test's database
    connection open between requests (a plain WSGI handler closes it at each request's end)
    and skips CSRF, as DRF's token authentication does anyway."""

    def __init__(self):
        self.handler = ClientHandler(enforce_csrf_checks=False)

    def __call__(self, environ, start_response):
        response = self.handler(environ)
        headers = list(response.items()) + [
            ("Set-Cookie", morsel.output(header="")) for morsel in response.cookies.values()
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        response.close()
        return [body]


@pytest.fixture
def data_in_place(project, owner, annotator, settings):
    """What an owner's project holds after a day's work: outputs, a criterion, a validator
    that ran, grades, a saved report card and a gold export. Returns the ids the {id} paths
    are aimed at."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    records = [
        {"item_id": f"q{i}", "input": f"Question {i}?", "reference": f"Answer {i}",
         "system": system, "output": f"{system} says {i}"}
        for i in range(4) for system in ("alpha", "beta")
    ]
    assert outputs_import(project=project, records=records).ok
    accuracy = criterion_create(
        project=project, key="accuracy", name="Accuracy", definition="True.", author=owner,
    )
    validators_import(project=project, created_by=owner, data={"validators": [
        {"name": "mentions alpha", "criterion": "accuracy", "kind": "code", "threshold": None,
         "source": "def check(output, input, reference, meta):\n    return 'alpha' in output"},
    ]})
    run = run_start(project=project, requested_by=owner)
    for output in project.outputs.order_by("id"):
        verdict = "pass" if output.system == "alpha" else "fail"
        grade_submit(output=output, annotator=annotator, verdict=verdict,
                     criteria={accuracy.key: verdict})
    suite = suite_save(project=project, name="baseline", created_by=owner)
    export = export_start(project=project, fmt="csv", requested_by=owner)
    return {"/api/runs/{id}/": run.pk, "/api/suites/{id}/export/": suite.pk,
            "/api/exports/{id}/": export.pk, "/api/exports/{id}/file/": export.pk}


@pytest.mark.django_db(transaction=True)
def test_no_5xx_and_every_answer_matches_the_schema(data_in_place, project, owner):
    token = Token.objects.create(user=owner)
    headers = {"Authorization": f"Token {token.key}"}
    app = DjangoTestApp()
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, headers=headers)
    crashes: list[str] = []

    def remember_crash(sender, request=None, **kwargs):
        import traceback

        crashes.append(f"{request.method} {request.get_full_path()}\n{traceback.format_exc()}")

    got_request_exception.connect(remember_crash)
    failures: list[str] = []
    calls: dict[str, int] = {}
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            failures.extend(_exercise(
                operation, project=project, headers=headers, calls=calls,
                known_id=data_in_place.get(operation.path),
            ))
    finally:
        got_request_exception.disconnect(remember_crash)
    assert failures == [], "\n\n".join(failures + crashes)
    # Every operation of the schema was exercised, each with several requests.
    assert len(calls) >= 33
    assert min(calls.values()) >= min(EXAMPLES, 5), calls


def _exercise(
    operation, *, project, headers, calls: dict[str, int], known_id: int | None,
) -> list[str]:
    failures: list[str] = []
    # Aim at the project that has data (a random slug only ever meets a 404); both valid
    # requests and invalid ones (schemathesis' negative mode) are sent.
    names = {p.name for p in operation.path_parameters}
    fixed = {"slug": project.slug} if "slug" in names else {}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
    ]
    # A random id or criterion key meets a 404; the object in place gets the variety of the
    # body and query parameters.
    if known_id is not None:
        strategies.append(operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={**fixed, "id": known_id},
        ))
    if "key" in names:
        strategies.append(operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={**fixed, "key": "accuracy"},
        ))
    strategy = st.one_of(*strategies)

    @seed(SEED)
    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        calls[operation.label] = calls.get(operation.label, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # every failure is reported at the end
            failures.append(f"{operation.label}: {exc}")

    run()
    # One failure per operation and kind is enough to act on.
    distinct = {failure.split("Reproduce with")[0]: failure for failure in failures}
    return list(distinct.values())
