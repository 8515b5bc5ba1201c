import pytest
from django.urls import reverse

from annotate.models import Criterion, CriterionStatusChange, CriterionVersion
from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit


@pytest.fixture
def tone(project, owner):
    return criterion_create(project=project, name="Tone", definition="Polite.", author=owner)


def _user(name, owner, annotator, reviewer, outsider):
    return {"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}[name]


@pytest.mark.django_db
class TestPermissions:
    @pytest.mark.parametrize("who,status", [
        ("owner", 200), ("annotator", 200), ("reviewer", 200), ("outsider", 404),
    ])
    def test_everyone_in_the_project_reads_the_page(self, client, project, tone, who, status,
                                                   owner, annotator, reviewer, outsider):
        client.force_login(_user(who, owner, annotator, reviewer, outsider))

        response = client.get(reverse("criteria", args=[project.slug]))

        assert response.status_code == status

    def test_anonymous_is_sent_to_login(self, client, project):
        response = client.get(reverse("criteria", args=[project.slug]))

        assert response.status_code == 302
        assert response["Location"] == "/login/?next=/p/support-bot/criteria/"

    @pytest.mark.parametrize("who,setting,status", [
        ("owner", False, 302), ("annotator", True, 302), ("annotator", False, 403),
        ("reviewer", True, 403), ("outsider", True, 404),
    ])
    def test_who_may_add(self, client, project, who, setting, status, owner, annotator, reviewer, outsider):
        project.annotators_may_edit_criteria = setting
        project.save()
        client.force_login(_user(who, owner, annotator, reviewer, outsider))

        response = client.post(reverse("criterion-add", args=[project.slug]), {"name": "Privacy"})

        assert response.status_code == status
        assert Criterion.objects.filter(project=project, key="privacy").count() == (1 if status == 302 else 0)

    @pytest.mark.parametrize("who,setting,status", [
        ("owner", False, 302), ("annotator", True, 302), ("annotator", False, 403),
        ("reviewer", True, 403), ("outsider", True, 404),
    ])
    def test_who_may_refine_retire_and_restore(self, client, project, tone, who, setting, status,
                                               owner, annotator, reviewer, outsider):
        project.annotators_may_edit_criteria = setting
        project.save()
        client.force_login(_user(who, owner, annotator, reviewer, outsider))
        args = [project.slug, "tone"]

        refine = client.post(reverse("criterion-refine", args=args), {"definition": "Kind.", "reason": "vague"})
        retire = client.post(reverse("criterion-retire", args=args), {"reason": "merged"})
        restore = client.post(reverse("criterion-restore", args=args), {})

        assert [refine.status_code, retire.status_code, restore.status_code] == [status] * 3
        allowed = status == 302
        assert CriterionVersion.objects.filter(criterion=tone).count() == (2 if allowed else 1)
        assert CriterionStatusChange.objects.filter(criterion=tone).count() == (2 if allowed else 0)

    def test_anonymous_post_changes_nothing(self, client, project, tone):
        response = client.post(reverse("criterion-retire", args=[project.slug, "tone"]), {"reason": "x"})

        assert response.status_code == 302 and response["Location"].startswith("/login/")
        assert Criterion.objects.get(pk=tone.pk).archived is False


@pytest.mark.django_db
class TestPage:
    def test_lists_versions_with_current_and_stale_grade_counts(self, client, project, tone, owner,
                                                               annotator, make_outputs):
        outputs = make_outputs(n_samples=2)
        for output in outputs[:3]:
            grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"tone": "pass"})
        criterion_version_publish(criterion=tone, author=owner, definition="Kind.", reason="Too vague")
        grade_submit(output=outputs[3], annotator=annotator, verdict="fail", criteria={"tone": "fail"})
        client.force_login(owner)

        page = client.get(reverse("criteria", args=[project.slug])).content.decode()

        assert '<span data-stat="current">1</span> current grade under v2' in page
        assert '<span data-stat="stale">3</span> stale' in page
        assert "Too vague" in page and "Polite." in page and "Kind." in page

    def test_refine_without_reason_says_so(self, client, project, tone, owner):
        client.force_login(owner)

        response = client.post(
            reverse("criterion-refine", args=[project.slug, "tone"]), {"definition": "Kind.", "reason": ""}
        )

        assert response.status_code == 400
        assert "Say in one line why the definition changes." in response.content.decode()
        assert CriterionVersion.objects.filter(criterion=tone).count() == 1

    def test_htmx_answers_with_the_partial(self, client, project, tone, owner):
        client.force_login(owner)

        response = client.post(
            reverse("criterion-retire", args=[project.slug, "tone"]), {"reason": "merged"},
            HTTP_HX_REQUEST="true",
        )

        body = response.content.decode()
        assert response.status_code == 200
        assert body.lstrip().startswith('<div id="criteria-region"') and "<html" not in body
        assert "Criterion &#x27;tone&#x27; retired" in body
        assert 'data-testid="retired-badge"' in body

    def test_unknown_criterion_is_404(self, client, project, owner):
        client.force_login(owner)

        response = client.post(reverse("criterion-retire", args=[project.slug, "nope"]), {"reason": "x"})

        assert response.status_code == 404

    @pytest.mark.parametrize("payload", [
        {"name": "x" * 5000}, {"name": "bad\x00name"}, {"name": ""}, {"name": "Tone"},
        {"reason": "r" * 501, "name": "Other"},
    ])
    def test_bad_add_input_is_a_400_not_a_500(self, client, project, owner, tone, payload):
        client.force_login(owner)

        response = client.post(reverse("criterion-add", args=[project.slug]), payload)

        assert response.status_code == 400
        assert Criterion.objects.filter(project=project).count() == 1

    def test_reviewer_sees_no_forms(self, client, project, tone, reviewer):
        client.force_login(reviewer)

        page = client.get(reverse("criteria", args=[project.slug])).content.decode()

        assert "Tone" in page
        assert "Add a criterion" not in page and "Retire" not in page and "Publish v2" not in page


@pytest.mark.django_db
class TestDashboardLinks:
    def test_empty_state_links_to_adding_one(self, client, project, owner):
        client.force_login(owner)

        page = client.get(reverse("project-dashboard", args=[project.slug])).content.decode()

        assert 'href="/p/support-bot/criteria/#add-criterion"' in page
        assert 'href="/p/support-bot/criteria/"' in page  # the nav link

    def test_reviewer_gets_no_add_button_but_the_nav_link(self, client, project, reviewer):
        client.force_login(reviewer)

        page = client.get(reverse("project-dashboard", args=[project.slug])).content.decode()

        assert "add-first-criterion" not in page
        assert 'href="/p/support-bot/criteria/"' in page
        assert 'href="/p/support-bot/team/"' in page
