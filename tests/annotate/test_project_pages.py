import io
import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from annotate.models import Membership, Output, Project, Role


@pytest.mark.django_db
class TestLoginAndList:
    def test_anonymous_is_sent_to_login(self, client, project):
        response = client.get(reverse("project-dashboard", args=[project.slug]))

        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=/p/support-bot/")

    def test_login_page_logs_in(self, client, owner):
        response = client.post(reverse("login"), {"username": "olivia", "password": "pw-for-tests"})

        assert response.status_code == 302 and response["Location"] == "/"

    def test_wrong_password_says_so(self, client, owner):
        response = client.post(reverse("login"), {"username": "olivia", "password": "nope"})

        assert response.status_code == 200
        assert "did not match" in response.content.decode()

    def test_project_list_shows_only_my_projects(self, client, project, annotator, owner):
        Project.objects.create(name="Secret", slug="secret")
        client.force_login(annotator)

        page = client.get(reverse("project-list")).content.decode()

        assert "Support bot" in page and "Secret" not in page

    def test_staff_sees_every_project(self, client, project, outsider):
        outsider.is_staff = True
        outsider.save()
        Project.objects.create(name="Secret", slug="secret")
        client.force_login(outsider)

        page = client.get(reverse("project-list")).content.decode()

        assert "Support bot" in page and "Secret" in page

    def test_create_project_makes_me_owner(self, client, outsider):
        client.force_login(outsider)

        response = client.post(reverse("project-create"), {"name": "New bot", "slug": ""})

        assert response.status_code == 302 and response["Location"] == "/p/new-bot/"
        assert Membership.objects.get(project__slug="new-bot").role == Role.OWNER

    def test_duplicate_slug_is_refused(self, client, outsider, project):
        client.force_login(outsider)

        response = client.post(reverse("project-create"), {"name": "x", "slug": project.slug})

        assert response.status_code == 400
        assert Project.objects.filter(slug=project.slug).count() == 1


@pytest.mark.django_db
class TestDashboard:
    def test_counts_and_progress(self, client, project, annotator, make_outputs):
        make_outputs(n_samples=3, systems=("alpha", "beta"))
        client.force_login(annotator)

        page = client.get(reverse("project-dashboard", args=[project.slug])).content.decode()

        assert 'data-stat="samples">3<' in page
        assert 'data-stat="outputs">6<' in page
        assert 'data-stat="systems">2<' in page
        assert "Outputs graded: 0 of 6 (0%)" in page

    def test_criteria_show_their_current_version(self, client, project, owner):
        from annotate.services.criteria import criterion_create, criterion_version_publish

        criterion = criterion_create(project=project, key="tone", name="Tone", definition="Polite.")
        criterion_version_publish(criterion=criterion, author=owner, definition="Polite and calm.", reason="drift")
        client.force_login(owner)

        page = client.get(reverse("project-dashboard", args=[project.slug])).content.decode()

        assert "tone · v2" in page and "Polite and calm." in page

    def test_non_member_gets_404(self, client, project, outsider):
        client.force_login(outsider)

        assert client.get(reverse("project-dashboard", args=[project.slug])).status_code == 404

    def test_unknown_project_is_404_too(self, client, outsider):
        client.force_login(outsider)

        assert client.get(reverse("project-dashboard", args=["nope"])).status_code == 404


@pytest.mark.django_db
class TestSettingsPermissions:
    def test_annotator_cannot_open_or_change_settings(self, client, project, annotator):
        client.force_login(annotator)
        url = reverse("project-settings", args=[project.slug])

        assert client.get(url).status_code == 403
        response = client.post(url, {"name": "Hijacked", "overlap": 3})

        assert response.status_code == 403
        project.refresh_from_db()
        assert (project.name, project.overlap) == ("Support bot", 1)

    def test_reviewer_cannot_add_members(self, client, project, reviewer, outsider):
        client.force_login(reviewer)

        response = client.post(
            reverse("project-member-add", args=[project.slug]), {"username": "mallory", "role": "owner"}
        )

        assert response.status_code == 403
        assert not Membership.objects.filter(user=outsider).exists()

    def test_owner_changes_settings(self, client, project, owner):
        client.force_login(owner)
        data = {
            "name": "Support bot", "description": "", "guidelines": "Be strict.",
            "default_selector": "variance", "overlap": 2, "default_ffr_ceiling": 0.2,
            "min_labels_per_class": 3, "random_mix": 0.1, "scale": "binary",
        }

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 302
        project.refresh_from_db()
        assert (project.overlap, project.default_selector, project.guidelines) == (2, "variance", "Be strict.")

    def test_owner_turns_on_complete_overlap_first(self, client, project, owner):
        client.force_login(owner)
        page = client.get(reverse("project-settings", args=[project.slug])).content.decode()
        assert "Complete overlap first" in page
        assert "Outputs someone has already graded come before new ones" in page
        data = {
            "name": "Support bot", "default_selector": "random", "overlap": 2, "overlap_first": "on",
            "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1, "scale": "binary",
        }

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 302
        project.refresh_from_db()
        assert (project.overlap, project.overlap_first) == (2, True)

    def test_a_selector_outside_the_registry_is_refused(self, client, project, owner):
        client.force_login(owner)
        data = {"name": "Support bot", "default_selector": "entropy", "overlap": 2,
                "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1,
                "scale": "binary"}

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 400
        assert "Select a valid choice. entropy is not one of the available choices." in (
            response.content.decode()
        )
        project.refresh_from_db()
        assert (project.default_selector, project.overlap) == ("random", 1)

    def test_rating_scale_without_threshold_is_refused(self, client, project, owner):
        client.force_login(owner)
        data = {"name": "Support bot", "default_selector": "random", "overlap": 1,
                "default_ffr_ceiling": 0.25, "min_labels_per_class": 3, "random_mix": 0.1,
                "scale": "rating"}

        response = client.post(reverse("project-settings", args=[project.slug]), data)

        assert response.status_code == 400
        assert "A rating scale needs a pass threshold." in response.content.decode()
        project.refresh_from_db()
        assert project.scale == "binary"

    def test_owner_adds_member(self, client, project, owner, outsider):
        client.force_login(owner)

        client.post(reverse("project-member-add", args=[project.slug]), {"username": "mallory", "role": "reviewer"})

        assert Membership.objects.get(project=project, user=outsider).role == "reviewer"

    def test_every_selector_in_the_menu_says_what_it_picks_and_the_guide_lists_them(self, client, project, owner):
        from annotate.selectors import SELECTORS

        client.force_login(owner)
        settings_page = client.get(reverse("project-settings", args=[project.slug])).content.decode()
        guide = client.get(reverse("selector-guide")).content.decode()

        for name, selector in SELECTORS.items():
            assert len(selector.summary) > 40, name
            assert f'<option value="{name}"' in settings_page
            assert f"{selector.label} — {escape(selector.summary)}</option>" in settings_page
            assert f"<code>{name}</code></td><td>{escape(selector.summary)}</td>" in guide
        assert f'<a href="{reverse("selector-guide")}">How the selectors compare</a>' in settings_page

    def test_a_new_members_role_starts_as_annotator(self, client, project, owner):
        client.force_login(owner)

        page = client.get(reverse("project-settings", args=[project.slug])).content.decode()

        assert '<option value="annotator" selected>Annotator</option>' in page
        assert '<option value="owner">Owner</option>' in page


@pytest.mark.django_db
class TestUploadPage:
    def upload(self, client, project, content: bytes, name="o.jsonl", with_labels=False):
        data = {"file": io.BytesIO(content)}
        data["file"].name = name
        if with_labels:
            data["with_labels"] = "on"
        return client.post(reverse("project-import", args=[project.slug]), data)

    def test_owner_uploads_jsonl(self, client, project, owner):
        client.force_login(owner)
        body = json.dumps({"item_id": "q1", "input": "Q", "system": "a", "output": "x"}).encode() + b"\n"

        response = self.upload(client, project, body)

        assert response.status_code == 302
        assert Output.objects.filter(project=project).count() == 1
        follow = client.get(response["Location"]).content.decode()
        assert "Imported 1 samples, 1 outputs." in follow

    def test_bad_upload_lists_problems_and_writes_nothing(self, client, project, owner):
        client.force_login(owner)

        response = self.upload(client, project, b'{"item_id": "q1", "input": "Q", "system": "a"}\nnot json\n')

        page = response.content.decode()
        assert response.status_code == 400
        assert "Nothing was imported: the file has 2 problem(s)." in page
        assert "is missing" in page and "invalid JSON" in page
        assert Output.objects.filter(project=project).count() == 0

    @pytest.mark.parametrize(("kind", "created"), [("outputs", (2, 3, 2, 0)), ("pairs", (2, 5, 0, 3))])
    def test_the_sample_files_download_and_import_with_labels(self, client, project, owner, kind, created):
        client.force_login(owner)
        page = client.get(reverse("project-import", args=[project.slug])).content.decode()
        url = reverse("project-import-sample", args=[project.slug, kind])
        assert f'href="{url}" download' in page

        download = client.get(url)
        response = self.upload(client, project, download.content, name=f"sample-{kind}.jsonl", with_labels=True)

        assert download["Content-Disposition"] == f'attachment; filename="concord-sample-{kind}.jsonl"'
        assert response.status_code == 302
        assert (project.samples.count(), project.outputs.count(), project.grades.count(),
                project.comparisons.count()) == created

    def test_only_the_two_sample_files_exist_and_only_for_owners(self, client, project, owner, annotator):
        client.force_login(owner)
        assert client.get(reverse("project-import-sample", args=[project.slug, "secrets"])).status_code == 404
        client.force_login(annotator)
        assert client.get(reverse("project-import-sample", args=[project.slug, "pairs"])).status_code == 403

    def test_annotator_cannot_upload(self, client, project, annotator):
        client.force_login(annotator)
        body = json.dumps({"item_id": "q1", "input": "Q", "system": "a", "output": "x"}).encode()

        response = self.upload(client, project, body)

        assert response.status_code == 403
        assert Output.objects.filter(project=project).count() == 0

    def test_non_member_cannot_upload(self, client, project, outsider):
        client.force_login(outsider)
        body = json.dumps({"item_id": "q1", "input": "Q", "system": "a", "output": "x"}).encode()

        assert self.upload(client, project, body).status_code == 404
        assert Output.objects.filter(project=project).count() == 0


@pytest.mark.django_db
def test_the_last_owner_cannot_step_down(project, owner):
    from annotate.services.projects import ProjectError, membership_set

    with pytest.raises(ProjectError, match="at least one owner"):
        membership_set(project=project, user=owner, role="annotator")

    assert Membership.objects.get(project=project, user=owner).role == "owner"
