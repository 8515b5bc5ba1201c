"""The per-process log of a project's grades (annotate.labels) sees every grade, including one
whose transaction committed long after a later grade was settled (a long import)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate import labels
from annotate.labels import load_votes
from annotate.models import Grade


def _grade(pk, output, annotator, minutes_ago):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Grade.objects.create(pk=pk, project=output.project, output=output, annotator=annotator,
                                verdict="pass", submitted_at=at, started_at=at, selector="random")


@pytest.mark.django_db
def test_a_grade_committed_below_the_settled_id_is_read_at_the_next_check(project, annotator, reviewer, make_outputs, monkeypatch):
    outputs = make_outputs(n_samples=2)
    # Read and settled: graded five minutes ago, so no later refresh reads id 1000 again.
    _grade(1000, outputs[0], annotator, minutes_ago=5)
    assert load_votes(project).output_ids.tolist() == [outputs[0].pk]

    # A transaction that took id 500 before 1000 was given commits only now.
    _grade(500, outputs[1], reviewer, minutes_ago=6)
    # Between checks the log reads only above its settled id (the cheap path of every claim)...
    assert load_votes(project).output_ids.tolist() == [outputs[0].pk]

    # ...and at the next check it counts the rows below it, finds one more, and reads all again.
    monkeypatch.setattr(labels, "VERIFY_SECONDS", 0.0)
    votes = load_votes(project)
    assert sorted(votes.output_ids.tolist()) == sorted([outputs[0].pk, outputs[1].pk])
    assert sorted(votes.grade_ids.tolist()) == [500, 1000]


@pytest.mark.django_db
def test_the_check_costs_one_count_and_keeps_the_log_when_nothing_arrived_late(project, annotator, make_outputs, monkeypatch, django_assert_num_queries):
    outputs = make_outputs(n_samples=1)
    _grade(1000, outputs[0], annotator, minutes_ago=5)
    load_votes(project)
    before = labels._logs[(project.pk, project.created_at)]
    monkeypatch.setattr(labels, "VERIFY_SECONDS", 0.0)

    # The count, the rows above the settled id, the current criterion versions.
    with django_assert_num_queries(3):
        load_votes(project)

    assert labels._logs[(project.pk, project.created_at)] is before
