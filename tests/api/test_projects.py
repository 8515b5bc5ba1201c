"""Projects: list, create, detail with counts, settings, members."""

import pytest

from annotate.models import Membership, Project
from annotate.services.grades import grade_submit
from tests.api.conftest import url
from tests.factories import UserFactory


@pytest.mark.django_db
class TestList:
    def test_lists_only_my_projects_with_my_role(self, api_for, reviewer, project, owner):
        from annotate.services.projects import project_create

        project_create(name="Other", slug="other", owner=owner)

        answer = api_for(reviewer).get("/api/projects/")

        assert answer.status_code == 200
        body = answer.json()
        assert body["count"] == 1
        assert [(p["slug"], p["role"]) for p in body["results"]] == [("support-bot", "reviewer")]

    def test_staff_see_every_project_as_owners(self, api_for, project, owner):
        from annotate.services.projects import project_create

        project_create(name="Other", slug="other", owner=owner)
        staff = UserFactory(username="sam", is_staff=True)

        answer = api_for(staff).get("/api/projects/")

        assert [(p["slug"], p["role"]) for p in answer.json()["results"]] == [
            ("other", "owner"), ("support-bot", "owner"),
        ]

    def test_non_member_sees_an_empty_list(self, outsider_api):
        answer = outsider_api.get("/api/projects/")

        assert answer.status_code == 200
        assert answer.json()["count"] == 0


@pytest.mark.django_db
class TestCreate:
    def test_creator_becomes_owner_and_settings_are_applied(self, outsider_api, outsider):
        answer = outsider_api.post("/api/projects/", {
            "name": "Summaries", "description": "News summaries",
            "settings": {"overlap": 3, "scale": "rating", "scale_min": 1, "scale_max": 5,
                         "pass_threshold": 4, "default_selector": "variance"},
        }, format="json")

        assert answer.status_code == 201
        body = answer.json()
        assert (body["slug"], body["role"], body["description"]) == (
            "summaries", "owner", "News summaries")
        assert body["settings"]["overlap"] == 3
        assert body["settings"]["pass_threshold"] == 4.0
        assert body["counts"]["outputs"] == 0
        project = Project.objects.get(slug="summaries")
        assert (project.overlap, project.scale, project.default_selector) == (3, "rating", "variance")
        assert Membership.objects.get(project=project).user == outsider
        assert Membership.objects.get(project=project).role == "owner"

    def test_a_selector_outside_the_registry_is_refused(self, outsider_api):
        answer = outsider_api.post("/api/projects/", {
            "name": "Summaries", "settings": {"default_selector": "entropy"},
        }, format="json")

        assert answer.status_code == 400
        assert "entropy" in str(answer.json())
        assert not Project.objects.filter(name="Summaries").exists()

    def test_taken_slug_is_refused_on_the_slug(self, owner_api):
        answer = owner_api.post(
            "/api/projects/", {"name": "Again", "slug": "support-bot"}, format="json"
        )

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "slug", "message": "A project with the slug 'support-bot' already exists."},
        ]}
        assert Project.objects.count() == 1

    def test_rating_scale_needs_a_pass_threshold(self, owner_api):
        answer = owner_api.post(
            "/api/projects/", {"name": "Likert", "settings": {"scale": "rating"}}, format="json"
        )

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "settings.pass_threshold", "message": "A rating scale needs a pass threshold."},
        ]}
        assert not Project.objects.filter(name="Likert").exists()

    def test_missing_name_and_bad_setting_are_both_reported(self, owner_api):
        answer = owner_api.post("/api/projects/", {"settings": {"overlap": 0}}, format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "name", "message": "This field is required."},
            {"field": "settings.overlap",
             "message": "Ensure this value is greater than or equal to 1."},
        ]}
        assert Project.objects.count() == 1


@pytest.mark.django_db
class TestDetail:
    def test_counts_and_settings(self, reviewer_api, project, annotator, make_outputs):
        outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
        grade_submit(output=outputs[0], annotator=annotator, verdict="pass")

        answer = reviewer_api.get("/api/projects/support-bot/")

        assert answer.status_code == 200
        body = answer.json()
        assert body["role"] == "reviewer"
        assert body["counts"] == {
            "samples": 2, "outputs": 4, "systems": 2, "criteria": 0, "grades": 1,
            "graded_outputs": 1, "comparisons": 0, "target": 4, "progress_percent": 25.0,
        }
        assert body["settings"] == {
            "default_selector": "random", "overlap": 1, "default_ffr_ceiling": 0.25,
            "min_labels_per_class": 3, "random_mix": 0.1, "goal_balance": 0.7, "scale": "binary",
            "scale_min": None, "scale_max": None, "pass_threshold": None,
            "annotators_may_edit_criteria": True, "holistic_pass_implies_criteria": False,
            "overlap_first": False,
        }

    def test_owner_changes_settings(self, owner_api, project):
        answer = owner_api.patch("/api/projects/support-bot/", {
            "name": "Support bot v2", "settings": {"overlap": 2, "default_ffr_ceiling": 0.1},
        }, format="json")

        assert answer.status_code == 200
        assert answer.json()["settings"]["overlap"] == 2
        project.refresh_from_db()
        assert (project.name, project.overlap, project.default_ffr_ceiling, project.random_mix) == (
            "Support bot v2", 2, 0.1, 0.1)

    def test_switching_to_a_rating_scale_checks_the_stored_threshold(self, owner_api, project):
        answer = owner_api.patch(
            "/api/projects/support-bot/", {"settings": {"scale": "rating"}}, format="json"
        )

        assert answer.status_code == 400
        assert answer.json()["errors"] == [
            {"field": "settings.pass_threshold", "message": "A rating scale needs a pass threshold."},
        ]
        project.refresh_from_db()
        assert project.scale == "binary"

    def test_out_of_range_setting_is_refused(self, owner_api, project):
        answer = owner_api.patch(
            "/api/projects/support-bot/", {"settings": {"random_mix": 1.5}}, format="json"
        )

        assert answer.status_code == 400
        assert answer.json()["errors"] == [{
            "field": "settings.random_mix",
            "message": "Ensure this value is less than or equal to 1.0.",
        }]
        project.refresh_from_db()
        assert project.random_mix == 0.1

    def test_put_is_not_offered(self, owner_api):
        answer = owner_api.put("/api/projects/support-bot/", {"name": "x"}, format="json")

        assert answer.status_code == 405
        assert answer.json() == {"errors": [{"field": "", "message": 'Method "PUT" not allowed.'}]}


@pytest.mark.django_db
class TestMembers:
    def test_owner_adds_then_changes_a_member(self, owner_api, project):
        UserFactory(username="nina")

        added = owner_api.post(url("members/"), {"username": "nina", "role": "annotator"},
                               format="json")
        changed = owner_api.post(url("members/"), {"username": "nina", "role": "reviewer"},
                                 format="json")

        assert (added.status_code, added.json()) == (201, {"username": "nina", "role": "annotator"})
        assert (changed.status_code, changed.json()) == (200, {"username": "nina", "role": "reviewer"})
        assert Membership.objects.get(project=project, user__username="nina").role == "reviewer"

    def test_unknown_user_and_role_are_refused(self, owner_api, project):
        answer = owner_api.post(url("members/"), {"username": "ghost", "role": "boss"},
                                format="json")

        assert answer.status_code == 400
        assert answer.json() == {"errors": [
            {"field": "username", "message": "No user named 'ghost'."},
            {"field": "role", "message": '"boss" is not a valid choice.'},
        ]}
        assert Membership.objects.filter(project=project).count() == 3

    def test_members_are_listed(self, reviewer_api):
        answer = reviewer_api.get(url("members/"))

        assert answer.status_code == 200
        assert answer.json()["results"] == [
            {"username": "arjun", "role": "annotator"},
            {"username": "olivia", "role": "owner"},
            {"username": "rita", "role": "reviewer"},
        ]
