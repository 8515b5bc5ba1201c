"""Every page that names an output links to its page."""

import re

import pytest
from django.urls import reverse

from annotate.models import Role
from annotate.services.grades import grade_submit
from annotate.services.output_actions import outputs_exclude
from annotate.services.projects import membership_set
from tests.factories import UserFactory
from validators.matrix import forget
from validators.models import Validator, VerdictRecord


def output_href(project, output) -> str:
    return f'href="{reverse("output-detail", args=[project.slug, output.pk])}"'


@pytest.mark.django_db
def test_the_verdict_matrix_links_each_row(client, project, reviewer, make_outputs):
    forget()
    outputs = make_outputs(n_samples=2)
    judge = Validator.objects.create(project=project, name="short", kind="code", source="x")
    VerdictRecord.objects.bulk_create([VerdictRecord(validator=judge, output=o, outcome="pass") for o in outputs])
    client.force_login(reviewer)

    page = client.get(reverse("verdict-matrix", args=[project.slug])).content.decode()

    assert all(output_href(project, o) in page for o in outputs)
    assert 'data-testid="matrix-excluded"' not in page
    # An output left out of sampling keeps its row and verdicts, flagged.
    outputs_exclude(project=project, output_ids=[outputs[1].pk], reason="near duplicate", by=project.created_by)
    page = client.get(reverse("verdict-matrix", args=[project.slug])).content.decode()
    assert page.count('data-testid="matrix-excluded"') == 1
    row = re.search(rf'<tr data-output="{outputs[1].pk}">.*?</tr>', page, re.S).group(0)
    assert "excluded from sampling" in row
    forget()


@pytest.mark.django_db
def test_the_grade_history_links_each_grade(client, project, annotator, make_outputs):
    graded = make_outputs(n_samples=1)[0]
    grade_submit(output=graded, annotator=annotator, verdict="pass")
    client.force_login(annotator)

    page = client.get(reverse("grade-history", args=[project.slug])).content.decode()

    assert output_href(project, graded) in page


@pytest.mark.django_db
def test_the_review_agenda_links_a_disagreement(client, project, annotator, reviewer, make_outputs):
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    split = make_outputs(n_samples=1)[0]
    grade_submit(output=split, annotator=annotator, verdict="pass")
    grade_submit(output=split, annotator=bea, verdict="fail")
    client.force_login(reviewer)

    page = client.get(reverse("review", args=[project.slug])).content.decode()

    assert 'data-testid="agenda-output-link"' in page and output_href(project, split) in page


@pytest.mark.django_db
def test_the_overview_links_systems_and_the_nav_links_outputs(client, project, reviewer, make_outputs):
    make_outputs(n_samples=1, systems=("alpha",))
    client.force_login(reviewer)

    page = client.get(reverse("project-dashboard", args=[project.slug])).content.decode()

    assert f'href="{reverse("output-list", args=[project.slug])}?system=alpha"' in page
    assert re.search(rf'<a href="{reverse("output-list", args=[project.slug])}"[^>]*>Outputs</a>', page)
