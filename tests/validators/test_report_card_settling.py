"""The report card says per criterion whether its choice is settled (DESIGN §4.3)."""

import pytest

from annotate.services.criteria import criterion_create
from annotate.services.grades import grade_submit
from validators.matrix import forget
from validators.models import Validator, VerdictRecord
from validators.report_card import report_card


def validator(project, name, criterion=None):
    return Validator.objects.create(
        project=project, name=name, kind="code", criterion=criterion,
        source="def check(output, input, reference, meta):\n    return True",
    )


def verdicts(validator_, outputs, outcomes):
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=validator_, output=o, outcome=c)
        for o, c in zip(outputs, outcomes, strict=True)
    ])


@pytest.fixture(autouse=True)
def fresh_matrix_cache(project):
    forget()
    yield
    forget()


def grounded_card(card):
    return next(c for c in card.criteria if c.key == "grounded")


@pytest.mark.django_db
def test_with_every_output_graded_the_better_candidate_is_settled(project, annotator, make_outputs):
    outputs = make_outputs(n_samples=5, systems=("alpha", "beta"))
    grounded = criterion_create(project=project, key="grounded", definition="Supported.")
    for index, output in enumerate(outputs):
        verdict = "fail" if index < 4 else "pass"
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={"grounded": verdict})
    perfect, sloppy = validator(project, "perfect", grounded), validator(project, "sloppy", grounded)
    verdicts(perfect, outputs, ["fail"] * 4 + ["pass"] * 6)
    verdicts(sloppy, outputs, ["fail", "fail", "pass", "pass"] + ["fail"] + ["pass"] * 5)

    entry = grounded_card(report_card(project))

    assert entry.selection.chosen.validator_id == perfect.pk
    assert entry.settling.settled
    # sloppy: coverage 0.5, 1 − FFR 5/6, alignment 0.625: 0.375 below the choice, exactly.
    assert entry.settling.worst_gap == pytest.approx(-0.375)
    assert entry.settling.n_labels == 10
    assert entry.to_dict()["settling"] == {
        "settled": True, "tolerance": 0.02, "confidence": 0.95, "n_labels": 10,
        "worst_gap": pytest.approx(-0.375),
        "why": "settled: further labels change it by < 0.02 with 95% confidence (10 labels)",
    }


@pytest.mark.django_db
def test_few_labels_on_a_large_project_leave_a_close_choice_open(project, annotator, make_outputs):
    outputs = make_outputs(n_samples=30, systems=("alpha", "beta"))
    grounded = criterion_create(project=project, key="grounded", definition="Supported.")
    truth = ["fail" if i % 3 == 0 else "pass" for i in range(60)]
    first = ["fail" if i % 3 == 0 or i % 10 == 1 else "pass" for i in range(60)]
    second = ["fail" if (i % 3 == 0 and i % 9 != 0) or i % 20 == 2 else "pass" for i in range(60)]
    verdicts(validator(project, "first", grounded), outputs, first)
    verdicts(validator(project, "second", grounded), outputs, second)
    for output, verdict in list(zip(outputs, truth, strict=True))[:12]:
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={"grounded": verdict})

    entry = grounded_card(report_card(project))

    assert entry.selection.chosen is not None
    assert not entry.settling.settled
    assert entry.settling.worst_gap > 0.02
    assert entry.to_dict()["settling"]["why"].startswith("open: a challenger may still beat the choice by up to")


@pytest.mark.django_db
def test_a_single_candidate_has_nothing_to_settle(project, annotator, make_outputs):
    outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
    grounded = criterion_create(project=project, key="grounded", definition="Supported.")
    verdicts(validator(project, "only", grounded), outputs, ["fail", "pass", "pass", "pass"])

    entry = grounded_card(report_card(project))

    assert entry.settling is None
    assert entry.to_dict()["settling"] is None


@pytest.mark.django_db
def test_the_page_says_the_choice_is_settled_and_how_many_labels_it_took(
    client, project, annotator, reviewer, make_outputs,
):
    from django.urls import reverse

    outputs = make_outputs(n_samples=5, systems=("alpha", "beta"))
    grounded = criterion_create(project=project, key="grounded", definition="Supported.")
    for index, output in enumerate(outputs):
        verdict = "fail" if index < 4 else "pass"
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={"grounded": verdict})
    verdicts(validator(project, "perfect", grounded), outputs, ["fail"] * 4 + ["pass"] * 6)
    verdicts(validator(project, "sloppy", grounded), outputs,
             ["fail", "fail", "pass", "pass"] + ["fail"] + ["pass"] * 5)
    client.force_login(reviewer)

    page = client.get(reverse("report-card", args=[project.slug])).content.decode()

    assert ('data-settling="settled"><small class="tag">settled</small> further labels change it '
            "by &lt; 0.02 with 95% confidence · took 10 labels</p>") in page
