"""Grade → next item as the Grade page does it (one htmx POST), with texts LLMs write: the
queries it costs, and the next item's Markdown and code rendered on the way."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate.models import Grade
from annotate.services.criteria import criterion_create
from tests.factories import OutputFactory, SampleFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
# Session, user, the project with the user's role, the claim being graded, the criteria; the
# grade's transaction (open, close the claim, read an earlier grade, insert the grade and its
# one criterion verdict, close); the next claim (live claims; exclusions, assignees and open
# re-grading requests in one UNION; new outputs?, grades, criterion verdicts, insert in its own
# transaction); the claimed item with its sample.
# The same on SQLite and PostgreSQL; bench/grading_roundtrip.py counts 18 outside a test, where
# the outer transaction of pytest-django does not turn commits into savepoints.
QUERIES_PER_ROUND_TRIP = 20

MARKDOWN = "## Sharing\n\n1. Open **Share**.\n2. Pick a member.\n\n```python\nclient.share('docs', role='viewer')\n```\n"
CHAT = json.dumps([{"role": "user", "content": "How do I share?"}, {"role": "assistant", "content": "Open **Share**."}])


@pytest.fixture
def reading_outputs(project, owner):
    for key in ("grounded", "helpful", "tone"):
        criterion_create(project=project, key=key, name=key.title(), definition=f"{key} answers.",
                         reason="rubric", author=owner)
    for i in range(6):
        sample = SampleFactory(project=project, external_id=f"t{i}", input_text=CHAT, reference="Open Share.")
        OutputFactory(sample=sample, project=project, system="v1", text=f"{MARKDOWN}\nTicket {i}.")


@pytest.mark.django_db
def test_grade_then_next_item_costs_a_fixed_number_of_queries(client, project, annotator, reading_outputs):
    client.force_login(annotator)
    page = client.get(reverse("grade-page", args=[project.slug])).content.decode()
    url = reverse("grade-submit", args=[project.slug])
    counts = []
    for _ in range(3):
        data = dict(re.findall(r'type="hidden" name="((?:v_[\w-]+)|shown_at)" value="([^"]*)"', page))
        data.update(assignment=re.search(r'name="assignment" value="(\d+)"', page).group(1),
                    verdict="pass", c_grounded="fail", note="")
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url, data, **HTMX)
        page = response.content.decode()
        assert response.status_code == 200
        assert "Saved: pass." in page
        counts.append(len(queries))
        # The next item arrives rendered: its Markdown heading, its code highlighted, the chat.
        assert "<h2>Sharing</h2>" in page
        assert '<pre class="code-block" data-language="python">' in page
        assert '<div class="message role-assistant">' in page

    assert Grade.objects.filter(annotator=annotator).count() == 3
    # The same count every round: no query per earlier grade, claim or criterion.
    assert counts == [QUERIES_PER_ROUND_TRIP] * 3
