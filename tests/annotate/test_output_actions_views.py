"""POST /p/<slug>/outputs/bulk/, its controls partial, and the team page's assigned count."""

import json

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from annotate.models import OutputAssignee, OutputExclusion, RegradeRequest
from annotate.services.grades import grade_submit
from annotate.services.output_actions import outputs_assign
from annotate.services.projects import project_create
from annotate.views.output_actions import bulk_actions_context
from tests.factories import OutputFactory, SampleFactory

pytestmark = pytest.mark.django_db
URL = "/p/support-bot/outputs/bulk/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_url_name():
    assert reverse("outputs-bulk", args=["support-bot"]) == URL


class TestPermissions:
    @pytest.mark.parametrize("who,status", [("owner", 200), ("reviewer", 200), ("annotator", 403), ("outsider", 404)])
    def test_who_may(self, client, project, make_outputs, who, status, owner, reviewer, annotator, outsider):
        outputs = make_outputs(n_samples=1)
        client.force_login({"owner": owner, "reviewer": reviewer, "annotator": annotator, "outsider": outsider}[who])

        response = client.post(URL, {"action": "exclude", "output": [o.pk for o in outputs], "reason": "dup"}, **HTMX)

        assert response.status_code == status
        assert OutputExclusion.objects.count() == (2 if status == 200 else 0)

    def test_anonymous_is_sent_to_login(self, client, project, make_outputs):
        outputs = make_outputs(n_samples=1)

        response = client.post(URL, {"action": "exclude", "output": [outputs[0].pk], "reason": "dup"})

        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
        assert OutputExclusion.objects.count() == 0

    def test_get_is_not_allowed(self, client, project, reviewer):
        client.force_login(reviewer)

        assert client.get(URL).status_code == 405


class TestActions:
    def test_regrade_with_htmx_answers_a_message_and_an_event(self, client, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=2)[:3]
        client.force_login(reviewer)

        response = client.post(
            URL, {"action": "regrade", "output": [o.pk for o in outputs], "reason": "tone rule changed"}, **HTMX
        )

        assert response.status_code == 200
        assert "3 outputs sent back for re-grading." in response.content.decode()
        assert json.loads(response["HX-Trigger"]) == {"outputs-changed": {"action": "regrade", "changed": 3}}
        assert sorted(RegradeRequest.objects.values_list("output_id", flat=True)) == sorted(o.pk for o in outputs)

    def test_without_htmx_it_redirects_to_next_with_a_message(self, client, project, owner, make_outputs):
        outputs = make_outputs(n_samples=1)
        client.force_login(owner)

        response = client.post(
            URL, {"action": "exclude", "output": [outputs[0].pk], "reason": "dup", "next": "/p/support-bot/?page=2"},
            follow=True,
        )

        assert response.redirect_chain == [("/p/support-bot/?page=2", 302)]
        assert "1 output excluded from sampling." in response.content.decode()

    @pytest.mark.parametrize("next_url", [
        "https://evil.example/", "//evil.example/x", "javascript:alert(1)", "", "/\\evil.example/",
        "/p/\r\nSet-Cookie: a=b", "/p/\x00", "\x00/p/",
    ])
    def test_next_off_site_goes_to_the_project(self, client, project, owner, make_outputs, next_url):
        outputs = make_outputs(n_samples=1)
        client.force_login(owner)

        response = client.post(URL, {"action": "include", "output": [outputs[0].pk], "next": next_url})

        assert response.status_code == 302
        assert response["Location"] == "/p/support-bot/"

    def test_assign_and_unassign(self, client, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=2)
        client.force_login(owner)

        assigned = client.post(URL, {"action": "assign", "output": [o.pk for o in outputs],
                                     "annotator": [annotator.pk], "reason": "domain"}, **HTMX)
        cancelled = client.post(URL, {"action": "unassign", "output": [outputs[0].pk]}, **HTMX)

        assert "4 outputs assigned (4 assignments)." in assigned.content.decode()
        assert "1 assignment cancelled." in cancelled.content.decode()
        assert OutputAssignee.objects.filter(cancelled_at__isnull=True).count() == 3


class TestBadInput:
    def post(self, client, reviewer, data, htmx=True):
        client.force_login(reviewer)
        return client.post(URL, data, **(HTMX if htmx else {}))

    def test_unknown_action(self, client, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"action": "delete", "output": [outputs[0].pk]})

        assert response.status_code == 400
        assert 'data-field="action"' in response.content.decode()
        assert "The action field must be one of regrade, assign, unassign, exclude, include." in response.content.decode()

    def test_missing_action(self, client, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"output": [outputs[0].pk]})

        assert response.status_code == 400
        assert 'data-field="action"' in response.content.decode()

    def test_foreign_ids_change_nothing(self, client, project, reviewer, owner, make_outputs):
        mine = make_outputs(n_samples=1)
        other = project_create(name="Other", slug="other", owner=owner)
        theirs = OutputFactory(project=other, sample=SampleFactory(project=other), system="alpha")

        response = self.post(client, reviewer, {
            "action": "exclude", "output": [mine[0].pk, theirs.pk], "reason": "dup",
        })

        assert response.status_code == 400
        assert "not in this project" in response.content.decode()
        assert OutputExclusion.objects.count() == 0

    @pytest.mark.parametrize("value", ["abc", "1.5", "-3", "", "\u0661", "9" * 30, "1\x00", "0x10"])
    def test_ids_that_are_not_whole_numbers(self, client, project, reviewer, make_outputs, value):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"action": "exclude", "output": [outputs[0].pk, value], "reason": "x"})

        assert response.status_code == 400
        assert 'data-field="output"' in response.content.decode()
        assert OutputExclusion.objects.count() == 0

    def test_no_outputs(self, client, project, reviewer):
        response = self.post(client, reviewer, {"action": "exclude", "reason": "x"})

        assert response.status_code == 400
        assert "Choose at least one output." in response.content.decode()

    @pytest.mark.parametrize("action", ["regrade", "exclude"])
    def test_missing_reason(self, client, project, reviewer, make_outputs, action):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"action": action, "output": [outputs[0].pk]})

        assert response.status_code == 400
        assert 'data-field="reason"' in response.content.decode()
        assert RegradeRequest.objects.count() == OutputExclusion.objects.count() == 0

    def test_a_reason_too_long(self, client, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"action": "regrade", "output": [outputs[0].pk], "reason": "x" * 501})

        assert response.status_code == 400
        assert 'data-field="reason"' in response.content.decode()

    @pytest.mark.parametrize("value", ["", "bob", "999999"])
    def test_assign_to_nobody_or_a_stranger(self, client, project, reviewer, make_outputs, value):
        outputs = make_outputs(n_samples=1)

        response = self.post(client, reviewer, {"action": "assign", "output": [outputs[0].pk], "annotator": [value]})

        assert response.status_code == 400
        assert 'data-field="annotator"' in response.content.decode()
        assert OutputAssignee.objects.count() == 0

    def test_assign_to_a_member_of_another_project(self, client, project, reviewer, outsider, owner, make_outputs):
        outputs = make_outputs(n_samples=1)
        project_create(name="Other", slug="other", owner=outsider)

        response = self.post(client, reviewer, {"action": "assign", "output": [outputs[0].pk], "annotator": [outsider.pk]})

        assert response.status_code == 400
        assert OutputAssignee.objects.count() == 0

    def test_without_htmx_an_error_is_a_page(self, client, project, reviewer):
        response = self.post(client, reviewer, {"action": "exclude", "output": ["x"], "next": "/p/support-bot/"}, htmx=False)

        assert response.status_code == 400
        page = response.content.decode()
        assert "<h1>Nothing was changed</h1>" in page
        assert '<a href="/p/support-bot/">Back to the outputs</a>' in page


class TestControlsPartial:
    def render(self, project, user):
        request = RequestFactory().get("/p/support-bot/outputs/?system=alpha")
        request.user = user
        return render_to_string(
            "annotate/partials/output_bulk_actions.html",
            {"project": project, **bulk_actions_context(project, user)}, request=request,
        )

    def test_annotators_see_nothing(self, project, annotator):
        assert self.render(project, annotator).strip() == ""

    def test_reviewers_get_the_controls_with_grading_members(self, project, reviewer, owner, annotator):
        html = self.render(project, reviewer)

        assert f'hx-post="{URL}"' in html and 'hx-include="#output-bulk-form"' in html
        assert f'formaction="{URL}"' in html
        assert f'<option value="{annotator.pk}">arjun</option>' in html
        assert f'<option value="{owner.pk}">olivia</option>' in html
        assert f'<option value="{reviewer.pk}">' not in html
        assert 'value="/p/support-bot/outputs/?system=alpha"' in html
        assert 'name="csrfmiddlewaretoken"' in html


def test_team_page_shows_open_assignments(client, project, owner, annotator, reviewer, make_outputs):
    outputs = make_outputs(n_samples=2)
    outputs_assign(project=project, output_ids=[o.pk for o in outputs[:3]], annotators=[annotator], by=owner)
    grade_submit(output=outputs[0], annotator=annotator, verdict="pass")
    client.force_login(reviewer)

    page = client.get(reverse("team", args=[project.slug])).content.decode()

    assert '<td class="num" data-stat="assigned_open">2</td>' in page
