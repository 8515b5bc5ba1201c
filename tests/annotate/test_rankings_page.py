"""The Rankings page, and the pure helpers it added to annotate.rankings (mean scores, ranks)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from scipy.stats import t

from annotate.rankings import competition_ranks, mean_scores
from annotate.services.grades import comparison_submit
from tests.api.test_ranking_api import grade

PAGE = "/p/support-bot/rankings/"


def embedded(page: str, element_id: str):
    """The JSON of a `json_script` block, or None when the page has none."""
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S
    )
    return None if match is None else json.loads(match.group(1))


def api_ranking(user, **params) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    return client.get("/api/projects/support-bot/ranking/", params).json()


@pytest.fixture
def graded_and_compared(make_outputs, annotator):
    """alpha: 3 random draws (pass, pass, fail) and one fail an active selector picked at
    p = 0.5; beta: 4 random draws (pass, fail, fail, fail); every input compared once (alpha
    wins three, one tie)."""
    outputs = make_outputs(n_samples=4, systems=("alpha", "beta"))
    alpha = [o for o in outputs if o.system == "alpha"]
    beta = [o for o in outputs if o.system == "beta"]
    for output, verdict in zip(alpha[:3], ("pass", "pass", "fail"), strict=True):
        grade(output, annotator, verdict, selector="random", probability=0.125)
    grade(alpha[3], annotator, "fail", selector="evalgen", probability=0.5)
    for output, verdict in zip(beta, ("pass", "fail", "fail", "fail"), strict=True):
        grade(output, annotator, verdict, selector="random", probability=0.125)
    for left, right, choice in zip(alpha, beta, ("a", "a", "a", "tie"), strict=True):
        comparison_submit(output_a=left, output_b=right, annotator=annotator, choice=choice)
    return outputs


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("role", ["owner", "annotator", "reviewer"])
    def test_members_see_the_page(self, client, request, project, role):
        user = request.getfixturevalue(role)
        client.force_login(user)

        response = client.get(PAGE)

        assert response.status_code == 200
        page = response.content.decode()
        assert "<title>Rankings · Support bot · Concord</title>" in page
        assert f"{user.username} · {role}" in page
        assert f'<a href="{reverse("rankings", args=["support-bot"])}" aria-current="page">Rankings</a>' in page
        assert re.findall(r'<h2 id="(\w+)-heading">(.*?)</h2>', page) == [
            ("single", "Pass rate from single grades"), ("pairwise", "Strength from comparisons"),
        ]
        assert re.findall(r'<p class="muted" data-empty>([^.]*)\.', page) == [
            "No output has a pass or fail label yet", "No comparisons yet",
        ]

    def test_outsider_gets_404(self, client, project, outsider):
        client.force_login(outsider)

        assert client.get(PAGE).status_code == 404

    def test_anonymous_is_sent_to_login(self, client, project):
        response = client.get(PAGE)

        assert response.status_code == 302
        assert response["Location"] == "/login/?next=/p/support-bot/rankings/"

    def test_only_get(self, client, project, owner):
        client.force_login(owner)

        assert client.post(PAGE).status_code == 405


@pytest.mark.django_db
class TestPage:
    def test_chart_data_is_the_api_answer(self, client, owner, graded_and_compared):
        client.force_login(owner)

        page = client.get(PAGE).content.decode()

        api = api_ranking(owner)
        assert embedded(page, "ranking-single-data") == api["single"]
        assert embedded(page, "ranking-pairwise-data") == api["pairwise"]
        assert api["single"]["estimator"] == "ipw"
        assert 'src="/static/vendor/chart.umd.min.js"' in page
        assert 'src="/static/rankings.js"' in page
        assert 'id="single-chart"' in page and 'id="pairwise-chart"' in page

    def test_table_lists_systems_by_rank_with_intervals(self, client, owner, graded_and_compared):
        client.force_login(owner)

        page = client.get(PAGE, {"estimator": "naive"}).content.decode()

        single = page[page.index('id="single-table"'):page.index("</table>", page.index('id="single-table"'))]
        rows = re.findall(
            r'<tr data-system="(\w+)">\s*<td class="num">(\d+)</td>\s*<td class="system">\w+</td>'
            r'\s*<td class="num">(\d+)</td>\s*<td class="num" data-estimate>([\d.]+)</td>'
            r'\s*<td class="num" data-ci>\[([\d.]+), ([\d.]+)\]</td>',
            single,
        )
        # alpha 2 of 4 (Wilson 0.150-0.850), beta 1 of 4 (0.046-0.699).
        assert rows == [
            ("alpha", "1", "4", "0.500", "0.150", "0.850"),
            ("beta", "2", "4", "0.250", "0.046", "0.699"),
        ]
        assert 'data-estimator="naive"' in page
        assert "biased towards what the selectors look for" in page

    def test_estimator_switch(self, client, owner, graded_and_compared):
        client.force_login(owner)

        page = client.get(PAGE, {"estimator": "random_stream"}).content.decode()

        data = embedded(page, "ranking-single-data")
        assert data["estimator"] == "random_stream"
        assert [(s["system"], s["n"], s["estimate"]) for s in data["systems"]] == [
            ("alpha", 3, pytest.approx(2 / 3)), ("beta", 4, 0.25),
        ]
        assert '<option value="random_stream" selected>' in page
        assert '<option value="ipw">Inverse-probability weighted (Hájek) (default)</option>' in page
        # No holistic validator is chosen: the control variate cannot be picked.
        assert '<option value="control_variate" disabled>' in page
        assert "7 of 8 labelled outputs" in page

    def test_unknown_estimator_shows_the_default_and_says_so(
        self, client, owner, graded_and_compared
    ):
        client.force_login(owner)

        response = client.get(PAGE, {"estimator": "control_variate"})

        page = response.content.decode()
        assert response.status_code == 200
        assert embedded(page, "ranking-single-data")["estimator"] == "ipw"
        assert "none is chosen yet. Showing the default estimator instead." in page

    def test_htmx_swaps_only_the_single_section(self, client, owner, graded_and_compared):
        client.force_login(owner)

        response = client.get(PAGE, {"estimator": "naive"}, headers={"HX-Request": "true"})

        page = response.content.decode()
        assert page.lstrip().startswith('<div id="single-ranking">')
        assert "<html" not in page and "ranking-pairwise-data" not in page
        assert embedded(page, "ranking-single-data") == api_ranking(owner, estimator="naive")["single"]

    def test_pairwise_tables(self, client, owner, graded_and_compared):
        client.force_login(owner)

        page = client.get(PAGE).content.decode()

        pairwise = embedded(page, "ranking-pairwise-data")
        assert [(r["system"], r["wins"], r["losses"], r["ties"], r["n"], r["rank"])
                for r in pairwise["bradley_terry"]] == [("alpha", 3, 0, 1, 4, 1), ("beta", 0, 3, 1, 4, 2)]
        assert [r["system"] for r in pairwise["elo"]] == ["alpha", "beta"]
        assert "over 4 current comparisons" in page
        assert re.search(r'id="elo-table".*?data-system="alpha"><td class="system">alpha</td>'
                         r'<td class="num">100\d\.\d</td>', page, re.S)

    def test_empty_project(self, client, owner, project):
        client.force_login(owner)

        page = client.get(PAGE).content.decode()

        assert "No output has a pass or fail label yet." in page
        assert "No comparisons yet." in page
        assert embedded(page, "ranking-single-data") is None
        assert embedded(page, "ranking-pairwise-data") is None

    def test_rating_scale_shows_mean_scores(self, client, owner, project, make_outputs, annotator):
        project.scale, project.scale_min, project.scale_max, project.pass_threshold = (
            "rating", 1, 5, 3
        )
        project.save()
        outputs = make_outputs(n_samples=2, systems=("alpha", "beta"))
        for output, score in zip(outputs, (5, 2, 4, 1), strict=True):
            grade(output, annotator, "", score=score)
        client.force_login(owner)

        page = client.get(PAGE).content.decode()

        assert "Mean score" in page and 'id="score-chart"' in page
        data = embedded(page, "ranking-single-data")
        assert [(s["system"], s["mean_score"]["estimate"], s["mean_score"]["rank"])
                for s in data["systems"]] == [("alpha", 4.5, 1), ("beta", 1.5, 2)]
        assert '<td class="num" data-mean>4.50</td>' in page


class TestMeanScores:
    def test_matches_the_t_interval(self):
        scores = np.array([3.0, 4.0, 5.0, 4.0, 1.0])

        [result] = mean_scores(np.zeros(5, int), scores, 1)

        sem = scores.std(ddof=1) / np.sqrt(5)
        assert (result.n, result.mean) == (5, pytest.approx(3.4, abs=1e-12))
        assert (result.ci_low, result.ci_high) == pytest.approx(
            t.interval(0.95, 4, loc=3.4, scale=sem), abs=1e-12
        )

    def test_equal_probabilities_change_nothing(self):
        index, scores = np.array([0, 0, 0, 1, 1]), np.array([1.0, 2.0, 4.0, 5.0, 3.0])

        plain = mean_scores(index, scores, 2)
        weighted = mean_scores(index, scores, 2, probability=np.full(5, 0.2))

        for a, b in zip(plain, weighted, strict=True):
            assert (a.n, a.mean, a.ci_low, a.ci_high) == pytest.approx(
                (b.n, b.mean, b.ci_low, b.ci_high), abs=1e-12
            )

    def test_hajek_weights(self):
        """Weights 1/p = 4, 1, 1: mean (4*1 + 3 + 5) / 6 = 2; Kish size 36 / 18 = 2, so one
        degree of freedom; variance 3/2 * (16*1 + 1 + 9) / 36."""
        [result] = mean_scores(
            np.zeros(3, int), np.array([1.0, 3.0, 5.0]), 1, probability=np.array([0.25, 1, 1])
        )

        assert result.mean == pytest.approx(2.0, abs=1e-12)
        half = t.ppf(0.975, 1) * np.sqrt(1.5 * 26 / 36)
        assert (result.ci_low, result.ci_high) == pytest.approx((2 - half, 2 + half), abs=1e-12)

    def test_small_and_empty_systems(self):
        results = mean_scores(np.array([1]), np.array([2.5]), 3)

        assert [(r.n, r.mean, r.ci_low, r.ci_high) for r in results] == [
            (0, None, None, None), (1, 2.5, None, None), (0, None, None, None),
        ]

    def test_refuses_bad_input(self):
        with pytest.raises(ValueError, match="finite"):
            mean_scores(np.array([0]), np.array([np.nan]), 1)
        with pytest.raises(ValueError, match="range"):
            mean_scores(np.array([2]), np.array([1.0]), 2)


class TestCompetitionRanks:
    def test_ties_share_the_best_rank_and_missing_values_take_none(self):
        assert competition_ranks([0.5, None, 0.9, 0.5, float("nan"), 0.1]) == [
            2, None, 1, 2, None, 4,
        ]

    def test_empty(self):
        assert competition_ranks([]) == []
