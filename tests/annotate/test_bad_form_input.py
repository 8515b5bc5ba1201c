"""What the hand fuzzing of issue 12 sent to the HTML forms: each is a 400 naming the field,
never a 500, and nothing is written."""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotate.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Comparison,
    Criterion,
    CriterionVersion,
    Decision,
    Grade,
    Output,
    RegradeRequest,
    ReviewMeeting,
    Sample,
)
from annotate.services.assignments import assignment_claim_next
from annotate.services.criteria import criterion_create
from annotate.services.review import meeting_notes_save, meeting_start
from validators.models import Run, Validator

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


def text_of(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.content.decode())


@pytest.fixture
def grader(client, annotator):
    client.force_login(annotator)
    return client


@pytest.mark.django_db
class TestAssignmentField:
    @pytest.mark.parametrize("value", ["abc", "1.5", "x", "", "-3", "99999999999999999999"])
    @pytest.mark.parametrize("name", ["grade-submit", "grade-skip"])
    def test_single_refuses_an_assignment_that_is_no_id(
        self, grader, project, annotator, make_outputs, name, value,
    ):
        make_outputs(n_samples=2)
        claim = assignment_claim_next(project=project, annotator=annotator)

        response = grader.post(url(name, project), {"assignment": value, "verdict": "pass"}, **HTMX)

        assert response.status_code == 400
        assert (f"The assignment field must be the id of your current item, not {value!r}. "
                "Reload the page.") in text_of(response)
        # The page still shows the annotator's item, which stays claimed and ungraded.
        assert response.context["assignment"] == claim
        assert Grade.objects.count() == 0
        claim.refresh_from_db()
        assert claim.status == AssignmentStatus.ACTIVE

    @pytest.mark.parametrize("value", ["abc", "1.5", "x"])
    @pytest.mark.parametrize("name", ["pairwise-submit", "pairwise-skip"])
    def test_pairwise_refuses_an_assignment_that_is_no_id(
        self, grader, project, annotator, make_outputs, name, value,
    ):
        make_outputs(n_samples=2)
        claim = assignment_claim_next(project=project, annotator=annotator, mode="pair")

        response = grader.post(url(name, project), {"assignment": value, "choice": "a"})

        assert response.status_code == 400
        assert (f"The assignment field must be the id of your current item, not {value!r}. "
                "Reload the page.") in text_of(response)
        assert Comparison.objects.count() == 0
        assert Assignment.objects.get().pk == claim.pk
        claim.refresh_from_db()
        assert claim.status == AssignmentStatus.ACTIVE


@pytest.mark.django_db
class TestUnstorableTextInGradingForms:
    def test_nul_in_the_grade_note(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator)

        response = grader.post(url("grade-submit", project), {
            "assignment": claim.pk, "verdict": "fail", "note": "see\x00this",
        }, **HTMX)

        assert response.status_code == 400
        assert ("The note field contains a NUL character (at character 4)."
                in text_of(response))
        assert Grade.objects.count() == 0

    def test_nul_in_the_pairwise_note(self, grader, project, annotator, make_outputs):
        make_outputs(n_samples=1)
        claim = assignment_claim_next(project=project, annotator=annotator, mode="pair")

        response = grader.post(url("pairwise-submit", project), {
            "assignment": claim.pk, "choice": "a", "note": "\x00",
        }, **HTMX)

        assert response.status_code == 400
        assert "The note field contains a NUL character (at character 1)." in text_of(response)
        assert Comparison.objects.count() == 0

    def test_nul_in_a_new_criterion_without_htmx(self, client, owner, project, make_outputs):
        make_outputs(n_samples=1)
        client.force_login(owner)

        response = client.post(url("grade-criterion-add", project), {
            "new_name": "Tone\x00", "new_definition": "Polite.", "new_reason": "users complain",
        })

        assert response.status_code == 400
        assert "The name field contains a NUL character (at character 5)." in text_of(response)
        assert Criterion.objects.count() == 0

    def test_nul_in_a_refined_definition(self, client, owner, project, make_outputs):
        make_outputs(n_samples=1)
        criterion_create(project=project, key="tone", name="Tone", definition="Polite.",
                         author=owner)
        client.force_login(owner)

        response = client.post(url("grade-criterion-refine", project, "tone"), {
            "definition": "Polite\x00 and brief.", "reason": "stricter",
        }, **HTMX)

        assert response.status_code == 400
        assert "The definition field contains a NUL character (at character 7)." in text_of(response)
        assert CriterionVersion.objects.count() == 1


@pytest.fixture
def meeting(project, reviewer, make_outputs):
    outputs = make_outputs(n_samples=2)
    criterion_create(project=project, key="tone", name="Tone", definition="Polite.",
                     author=reviewer)
    meeting = meeting_start(project=project, started_by=reviewer, title="Tuesday")
    meeting_notes_save(meeting=meeting, notes="kept", author=reviewer)
    meeting.test_outputs = outputs
    return meeting


def meeting_url(name, project, meeting):
    return reverse(name, args=[project.slug, meeting.pk])


@pytest.mark.django_db
class TestUnstorableTextInMeetings:
    @pytest.fixture(autouse=True)
    def as_reviewer(self, client, reviewer):
        client.force_login(reviewer)

    def writes(self):
        return (Adjudication.objects.count(), Decision.objects.count(),
                RegradeRequest.objects.count(), CriterionVersion.objects.count(),
                Criterion.objects.count())

    @pytest.mark.parametrize(("name", "form", "message"), [
        ("review-adjudicate", {"verdict": "fail", "reason": "made up\x00"},
         "The reason field contains a NUL character (at character 8)."),
        ("review-publish", {"criterion": "tone", "definition": "Kind.", "reason": "\x00"},
         "The reason field contains a NUL character (at character 1)."),
        ("review-create-criterion", {"name": "Pri\x00vacy", "definition": "d", "reason": "r"},
         "The name field contains a NUL character (at character 4)."),
        ("review-send-back", {"reason": "look\x00again"},
         "The reason field contains a NUL character (at character 5)."),
        ("review-decision", {"text": "Quotes\x00 count."},
         "The decision field contains a NUL character (at character 7)."),
    ])
    @pytest.mark.parametrize("htmx", [True, False])
    def test_meeting_forms(self, client, project, meeting, name, form, message, htmx):
        form = {**form, "output": meeting.test_outputs[0].pk}
        before = self.writes()

        response = client.post(meeting_url(name, project, meeting), form,
                               **(HTMX if htmx else {}))

        assert response.status_code == 400
        assert message in text_of(response)
        assert self.writes() == before == (0, 0, 0, 1, 1)

    def test_notes_autosave(self, client, project, meeting):
        response = client.post(meeting_url("review-meeting-notes", project, meeting),
                               {"notes": "agenda\x00"})

        assert response.status_code == 400
        assert text_of(response) == "The notes field contains a NUL character (at character 7)."
        meeting.refresh_from_db()
        assert meeting.notes == "kept"

    def test_end_with_notes(self, client, project, meeting):
        response = client.post(meeting_url("review-meeting-end", project, meeting),
                               {"notes": "\x00 final"})

        assert response.status_code == 400
        assert "The notes field contains a NUL character (at character 1)." in text_of(response)
        meeting.refresh_from_db()
        assert (meeting.notes, meeting.ended_at) == ("kept", None)
        assert ReviewMeeting.objects.filter(ended_at__isnull=False).count() == 0


@pytest.mark.django_db
class TestValidatorsPage:
    @pytest.fixture(autouse=True)
    def as_owner(self, client, owner):
        client.force_login(owner)

    @pytest.mark.parametrize(("content", "message"), [
        (b"[" * 100_000 + b"]" * 100_000, "Not valid JSON: nested too deeply."),
        (b'[{"name": "x", "threshold": ' + b"9" * 5000 + b"}]",
         "Not a readable validators file: Exceeds the limit (4300 digits) for integer string "
         "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the "
         "limit."),
        (b'{"validators": [{"name": "x", "kind": "llm", "provider": ["a"], "source": "s"}]}',
         "Nothing was imported: entry 1 ('x'), provider: must be a provider name or null"),
    ])
    def test_import_file_that_is_no_validators_file(self, client, project, content, message):
        response = client.post(
            reverse("validators-import", args=[project.slug]),
            {"file": SimpleUploadedFile("validators.json", content)}, follow=True,
        )

        assert response.status_code == 200
        assert [str(m) for m in response.context["messages"]] == [message]
        assert Validator.objects.count() == 0

    def test_run_start_ignores_ids_beyond_64_bits(self, client, project, make_outputs):
        make_outputs(n_samples=1)

        response = client.post(reverse("run-start", args=[project.slug]),
                               {"validators": ["99999999999999999999999"]}, follow=True)

        assert response.status_code == 200
        assert Run.objects.count() == 0


@pytest.mark.django_db
def test_import_page_lists_line_and_field_of_a_nul(client, owner, project):
    client.force_login(owner)
    content = b"item_id,input,system,output\nq1,Capital?,alpha,Paris\nq2,Capital?,alpha,Par\x00is\n"

    response = client.post(reverse("project-import", args=[project.slug]),
                           {"file": SimpleUploadedFile("outputs.csv", content)})

    assert response.status_code == 400
    assert [(p.line, p.field, p.message) for p in response.context["result"].problems] == [
        (3, "output", "contains a NUL character (at character 4)"),
    ]
    assert "contains a NUL character (at character 4)" in text_of(response)
    assert (Sample.objects.count(), Output.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_meeting_form_naming_a_criterion_with_a_nul(client, reviewer, project, meeting):
    client.force_login(reviewer)

    response = client.post(meeting_url("review-adjudicate", project, meeting), {
        "output": meeting.test_outputs[0].pk, "target": "to\x00ne", "verdict": "fail",
    }, **HTMX)

    assert response.status_code == 400
    assert "There is no criterion 'to\\x00ne'." in text_of(response)
    assert Adjudication.objects.count() == 0


@pytest.mark.django_db
def test_criterion_key_in_a_page_url_with_a_nul(client, owner, project, make_outputs):
    make_outputs(n_samples=1)
    client.force_login(owner)

    response = client.post(f"/p/{project.slug}/grade/criteria/to%00ne/",
                           {"definition": "d", "reason": "r"})

    assert response.status_code == 404
    assert CriterionVersion.objects.count() == 0
