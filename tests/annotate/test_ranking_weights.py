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
