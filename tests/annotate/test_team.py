"""The team page's statistics on a constructed project, with exact numbers."""

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from annotate.evidence import ChosenVerdicts
from annotate.models import Assignment, AssignmentStatus, Grade, Role
from annotate.services.grades import comparison_submit, grade_retract, grade_submit
from annotate.services.projects import membership_set
from annotate.team import counts_per_day, mean_kappa_per_rater, median_per_rater
from annotate.team_queries import team_report
from tests.factories import UserFactory

NOW = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
ARJUN = [1, 1, 0, 0, 1, 0]          # o0..o5, then "unsure" on o7
BEA = [1, 0, 0, 0, 1, 1, 1]         # o0..o6, and an undone grade of o7
OLIVIA = [1, 1, 0]                  # o0..o2, untimed
VALIDATOR = [1, 1, 0, 1, 1, 0, -1, 1]  # o0..o7; an error on o6


def chosen_validator(project):
    """A stand-in for the report card's chosen holistic validator (codes over o0..o7)."""
    from annotate.models import Output

    ids = np.array(sorted(Output.objects.filter(project=project).values_list("id", flat=True)), dtype=np.int64)
    return ChosenVerdicts(output_ids=ids, by_criterion={None: (7, "length-check", np.array(VALIDATOR, np.int8))})


def _grade(output, user, verdict, *, seconds, days_ago):
    grade = grade_submit(output=output, annotator=user, verdict=verdict)
    submitted = NOW - timedelta(days=days_ago)
    started = None if seconds is None else submitted - timedelta(seconds=seconds)
    Grade.objects.filter(pk=grade.pk).update(started_at=started, submitted_at=submitted)
    return grade


@pytest.fixture
def team(project, owner, annotator, make_outputs, settings):
    settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = "tests.annotate.test_team.chosen_validator"
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    idle = UserFactory(username="zoe")
    membership_set(project=project, user=idle, role=Role.ANNOTATOR)
    outputs = make_outputs(n_samples=4)  # o0..o7, pairs (o0, o1), (o2, o3), ...
    word = {1: "pass", 0: "fail"}
    arjun_seconds = [10, 20, 30, 40, 50, 3600]
    for i, code in enumerate(ARJUN):
        _grade(outputs[i], annotator, word[code], seconds=arjun_seconds[i], days_ago=10 if i < 2 else 1)
    _grade(outputs[7], annotator, "unsure", seconds=25, days_ago=0)
    for i, code in enumerate(BEA):
        _grade(outputs[i], bea, word[code], seconds=1000 if i == 0 else 12, days_ago=0)
    undone = _grade(outputs[7], bea, "pass", seconds=12, days_ago=0)
    grade_retract(grade=undone, annotator=bea)
    for i, code in enumerate(OLIVIA):
        _grade(outputs[i], owner, word[code], seconds=None, days_ago=1)
    comparison_submit(output_a=outputs[0], output_b=outputs[1], annotator=annotator, choice="a")
    Assignment.objects.create(
        project=project, output=outputs[5], annotator=bea, status=AssignmentStatus.SKIPPED,
        selector="random", claimed_at=NOW, expires_at=NOW, closed_at=NOW,
    )
    return {"bea": bea, "outputs": outputs}


def _kappa(a, b):
    return float(cohen_kappa_score(a, b))


@pytest.mark.django_db
class TestTeamReport:
    def test_counts_times_and_recent_grades(self, team, project):
        rows = {row.username: row for row in team_report(project, now=NOW).rows}

        assert list(rows) == ["arjun", "bea", "olivia", "zoe"]
        arjun, bea, olivia, zoe = rows["arjun"], rows["bea"], rows["olivia"], rows["zoe"]
        assert (arjun.outputs_graded, arjun.grades_given, arjun.comparisons, arjun.skipped) == (7, 7, 1, 0)
        assert (bea.outputs_graded, bea.grades_given, bea.comparisons, bea.skipped) == (7, 8, 0, 1)
        assert (olivia.outputs_graded, olivia.grades_given, olivia.role) == (3, 3, "owner")
        assert (zoe.outputs_graded, zoe.grades_given, zoe.median_seconds) == (0, 0, None)
        # arjun: 10 20 25 30 40 50 3600 -> 30; bea: 1000 and seven times 12 -> 12.
        assert (arjun.median_seconds, arjun.timed_grades) == (30.0, 7)
        assert (bea.median_seconds, bea.timed_grades) == (12.0, 8)
        assert (olivia.median_seconds, olivia.timed_grades) == (None, 0)
        assert (arjun.last_7_days, bea.last_7_days, olivia.last_7_days) == (5, 8, 3)

    def test_kappa_with_others_is_the_mean_of_sklearns_pairwise_kappas(self, team, project):
        rows = {row.username: row for row in team_report(project, now=NOW).rows}

        arjun_bea = _kappa(ARJUN, BEA[:6])
        arjun_olivia = _kappa(ARJUN[:3], OLIVIA)
        bea_olivia = _kappa(BEA[:3], OLIVIA)
        assert (arjun_bea, arjun_olivia, bea_olivia) == pytest.approx((1 / 3, 1.0, 0.4))
        assert rows["arjun"].kappa_with_others == pytest.approx((arjun_bea + arjun_olivia) / 2)
        assert rows["bea"].kappa_with_others == pytest.approx((arjun_bea + bea_olivia) / 2)
        assert rows["olivia"].kappa_with_others == pytest.approx((arjun_olivia + bea_olivia) / 2)
        assert [rows[n].kappa_partners for n in ("arjun", "bea", "olivia", "zoe")] == [2, 2, 2, 0]
        assert rows["zoe"].kappa_with_others is None

    def test_agreement_with_the_chosen_validator(self, team, project):
        report = team_report(project, now=NOW)
        rows = {row.username: row for row in report.rows}

        assert report.validator_name == "length-check"
        # o7 (arjun's unsure) and o6 (the validator's error) are left out.
        assert (rows["arjun"].validator_items, rows["arjun"].validator_agreement) == (6, pytest.approx(5 / 6))
        assert rows["arjun"].validator_kappa == pytest.approx(_kappa(ARJUN, VALIDATOR[:6]))
        assert rows["arjun"].validator_kappa == pytest.approx(2 / 3)
        assert (rows["bea"].validator_items, rows["bea"].validator_agreement) == (6, pytest.approx(0.5))
        assert rows["bea"].validator_kappa == pytest.approx(_kappa(BEA[:6], VALIDATOR[:6]))
        assert (rows["olivia"].validator_items, rows["olivia"].validator_agreement) == (3, 1.0)

    def test_chart_counts_grades_per_day(self, team, project):
        chart = team_report(project, now=NOW).chart
        day = lambda n: (NOW - timedelta(days=n)).date().isoformat()  # noqa: E731

        assert chart["labels"][0] == day(10) and chart["labels"][-1] == day(0)
        assert len(chart["labels"]) == 11
        series = {s["name"]: s["counts"] for s in chart["series"]}
        assert set(series) == {"arjun", "bea", "olivia"}
        assert series["arjun"][0] == 2 and series["arjun"][9] == 4 and series["arjun"][10] == 1
        assert sum(series["arjun"]) == 7
        assert series["bea"][10] == 8 and sum(series["bea"]) == 8
        assert series["olivia"][9] == 3 and sum(series["olivia"]) == 3

    def test_query_count_does_not_grow_with_the_team(self, team, project, django_assert_max_num_queries):
        with django_assert_max_num_queries(16):
            team_report(project, now=NOW)


class TestTeamMaths:
    def test_median_per_rater(self):
        medians = median_per_rater(np.array([0, 1, 0, 0, 1]), np.array([5.0, 9.0, 1.0, 1000.0, -3.0]), 3)

        assert medians[0] == 5.0 and medians[1] == 4.5 and np.isnan(medians[2])

    def test_mean_kappa_per_rater_matches_sklearn(self):
        ratings = np.array([[1, 1, -1], [0, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1], [0, 0, -1]])

        means, partners = mean_kappa_per_rater(ratings)

        both = lambda a, b: (ratings[:, a] >= 0) & (ratings[:, b] >= 0)  # noqa: E731
        k01 = _kappa(ratings[both(0, 1), 0], ratings[both(0, 1), 1])
        k02 = _kappa(ratings[both(0, 2), 0], ratings[both(0, 2), 2])
        k12 = _kappa(ratings[both(1, 2), 1], ratings[both(1, 2), 2])
        assert means == pytest.approx([(k01 + k02) / 2, (k01 + k12) / 2, (k02 + k12) / 2])
        assert partners.tolist() == [2, 2, 2]

    def test_counts_per_day_leaves_out_days_outside_the_window(self):
        counts = counts_per_day(np.array([0, 0, 1, 1]), np.array([0, 2, 2, 5]), 2, 3)

        assert counts.tolist() == [[1, 0, 1], [0, 0, 1]]


@pytest.mark.django_db
class TestTeamPage:
    @pytest.mark.parametrize("who,setting,status", [
        ("owner", True, 200), ("reviewer", True, 200), ("annotator", True, 403),
        ("annotator", False, 403), ("outsider", True, 404),
    ])
    def test_permissions(self, client, project, who, setting, status, owner, annotator, reviewer, outsider):
        project.annotators_may_edit_criteria = setting
        project.save()
        client.force_login({"owner": owner, "annotator": annotator, "reviewer": reviewer, "outsider": outsider}[who])

        response = client.get(reverse("team", args=[project.slug]))

        assert response.status_code == status

    def test_anonymous_is_sent_to_login(self, client, project):
        response = client.get(reverse("team", args=[project.slug]))

        assert response.status_code == 302
        assert response["Location"] == "/login/?next=/p/support-bot/team/"

    def test_page_shows_rows_and_chart_data(self, client, team, project, reviewer):
        client.force_login(reviewer)

        page = client.get(reverse("team", args=[project.slug])).content.decode()

        assert '<tr data-annotator="arjun">' in page and '<tr data-annotator="bea">' in page
        assert '<td class="num" data-stat="outputs_graded">7</td>' in page
        assert 'id="team-chart-data"' in page and 'id="team-chart"' in page
        assert "Agrees with length-check" in page

    def test_empty_project_renders(self, client, project, owner):
        client.force_login(owner)

        page = client.get(reverse("team", args=[project.slug])).content.decode()

        assert "No grades yet." in page
        assert '<tr data-annotator="arjun">' in page  # a member who has not graded yet
