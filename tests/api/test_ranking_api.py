"""GET /api/projects/{slug}/ranking/: per-system estimates from grades and comparisons."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from annotate import rankings
from annotate.api.serializers import RANKING_ESTIMATORS
from annotate.evidence import ChosenVerdicts
from annotate.models import Assignment, Comparison, Grade, Output, Role
from annotate.ranking_queries import ESTIMATORS
from annotate.services.grades import comparison_retract, comparison_submit, grade_submit
from annotate.services.projects import membership_set
from tests.api.conftest import url
from tests.factories import UserFactory
from validators.models import VerdictRecord
from validators.services.authoring import validator_create

# statsmodels turns alpha into z = norm.isf(alpha / 2); this alpha gives exactly the z = 1.96
# that annotate.rankings.wilson_interval uses.
ALPHA_FOR_Z_196 = 2 * norm.sf(1.96)
RANKING = url("ranking/")


def wilson(successes: int, n: int) -> list[float]:
    return list(proportion_confint(successes, n, alpha=ALPHA_FOR_Z_196, method="wilson"))


def grade(output: Output, annotator, verdict: str, *, selector: str = "",
          probability: float | None = None, score: float | None = None) -> Grade:
    """A grade as the queue gives it: through a claim that records the selector's draw."""
    assignment = None
    if selector:
        now = timezone.now()
        assignment = Assignment.objects.create(
            project=output.project, output=output, annotator=annotator,
            slot=Assignment.objects.filter(output=output).count(), selector=selector,
            why="test", probability=probability, claimed_at=now,
            expires_at=now + timedelta(minutes=30),
        )
    return grade_submit(output=output, annotator=annotator, verdict=verdict, score=score,
                        assignment=assignment)


def by_system(rows: list[dict]) -> dict[str, dict]:
    return {row["system"]: row for row in rows}


@pytest.fixture
def alpha_beta(make_outputs):
    """Outputs of five inputs by alpha and beta: {system: [outputs]}."""
    outputs = make_outputs(n_samples=5, systems=("alpha", "beta"))
    return {
        system: [o for o in outputs if o.system == system] for system in ("alpha", "beta")
    }


@pytest.fixture
def actively_graded(alpha_beta, annotator):
    """alpha: two random draws (pass at p = 0.01, fail at p = 0.02), two fails an active selector
    was all but sure to pick (p = 0.5), one pass graded without a claim (no probability).
    beta: three random draws at p = 0.01 (pass, pass, fail)."""
    alpha, beta = alpha_beta["alpha"], alpha_beta["beta"]
    grade(alpha[0], annotator, "pass", selector="random", probability=0.01)
    grade(alpha[1], annotator, "fail", selector="random", probability=0.02)
    grade(alpha[2], annotator, "fail", selector="evalgen", probability=0.5)
    grade(alpha[3], annotator, "fail", selector="evalgen", probability=0.5)
    grade(alpha[4], annotator, "pass")
    for output, verdict in zip(beta[:3], ("pass", "pass", "fail"), strict=True):
        grade(output, annotator, verdict, selector="random", probability=0.01)
    return alpha_beta


# -- single grades ---------------------------------------------------------------------------
@pytest.mark.django_db
class TestSingleGrades:
    def test_default_is_ipw_when_draws_carry_probabilities(self, owner_api, actively_graded):
        body = owner_api.get(RANKING).json()

        single = body["single"]
        assert single["estimator"] == "ipw" and single["default_estimator"] == "ipw"
        assert single["estimators"] == ["naive", "random_stream", "ipw"]
        assert (single["n_labelled"], single["n_with_probability"], single["n_random"]) == (8, 7, 5)
        assert single["control_validator"] is None
        assert body["pairwise"] is None

    def test_ipw_hand_example(self, owner_api, actively_graded):
        """alpha: weights 100 (pass), 50, 2, 2 (fails) and 1 (pass without a probability), so
        the Hájek estimate is 101 / 155; beta's equal weights give its plain share 2 / 3."""
        systems = by_system(owner_api.get(RANKING, {"estimator": "ipw"}).json()["single"]["systems"])

        assert systems["alpha"]["estimate"] == pytest.approx(101 / 155, abs=1e-12)
        assert systems["alpha"]["n"] == 5
        expected = rankings.pass_rates_ipw(
            np.zeros(5, int), np.array([1, 0, 0, 0, 1]), np.array([0.01, 0.02, 0.5, 0.5, 1.0]), 1
        )[0]
        assert systems["alpha"]["ci"] == pytest.approx([expected.ci_low, expected.ci_high], abs=1e-12)
        assert systems["beta"]["estimate"] == pytest.approx(2 / 3, abs=1e-12)
        # Equal weights: exactly the Wilson interval of 2 passes in 3.
        assert systems["beta"]["ci"] == pytest.approx(wilson(2, 3), abs=1e-12)
        assert [(s["system"], s["rank"]) for s in
                owner_api.get(RANKING).json()["single"]["systems"]] == [("beta", 1), ("alpha", 2)]

    def test_naive_uses_every_label_with_wilson_intervals(self, owner_api, actively_graded):
        single = owner_api.get(RANKING, {"estimator": "naive"}).json()["single"]

        assert single["estimator"] == "naive"
        systems = by_system(single["systems"])
        assert systems["alpha"]["n"] == 5 and systems["alpha"]["estimate"] == pytest.approx(0.4)
        assert systems["alpha"]["ci"] == pytest.approx(wilson(2, 5), abs=1e-12)
        assert systems["beta"]["n"] == 3
        assert systems["beta"]["ci"] == pytest.approx(wilson(2, 3), abs=1e-12)

    def test_random_stream_keeps_only_random_draws(self, owner_api, actively_graded):
        single = owner_api.get(RANKING, {"estimator": "random_stream"}).json()["single"]

        systems = by_system(single["systems"])
        assert (systems["alpha"]["n"], systems["alpha"]["estimate"]) == (2, 0.5)
        assert systems["alpha"]["ci"] == pytest.approx(wilson(1, 2), abs=1e-12)
        assert (systems["beta"]["n"], systems["beta"]["estimate"]) == (3, pytest.approx(2 / 3))
        assert [s["system"] for s in single["systems"]] == ["beta", "alpha"]

    def test_without_probabilities_the_default_is_naive(self, owner_api, alpha_beta, annotator):
        for output in alpha_beta["alpha"][:2]:
            grade(output, annotator, "pass")
        grade(alpha_beta["beta"][0], annotator, "fail")

        single = owner_api.get(RANKING).json()["single"]

        assert (single["estimator"], single["default_estimator"]) == ("naive", "naive")
        assert single["systems"] == [
            {"system": "alpha", "n": 2, "estimate": 1.0, "ci": pytest.approx(wilson(2, 2)),
             "rank": 1, "mean_score": None},
            {"system": "beta", "n": 1, "estimate": 0.0, "ci": pytest.approx(wilson(0, 1)),
             "rank": 2, "mean_score": None},
        ]

    def test_system_without_labels_is_listed_unranked(self, owner_api, make_outputs, annotator):
        outputs = make_outputs(n_samples=1, systems=("alpha", "beta", "gamma"))
        grade(outputs[0], annotator, "pass")

        systems = owner_api.get(RANKING).json()["single"]["systems"]

        assert [(s["system"], s["n"], s["estimate"], s["ci"], s["rank"]) for s in systems] == [
            ("alpha", 1, 1.0, pytest.approx(wilson(1, 1)), 1),
            ("beta", 0, None, None, None),
            ("gamma", 0, None, None, None),
        ]

    def test_majority_of_current_verdicts_per_output(self, owner_api, project, alpha_beta, owner,
                                                     annotator):
        """Two of three pass: a pass. One each way: no label. An undone grade does not count,
        and a changed grade counts as changed."""
        third = UserFactory(username="tess")
        membership_set(project=project, user=third, role=Role.ANNOTATOR)
        first = alpha_beta["alpha"][0]
        grade(first, owner, "pass")
        grade(first, annotator, "fail")
        grade(first, third, "pass")
        tied = alpha_beta["alpha"][1]
        grade(tied, owner, "pass")
        grade(tied, annotator, "fail")
        changed = alpha_beta["beta"][0]
        grade(changed, annotator, "pass")
        grade(changed, annotator, "fail")
        unsure = alpha_beta["beta"][1]
        grade(unsure, annotator, "unsure")

        body = owner_api.get(RANKING, {"estimator": "naive"}).json()

        systems = by_system(body["single"]["systems"])
        assert (systems["alpha"]["n"], systems["alpha"]["estimate"]) == (1, 1.0)
        assert (systems["beta"]["n"], systems["beta"]["estimate"]) == (1, 0.0)
        assert body["single"]["n_labelled"] == 2

    def test_no_grades_no_section(self, owner_api, alpha_beta):
        assert owner_api.get(RANKING).json() == {"single": None, "pairwise": None}


# -- the control variate ---------------------------------------------------------------------
VALIDATOR_PASSES: set[int] = set()


def chosen_holistic(project) -> ChosenVerdicts:
    """A stand-in report card: validator 7 passes the outputs in VALIDATOR_PASSES, fails the
    others, and has no verdict on the last output (-2)."""
    ids = np.array(sorted(Output.objects.filter(project=project).values_list("id", flat=True)))
    codes = np.array([1 if o in VALIDATOR_PASSES else 0 for o in ids], dtype=np.int8)
    codes[-1] = -2
    return ChosenVerdicts(output_ids=ids, by_criterion={None: (7, "looks right", codes)})


@pytest.mark.django_db
class TestControlVariate:
    def test_matches_the_regression_estimator(self, owner_api, settings, actively_graded):
        alpha, beta = actively_graded["alpha"], actively_graded["beta"]
        # The validator agrees with every human label; it also passes the unlabelled beta[3]
        # and has no verdict on beta[4] (the project's last output).
        VALIDATOR_PASSES.clear()
        VALIDATOR_PASSES.update(o.pk for o in (alpha[0], alpha[4], beta[0], beta[1], beta[3]))
        settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = f"{__name__}.chosen_holistic"

        single = owner_api.get(RANKING, {"estimator": "control_variate"}).json()["single"]

        assert single["estimators"] == RANKING_ESTIMATORS == list(ESTIMATORS)
        assert single["control_validator"] == {"id": 7, "name": "looks right"}
        # E[s]: alpha 2 of 5 outputs pass; beta 3 of the 4 outputs it judged.
        expected = rankings.pass_rates_control_variate(
            np.array([0, 0, 0, 0, 0, 1, 1, 1]),
            np.array([1, 0, 0, 0, 1, 1, 1, 0]),
            np.array([1, 0, 0, 0, 1, 1, 1, 0]),
            np.array([2 / 5, 3 / 4]),
            probability=np.array([0.01, 0.02, 0.5, 0.5, 1.0, 0.01, 0.01, 0.01]),
        )
        systems = by_system(single["systems"])
        for index, name in enumerate(("alpha", "beta")):
            assert systems[name]["estimate"] == pytest.approx(expected[index].pass_rate, abs=1e-12)
            assert systems[name]["ci"] == pytest.approx(
                [expected[index].ci_low, expected[index].ci_high], abs=1e-12
            )
        assert systems["alpha"]["estimate"] == pytest.approx(0.4, abs=1e-12)

    def test_unlabelled_judged_output_moves_the_estimate(self, owner_api, settings, alpha_beta,
                                                         annotator):
        """beta's labels (pass, fail, fail) match the validator exactly, so alpha = 1 and the
        estimate is the validator's pass rate over all of beta's judged outputs: 1 of 4 (the
        unlabelled beta[3] is a fail; beta[4] has no verdict)."""
        beta = alpha_beta["beta"]
        grade(beta[0], annotator, "pass")
        grade(beta[1], annotator, "fail")
        grade(beta[2], annotator, "fail")
        VALIDATOR_PASSES.clear()
        VALIDATOR_PASSES.update({beta[0].pk})
        settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = f"{__name__}.chosen_holistic"

        systems = by_system(
            owner_api.get(RANKING, {"estimator": "control_variate"}).json()["single"]["systems"]
        )

        assert systems["beta"]["estimate"] == pytest.approx(0.25, abs=1e-12)

    def test_with_the_real_report_card(self, owner_api, alpha_beta, annotator, project):
        """A code validator that agrees with every grade becomes the chosen holistic one."""
        outputs = alpha_beta["alpha"] + alpha_beta["beta"]
        for output in outputs[:4] + outputs[5:9]:
            grade(output, annotator, "pass" if output.system == "alpha" else "fail")
        validator = validator_create(
            project=project, kind="code", name="mentions alpha",
            source="def check(output, input, reference, meta):\n    return 'alpha' in output\n",
        )
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=validator, output=o,
                          outcome="pass" if o.system == "alpha" else "fail")
            for o in outputs
        ])

        single = owner_api.get(RANKING, {"estimator": "control_variate"}).json()["single"]

        assert single["control_validator"] == {"id": validator.pk, "name": "mentions alpha"}
        assert [(s["system"], s["estimate"]) for s in single["systems"]] == [
            ("alpha", 1.0), ("beta", 0.0),
        ]

    def test_refused_without_a_chosen_validator(self, owner_api, actively_graded):
        answer = owner_api.get(RANKING, {"estimator": "control_variate"})

        assert answer.status_code == 400
        assert answer.json() == {"errors": [{
            "field": "estimator",
            "message": "The control variate needs a chosen holistic validator; none is chosen yet.",
        }]}

    def test_unknown_estimator_is_refused(self, owner_api, actively_graded):
        answer = owner_api.get(RANKING, {"estimator": "median"})

        assert answer.status_code == 400
        assert answer.json()["errors"] == [{
            "field": "estimator",
            "message": "Unknown estimator 'median'; choose one of naive, random_stream, ipw, "
                       "control_variate.",
        }]


# -- rating scales ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_rating_scale_adds_mean_scores(owner_api, project, alpha_beta, owner, annotator):
    from scipy.stats import t

    project.scale, project.scale_min, project.scale_max, project.pass_threshold = "rating", 1, 5, 3
    project.save()
    alpha, beta = alpha_beta["alpha"], alpha_beta["beta"]
    for output, score in zip(alpha[:3], (5, 4, 4), strict=True):
        grade(output, annotator, "", score=score)
    # Two annotators disagree on pass / fail (4 and 2): no label, but a mean score of 3.
    grade(beta[0], annotator, "", score=4)
    grade(beta[0], owner, "", score=2)
    grade(beta[1], annotator, "", score=1)

    single = owner_api.get(RANKING).json()["single"]

    assert single["scale"] == "rating"
    systems = by_system(single["systems"])
    alpha_mean = systems["alpha"]["mean_score"]
    assert (alpha_mean["n"], alpha_mean["rank"]) == (3, 1)
    assert alpha_mean["estimate"] == pytest.approx(13 / 3, abs=1e-12)
    sem = np.std([5, 4, 4], ddof=1) / np.sqrt(3)
    assert alpha_mean["ci"] == pytest.approx(list(t.interval(0.95, 2, loc=13 / 3, scale=sem)),
                                             abs=1e-12)
    beta_mean = systems["beta"]["mean_score"]
    assert (beta_mean["n"], beta_mean["estimate"], beta_mean["rank"]) == (2, 2.0, 2)
    assert (systems["beta"]["n"], systems["beta"]["estimate"]) == (1, 0.0)


# -- pairwise --------------------------------------------------------------------------------
@pytest.fixture
def three_systems(make_outputs):
    outputs = make_outputs(n_samples=6, systems=("alpha", "beta", "gamma"))
    return [{o.system: o for o in outputs[i:i + 3]} for i in range(0, len(outputs), 3)]


def compare(annotator, left: Output, right: Output, choice: str) -> Comparison:
    return comparison_submit(output_a=left, output_b=right, annotator=annotator, choice=choice)


@pytest.fixture
def clear_comparisons(three_systems, annotator, owner):
    """alpha > beta > gamma on every input, half of them shown the other way round; one tie
    between beta and gamma; one comparison changed and one undone, which must not count."""
    log = []  # (winner, loser, tie) in submission order
    for i, sample in enumerate(three_systems):
        a, b, c = sample["alpha"], sample["beta"], sample["gamma"]
        if i % 2:
            compare(annotator, a, b, "a")
            compare(annotator, c, b, "b")
            compare(annotator, c, a, "b")
        else:
            compare(annotator, b, a, "b")
            compare(annotator, b, c, "a")
            compare(annotator, a, c, "a")
        log += [("alpha", "beta", False), ("beta", "gamma", False), ("alpha", "gamma", False)]
    first = three_systems[0]
    compare(owner, first["gamma"], first["beta"], "a")   # changed below to a tie
    compare(owner, first["beta"], first["gamma"], "tie")
    log.append(("gamma", "beta", True))
    undone = compare(owner, first["gamma"], first["alpha"], "a")
    comparison_retract(comparison=undone, annotator=owner)
    return log


@pytest.mark.django_db
class TestPairwise:
    def test_bradley_terry_order_and_counts(self, owner_api, clear_comparisons):
        pairwise = owner_api.get(RANKING).json()["pairwise"]

        assert pairwise["n_comparisons"] == 19 and pairwise["n_bootstrap"] == 200
        rows = pairwise["bradley_terry"]
        assert [(r["system"], r["rank"], r["wins"], r["losses"], r["ties"], r["n"]) for r in rows] == [
            ("alpha", 1, 12, 0, 0, 12),
            ("beta", 2, 6, 6, 1, 13),
            ("gamma", 3, 0, 12, 1, 13),
        ]
        assert rows[0]["score"] > rows[1]["score"] > rows[2]["score"]
        assert sum(r["score"] for r in rows) == pytest.approx(0.0, abs=1e-9)
        for row in rows:
            assert row["ci"][0] <= row["score"] <= row["ci"][1]

    def test_scores_and_elo_match_the_maths_in_submission_order(self, owner_api, clear_comparisons):
        index = {"alpha": 0, "beta": 1, "gamma": 2}
        winners = np.array([index[w] for w, _, _ in clear_comparisons])
        losers = np.array([index[w] for _, w, _ in clear_comparisons])
        ties = np.array([t for _, _, t in clear_comparisons])
        fit = rankings.bradley_terry(winners, losers, ties, 3, n_bootstrap=200, seed=0)
        ratings = rankings.elo(winners, losers, ties, 3, k=4)

        pairwise = owner_api.get(RANKING).json()["pairwise"]

        for row in pairwise["bradley_terry"]:
            strength = fit.systems[index[row["system"]]]
            assert row["score"] == pytest.approx(strength.score, abs=1e-12)
            assert row["ci"] == pytest.approx([strength.ci_low, strength.ci_high], abs=1e-12)
            assert row["win_probability"] == pytest.approx(strength.win_probability, abs=1e-12)
        assert pairwise["elo"] == [
            {"system": name, "rating": pytest.approx(ratings[index[name]], abs=1e-9)}
            for name in ("alpha", "beta", "gamma")
        ]
        assert pairwise["elo"][0]["rating"] > 1000 > pairwise["elo"][2]["rating"]

    def test_right_side_choice_credits_the_right_system(self, owner_api, three_systems, annotator):
        sample = three_systems[0]
        compare(annotator, sample["gamma"], sample["alpha"], "b")

        rows = owner_api.get(RANKING).json()["pairwise"]["bradley_terry"]

        assert [(r["system"], r["wins"], r["losses"]) for r in rows] == [
            ("alpha", 1, 0), ("gamma", 0, 1),
        ]
