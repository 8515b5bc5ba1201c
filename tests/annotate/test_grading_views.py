import pytest
from django.urls import reverse

from annotate.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Criterion,
    Grade,
    GradeCriterion,
)
from annotate.services.assignments import assignment_claim_next
from annotate.services.criteria import criterion_version_publish
from annotate.services.grades import grade_submit

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


@pytest.fixture
def grader(client, annotator):
    client.force_login(annotator)
    return client


def current_claim(project, user):
    return Assignment.objects.get(project=project, annotator=user, status=AssignmentStatus.ACTIVE)


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("name", ["grade-page", "pairwise-page", "grade-history"])
    def test_non_member_gets_404_and_claims_nothing(self, client, project, outsider, make_outputs, name):
        make_outputs(n_samples=2)
        client.force_login(outsider)

        assert client.get(url(name, project)).status_code == 404
        assert Assignment.objects.count() == 0

    @pytest.mark.parametrize("name", ["grade-page", "pairwise-page", "grade-history"])
    def test_reviewer_gets_403_and_claims_nothing(self, client, project, reviewer, make_outputs, name):
        make_outputs(n_samples=2)
        client.force_login(reviewer)

        assert client.get(url(name, project)).status_code == 403
        assert Assignment.objects.count() == 0

    def test_reviewer_cannot_submit_a_grade(self, client, project, reviewer, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)
        client.force_login(reviewer)

        response = client.post(url("grade-submit", project), {"assignment": claim.pk, "verdict": "pass"})

        assert response.status_code == 403
        assert Grade.objects.count() == 0

    def test_anonymous_is_sent_to_login(self, client, project):
        response = client.get(url("grade-page", project))

        assert response.status_code == 302
        assert response["Location"] == "/login/?next=/p/support-bot/grade/"

    def test_someone_elses_claim_cannot_be_submitted(self, client, project, owner, annotator, make_outputs):
        make_outputs(n_samples=1)
        theirs = assignment_claim_next(project=project, annotator=owner)
        client.force_login(annotator)

        response = client.post(url("grade-submit", project), {"assignment": theirs.pk, "verdict": "fail"})

        assert response.status_code == 404
        assert Grade.objects.count() == 0

    def test_tabs_show_grade_and_pairwise_to_annotators_only(self, client, project, annotator, reviewer):
        client.force_login(annotator)
        page = client.get(url("project-dashboard", project)).content.decode()
        assert '<a href="/p/support-bot/grade/"' in page and '<a href="/p/support-bot/pairwise/"' in page

        client.force_login(reviewer)
        page = client.get(url("project-dashboard", project)).content.decode()
        assert "/p/support-bot/grade/" not in page and "/p/support-bot/pairwise/" not in page


@pytest.mark.django_db
class TestGradePage:
    def test_shows_the_item_criteria_why_and_progress(self, grader, project, annotator, make_outputs, grounded):
        outputs = make_outputs(n_samples=2)
        project.guidelines = "Fail anything that invents a policy."
        project.save()

        response = grader.get(url("grade-page", project))

        page = response.content.decode()
        claim = current_claim(project, annotator)
        assert response.status_code == 200
        assert f'data-testid="output-text"><p>{claim.output.text}</p>\n</div>' in page  # rendered
        assert f'data-testid="output-text-raw">{claim.output.text}</pre>' in page
        assert f'data-testid="input-text"><p>{claim.output.sample.input_text}</p>\n</div>' in page  # rendered
        assert f'data-testid="input-text-raw">{claim.output.sample.input_text}</pre>' in page
        assert "The reference answer." in page
        assert "Fail anything that invents a policy." in page
        assert 'data-testid="why">chosen at random from 4 items<' in page
        assert 'data-testid="selector">random<' in page
        assert 'data-testid="project-progress">0/4<' in page
        # Two people grade (owner and annotator), overlap 1: a fair share is 2 of the 4.
        assert 'data-testid="my-progress">0/2<' in page
        assert 'data-hotkey="q" data-cycle="c_grounded"' in page
        assert "Every claim is supported." in page
        assert len(outputs) == 4

    def test_reload_shows_the_same_item(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=3)
        first = grader.get(url("grade-page", project)).context["assignment"]

        second = grader.get(url("grade-page", project)).context["assignment"]

        assert second.pk == first.pk
        assert Assignment.objects.count() == 1

    def test_system_name_is_not_shown(self, grader, project, make_outputs):
        make_outputs(n_samples=1, systems=("secret-model-x",))

        page = grader.get(url("grade-page", project)).content.decode()

        # The output's own words name the system here; the diff view shows them word by word.
        shown = page.replace("secret-model-x answers", "").replace("<ins>secret-model-x</ins>", "")
        assert "secret-model-x" not in shown

    def test_nothing_left(self, grader, project):
        page = grader.get(url("grade-page", project)).content.decode()

        assert 'data-testid="nothing-left"' in page


@pytest.mark.django_db
class TestSubmit:
    def test_plain_post_saves_and_redirects_to_the_next_item(self, grader, project, annotator, make_outputs, grounded):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]

        response = grader.post(url("grade-submit", project), {
            "assignment": claim.pk, "verdict": "fail", "c_grounded": "fail", "note": "made up",
            "shown_at": claim.claimed_at.isoformat(),
        })

        assert response.status_code == 302 and response["Location"] == "/p/support-bot/grade/"
        grade = Grade.objects.get()
        assert (grade.output_id, grade.verdict, grade.note, grade.started_at, grade.selector) == (
            claim.output_id, "fail", "made up", claim.claimed_at, "random"
        )
        assert list(GradeCriterion.objects.values_list("criterion__key", "verdict")) == [("grounded", "fail")]
        following = grader.get(url("grade-page", project)).context["assignment"]
        assert following.output_id != claim.output_id

    def test_htmx_post_answers_with_the_next_item_only(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]

        response = grader.post(url("grade-submit", project), {"assignment": claim.pk, "verdict": "pass"}, **HTMX)

        page = response.content.decode()
        following = current_claim(project, annotator)
        assert response.status_code == 200
        assert page.startswith('\n<section id="workspace"') and "<html" not in page
        assert following.output_id != claim.output_id
        assert f'name="assignment" value="{following.pk}"' in page
        assert 'data-testid="notice">Saved: pass.<' in page
        assert 'data-testid="my-progress">1/2<' in page

    def test_missing_verdict_keeps_the_item_and_what_was_entered(self, grader, project, annotator, make_outputs, grounded):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]

        response = grader.post(
            url("grade-submit", project),
            {"assignment": claim.pk, "verdict": "", "c_grounded": "fail", "note": "keep me"}, **HTMX,
        )

        page = response.content.decode()
        assert response.status_code == 400
        assert 'data-testid="error">Choose pass, fail or unsure.<' in page
        assert f'name="assignment" value="{claim.pk}"' in page
        assert 'value="keep me"' in page
        assert 'name="c_grounded" value="fail" form="grade-form" checked' in page
        assert Grade.objects.count() == 0
        assert current_claim(project, annotator).pk == claim.pk

    def test_double_submit_saves_one_grade(self, grader, project, make_outputs):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]
        data = {"assignment": claim.pk, "verdict": "pass"}

        grader.post(url("grade-submit", project), data, **HTMX)
        grader.post(url("grade-submit", project), data, **HTMX)

        assert Grade.objects.count() == 1

    def test_skip_moves_on_and_releases_the_claim(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]

        response = grader.post(url("grade-skip", project), {"assignment": claim.pk}, **HTMX)

        claim.refresh_from_db()
        assert response.status_code == 200 and 'data-testid="notice">Skipped.<' in response.content.decode()
        assert claim.status == AssignmentStatus.SKIPPED
        assert current_claim(project, annotator).output_id != claim.output_id
        assert Grade.objects.count() == 0


@pytest.mark.django_db
class TestRatingScale:
    @pytest.fixture
    def rated(self, project):
        project.scale, project.scale_min, project.scale_max, project.pass_threshold = "rating", 1, 5, 4
        project.save()
        return project

    def test_a_score_without_a_verdict_derives_it(self, grader, rated, make_outputs):
        make_outputs(n_samples=1)
        page = grader.get(url("grade-page", rated))
        assert 'name="score" form="grade-form"' in page.content.decode()

        grader.post(url("grade-submit", rated), {"assignment": page.context["assignment"].pk, "score": "2"})

        assert list(Grade.objects.values_list("verdict", "score")) == [("fail", 2.0)]

    def test_a_score_off_the_scale_is_refused(self, grader, rated, make_outputs):
        make_outputs(n_samples=1)
        claim = grader.get(url("grade-page", rated)).context["assignment"]

        response = grader.post(url("grade-submit", rated), {"assignment": claim.pk, "score": "7"}, **HTMX)

        assert response.status_code == 400
        assert 'data-testid="error">The score must lie between 1 and 5.<' in response.content.decode()
        assert Grade.objects.count() == 0

    def test_binary_projects_have_no_score_field(self, grader, project, make_outputs):
        make_outputs(n_samples=1)

        assert 'name="score"' not in grader.get(url("grade-page", project)).content.decode()


@pytest.mark.django_db
class TestUndoAndHistory:
    def test_undo_reopens_the_last_graded_item_with_its_answers(self, grader, project, annotator, make_outputs, grounded):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]
        grader.post(url("grade-submit", project), {"assignment": claim.pk, "verdict": "fail", "c_grounded": "fail"}, **HTMX)

        response = grader.post(url("grade-undo", project), **HTMX)

        page = response.content.decode()
        reopened = current_claim(project, annotator)
        assert reopened.output_id == claim.output_id
        assert "Undone: your fail grade is withdrawn." in page
        assert 'name="verdict" value="fail" form="grade-form"\n               data-hotkey="2" checked' in page
        assert 'data-testid="previous-grade"' in page
        assert list(Grade.objects.order_by("id").values_list("retracted", "verdict")) == [(False, "fail"), (True, "")]

    def test_undo_with_nothing_to_undo(self, grader, project, make_outputs):
        make_outputs(n_samples=1)

        response = grader.post(url("grade-undo", project))

        assert response.status_code == 302
        assert Grade.objects.count() == 0

    def test_history_lists_own_grades_with_stale_marks(self, grader, project, annotator, owner, make_outputs, grounded):
        first, second = make_outputs(n_samples=1)
        grade_submit(output=first, annotator=annotator, verdict="pass", criteria={"grounded": "pass"}, note="mine")
        grade_submit(output=second, annotator=owner, verdict="fail", note="the owner's secret note")
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        page = grader.get(url("grade-history", project)).content.decode()

        assert "stale: graded under v1, now v2" in page
        assert f'data-output="{first.pk}"' in page and f'data-output="{second.pk}"' not in page
        assert "the owner's secret note" not in page

    def test_reopen_from_history_puts_the_item_back(self, grader, project, annotator, make_outputs):
        first, _ = make_outputs(n_samples=1)
        grade_submit(output=first, annotator=annotator, verdict="pass")

        response = grader.post(url("grade-reopen", project, first.pk))

        assert response.status_code == 302 and response["Location"] == "/p/support-bot/grade/"
        assert current_claim(project, annotator).output_id == first.pk
        page = grader.get(url("grade-page", project)).content.decode()
        assert 'data-testid="why">reopened from your history<' in page

    def test_reopen_of_an_output_never_graded_is_refused(self, grader, project, annotator, make_outputs):
        first, _ = make_outputs(n_samples=1)

        response = grader.post(url("grade-reopen", project, first.pk))

        assert response.status_code == 302 and response["Location"] == "/p/support-bot/grade/history/"
        assert Assignment.objects.filter(annotator=annotator).count() == 0


@pytest.mark.django_db
class TestBlindGrading:
    def test_others_grades_never_show_on_the_page(self, client, project, annotator, owner, make_outputs):
        project.overlap = 2
        project.save()
        [only] = make_outputs(n_samples=1, systems=("alpha",))
        grade_submit(output=only, annotator=owner, verdict="fail", note="owner thinks it invents facts")
        client.force_login(annotator)

        page = client.get(url("grade-page", project)).content.decode()

        assert current_claim(project, annotator).output_id == only.pk
        assert "owner thinks it invents facts" not in page
        assert 'data-testid="previous-grade"' not in page


@pytest.mark.django_db
class TestCriteriaDrift:
    def test_annotator_adds_a_criterion_inline_keeping_the_form(self, grader, project, annotator, make_outputs, grounded):
        make_outputs(n_samples=2)
        claim = grader.get(url("grade-page", project)).context["assignment"]

        response = grader.post(url("grade-criterion-add", project), {
            "new_name": "Privacy", "new_definition": "Leaks no personal data.",
            "new_reason": "saw an email address", "assignment": claim.pk, "verdict": "pass",
            "c_grounded": "fail",
        }, **HTMX)

        page = response.content.decode()
        criterion = Criterion.objects.get(key="privacy")
        version = criterion.versions.get()
        assert (version.name, version.definition, version.reason, version.author) == (
            "Privacy", "Leaks no personal data.", "saw an email address", annotator
        )
        assert "Criterion &#x27;privacy&#x27; added." in page
        assert 'data-criterion="privacy" data-hotkey="w"' in page
        assert 'name="verdict" value="pass" form="grade-form"\n               data-hotkey="1" checked' in page
        assert 'name="c_grounded" value="fail" form="grade-form" checked' in page
        assert current_claim(project, annotator).pk == claim.pk

    def test_adding_needs_a_reason(self, grader, project, make_outputs):
        make_outputs(n_samples=1)
        grader.get(url("grade-page", project))

        response = grader.post(url("grade-criterion-add", project), {"new_name": "Privacy", "new_reason": ""}, **HTMX)

        assert response.status_code == 400
        assert "Say in one line why the criterion is needed." in response.content.decode()
        assert Criterion.objects.filter(project=project).count() == 0

    def test_annotators_cannot_edit_criteria_when_the_project_forbids_it(self, grader, project, grounded):
        project.annotators_may_edit_criteria = False
        project.save()

        added = grader.post(url("grade-criterion-add", project), {"new_name": "Privacy", "new_reason": "x"})
        refined = grader.post(
            url("grade-criterion-refine", project, "grounded"), {"definition": "New.", "reason": "x"}
        )

        assert (added.status_code, refined.status_code) == (403, 403)
        assert list(Criterion.objects.values_list("key", flat=True)) == ["grounded"]
        assert grounded.versions.count() == 1

    def test_owner_may_edit_even_when_annotators_may_not(self, client, project, owner, grounded):
        project.annotators_may_edit_criteria = False
        project.save()
        client.force_login(owner)

        response = client.post(url("grade-criterion-add", project), {"new_name": "Privacy", "new_reason": "x"})

        assert response.status_code == 302
        assert Criterion.objects.filter(project=project, key="privacy").count() == 1

    def test_refine_makes_a_version_and_marks_the_reopened_grade_stale(self, grader, project, annotator, make_outputs, grounded):
        [only] = make_outputs(n_samples=1, systems=("alpha",))
        grade_submit(output=only, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
        grader.post(url("grade-reopen", project, only.pk))

        response = grader.post(url("grade-criterion-refine", project, "grounded"), {
            "definition": "Every claim is in the article.", "reason": "'supported' was read loosely",
        }, **HTMX)

        page = response.content.decode()
        assert response.status_code == 200
        assert list(grounded.versions.values_list("number", "definition")) == [
            (1, "Every claim is supported."), (2, "Every claim is in the article."),
        ]
        assert "Grounded</strong> <small class=\"muted\">v2</small>" in page
        assert 'data-testid="stale-mark">stale: Grounded graded under v1, now v2<' in page

    def test_a_definition_refined_while_grading_leaves_the_verdict_stale(self, grader, project, annotator, owner, make_outputs, grounded):
        make_outputs(n_samples=2)
        page = grader.get(url("grade-page", project))
        claim = page.context["assignment"]
        shown = grounded.versions.get()
        assert f'name="v_grounded" value="{shown.pk}"' in page.content.decode()
        criterion_version_publish(criterion=grounded, author=owner, definition="Tighter.", reason="drift")

        grader.post(url("grade-submit", project), {
            "assignment": claim.pk, "verdict": "pass", "c_grounded": "fail", "v_grounded": shown.pk,
        }, **HTMX)

        verdict = GradeCriterion.objects.get()
        assert (verdict.criterion_version_id, verdict.verdict) == (shown.pk, "fail")
        history = grader.get(url("grade-history", project)).content.decode()
        assert "stale: graded under v1, now v2" in history

    def test_refine_without_a_reason_is_refused(self, grader, project, grounded):
        response = grader.post(
            url("grade-criterion-refine", project, "grounded"), {"definition": "New.", "reason": ""}, **HTMX
        )

        assert response.status_code == 400
        assert grounded.versions.count() == 1


@pytest.mark.django_db
class TestPairwise:
    def test_shows_two_outputs_of_one_input_without_system_names(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=1, systems=("model-alpha", "model-beta"))

        page = grader.get(url("pairwise-page", project)).content.decode()

        claim = current_claim(project, annotator)
        assert f'data-testid="output-a"><p>{claim.output.text}</p>\n</div>' in page  # rendered
        assert f'data-testid="output-a-raw">{claim.output.text}</pre>' in page
        assert f'data-testid="output-b"><p>{claim.output_b.text}</p>\n</div>' in page  # rendered
        assert f'data-testid="output-b-raw">{claim.output_b.text}</pre>' in page
        assert page.count("model-alpha") == page.count("model-alpha answers")
        assert page.count("model-beta") == page.count("model-beta answers")

    def test_submit_stores_the_comparison_as_shown(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=2)
        grader.get(url("pairwise-page", project))
        claim = current_claim(project, annotator)

        response = grader.post(url("pairwise-submit", project), {
            "assignment": claim.pk, "choice": "b", "note": "shorter",
        }, **HTMX)

        comparison = Comparison.objects.get()
        assert response.status_code == 200 and "Saved: B (right)." in response.content.decode()
        assert (comparison.output_a_id, comparison.output_b_id, comparison.choice, comparison.note) == (
            claim.output_id, claim.output_b_id, "b", "shorter"
        )
        assert comparison.swapped == (claim.output_id > claim.output_b_id)
        assert comparison.selector == "random"

    def test_missing_choice_is_refused(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        grader.get(url("pairwise-page", project))
        claim = current_claim(project, annotator)

        response = grader.post(url("pairwise-submit", project), {"assignment": claim.pk}, **HTMX)

        assert response.status_code == 400 and "Choose A, B or tie." in response.content.decode()
        assert Comparison.objects.count() == 0

    def test_skip_and_undo(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=2)
        grader.get(url("pairwise-page", project))
        first = current_claim(project, annotator)
        grader.post(url("pairwise-skip", project), {"assignment": first.pk}, **HTMX)
        second = current_claim(project, annotator)
        grader.post(url("pairwise-submit", project), {"assignment": second.pk, "choice": "tie"}, **HTMX)

        response = grader.post(url("pairwise-undo", project), **HTMX)

        reopened = current_claim(project, annotator)
        first.refresh_from_db()
        assert first.status == AssignmentStatus.SKIPPED
        assert (reopened.output_id, reopened.output_b_id) == (second.output_id, second.output_b_id)
        assert "Undone: choose again or skip this pair." in response.content.decode()
        assert list(Comparison.objects.order_by("id").values_list("retracted", "choice")) == [
            (False, "tie"), (True, "")
        ]

    def test_reviewer_cannot_compare(self, client, project, reviewer, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator, mode="pair")
        client.force_login(reviewer)

        response = client.post(url("pairwise-submit", project), {"assignment": claim.pk, "choice": "a"})

        assert response.status_code == 403
        assert Comparison.objects.count() == 0
