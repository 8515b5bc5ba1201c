"""Builds the demo project that `make run` shows on the first page a newcomer opens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from annotate import demo_data
from annotate.models import Output, Project, Role
from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit
from annotate.services.imports import outputs_import
from annotate.services.projects import membership_set, project_create

DEMO_SLUG = "support-answers"
DEMO_LOGINS = [
    ("owner", "concord-owner", Role.OWNER),
    ("annotator", "concord-annotator", Role.ANNOTATOR),
    ("reviewer", "concord-reviewer", Role.REVIEWER),
]


def _user(username: str, password: str):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created or not user.check_password(password):
        user.set_password(password)
        user.save()
    return user


@transaction.atomic
def demo_load(*, reset: bool = False) -> tuple[Project, bool]:
    users = {role: _user(username, password) for username, password, role in DEMO_LOGINS}
    existing = Project.objects.filter(slug=DEMO_SLUG).first()
    if existing and not reset:
        return existing, False
    if existing:
        existing.grades.all().delete()
        existing.comparisons.all().delete()
        existing.delete()
    owner = users[Role.OWNER]
    project = project_create(
        name="Support answers", slug=DEMO_SLUG, owner=owner,
        description="A help-centre assistant answering customers from a support article; three systems.",
        guidelines=demo_data.GUIDELINES,
    )
    membership_set(project=project, user=users[Role.ANNOTATOR], role=Role.ANNOTATOR)
    membership_set(project=project, user=users[Role.REVIEWER], role=Role.REVIEWER)
    for key, name, definition in demo_data.CRITERIA:
        criterion = criterion_create(
            project=project, key=key, name=name, definition=definition, author=owner,
            reason="initial rubric",
        )
    # One refinement, so the criteria timeline has drift to show.
    criterion_version_publish(
        criterion=criterion, author=owner, name="Tone",
        definition="Polite and calm; never blames the customer or tells them to read the docs.",
        reason="'Please read it before asking' slipped through as polite",
    )
    records = demo_data.demo_records()
    # The file's truth stays out of the import: the demo grades are given the way people do.
    truth = {(r["item_id"], r["system"]): (r.pop("human"), r["metadata"]["kind"]) for r in records}
    result = outputs_import(project=project, records=records)
    assert result.ok, result.problems
    _grade_some(project, truth, users)
    return project, True


def _grade_some(project: Project, truth: dict, users: dict) -> None:
    """About a third of the outputs graded by the demo annotator and owner, as they would."""
    outputs = list(Output.objects.filter(project=project).select_related("sample").order_by("id"))
    for index, output in enumerate(outputs[: len(outputs) // 3]):
        human, kind = truth[(output.sample.external_id, output.system)]
        annotator = users[Role.ANNOTATOR] if index % 4 else users[Role.OWNER]
        note = ""
        if kind == "leak":
            note = "Leaks an agent's email address and a ticket number: we need a privacy criterion."
        grade_submit(
            output=output, annotator=annotator,
            verdict="pass" if human["label"] else "fail",
            criteria={k: ("pass" if v else "fail") for k, v in human["criteria"].items()},
            note=note,
        )
