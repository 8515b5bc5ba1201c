import pytest
from django.core.exceptions import PermissionDenied

from annotate.models import OutputAssignee, OutputExclusion, RegradeRequest, Role
from annotate.services.grades import grade_submit
from annotate.services.output_actions import (
    OutputActionError,
    outputs_assign,
    outputs_exclude,
    outputs_include,
    outputs_send_back,
    outputs_unassign,
)
from annotate.services.projects import membership_set, project_create
from tests.factories import OutputFactory, SampleFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_annotator(project):
    user = UserFactory(username="bea")
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def foreign_output(owner):
    other = project_create(name="Other", slug="other", owner=owner)
    sample = SampleFactory(project=other, external_id="elsewhere")
    return OutputFactory(project=other, sample=sample, system="alpha")


class TestSendBack:
    def test_opens_one_request_per_output_with_who_and_why(self, project, reviewer, make_outputs):
        outputs = make_outputs(n_samples=2)

        result = outputs_send_back(
            project=project, output_ids=[o.pk for o in outputs[:3]], reason="  check tone  ",
            by=reviewer,
        )

        assert result.message == "3 outputs sent back for re-grading."
        rows = RegradeRequest.objects.order_by("output_id")
        assert [(r.output_id, r.reason, r.requested_by_id, r.decision_id, r.cancelled_at) for r in rows] == [
            (o.pk, "check tone", reviewer.pk, None, None) for o in outputs[:3]
        ]

    def test_a_new_request_replaces_an_open_one(self, project, owner, make_outputs):
        output = make_outputs(n_samples=1)[0]
        outputs_send_back(project=project, output_ids=[output.pk], reason="first", by=owner)

        outputs_send_back(project=project, output_ids=[output.pk], reason="second", by=owner)

        assert list(RegradeRequest.objects.filter(cancelled_at__isnull=True).values_list("reason", flat=True)) == [
            "second"
        ]
        assert RegradeRequest.objects.count() == 2

    def test_a_foreign_id_refuses_everything(self, project, owner, make_outputs, foreign_output):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError) as refused:
            outputs_send_back(
                project=project, output_ids=[outputs[0].pk, foreign_output.pk], reason="x", by=owner
            )

        assert refused.value.field == "output"
        assert f"({foreign_output.pk})" in str(refused.value)
        assert RegradeRequest.objects.count() == 0

    def test_an_empty_reason_is_refused(self, project, owner, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError) as refused:
            outputs_send_back(project=project, output_ids=[outputs[0].pk], reason="   ", by=owner)

        assert refused.value.field == "reason"
        assert RegradeRequest.objects.count() == 0

    def test_an_annotator_may_not(self, project, annotator, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(PermissionDenied):
            outputs_send_back(project=project, output_ids=[outputs[0].pk], reason="x", by=annotator)

        assert RegradeRequest.objects.count() == 0


class TestAssign:
    def test_spreads_evenly_with_overlap_one(self, project, owner, annotator, second_annotator, make_outputs):
        outputs = make_outputs(n_samples=5)  # 10 outputs

        result = outputs_assign(
            project=project, output_ids=[o.pk for o in outputs], annotators=[annotator, second_annotator],
            by=owner, reason="their domain",
        )

        assert (result.changed, result.unchanged) == (10, 0)
        assert result.message == "10 outputs assigned (10 assignments)."
        per_annotator = {
            user.pk: OutputAssignee.objects.filter(annotator=user).count() for user in (annotator, second_annotator)
        }
        assert per_annotator == {annotator.pk: 5, second_annotator.pk: 5}
        assert set(OutputAssignee.objects.values_list("reason", "assigned_by_id")) == {("their domain", owner.pk)}

    def test_overlap_two_gives_each_output_to_both(self, project, owner, annotator, second_annotator, make_outputs):
        project.overlap = 2
        project.save()
        outputs = make_outputs(n_samples=2)

        outputs_assign(project=project, output_ids=[o.pk for o in outputs],
                       annotators=[annotator, second_annotator], by=owner)

        assert sorted(OutputAssignee.objects.values_list("output_id", "annotator_id")) == sorted(
            (o.pk, u.pk) for o in outputs for u in (annotator, second_annotator)
        )

    def test_graders_and_assignees_take_slots(self, project, owner, annotator, second_annotator, make_outputs):
        graded, assigned, free = make_outputs(n_samples=3, systems=("alpha",))
        grade_submit(output=graded, annotator=owner, verdict="pass")
        outputs_assign(project=project, output_ids=[assigned.pk], annotators=[annotator], by=owner)

        result = outputs_assign(
            project=project, output_ids=[graded.pk, assigned.pk, free.pk], annotators=[second_annotator], by=owner,
        )

        assert (result.changed, result.unchanged) == (1, 2)
        assert "2 outputs not assigned" in result.message
        assert list(OutputAssignee.objects.filter(annotator=second_annotator).values_list("output_id", flat=True)) == [
            free.pk
        ]

    def test_a_non_member_is_refused(self, project, owner, outsider, annotator, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError) as refused:
            outputs_assign(project=project, output_ids=[outputs[0].pk], annotators=[annotator, outsider], by=owner)

        assert refused.value.field == "annotator"
        assert "mallory" in str(refused.value)
        assert OutputAssignee.objects.count() == 0

    def test_a_reviewer_cannot_be_assigned(self, project, owner, reviewer, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError):
            outputs_assign(project=project, output_ids=[outputs[0].pk], annotators=[reviewer], by=owner)

        assert OutputAssignee.objects.count() == 0

    def test_a_foreign_id_refuses_everything(self, project, owner, annotator, make_outputs, foreign_output):
        outputs = make_outputs(n_samples=2)

        with pytest.raises(OutputActionError):
            outputs_assign(project=project, output_ids=[o.pk for o in outputs] + [foreign_output.pk],
                           annotators=[annotator], by=owner)

        assert OutputAssignee.objects.count() == 0

    def test_unassign_keeps_the_rows(self, project, owner, reviewer, annotator, second_annotator, make_outputs):
        project.overlap = 2
        project.save()
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        outputs_assign(project=project, output_ids=[output.pk], annotators=[annotator, second_annotator], by=owner)

        result = outputs_unassign(project=project, output_ids=[output.pk], annotators=[annotator], by=reviewer)

        assert result.message == "1 assignment cancelled."
        rows = {r.annotator_id: r for r in OutputAssignee.objects.all()}
        assert rows[annotator.pk].cancelled_by_id == reviewer.pk
        assert rows[annotator.pk].cancelled_at is not None
        assert rows[second_annotator.pk].cancelled_at is None

    def test_an_annotator_may_not(self, project, annotator, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(PermissionDenied):
            outputs_assign(project=project, output_ids=[outputs[0].pk], annotators=[annotator], by=annotator)

        assert OutputAssignee.objects.count() == 0


class TestExclude:
    def test_exclude_then_include_keeps_the_history(self, project, owner, reviewer, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]

        outputs_exclude(project=project, output_ids=[output.pk], reason="duplicate input", by=owner)
        restored = outputs_include(project=project, output_ids=[output.pk], by=reviewer)
        outputs_exclude(project=project, output_ids=[output.pk], reason="garbled again", by=reviewer)

        assert restored.message == "1 output restored to sampling."
        history = list(OutputExclusion.objects.order_by("id").values_list(
            "reason", "excluded_by_id", "restored_by_id"
        ))
        assert history == [("duplicate input", owner.pk, reviewer.pk), ("garbled again", reviewer.pk, None)]
        assert OutputExclusion.objects.filter(restored_at__isnull=True).count() == 1

    def test_excluding_twice_keeps_the_first_reason(self, project, owner, make_outputs):
        a, b = make_outputs(n_samples=2, systems=("alpha",))
        outputs_exclude(project=project, output_ids=[a.pk], reason="first", by=owner)

        result = outputs_exclude(project=project, output_ids=[a.pk, b.pk], reason="second", by=owner)

        assert result.message == "1 output excluded from sampling. 1 output already excluded."
        assert dict(OutputExclusion.objects.values_list("output_id", "reason")) == {a.pk: "first", b.pk: "second"}

    def test_a_reason_is_required(self, project, owner, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError) as refused:
            outputs_exclude(project=project, output_ids=[outputs[0].pk], reason="", by=owner)

        assert refused.value.field == "reason"
        assert OutputExclusion.objects.count() == 0

    def test_a_nul_in_the_reason_is_refused(self, project, owner, make_outputs):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError) as refused:
            outputs_exclude(project=project, output_ids=[outputs[0].pk], reason="bad\x00", by=owner)

        assert refused.value.field == "reason"
        assert OutputExclusion.objects.count() == 0

    def test_a_foreign_id_refuses_everything(self, project, owner, make_outputs, foreign_output):
        outputs = make_outputs(n_samples=1)

        with pytest.raises(OutputActionError):
            outputs_exclude(project=project, output_ids=[outputs[0].pk, foreign_output.pk], reason="x", by=owner)

        assert OutputExclusion.objects.count() == 0

    def test_no_outputs_is_refused(self, project, owner):
        with pytest.raises(OutputActionError) as refused:
            outputs_exclude(project=project, output_ids=[], reason="x", by=owner)

        assert refused.value.field == "output"
