"""Builds the demo project that `make run` shows on the first page a newcomer opens."""

from __future__ import annotations

import random

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
    _compare_some(project, truth, users[Role.ANNOTATOR])
    _add_validators(project, owner)
    _import_vendor_scores(project, truth, owner)
    return project, True


def _compare_some(project: Project, truth: dict, annotator) -> None:
    """Pairwise choices on the last inputs, so the Rankings page has comparisons to fit."""
    from annotate.services.grades import comparison_submit

    by_sample: dict[int, list[Output]] = {}
    for output in Output.objects.filter(project=project).select_related("sample").order_by("-sample_id", "system"):
        by_sample.setdefault(output.sample_id, []).append(output)
    for outputs in list(by_sample.values())[:12]:
        for left, right in ((outputs[0], outputs[1]), (outputs[1], outputs[2]), (outputs[0], outputs[2])):
            good_left = truth[(left.sample.external_id, left.system)][0]["label"]
            good_right = truth[(right.sample.external_id, right.system)][0]["label"]
            choice = "tie" if good_left == good_right else ("a" if good_left else "b")
            comparison_submit(output_a=left, output_b=right, annotator=annotator, choice=choice)


DEMO_VALIDATORS = [
    ("no_email_or_ticket", None, None,
     "import re\n\ndef check(output, input, reference, meta):\n"
     "    # Answers must not leak addresses or internal ticket numbers.\n"
     "    return not re.search(r'[\\w.]+@[\\w.]+|#\\d{4,}', output)\n"),
    ("short_enough", None, None,
     "def check(output, input, reference, meta):\n    return len(output) <= 220\n"),
    ("not_a_refusal", "helpful", None,
     "import re\n\nREFUSALS = r\"can't help|contact support|refer to the documentation|depends on many factors\"\n\n"
     "def check(output, input, reference, meta):\n    return not re.search(REFUSALS, output, re.I)\n"),
    ("no_blame", "tone", None,
     "import re\n\ndef check(output, input, reference, meta):\n"
     "    return not re.search(r'clearly says|before asking|as I said', output, re.I)\n"),
    ("polite_words", "tone", None,
     "import re\n\ndef check(output, input, reference, meta):\n"
     "    return bool(re.search(r'thanks|happy to help|hope that helps|sure|good question', output, re.I))\n"),
    ("overlap_with_reference", "grounded", 0.45,
     "import difflib\n\ndef check(output, input, reference, meta):\n"
     "    return difflib.SequenceMatcher(None, output.lower(), (reference or '').lower()).ratio()\n"),
    ("numbers_from_article", "grounded", None,
     "import re\n\ndef check(output, input, reference, meta):\n"
     "    article = (meta.get('context') or {}).get('article', '')\n"
     "    numbers = re.findall(r'\\d+', output)\n"
     "    return all(n in article for n in numbers)\n"),
    ("not_a_refusal_strict", "helpful", None,
     "def check(output, input, reference, meta):\n    return 'sorry' not in output.lower() and len(output) > 40\n"),
]


# Pairwise judges for the demo's comparisons: the report card's pairwise section picks one.
DEMO_COMPARATORS = [
    ("fewer_refusal_words",
     "import re\n\nREFUSALS = r\"can't help|contact support|refer to the documentation|sorry\"\n\n"
     "def compare(output_a, output_b, input, reference, meta):\n"
     "    # Fewer refusal phrases wins: a positive number means output_a is better.\n"
     "    return len(re.findall(REFUSALS, output_b, re.I)) - len(re.findall(REFUSALS, output_a, re.I))\n"),
    ("closer_to_reference",
     "import difflib\n\ndef compare(output_a, output_b, input, reference, meta):\n"
     "    ref = (reference or '').lower()\n"
     "    a = difflib.SequenceMatcher(None, output_a.lower(), ref).ratio()\n"
     "    b = difflib.SequenceMatcher(None, output_b.lower(), ref).ratio()\n"
     "    return 'tie' if abs(a - b) < 0.02 else ('a' if a > b else 'b')\n"),
    ("longer_wins",
     "def compare(output_a, output_b, input, reference, meta):\n"
     "    return len(output_a) - len(output_b)\n"),
]


def _add_validators(project: Project, owner) -> None:
    """Candidates the report card chooses between, run at once so the demo shows verdicts."""
    from annotate.models import Criterion
    from validators.services.authoring import validator_create
    from validators.services.runs import run_execute, run_start

    criteria = {c.key: c for c in Criterion.objects.filter(project=project)}
    validators = [
        validator_create(
            project=project, kind="code", name=name, source=source, threshold=threshold,
            criterion=criteria.get(key) if key else None, created_by=owner,
        )
        for name, key, threshold, source in DEMO_VALIDATORS
    ] + [
        validator_create(
            project=project, kind="code", target="pair", name=name, source=source, created_by=owner,
        )
        for name, source in DEMO_COMPARATORS
    ]
    run = run_start(project=project, validators=validators, requested_by=owner)
    # The demo is built before any worker runs, so execute here (idempotent if a worker also does).
    transaction.on_commit(lambda: run_execute(run_id=run.pk))


def _import_vendor_scores(project: Project, truth: dict, owner) -> None:
    """An external judge: helpfulness scores from 'another pipeline', imported without a
    threshold, so the report card picks one and charts alignment across thresholds."""
    from validators.services.external import external_verdicts_import

    rng = random.Random(11)
    records = [
        {"validator": "vendor_helpfulness_score", "criterion": "helpful", "item_id": item_id, "system": system,
         # Noisy but informative, on a 0-10 scale as such services report.
         "score": round(min(10.0, max(0.0, rng.gauss(7.0 if human["criteria"]["helpful"] else 4.0, 1.6))), 1)}
        for (item_id, system), (human, _) in sorted(truth.items())
    ]
    result = external_verdicts_import(project=project, stream_or_records=records, created_by=owner)
    assert result.ok, result.problems[:3]


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
