"""Every endpoint × every role: the status, and for every refused write an unchanged database.

Roles: owner, annotator, reviewer (members of the project), outsider (a user who is not a
member) and anonymous. Non-members get 404 under /api/projects/{slug}/ (and for runs and
suites of the project), members with the wrong role 403, anonymous requests 401.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.test import override_settings

from annotate.models import (
    Assignment,
    Comparison,
    Criterion,
    CriterionVersion,
    Export,
    Grade,
    GradeCriterion,
    Membership,
    Output,
    OutputExclusion,
    Project,
    Role,
    Sample,
)
from annotate.services.criteria import criterion_create
from annotate.services.exports import export_run, export_start
from annotate.services.grades import grade_submit
from annotate.services.projects import membership_set, project_create
from tests.factories import OutputFactory, SampleFactory, UserFactory
from validators.models import PairVerdict, Provider, Run, Suite, Validator, VerdictRecord
from validators.services.authoring import validator_create
from validators.services.runs import run_start
from validators.services.suites import suite_save

ROLES = ("owner", "annotator", "reviewer", "outsider", "anonymous")
READ = {"owner": 200, "annotator": 200, "reviewer": 200, "outsider": 404, "anonymous": 401}
OWNER_WRITE = {"owner": 201, "annotator": 403, "reviewer": 403, "outsider": 404, "anonymous": 401}
GRADER_WRITE = {**OWNER_WRITE, "annotator": 201}
P = "/api/projects/support-bot/"

MENTIONS_ALPHA = "def check(output, input, reference, meta):\n    return 'alpha' in output\n"
LENGTH = "def check(output, input, reference, meta):\n    return len(output) / 100\n"


@dataclass(frozen=True)
class World:
    users: dict[str, AbstractBaseUser]
    outputs: list[Output]
    run: Run
    suite: Suite
    export: Export
    state: dict

    @property
    def ungraded(self) -> list[Output]:
        return self.outputs[-2:]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    expected: dict[str, int]
    body: Callable[[World], object] = field(default=lambda world: None)

    @property
    def writes(self) -> bool:
        return self.method != "get"

    def url(self, world: World) -> str:
        return self.path.format(run=world.run.pk, suite=world.suite.pk, export=world.export.pk)


CASES = [
    # projects
    Case("projects list", "get", "/api/projects/", {**READ, "outsider": 200}),
    Case("project create", "post", "/api/projects/",
         {**OWNER_WRITE, "annotator": 201, "reviewer": 201, "outsider": 201},
         lambda w: {"name": "Fresh project"}),
    Case("project detail", "get", P, READ),
    Case("project settings", "patch", P, {**OWNER_WRITE, "owner": 200},
         lambda w: {"name": "Renamed", "settings": {"overlap": 2}}),
    Case("members list", "get", P + "members/", READ),
    Case("member add", "post", P + "members/", OWNER_WRITE,
         lambda w: {"username": "nina", "role": "annotator"}),
    Case("import", "post", P + "import/", OWNER_WRITE,
         lambda w: {"records": [{"item_id": "new", "input": "Hi?", "system": "alpha",
                                 "output": "Hello."}]}),
    Case("outputs", "get", P + "outputs/?labelled=false", READ),
    Case("outputs bulk", "post", P + "outputs/bulk/",
         {**OWNER_WRITE, "owner": 200, "reviewer": 200},
         lambda w: {"action": "exclude", "outputs": [w.ungraded[0].pk], "reason": "duplicate"}),
    # criteria
    Case("criteria list", "get", P + "criteria/", READ),
    Case("criterion create", "post", P + "criteria/", GRADER_WRITE,
         lambda w: {"key": "tone", "name": "Tone", "definition": "Polite.", "reason": "asked"}),
    Case("criterion version", "post", P + "criteria/accuracy/versions/", GRADER_WRITE,
         lambda w: {"definition": "Only true things, numbers too.", "reason": "drift"}),
    # grading
    Case("queue next", "post", P + "queue/next/", {**GRADER_WRITE, "owner": 200, "annotator": 200},
         lambda w: {"mode": "single"}),
    Case("grade", "post", P + "grades/", GRADER_WRITE,
         lambda w: {"output": w.ungraded[0].pk, "verdict": "pass"}),
    Case("comparison", "post", P + "comparisons/", GRADER_WRITE,
         lambda w: {"output_a": w.ungraded[0].pk, "output_b": w.ungraded[1].pk, "choice": "a"}),
    # validators
    Case("providers list", "get", P + "providers/", READ),
    Case("provider save", "post", P + "providers/", OWNER_WRITE,
         lambda w: {"base_url": "http://127.0.0.1:9/v1", "model": "m"}),
    Case("validators list", "get", P + "validators/", READ),
    Case("validator create", "post", P + "validators/", OWNER_WRITE,
         lambda w: {"kind": "code", "name": "long", "source": LENGTH, "threshold": 0.2}),
    Case("validators import", "post", P + "validators/import/", OWNER_WRITE,
         lambda w: [{"name": "long", "kind": "code", "source": LENGTH, "threshold": 0.2}]),
    Case("external verdicts import", "post", P + "validators/external/", OWNER_WRITE,
         lambda w: {"records": [{"validator": "promptfoo", "output_id": w.outputs[0].pk,
                                 "outcome": "pass"}]}),
    Case("validators export", "get", P + "validators/export/", READ),
    Case("runs list", "get", P + "runs/", READ),
    Case("run start", "post", P + "runs/", OWNER_WRITE, lambda w: {"validators": "all"}),
    Case("run detail", "get", "/api/runs/{run}/", READ),
    # Server-wide, not a project's: any signed-in user may read what the sandbox guarantees.
    Case("sandbox status", "get", "/api/sandbox/", {**READ, "outsider": 200}),
    # report card
    Case("alignment", "get", P + "alignment/", READ),
    Case("suites list", "get", P + "suites/", READ),
    Case("suite save", "post", P + "suites/", OWNER_WRITE, lambda w: {"name": "Card"}),
    Case("suite export json", "get", "/api/suites/{suite}/export/?format=json", READ),
    Case("suite export py", "get", "/api/suites/{suite}/export/?format=py", READ),
    Case("ranking", "get", P + "ranking/?estimator=naive", READ),
    Case("agreement", "get", P + "agreement/", READ),
    Case("export start", "post", P + "exports/", OWNER_WRITE, lambda w: {"format": "csv"}),
    Case("export detail", "get", "/api/exports/{export}/",
         {**READ, "annotator": 403, "reviewer": 403}),
    Case("export file", "get", "/api/exports/{export}/file/",
         {**READ, "annotator": 403, "reviewer": 403}),
]


def db_state() -> dict:
    """Row counts of every table the API writes, plus the rows it could change in place."""
    models = [
        Project, Membership, Sample, Output, Criterion, CriterionVersion, Grade, GradeCriterion,
        Comparison, Assignment, Provider, Validator, Run, VerdictRecord, PairVerdict, Suite, Export,
        OutputExclusion, get_user_model(),
    ]
    return {
        "counts": {model.__name__: model.objects.count() for model in models},
        "projects": list(Project.objects.order_by("pk").values()),
        "memberships": list(Membership.objects.order_by("pk").values("user_id", "role")),
        "assignments": list(Assignment.objects.order_by("pk").values("pk", "status")),
        "providers": list(Provider.objects.order_by("pk").values()),
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """Ten outputs, eight graded (alpha pass, beta fail) by a fourth member, a validator with
    verdicts that agree, a run and a saved suite; the last input's two outputs are ungraded.

    Built once for the 180 cases, as Django's setUpTestData does: inside a transaction rolled
    back when the module ends, while each test's own changes roll back to a savepoint, so every
    case starts from this same world. The verdicts are rows, not a run through the sandbox."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        users = {role: UserFactory(username=name) for role, name in (
            ("owner", "olivia"), ("annotator", "arjun"), ("reviewer", "rita"), ("outsider", "mallory"),
        )}
        owner = users["owner"]
        project = project_create(name="Support bot", slug="support-bot", owner=owner)
        membership_set(project=project, user=users["annotator"], role=Role.ANNOTATOR)
        membership_set(project=project, user=users["reviewer"], role=Role.REVIEWER)
        criterion_create(project=project, key="accuracy", name="Accuracy",
                         definition="Says only true things.", author=owner)
        UserFactory(username="nina")
        grader = UserFactory(username="gus")
        membership_set(project=project, user=grader, role=Role.ANNOTATOR)
        samples = [SampleFactory(project=project, external_id=f"q{i}", input_text=f"Question {i}?")
                   for i in range(5)]
        outputs = [
            OutputFactory(sample=sample, project=project, system=system, text=f"{system} answers {i}.")
            for i, sample in enumerate(samples) for system in ("alpha", "beta")
        ]
        for output in outputs[:8]:
            grade_submit(output=output, annotator=grader,
                         verdict="pass" if output.system == "alpha" else "fail")
        validator = validator_create(project=project, kind="code", name="mentions alpha",
                                     source=MENTIONS_ALPHA)
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=validator, output=o, outcome="pass" if o.system == "alpha" else "fail")
            for o in outputs
        ])
        run = run_start(project=project, validators=[validator], requested_by=owner)
        suite = suite_save(project=project, name="Baseline", created_by=owner)
        export = export_start(project=project, fmt="csv", requested_by=owner)
        export = export_run(export_id=export.pk)
        yield World(users=users, outputs=outputs, run=run, suite=suite, export=export,
                    state=db_state())
        transaction.set_rollback(True)


@pytest.fixture
def client_as(api_for, world: World):
    return lambda role: api_for(world.users.get(role))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "role"), [(case, role) for case in CASES for role in ROLES],
    ids=[f"{case.name}-{role}" for case in CASES for role in ROLES],
)
def test_permission_matrix(case: Case, role: str, world: World, client_as):
    expected = case.expected[role]
    client = client_as(role)
    before = db_state()
    assert before == world.state

    answer = getattr(client, case.method)(case.url(world), case.body(world), format="json")

    assert answer.status_code == expected, answer.content
    if expected >= 400:
        assert answer["Content-Type"] == "application/json"
        assert len(answer.json()["errors"]) == 1
        assert answer.json()["errors"][0]["field"] == ""
    if case.writes:
        if expected >= 400:
            assert db_state() == before
        else:
            assert db_state() != before


def test_every_api_route_is_in_the_matrix():
    """A new endpoint must be added to CASES (or to this list of known exceptions)."""
    from django.urls import get_resolver

    api = get_resolver().url_patterns
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/"):
                routes.add(route)

    walk(api)
    covered = {
        "api/" + c.path.removeprefix("/api/").split("?")[0]
        .replace("support-bot", "<slug:slug>").replace("accuracy", "<slug:key>")
        .replace("{run}", "<int:pk>").replace("{suite}", "<int:pk>").replace("{export}", "<int:pk>")
        for c in CASES
    }
    unauthenticated = {"api/auth/token/", "api/schema/", "api/docs/"}
    assert routes - unauthenticated == covered
