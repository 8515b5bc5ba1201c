"""The claim path with the queue controls: exclusion from sampling, outputs assigned by hand,
and overlap-first."""

import numpy as np
import pytest

from annotate.labels import forget_votes
from annotate.models import Assignment, Grade, Role
from annotate.services.assignments import assignment_claim_next, pool_output_ids
from annotate.services.grades import comparison_submit, grade_submit
from annotate.services.output_actions import (
    outputs_assign,
    outputs_exclude,
    outputs_include,
    outputs_send_back,
    outputs_unassign,
)
from annotate.services.projects import membership_set
from tests.factories import OutputFactory, SampleFactory, UserFactory

pytestmark = pytest.mark.django_db


def grade_next(project, annotator, n, seed=None):
    """Claim and grade n items (fewer when the queue runs dry); the output ids in order."""
    rng = np.random.default_rng(seed) if seed is not None else None
    graded = []
    for _ in range(n):
        claim = assignment_claim_next(project=project, annotator=annotator, rng=rng)
        if claim is None:
            break
        grade_submit(output=claim.output, annotator=annotator, verdict="pass", assignment=claim)
        graded.append(claim.output_id)
    return graded


@pytest.fixture
def second_annotator(project):
    user = UserFactory(username="bea")
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    return user


def many_outputs(project, n):
    outputs = []
    for i in range(n):
        sample = SampleFactory(project=project, external_id=f"m{i}")
        outputs.append(OutputFactory(project=project, sample=sample, system="alpha", text=f"answer {i}"))
    return outputs


class TestExclusion:
    def test_excluded_outputs_are_never_claimed(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=4)
        outputs_exclude(project=project, output_ids=[o.pk for o in outputs[:6]], reason="broken", by=owner)

        graded = grade_next(project, annotator, 20)

        assert sorted(graded) == sorted(o.pk for o in outputs[6:])

    def test_the_recorded_pool_leaves_excluded_outputs_out(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=2)
        outputs_exclude(project=project, output_ids=[outputs[0].pk], reason="broken", by=owner)

        claim = assignment_claim_next(project=project, annotator=annotator)

        assert (claim.pool_size, claim.probability) == (3, pytest.approx(1 / 3))
        assert claim.why == "chosen at random from 3 items"

    def test_restored_outputs_come_back(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=1)
        outputs_exclude(project=project, output_ids=[o.pk for o in outputs], reason="broken", by=owner)
        assert grade_next(project, annotator, 5) == []

        outputs_include(project=project, output_ids=[outputs[0].pk], by=owner)

        assert grade_next(project, annotator, 5) == [outputs[0].pk]

    def test_an_excluded_output_sent_back_is_not_served(self, project, owner, annotator, make_outputs):
        first, second = make_outputs(n_samples=1)
        grade_submit(output=first, annotator=annotator, verdict="fail")
        outputs_send_back(project=project, output_ids=[first.pk], reason="look again", by=owner)
        outputs_exclude(project=project, output_ids=[first.pk], reason="duplicate", by=owner)

        claim = assignment_claim_next(project=project, annotator=annotator)

        assert claim.output_id == second.pk

    def test_pairs_never_include_an_excluded_output(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=3, systems=("alpha", "beta", "gamma"))
        left_out = {o.pk for o in outputs if o.system == "gamma"}
        outputs_exclude(project=project, output_ids=sorted(left_out), reason="system retired", by=owner)

        seen = set()
        for _ in range(5):
            claim = assignment_claim_next(project=project, annotator=annotator, mode="pair")
            if claim is None:
                break
            seen |= {claim.output_id, claim.output_b_id}
            comparison_submit(output_a=claim.output, output_b=claim.output_b, annotator=annotator,
                              choice="a", assignment=claim)

        assert len(seen) == 6
        assert seen.isdisjoint(left_out)


class TestAssignment:
    def test_assigned_outputs_come_first_with_their_reason(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=10)
        chosen = [outputs[7].pk, outputs[3].pk]
        outputs_assign(project=project, output_ids=chosen, annotators=[annotator], by=owner, reason="you know SQL")

        first = assignment_claim_next(project=project, annotator=annotator)

        assert first.output_id in chosen
        assert (first.selector, first.why, first.probability) == ("assigned", "assigned to you: you know SQL", None)
        grade_submit(output=first.output, annotator=annotator, verdict="pass", assignment=first)
        assert grade_next(project, annotator, 1) == [pk for pk in chosen if pk != first.output_id]

    def test_a_bulk_send_back_is_served_first_with_its_reason(self, project, owner, annotator, make_outputs):
        outputs = make_outputs(n_samples=4)
        grade_submit(output=outputs[5], annotator=annotator, verdict="fail")
        outputs_send_back(project=project, output_ids=[outputs[5].pk], reason="the tone rule changed", by=owner)

        claim = assignment_claim_next(project=project, annotator=annotator)

        assert claim.output_id == outputs[5].pk
        assert claim.why == "sent back for re-grading by a reviewer: the tone rule changed"

    def test_regrades_come_before_assigned_outputs(self, project, owner, annotator, make_outputs):
        regraded, assigned = make_outputs(n_samples=1)
        grade_submit(output=regraded, annotator=annotator, verdict="fail")
        outputs_assign(project=project, output_ids=[assigned.pk], annotators=[annotator], by=owner)
        outputs_send_back(project=project, output_ids=[regraded.pk], reason="tone", by=owner)

        assert grade_next(project, annotator, 2) == [regraded.pk, assigned.pk]

    def test_reserved_outputs_are_not_offered_to_others(self, project, owner, annotator, second_annotator, make_outputs):
        outputs = make_outputs(n_samples=3)
        reserved = [outputs[0].pk, outputs[4].pk]
        outputs_assign(project=project, output_ids=reserved, annotators=[annotator], by=owner)

        taken_by_bea = grade_next(project, second_annotator, 20)

        assert sorted(taken_by_bea) == sorted(o.pk for o in outputs if o.pk not in reserved)
        assert sorted(grade_next(project, annotator, 20)) == sorted(reserved)

    def test_with_overlap_two_others_share_the_free_slot(self, project, owner, annotator, second_annotator, make_outputs):
        project.overlap = 2
        project.save()
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        outputs_assign(project=project, output_ids=[output.pk], annotators=[annotator], by=owner)

        assert pool_output_ids(project=project, annotator=second_annotator).tolist() == [output.pk]
        assert grade_next(project, second_annotator, 5) == [output.pk]
        # The second slot stays held for the assignee: the owner is not offered it.
        assert pool_output_ids(project=project, annotator=owner).tolist() == []
        assert grade_next(project, annotator, 5) == [output.pk]

    def test_cancelling_releases_the_slot(self, project, owner, annotator, second_annotator, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        outputs_assign(project=project, output_ids=[output.pk], annotators=[annotator], by=owner)
        assert grade_next(project, second_annotator, 5) == []

        outputs_unassign(project=project, output_ids=[output.pk], by=owner)

        assert grade_next(project, second_annotator, 5) == [output.pk]

    def test_an_assignee_who_left_holds_no_slot(self, project, owner, annotator, second_annotator, make_outputs):
        output = make_outputs(n_samples=1, systems=("alpha",))[0]
        outputs_assign(project=project, output_ids=[output.pk], annotators=[annotator], by=owner)

        membership_set(project=project, user=annotator, role=Role.REVIEWER)

        assert grade_next(project, second_annotator, 5) == [output.pk]


class TestOverlapFirst:
    def test_the_second_annotator_gets_what_the_first_graded(self, project, annotator, second_annotator):
        project.overlap, project.overlap_first = 2, True
        project.save()
        many_outputs(project, 40)
        first = grade_next(project, annotator, 3, seed=1)

        second = grade_next(project, second_annotator, 3, seed=2)

        assert sorted(second) == sorted(first)

    def test_doubly_graded_outputs_with_and_without_the_option(self, project, annotator, second_annotator):
        """The newcomer's finding: with overlap 2 and the random selector, two people's grades
        rarely fell on the same outputs. N grades each out of 200 outputs."""
        n = 15
        many_outputs(project, 200)
        project.overlap = 2
        project.save()

        def doubly_graded():
            per_output = np.bincount(
                Grade.objects.filter(project=project).values_list("output_id", flat=True)
            )
            return int(np.count_nonzero(per_output == 2))

        grade_next(project, annotator, n, seed=3)
        grade_next(project, second_annotator, n, seed=4)
        without = doubly_graded()
        Grade.objects.filter(project=project).delete()
        Assignment.objects.filter(project=project).delete()
        forget_votes()
        project.overlap_first = True
        project.save()
        grade_next(project, annotator, n, seed=3)
        grade_next(project, second_annotator, n, seed=4)
        with_option = doubly_graded()

        print(f"doubly graded after {n} grades each: {with_option} with overlap-first, {without} without")
        assert with_option == n
        # Expected n·n/200 ≈ 1.1 by chance.
        assert without <= 3

    def test_graded_outputs_come_before_ones_only_claimed(self, project, owner, annotator, second_annotator):
        project.overlap, project.overlap_first = 2, True
        project.save()
        many_outputs(project, 10)
        graded = grade_next(project, annotator, 1, seed=8)
        claimed_only = assignment_claim_next(project=project, annotator=annotator)

        first = assignment_claim_next(project=project, annotator=second_annotator)
        grade_submit(output=first.output, annotator=second_annotator, verdict="pass", assignment=first)
        second = assignment_claim_next(project=project, annotator=second_annotator)

        assert [first.output_id, second.output_id] == [graded[0], claimed_only.output_id]
        assert second.selector == "overlap_first"

    def test_a_completion_grade_carries_the_first_draws_weight(self, project, annotator, second_annotator):
        project.overlap, project.overlap_first = 2, True
        project.save()
        many_outputs(project, 10)
        grade_next(project, annotator, 1, seed=5)
        first = Grade.objects.get(annotator=annotator)

        claim = assignment_claim_next(project=project, annotator=second_annotator)

        assert claim.output_id == first.output_id
        assert claim.selector == "overlap_first"
        assert (claim.probability, claim.pool_size) == (first.selector_probability, first.selector_pool_size)
        assert (claim.probability, claim.pool_size) == (pytest.approx(0.1), 10)

    def test_without_started_outputs_the_selector_draws_from_everything(self, project, annotator):
        project.overlap, project.overlap_first = 2, True
        project.save()
        many_outputs(project, 5)

        claim = assignment_claim_next(project=project, annotator=annotator)

        assert (claim.selector, claim.probability, claim.pool_size) == ("random", pytest.approx(0.2), 5)

    def test_overlap_one_has_nothing_to_complete(self, project, annotator, second_annotator):
        project.overlap_first = True
        project.save()
        many_outputs(project, 6)
        first = grade_next(project, annotator, 3, seed=6)

        second = grade_next(project, second_annotator, 3, seed=7)

        assert set(first).isdisjoint(second)
