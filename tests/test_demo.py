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


@pytest.mark.django_db
def test_demo_texts_show_markdown_code_chat_and_a_folded_long_text(client, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from annotate import demo_data
    from annotate.models import Assignment
    from annotate.services.assignments import assignment_skip

    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo")
    project = Project.objects.get(slug="support-answers")
    annotator = get_user_model().objects.get(username="annotator")
    client.force_login(annotator)

    def grade_page_showing(item_id: str, system: str) -> str:
        """The Grade page with this output claimed by the demo annotator, as the queue would hand it out."""
        output = Output.objects.get(project=project, sample__external_id=item_id, system=system)
        now = timezone.now()
        claim = Assignment.objects.create(
            project=project, output=output, annotator=annotator, selector="random",
            claimed_at=now, expires_at=now + timedelta(minutes=30),
        )
        html = client.get(reverse("grade-page", args=[project.slug])).content.decode()
        assert f'name="assignment" value="{claim.pk}"' in html
        assignment_skip(assignment=claim, annotator=annotator)
        return html

    # The Markdown answer: a heading, a list, and a highlighted Python block.
    markdown = grade_page_showing("linux-1", "rag-v2")
    assert "<h2>Concord Cloud on Linux</h2>" in markdown
    assert "<li><strong>Ubuntu or Debian</strong>" in markdown
    assert '<pre class="code-block" data-language="python"><code><span class="kn">from</span>' in markdown

    # A conversation as the input, an agent's transcript with a tool call as the output.
    chat = grade_page_showing("refund-1", "rag-v1")
    input_pane, output_pane = chat.split('data-testid="output-text"', 1)
    assert 'kind-chat" data-testid="input-text"' in input_pane
    assert input_pane.count('<div class="message role-user">') == 2
    assert '<div class="message role-system">' in input_pane
    assert '<div class="message role-tool">' in output_pane
    assert "search_help_centre" in output_pane
    assert "<strong>14-day</strong>" in output_pane

    # The long guide shows its beginning and folds the rest behind "Show all".
    long_answer = grade_page_showing("restore-2", "baseline-gpt")
    assert f"Show all {len(demo_data.LONG_ANSWER)} characters" in long_answer
    head, rest = long_answer.split('data-testid="output-text-rest"', 1)
    assert "<h1>Getting a deleted file back</h1>" in head
    assert "<h2>Summary</h2>" in rest.split("</details>", 1)[0]
    assert "<h2>Summary</h2>" not in head
