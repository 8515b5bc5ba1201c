"""Inverse-probability weights relative to the pool each grade was drawn from."""

import numpy as np
import pytest

from annotate.ranking_queries import single_ranking
from annotate.services.assignments import assignment_claim_next
from annotate.services.grades import grade_submit


def grade_through_claims(project, annotator, selector, n, verdict_of):
    for step in range(n):
        claim = assignment_claim_next(
            project=project, annotator=annotator, selector=selector, rng=np.random.default_rng(step)
        )
        grade_submit(output=claim.output, annotator=annotator, verdict=verdict_of(claim.output), assignment=claim)


@pytest.mark.django_db
def test_uniform_claims_weigh_alike_however_the_pool_shrank(project, annotator, make_outputs):
    outputs = make_outputs(n_samples=6, systems=("alpha", "beta"))
    failing = {o.pk for o in outputs[::3]}
    project.random_mix = 0.0
    project.save()

    grade_through_claims(project, annotator, "random", 10, lambda o: "fail" if o.pk in failing else "pass")

    ipw = single_ranking(project, estimator="ipw")
    naive = single_ranking(project, estimator="naive")
    assert ipw.estimator == "ipw"
    for weighted, plain in zip(ipw.systems, naive.systems, strict=True):
        assert weighted.system == plain.system
        # Pools of 12 down to 3 outputs: 1/p alone would weigh the first grade four times the last.
        assert weighted.estimate == pytest.approx(plain.estimate)


@pytest.mark.django_db
def test_selectors_see_a_rating_projects_mean_score_on_the_unit_interval(project, annotator, reviewer, make_outputs):
    from annotate.selection import selection_context

    project.scale, project.scale_min, project.scale_max, project.pass_threshold = "rating", 1, 5, 4
    project.save()
    outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
    grade_submit(output=outputs[0], annotator=annotator, score=5)
    grade_submit(output=outputs[0], annotator=reviewer, score=2)
    grade_submit(output=outputs[1], annotator=annotator, score=4)

    ctx, arrays = selection_context(
        project=project, annotator=annotator, pool=np.array([o.pk for o in outputs[2:]]),
        selector="ranking_uncertainty",
    )

    rows = {int(o): i for i, o in enumerate(arrays.output_ids)}
    assert ctx.human[rows[outputs[0].pk]] == pytest.approx((3.5 - 1) / 4)
    assert ctx.human[rows[outputs[1].pk]] == pytest.approx(0.75)
    assert np.isnan(ctx.human[rows[outputs[2].pk]])
    assert ctx.pass_threshold == pytest.approx(0.75)


def test_lure_weights_are_one_for_uniform_draws_and_once_everything_is_labelled():
    from annotate.sampling_weights import lure_weights

    pools = np.array([10.0, 9.0, 8.0])
    assert lure_weights(np.ones(3), pools, 10, 3).tolist() == [1.0, 1.0, 1.0]
    assert lure_weights(np.array([0.2, 3.0, 1.5]), pools, 3, 3).tolist() == [1.0, 1.0, 1.0]
    # Unknown pool: the plain ratio; a pool of one: the last item, weight 1.
    assert lure_weights(np.array([0.5, 2.0]), np.array([np.nan, 1.0]), 10, 2).tolist() == [0.5, 1.0]


def test_lure_weighted_mean_of_actively_drawn_labels_is_unbiased():
    """Draw 30 of 200 items sequentially in proportion to a score correlated with the value;
    over many runs the LURE-weighted mean matches the population mean, the plain mean does not."""
    from annotate.sampling_weights import lure_weights

    rng = np.random.default_rng(5)
    n, m = 200, 30
    values = rng.random(n)
    score = 0.2 + values**2
    plain, weighted = [], []
    for _ in range(3000):
        left = np.ones(n, bool)
        picked, ratios, pools = [], [], []
        for _ in range(m):
            q = np.where(left, score, 0.0)
            q /= q.sum()
            i = rng.choice(n, p=q)
            picked.append(i)
            ratios.append(1 / (left.sum() * q[i]))
            pools.append(left.sum())
            left[i] = False
        v = lure_weights(np.array(ratios), np.array(pools, float), n, m)
        plain.append(values[picked].mean())
        weighted.append(np.mean(v * values[picked]))
    assert abs(np.mean(weighted) - values.mean()) < 0.005
    assert np.mean(plain) - values.mean() > 0.05
