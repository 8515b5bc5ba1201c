"""The judge_choice pairwise selector through the real queue: pairs where the project's
pairwise judges disagree, with the probability and pool size the report card reweights by;
random pairs when there is no judge."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotate.models import Assignment, Comparison
from annotate.selection import forget_contexts
from annotate.services.assignments import assignment_claim_next
from annotate.services.grades import comparison_submit
from tests.api.conftest import url
from validators.matrix import forget
from validators.models import PairVerdict, Validator
from validators.report_card import report_card

# Six inputs, two outputs each. "leader" says a everywhere; "rival" says b on the first two
# pairs; "twin" gives the leader's winners (it can never differ from it, so it is no rival).
WINNERS = {"leader": "aaaaaa", "rival": "bbaaaa", "twin": "aaaaaa"}


@pytest.fixture(autouse=True)
def fresh_caches():
    forget()
    forget_contexts()
    yield
    forget()
    forget_contexts()


@pytest.fixture
def pairs(make_outputs):
    outputs = make_outputs(n_samples=6, systems=("alpha", "beta"))
    return [(outputs[2 * i], outputs[2 * i + 1]) for i in range(6)]


@pytest.fixture
def judges(project, pairs):
    created = []
    for name, winners in WINNERS.items():
        judge = Validator.objects.create(project=project, name=name, kind="external", target="pair")
        PairVerdict.objects.bulk_create([
            PairVerdict(validator=judge, output_a=a, output_b=b, winner=w)
            for (a, b), w in zip(pairs, winners, strict=True)
        ])
        created.append(judge)
    return created


def _pair_index(pairs, claim) -> int:
    shown = {claim.output_id, claim.output_b_id}
    return next(i for i, (a, b) in enumerate(pairs) if {a.pk, b.pk} == shown)


@pytest.mark.django_db
def test_the_queue_offers_a_pair_the_judges_dispute_with_its_probability(project, annotator, pairs, judges):
    # when the annotator asks for the next pair with judge_choice
    claim = assignment_claim_next(project=project, annotator=annotator, selector="judge_choice",
                                  mode="pair", rng=np.random.default_rng(0))

    # then it is one of the two pairs where the leader and its rival differ, drawn with
    # 0.2/6 + 0.8/2 inside the selector, mixed with the project's ε-uniform share
    eps = project.random_mix
    assert _pair_index(pairs, claim) in (0, 1)
    assert (claim.selector, claim.pool_size) == ("judge_choice", 6)
    assert claim.probability == pytest.approx(eps / 6 + (1 - eps) * (0.2 / 6 + 0.8 / 2))
    assert claim.why == ("leader (accuracy n/a) and rival disagree here; 1 judge could still beat "
                         "it by more than 0.02")


@pytest.mark.django_db
def test_the_api_queue_takes_the_selector_and_records_it(annotator, project, pairs, judges):
    annotator_api = APIClient()
    annotator_api.force_authenticate(annotator)

    answer = annotator_api.post(url("queue/next/"), {"mode": "pair", "selector": "judge_choice"},
                                format="json")

    assert answer.status_code == 200
    body = answer.json()
    claim = Assignment.objects.get()
    assert (body["mode"], body["selector"]) == ("pair", claim.selector)
    assert claim.selector in ("judge_choice", "random")
    assert claim.pool_size == 6
    assert sorted(o["id"] for o in body["outputs"]) == sorted((claim.output_id, claim.output_b_id))


@pytest.mark.django_db
def test_the_comparison_keeps_the_draw_and_the_card_reweights_it(project, annotator, pairs, judges):
    # given a comparison drawn by judge_choice where the human sides with the rival
    project.min_labels_per_class = 1
    project.save(update_fields=["min_labels_per_class"])
    claim = assignment_claim_next(project=project, annotator=annotator, selector="judge_choice",
                                  mode="pair", rng=np.random.default_rng(0))
    index = _pair_index(pairs, claim)
    a, b = pairs[index]
    comparison_submit(output_a=a, output_b=b, annotator=annotator, choice="b", assignment=claim)
    # and one given outside the queue (weight 1) where the human sides with the leader
    other = 5
    comparison_submit(output_a=pairs[other][0], output_b=pairs[other][1], annotator=annotator, choice="a")

    stored = Comparison.objects.get(output_a=a)
    assert (stored.selector_probability, stored.selector_pool_size) == (claim.probability, 6)
    card = report_card(project).pairwise
    # LURE: 6 pairs, 2 compared; the drawn one was taken from a pool of 6.
    weight = 1 + min(4 / 5, 1.0) * (1 / (6 * claim.probability) - 1)
    accuracy = {c.name: c.metrics.accuracy for c in card.candidates}
    assert card.weighted
    assert accuracy["rival"] == pytest.approx(1.0)
    assert accuracy["leader"] == pytest.approx(1 / (weight + 1))
    assert accuracy["twin"] == pytest.approx(1 / (weight + 1))
    assert card.chosen.name == "rival"


@pytest.mark.django_db
def test_the_next_draw_follows_the_race_after_a_comparison(project, annotator, pairs, judges):
    # the leader has won both disputed pairs: nothing can beat it by more than 0.02
    for a, b in pairs[:2]:
        comparison_submit(output_a=a, output_b=b, annotator=annotator, choice="a")

    claim = assignment_claim_next(project=project, annotator=annotator, selector="judge_choice",
                                  mode="pair", rng=np.random.default_rng(1))

    assert _pair_index(pairs, claim) in (2, 3, 4, 5)
    assert claim.pool_size == 4
    assert claim.probability == pytest.approx(1 / 4)
    assert claim.why in (
        "judge choice settled: leader (accuracy 1.00) is within 0.02 of every other judge at 95%; "
        "a pair at random",
        f"chosen at random (ε = {project.random_mix:g}) so estimates stay unbiased",
    )


@pytest.mark.django_db
def test_without_judges_it_draws_random_pairs_and_says_so(project, annotator, pairs):
    claim = assignment_claim_next(project=project, annotator=annotator, selector="judge_choice",
                                  mode="pair", rng=np.random.default_rng(2))

    assert claim.selector == "judge_choice"
    assert claim.why == "no pairwise judge has verdicts yet: a pair at random"
    assert (claim.probability, claim.pool_size) == (pytest.approx(1 / 6), 6)
    assert {claim.output_id, claim.output_b_id} in [{a.pk, b.pk} for a, b in pairs]
