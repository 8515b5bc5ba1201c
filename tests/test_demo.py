"""The demo project that `make run` loads: every page a newcomer opens renders."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from annotate.models import Comparison, Grade, Output, Project
from validators.models import PairVerdict, Validator, VerdictRecord

PAGES = ["project-dashboard", "grade-page", "pairwise-page", "validator-list", "verdict-matrix",
         "report-card", "rankings", "review", "exports", "project-settings", "project-import"]


@pytest.mark.django_db
def test_demo_loads_and_every_page_renders(client, django_capture_on_commit_callbacks, capsys):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo")
    call_command("load_demo")  # a second run finds it and changes nothing

    project = Project.objects.get(slug="support-answers")
    assert "owner / concord-owner" in capsys.readouterr().out
    assert (Output.objects.filter(project=project).count(), Validator.objects.filter(project=project).count()) == (96, 12)
    # Eight code assertions, and the imported helpfulness scores stored without a threshold.
    assert VerdictRecord.objects.filter(validator__project=project).count() == 96 * 9
    assert VerdictRecord.objects.filter(validator__name="vendor_helpfulness_score", outcome="score").count() == 96
    # Three code comparators on every pair of the 32 inputs' three answers, no errors.
    assert PairVerdict.objects.filter(validator__project=project).exclude(winner="error").count() == 32 * 3 * 3
    assert Grade.objects.filter(project=project).count() == 32
    assert Comparison.objects.filter(project=project).count() == 36
    client.force_login(get_user_model().objects.get(username="owner"))
    for name in PAGES:
        response = client.get(reverse(name, args=[project.slug]))
        assert response.status_code == 200, name
    report = client.get(reverse("report-card", args=[project.slug])).content.decode()
    assert "data-chosen=" in report
    assert "data-pairwise-chosen=" in report  # a comparator is kept for the demo's comparisons
    assert "threshold picked:" in report  # the imported scores get a threshold and a chart
