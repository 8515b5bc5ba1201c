"""Criteria-drift review: agreement tables (cross-checked against scikit-learn, statsmodels and
the krippendorff package), agreement over time, the timeline, the agenda, meeting services,
re-grading requests, and the pages' permissions."""

import re
from itertools import combinations

import krippendorff
import numpy as np
import pytest
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from annotate.evidence import ChosenVerdicts
from annotate.models import (
    Adjudication,
    AgendaKind,
    Assignment,
    Criterion,
    CriterionVersion,
    Decision,
    DecisionKind,
    Grade,
    RegradeRequest,
    ReviewAgendaItem,
    ReviewMeeting,
    Role,
)
from annotate.review.agenda import review_agenda
from annotate.review.agreement_tables import agreement_over_time, agreement_tables, block_size
from annotate.review.meetings import meeting_steps, meeting_summary_markdown
from annotate.review.notes import NoteMention, proposed_criteria
from annotate.review.timeline import criterion_timeline
from annotate.services.assignments import assignment_claim_output
from annotate.services.criteria import criterion_create, criterion_version_publish
from annotate.services.grades import grade_submit
from annotate.services.projects import import_annotator, membership_set, project_create
from annotate.services.review import (
    ReviewError,
    adjudication_record,
    meeting_create_criterion,
    meeting_end,
    meeting_publish_version,
    meeting_record_decision,
    meeting_send_back,
    meeting_start,
    regrade_candidates,
    regrade_reason,
    regrade_request_cancel,
)
from annotate.views.review import _band
from tests.factories import UserFactory

CHOSEN: dict = {}


def stub_chosen(project):
    return ChosenVerdicts(
        output_ids=CHOSEN.get("output_ids", np.zeros(0, np.int64)),
        by_criterion=CHOSEN.get("by_criterion", {}),
    )


@pytest.fixture
def stub_validator(settings):
    settings.ANNOTATE_CHOSEN_VERDICTS_PROVIDER = "tests.annotate.test_review.stub_chosen"
    CHOSEN.clear()
    yield CHOSEN
    CHOSEN.clear()


@pytest.fixture
def annotators(project, owner, annotator):
    bea = UserFactory(username="bea")
    membership_set(project=project, user=bea, role=Role.ANNOTATOR)
    return [annotator, owner, bea]


def grade_matrix(outputs, annotators, verdicts, criterion_key=None):
    """verdicts[i][j]: annotator j on output i ('pass', 'fail', 'unsure' or None)."""
    for output, row in zip(outputs, verdicts, strict=True):
        for user, verdict in zip(annotators, row, strict=True):
            if verdict is None:
                continue
            criteria = {criterion_key: verdict} if criterion_key else None
            grade_submit(output=output, annotator=user, verdict=verdict, criteria=criteria)


def random_verdicts(seed, n_items, n_raters, missing):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    noise = rng.integers(0, 2, (n_items, n_raters))
    codes = np.where(rng.random((n_items, n_raters)) < 0.7, truth[:, None], noise)
    absent = rng.random((n_items, n_raters)) < missing
    return [[None if absent[i, j] else ("pass" if codes[i, j] else "fail") for j in range(n_raters)]
            for i in range(n_items)]


def as_codes(verdicts):
    return np.array([[-1 if v is None else int(v == "pass") for v in row] for row in verdicts])


# -- agreement ---------------------------------------------------------------------------------
@pytest.mark.django_db
class TestAgreementTables:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_complete_ratings_match_sklearn_statsmodels_and_krippendorff(
        self, project, annotators, make_outputs, seed
    ):
        outputs = make_outputs(6)  # 12 outputs
        verdicts = random_verdicts(seed, 12, 3, missing=0.0)
        grade_matrix(outputs, annotators, verdicts)
        codes = as_codes(verdicts)

        [row] = agreement_tables(project)

        kappas = [cohen_kappa_score(codes[:, a], codes[:, b]) for a, b in combinations(range(3), 2)]
        assert row.cohen_kappa == pytest.approx(np.mean(kappas), abs=1e-12)
        table, _ = aggregate_raters(codes, n_cat=2)
        assert row.fleiss_kappa == pytest.approx(statsmodels_fleiss_kappa(table), abs=1e-12)
        assert row.krippendorff_alpha == pytest.approx(
            krippendorff.alpha(reliability_data=codes.T.astype(float), level_of_measurement="nominal"),
            abs=1e-12,
        )
        # Gwet (2008) AC1 for q=2 categories and r=3 raters, written out independently.
        counts = np.stack([(codes == k).sum(axis=1) for k in (0, 1)], axis=1)
        pa = np.mean((counts * (counts - 1)).sum(axis=1) / 6)
        pi = (counts / 3).mean(axis=0)
        pe = float(np.sum(pi * (1 - pi)))
        assert row.gwet_ac1 == pytest.approx((pa - pe) / (1 - pe), abs=1e-12)
        assert row.percent_agreement == pytest.approx(pa, abs=1e-12)
        assert (row.n_items, row.n_items_multiply_rated, row.n_annotators, row.n_ratings) == (12, 12, 3, 36)

    def test_missing_ratings_match_krippendorff_and_pairwise_sklearn(self, project, annotators, make_outputs):
        outputs = make_outputs(10)
        verdicts = random_verdicts(7, 20, 3, missing=0.3)
        grade_matrix(outputs, annotators, verdicts)
        codes = as_codes(verdicts)

        [row] = agreement_tables(project)

        assert row.krippendorff_alpha == pytest.approx(
            krippendorff.alpha(
                reliability_data=np.where(codes < 0, np.nan, codes).T.astype(float),
                level_of_measurement="nominal",
            ), abs=1e-12,
        )
        kappas = []
        for a, b in combinations(range(3), 2):
            both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
            kappas.append(cohen_kappa_score(codes[both, a], codes[both, b]))
        assert row.cohen_kappa == pytest.approx(np.mean(kappas), abs=1e-12)
        rated = (codes >= 0).any(axis=1)
        assert row.n_items == int(rated.sum())

    def test_unsure_and_stale_votes_are_left_out_per_criterion(
        self, project, owner, annotators, make_outputs
    ):
        grounded = criterion_create(project=project, key="grounded", name="Grounded", author=owner)
        outputs = make_outputs(2)  # 4 outputs
        arjun, olivia, bea = annotators
        grade_submit(output=outputs[0], annotator=arjun, verdict="pass", criteria={"grounded": "fail"})
        criterion_version_publish(criterion=grounded, author=owner, definition="New.", reason="r")
        grade_submit(output=outputs[0], annotator=olivia, verdict="pass", criteria={"grounded": "pass"})
        grade_submit(output=outputs[0], annotator=bea, verdict="unsure")
        grade_submit(output=outputs[1], annotator=arjun, verdict="fail")
        grade_submit(output=outputs[1], annotator=olivia, verdict="pass")

        holistic, by_grounded = agreement_tables(project)

        assert (holistic.key, holistic.n_items, holistic.n_ratings, holistic.percent_agreement) == (
            None, 2, 4, 0.5)
        # grounded: arjun's stale fail is out; the holistic verdicts (bea's unsure, output 1's
        # pass and fail) cast no grounded vote (DESIGN §4.1), so only olivia's pass is left.
        assert (by_grounded.key, by_grounded.version, by_grounded.n_items, by_grounded.n_ratings) == (
            "grounded", 2, 1, 1)
        assert by_grounded.n_items_multiply_rated == 0
        assert by_grounded.percent_agreement is None

    def test_one_annotator_leaves_coefficients_undefined(self, project, annotator, make_outputs):
        outputs = make_outputs(2)
        grade_matrix(outputs, [annotator], [["pass"], ["fail"], ["pass"], ["pass"]])

        [row] = agreement_tables(project)

        assert (row.percent_agreement, row.cohen_kappa, row.fleiss_kappa, row.krippendorff_alpha,
                row.gwet_ac1) == (None, None, None, None, None)

    def test_no_agreement_on_the_few_shared_outputs_reads_below_minus_one_and_is_explained(
        self, client, project, owner, annotators, make_outputs
    ):
        """What a newcomer met: two raters who never agreed, κ = −1.20 and no word why. Chance
        agreement comes from every vote, and the single-rated ones all pass."""
        outputs = make_outputs(4)  # 8 outputs
        two = annotators[:2]
        grade_matrix(outputs, two, [["pass", "fail"], ["fail", "pass"]] + [["pass", None]] * 6)

        [row] = agreement_tables(project)
        client.force_login(owner)
        page = client.get(reverse("review", args=[project.slug])).content.decode()

        assert row.fleiss_kappa < -1 and row.percent_agreement == 0.0
        assert f'band-poor">{row.fleiss_kappa:.2f}</td>' in page
        assert "agree <em>less</em> often than chance" in page

    def test_annotators_against_the_chosen_validator(self, project, annotators, make_outputs, stub_validator):
        outputs = make_outputs(3)  # 6 outputs
        verdicts = [["pass", "pass", None], ["fail", "pass", "fail"], ["pass", None, None],
                    ["fail", "fail", "fail"], [None, "pass", "fail"], ["pass", "pass", "pass"]]
        grade_matrix(outputs, annotators, verdicts)
        ids = np.array([o.pk for o in outputs], dtype=np.int64)
        validator = np.array([1, 0, 0, 0, -1, -2], dtype=np.int8)  # error and missing left out
        stub_validator.update(output_ids=ids, by_criterion={None: (5, "length_ok", validator)})

        [row] = agreement_tables(project)

        human, machine = [], []
        for i, row_verdicts in enumerate(verdicts[:4]):
            for v in row_verdicts:
                if v is not None:
                    human.append(int(v == "pass"))
                    machine.append(int(validator[i]))
        assert (row.validator, row.validator_n) == ("length_ok", len(human)) == ("length_ok", 9)
        assert row.validator_percent_agreement == pytest.approx(np.mean(np.equal(human, machine)))
        assert row.validator_kappa == pytest.approx(cohen_kappa_score(human, machine), abs=1e-12)


@pytest.mark.django_db
def test_agreement_over_time_per_block(project, annotators, make_outputs, stub_validator):
    outputs = make_outputs(2)
    arjun, olivia, _ = annotators
    # In order: o0 arjun pass, o0 olivia pass, o1 arjun pass, o1 olivia fail, o2 arjun fail.
    grade_submit(output=outputs[0], annotator=arjun, verdict="pass")
    grade_submit(output=outputs[0], annotator=olivia, verdict="pass")
    grade_submit(output=outputs[1], annotator=arjun, verdict="pass")
    grade_submit(output=outputs[1], annotator=olivia, verdict="fail")
    grade_submit(output=outputs[2], annotator=arjun, verdict="fail")
    stub_validator.update(
        output_ids=np.array([o.pk for o in outputs], dtype=np.int64),
        by_criterion={None: (1, "v", np.array([1, 1, 1, 0], dtype=np.int8))},
    )

    chart = agreement_over_time(project, block=2)

    assert chart["labels"] == ["1–2", "3–4", "5–5"]
    [holistic] = chart["targets"]
    assert holistic["annotators"] == [1.0, 0.0, None]
    assert holistic["validator"] == [1.0, 0.5, 0.0]
    assert holistic["validator_name"] == "v"
    assert agreement_over_time(project)["block"] == 5
    assert [block_size(n) for n in (0, 100, 101, 1000, 1_000_000, 1_000_000_000)] == [
        5, 5, 10, 50, 50_000, 50_000_000]


@pytest.mark.django_db
def test_timeline_counts_the_grades_each_version_carries(project, owner, annotator, make_outputs):
    grounded = criterion_create(project=project, key="grounded", name="Grounded", author=owner,
                                definition="Supported.")
    outputs = make_outputs(2)
    grade_submit(output=outputs[0], annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
    grade_submit(output=outputs[1], annotator=annotator, verdict="pass", criteria={"grounded": "fail"})
    meeting = meeting_start(project=project, started_by=owner, title="Tuesday review")
    meeting_publish_version(meeting=meeting, criterion=grounded, definition="Supported by the article.",
                            reason="quotes count", author=owner)
    grade_submit(output=outputs[2], annotator=annotator, verdict="pass", criteria={"grounded": "pass"})

    entries = criterion_timeline(project)

    assert [(e.version.criterion.key, e.version.number, e.grades, e.stale, e.is_current,
             e.version.decided_in_id) for e in entries] == [
        ("grounded", 2, 1, 0, True, meeting.pk), ("grounded", 1, 2, 2, False, None),
    ]
    assert entries[0].to_dict()["meeting_title"] == "Tuesday review"


# -- proposed criteria from notes ----------------------------------------------------------------
def notes(*pairs):
    return [NoteMention(text, author, None) for text, author in pairs]


def test_explicit_mentions_propose_missing_criteria_only():
    found = proposed_criteria(notes(
        ("Privacy?", "olivia"),
        ("This leaks an email address; we need a privacy criterion.", "arjun"),
        ("Needs a new privacy criterion", "bea"),
        ("the grounded criterion is unclear here", "arjun"),
        ("criterion for politeness?", "bea"),
        ("criterion: safety", "olivia"),
        ("Add a data leakage criterion", "olivia"),
    ), ["grounded", "Grounded", "helpful"])

    assert [(p.term, p.rule, p.n_notes, sorted(p.authors)) for p in found] == [
        ("privacy", "explicit", 3, ["arjun", "bea", "olivia"]),
        ("data leakage", "explicit", 1, ["olivia"]),
        ("politeness", "explicit", 1, ["bea"]),
        ("safety", "explicit", 1, ["olivia"]),
    ]


def test_existing_criteria_match_by_word_or_stem():
    found = proposed_criteria(notes(
        ("we need a grounding criterion", "a"), ("a pii privacy criterion", "b"),
        ("a helpfulness criterion", "c"),
    ), ["pii_privacy", "Grounded", "helpful"])

    assert found == []


def test_frequent_terms_need_three_notes_by_two_annotators():
    texts = [("Mentions the customer's phone number", "arjun"),
             ("phone number visible again", "arjun"),
             ("phone numbers should be masked", "bea"),
             ("Tone is rude", "arjun"), ("rude tone", "arjun"), ("so rude", "arjun")]

    found = proposed_criteria(notes(*texts), ["grounded"])

    assert [(p.term, p.rule, p.n_notes, len(p.authors)) for p in found] == [
        ("number", "frequent", 3, 2), ("phone", "frequent", 3, 2),
    ]


# -- the agenda ----------------------------------------------------------------------------------
@pytest.fixture
def agenda_project(project, owner, annotator, annotators, make_outputs, stub_validator):
    grounded = criterion_create(project=project, key="grounded", name="Grounded", author=owner,
                                definition="Supported.")
    criterion_version_publish(criterion=grounded, author=owner, definition="Supported by the article.",
                              reason="quotes count")
    outputs = make_outputs(3)  # q0 alpha/beta, q1 alpha/beta, q2 alpha/beta
    arjun, olivia, bea = annotators
    # q0/alpha: 1 pass 1 fail holistic (closest split); q0/beta: 2 pass 1 fail on grounded only.
    grade_submit(output=outputs[0], annotator=arjun, verdict="pass", note="we need a privacy criterion")
    grade_submit(output=outputs[0], annotator=olivia, verdict="fail")
    grade_submit(output=outputs[1], annotator=arjun, verdict="pass", criteria={"grounded": "pass"})
    grade_submit(output=outputs[1], annotator=olivia, verdict="pass", criteria={"grounded": "pass"})
    grade_submit(output=outputs[1], annotator=bea, verdict="pass", criteria={"grounded": "fail"})
    # q1/alpha: agree on pass, the validator says fail; q1/beta: split but adjudicated.
    grade_submit(output=outputs[2], annotator=arjun, verdict="pass")
    grade_submit(output=outputs[2], annotator=olivia, verdict="pass")
    grade_submit(output=outputs[3], annotator=arjun, verdict="pass", criteria={"grounded": "pass"})
    grade_submit(output=outputs[3], annotator=olivia, verdict="fail", criteria={"grounded": "fail"})
    Adjudication.objects.create(output=outputs[3], verdict="pass", reviewer=owner)
    Adjudication.objects.create(output=outputs[3], criterion=grounded, verdict="pass", reviewer=owner)
    stub_validator.update(
        output_ids=np.array([o.pk for o in outputs], dtype=np.int64),
        by_criterion={None: (3, "length_ok", np.array([0, 1, 0, 1, 1, 1], dtype=np.int8))},
    )
    return outputs


@pytest.mark.django_db
class TestAgenda:
    def test_built_from_the_data_in_order(self, project, agenda_project):
        outputs = agenda_project

        agenda = review_agenda(project)

        assert [(e.kind, e.output_id) for e in agenda] == [
            (AgendaKind.CRITERION_CHANGED, None),
            (AgendaKind.DISAGREEMENT, outputs[0].pk),
            (AgendaKind.DISAGREEMENT, outputs[1].pk),
            (AgendaKind.VALIDATOR, outputs[2].pk),
            (AgendaKind.NEW_CRITERION, None),
        ]
        assert [e.title for e in agenda] == [
            "“Grounded” (grounded) changed: v1 → v2",
            "q0 · alpha: annotators split on holistic",
            "q0 · beta: annotators split on grounded",
            "q1 · alpha: humans say pass on holistic, length_ok says fail",
            "Notes mention “privacy” (1 note, 1 annotator): no such criterion",
        ]
        assert agenda[0].detail["previous"]["definition"] == "Supported."
        assert agenda[0].detail["versions"][0]["reason"] == "quotes count"
        assert agenda[2].detail["targets"] == [
            {"key": "grounded", "name": "Grounded", "n_pass": 2, "n_fail": 1, "n_unsure": 0}
        ]
        assert agenda[4].detail["examples"][0]["text"] == "we need a privacy criterion"

    def test_an_adjudication_settles_only_its_own_criterion(self, project, agenda_project):
        Adjudication.objects.filter(criterion__key="grounded").delete()

        [entry] = [e for e in review_agenda(project) if e.output_id == agenda_project[3].pk]

        assert (entry.kind, [t["key"] for t in entry.detail["targets"]]) == (
            AgendaKind.DISAGREEMENT, ["grounded"]
        )

    def test_outputs_sent_back_wait_for_their_new_grades(self, project, reviewer, agenda_project):
        meeting = meeting_start(project=project, started_by=reviewer)
        meeting_send_back(meeting=meeting, outputs=[agenda_project[0], agenda_project[2]],
                          reason="again", author=reviewer)

        assert [e.output_id for e in review_agenda(project) if e.output_id] == [agenda_project[1].pk]

    def test_versions_decided_in_a_meeting_are_not_news(self, project, reviewer, agenda_project):
        meeting = meeting_start(project=project, started_by=reviewer)
        meeting_publish_version(meeting=meeting, criterion=Criterion.objects.get(key="grounded"),
                                definition="Stricter.", reason="r", author=reviewer)
        meeting_end(meeting=meeting, ended_by=reviewer)

        assert [e.kind for e in review_agenda(project, since=meeting.started_at)
                if e.kind == AgendaKind.CRITERION_CHANGED] == []
        [changed] = [e for e in review_agenda(project) if e.kind == AgendaKind.CRITERION_CHANGED]
        assert [v["number"] for v in changed.detail["versions"]] == [2]

    def test_only_what_is_new_since_the_previous_meeting(self, project, owner, agenda_project):
        meeting = meeting_start(project=project, started_by=owner)
        meeting_end(meeting=meeting, ended_by=owner)

        agenda = review_agenda(project, since=meeting.started_at)

        assert [e.kind for e in agenda] == [
            AgendaKind.DISAGREEMENT, AgendaKind.DISAGREEMENT, AgendaKind.VALIDATOR
        ]

    def test_limit_per_kind(self, project, agenda_project):
        assert [e.kind for e in review_agenda(project, limit=1)] == [
            AgendaKind.CRITERION_CHANGED, AgendaKind.DISAGREEMENT, AgendaKind.VALIDATOR,
            AgendaKind.NEW_CRITERION,
        ]


# -- meeting services ----------------------------------------------------------------------------
@pytest.mark.django_db
class TestMeetings:
    def test_start_freezes_the_agenda_and_a_second_start_joins(self, project, owner, reviewer, agenda_project):
        meeting = meeting_start(project=project, started_by=reviewer, title="Weekly")

        again = meeting_start(project=project, started_by=owner, title="Other")

        assert again.pk == meeting.pk
        assert ReviewMeeting.objects.count() == 1
        assert list(meeting.agenda_items.values_list("position", "kind")) == [
            (1, "criterion_changed"), (2, "disagreement"), (3, "disagreement"), (4, "validator"),
            (5, "new_criterion"),
        ]
        assert sorted(u.username for u in meeting.attendees.all()) == ["olivia", "rita"]

    def test_adjudicate_publish_create_send_back_decide(self, project, reviewer, agenda_project):
        outputs = agenda_project
        meeting = meeting_start(project=project, started_by=reviewer)
        grounded = Criterion.objects.get(key="grounded")

        adjudication = adjudication_record(
            output=outputs[0], verdict="fail", reason="invented policy", reviewer=reviewer,
            meeting=meeting,
        )
        version = meeting_publish_version(
            meeting=meeting, criterion=grounded, definition="Every claim is in the article.",
            reason="stricter", author=reviewer,
        )
        privacy = meeting_create_criterion(
            meeting=meeting, name="Privacy", definition="No personal data.", reason="notes ask",
            author=reviewer,
        )
        decision = meeting_send_back(
            meeting=meeting, outputs=[outputs[1]], reason="grounded changed", author=reviewer,
            criterion=grounded,
        )
        meeting_record_decision(meeting=meeting, text="Quotes count as grounded.", author=reviewer)

        assert (adjudication.meeting, adjudication.criterion, adjudication.verdict) == (meeting, None, "fail")
        assert Grade.objects.filter(output=outputs[0]).count() == 2  # grades untouched
        assert (version.number, version.decided_in, version.reason) == (3, meeting, "stricter")
        assert (privacy.key, privacy.versions.get().decided_in) == ("privacy", meeting)
        assert list(meeting.decisions.order_by("id").values_list("kind", "text")) == [
            (DecisionKind.NEW_VERSION, "grounded v3: stricter"),
            (DecisionKind.NEW_VERSION, "new criterion privacy: notes ask"),
            (DecisionKind.REGRADE, "grounded changed"),
            (DecisionKind.NOTE, "Quotes count as grounded."),
        ]
        assert list(decision.outputs.all()) == [outputs[1]]
        request = RegradeRequest.objects.get()
        assert (request.output, request.criterion, request.decision, request.reason) == (
            outputs[1], grounded, decision, "grounded changed")
        assert [s.outcomes for s in meeting_steps(meeting)] == [
            ("v3 published",), ("adjudicated",), ("sent back",), (), ("criterion created",),
        ]

    def test_refused_writes_leave_nothing_behind(self, project, owner, reviewer, agenda_project):
        outputs = agenda_project
        meeting = meeting_start(project=project, started_by=reviewer)
        other = project_create(name="Other", slug="other", owner=owner)
        foreign = Criterion.objects.create(project=other, key="foreign")
        grounded = Criterion.objects.get(project=project, key="grounded")
        versions = CriterionVersion.objects.count()

        with pytest.raises(ReviewError, match="Choose pass, fail or unsure."):
            adjudication_record(output=outputs[0], verdict="maybe", reviewer=reviewer, meeting=meeting)
        with pytest.raises(ReviewError, match="another project"):
            adjudication_record(output=outputs[0], verdict="pass", criterion=foreign,
                                reviewer=reviewer, meeting=meeting)
        with pytest.raises(ReviewError, match="Say in one line why"):
            meeting_publish_version(meeting=meeting, criterion=grounded, definition="x", reason=" ",
                                    author=reviewer)
        with pytest.raises(ReviewError, match="The definition is unchanged."):
            meeting_publish_version(meeting=meeting, criterion=grounded,
                                    definition="Supported by the article.", reason="r", author=reviewer)
        with pytest.raises(ReviewError, match="Say in one line what"):
            meeting_send_back(meeting=meeting, outputs=[outputs[0]], reason="", author=reviewer)
        with pytest.raises(ReviewError, match="already exists"):
            meeting_create_criterion(meeting=meeting, name="Grounded", definition="d", reason="r",
                                     author=reviewer)

        assert Adjudication.objects.filter(meeting=meeting).count() == 0
        assert CriterionVersion.objects.count() == versions
        assert (Decision.objects.count(), RegradeRequest.objects.count()) == (0, 0)

    def test_an_ended_meeting_takes_no_more_decisions(self, project, reviewer, agenda_project):
        meeting = meeting_start(project=project, started_by=reviewer)
        ended = meeting_end(meeting=meeting, ended_by=reviewer, notes="Good session.")
        again = meeting_end(meeting=meeting, ended_by=reviewer, notes="ignored")

        assert again.ended_at == ended.ended_at and again.notes == "Good session."
        with pytest.raises(ReviewError, match="This meeting has ended"):
            adjudication_record(output=agenda_project[0], verdict="pass", reviewer=reviewer, meeting=meeting)
        with pytest.raises(ReviewError, match="This meeting has ended"):
            meeting_record_decision(meeting=meeting, text="late", author=reviewer)
        assert (Adjudication.objects.filter(meeting=meeting).count(), Decision.objects.count()) == (0, 0)
        assert meeting_start(project=project, started_by=reviewer).pk != meeting.pk

    def test_summary_markdown(self, project, reviewer, owner, agenda_project):
        outputs = agenda_project
        meeting = meeting_start(project=project, started_by=reviewer, title="Weekly review")
        adjudication_record(output=outputs[0], verdict="fail", reason="made up | policy",
                            reviewer=reviewer, meeting=meeting)
        meeting_publish_version(meeting=meeting, criterion=Criterion.objects.get(key="grounded"),
                                definition="Every claim is in the article.", reason="stricter",
                                author=owner)
        meeting_send_back(meeting=meeting, outputs=[outputs[1]], reason="look again", author=reviewer)
        meeting_end(meeting=meeting, ended_by=reviewer, notes="Next time: tone.")

        text = meeting_summary_markdown(ReviewMeeting.objects.get(pk=meeting.pk))

        assert text.startswith("# Weekly review\n\n- Project: Support bot (`support-bot`)\n")
        assert "- Attendees: olivia, rita\n" in text
        assert ("## New criterion versions\n\n- **grounded v3** “Grounded”: Every claim is in the "
                "article.  \n  Reason: stricter (by olivia)\n") in text
        assert (f"## Sent back for re-grading\n\n- q0 · beta (output {outputs[1].pk}): look again\n") in text
        assert "| q0 · alpha | holistic | fail | made up \\| policy | rita |" in text
        assert "## Other decisions\n\nNone.\n" in text
        assert "1. [Definition changed since the last meeting] “Grounded” (grounded) changed: v1 → v2 — **v3 published**" in text
        assert "2. [Annotators disagree] q0 · alpha: annotators split on holistic — **adjudicated**" in text
        assert text.endswith("## Notes\n\nNext time: tone.\n")


# -- re-grading ------------------------------------------------------------------------------------
@pytest.mark.django_db
class TestRegrade:
    @pytest.fixture
    def sent_back(self, project, owner, reviewer, annotator, make_outputs):
        outputs = make_outputs(2)
        grade_submit(output=outputs[0], annotator=annotator, verdict="pass")
        meeting = meeting_start(project=project, started_by=reviewer)
        meeting_send_back(meeting=meeting, outputs=[outputs[0], outputs[1]], reason="new definition",
                          author=reviewer)
        return outputs, meeting

    def test_earlier_graders_get_it_first_others_only_ungraded_ones(self, project, owner, annotator, sent_back):
        outputs, _ = sent_back

        assert regrade_candidates(project, annotator) == [outputs[0].pk, outputs[1].pk]
        assert regrade_candidates(project, owner) == [outputs[1].pk]
        assert regrade_reason(project=project, output_id=outputs[0].pk) == (
            "sent back for re-grading by a review meeting: new definition"
        )

    def test_a_fresh_grade_fulfils_the_request(self, project, owner, annotator, sent_back):
        outputs, _ = sent_back
        claim = assignment_claim_output(project=project, annotator=annotator, output=outputs[0],
                                        why=regrade_reason(project=project, output_id=outputs[0].pk))
        grade_submit(output=outputs[0], annotator=annotator, verdict="fail", assignment=claim)

        assert regrade_candidates(project, annotator) == [outputs[1].pk]
        assert Grade.objects.filter(output=outputs[0], superseded_by__isnull=True).get().verdict == "fail"
        assert Grade.objects.filter(output=outputs[0]).count() == 2

    def test_a_live_claim_by_someone_else_blocks_and_cancel_closes(self, project, owner, annotator, sent_back):
        outputs, _ = sent_back
        assignment_claim_output(project=project, annotator=owner, output=outputs[1], why="x")

        assert regrade_candidates(project, annotator) == [outputs[0].pk]
        regrade_request_cancel(request=RegradeRequest.objects.get(output=outputs[0]))
        assert regrade_candidates(project, annotator) == []
        assert Assignment.objects.filter(annotator=owner).count() == 1

    def test_imported_grades_go_to_any_grading_member(self, project, reviewer, annotator, owner, make_outputs):
        [output, *_] = make_outputs(1, systems=("alpha",))
        grade_submit(output=output, annotator=import_annotator(project=project), verdict="pass")
        meeting = meeting_start(project=project, started_by=reviewer)
        meeting_send_back(meeting=meeting, outputs=[output], reason="check", author=reviewer)

        assert regrade_candidates(project, annotator) == [output.pk]
        assert regrade_candidates(project, owner) == [output.pk]

    def test_a_newer_request_replaces_an_open_one(self, project, reviewer, sent_back):
        outputs, meeting = sent_back

        meeting_send_back(meeting=meeting, outputs=[outputs[0]], reason="again", author=reviewer)

        assert list(RegradeRequest.objects.filter(output=outputs[0], cancelled_at__isnull=True)
                    .values_list("reason", flat=True)) == ["again"]


# -- pages -----------------------------------------------------------------------------------------
@pytest.mark.django_db
class TestPages:
    def test_owner_and_reviewer_see_the_review_page(self, client, project, owner, reviewer, agenda_project):
        for user in (owner, reviewer):
            client.force_login(user)
            response = client.get(reverse("review", args=[project.slug]))
            assert response.status_code == 200
            page = response.content.decode()
            assert "Agreement per criterion" in page and "grounded v2" in page
            assert "Notes mention “privacy”" in page

    def test_agreement_table_shows_every_declared_statistic(self, client, project, owner, agenda_project):
        client.force_login(owner)
        page = client.get(reverse("review", args=[project.slug])).content.decode()
        table = re.sub(r">\s+<", "><", page[page.index('<table class="agreement"'):page.index("</table>")])
        rows = {row.key: row for row in agreement_tables(project)}

        assert '<th colspan="5" class="group">Between annotators</th>' in table
        assert '<th colspan="3" class="group">Annotators vs chosen validator</th>' in table
        assert (
            '<th class="num">% agree</th><th class="num" title="mean over pairs of annotators '
            '(Light)">Cohen κ</th><th class="num">Fleiss κ</th><th class="num">Kripp. α</th>'
            '<th class="num">Gwet AC1</th><th>Validator</th><th class="num">% agree</th>'
            '<th class="num">κ</th>'
        ) in table
        for key, row in rows.items():
            start = table.index(f'<tr data-criterion="{key or ""}">')
            cells = re.findall(r"<td[^>]*>.*?</td>", table[start:table.index("</tr>", start)])

            def coefficient(value):
                shown = "—" if value is None else f"{value:.2f}"
                return f'<td class="num band band-{_band(value)}">{shown}</td>'

            def percent(value):
                shown = "—" if value is None else f"{round(value * 100)}%"
                return f'<td class="num">{shown}</td>'

            assert cells[1:6] == [
                percent(row.percent_agreement), coefficient(row.cohen_kappa),
                coefficient(row.fleiss_kappa), coefficient(row.krippendorff_alpha),
                coefficient(row.gwet_ac1),
            ]
            assert cells[7:] == [percent(row.validator_percent_agreement), coefficient(row.validator_kappa)]
        assert len(rows) == 2

    @pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("outsider", 404)])
    def test_annotators_403_and_outsiders_404_without_side_effects(
        self, client, request, project, reviewer, agenda_project, who, status
    ):
        meeting = meeting_start(project=project, started_by=reviewer)
        client.force_login(request.getfixturevalue(who))
        base = [project.slug, meeting.pk]

        assert client.get(reverse("review", args=[project.slug])).status_code == status
        assert client.post(reverse("review-meeting-start", args=[project.slug])).status_code == status
        assert client.get(reverse("review-meeting-item", args=[*base, 1])).status_code == status
        assert client.post(reverse("review-adjudicate", args=base), {
            "output": agenda_project[0].pk, "verdict": "pass", "position": 1}).status_code == status
        assert client.post(reverse("review-send-back", args=base), {
            "output": agenda_project[0].pk, "reason": "x"}).status_code == status
        assert client.post(reverse("review-publish", args=base), {
            "criterion": "grounded", "definition": "x", "reason": "y"}).status_code == status
        assert client.post(reverse("review-meeting-end", args=base)).status_code == status
        assert client.get(reverse("review-meeting-summary", args=base)).status_code == status
        assert Adjudication.objects.filter(meeting=meeting).count() == 0
        assert (RegradeRequest.objects.count(), CriterionVersion.objects.filter(number=3).count()) == (0, 0)
        assert ReviewMeeting.objects.get().ended_at is None

    def test_anonymous_is_sent_to_log_in(self, client, project):
        response = client.get(reverse("review", args=[project.slug]))

        assert response.status_code == 302 and response["Location"].startswith("/login/")

    def test_meeting_steps_and_adjudicates_with_htmx(self, client, project, reviewer, agenda_project):
        client.force_login(reviewer)
        response = client.post(reverse("review-meeting-start", args=[project.slug]), {"title": "Now"})
        meeting = ReviewMeeting.objects.get()
        assert response["Location"] == reverse("review-meeting-item", args=[project.slug, meeting.pk, 1])

        page = client.get(reverse("review-meeting-item", args=[project.slug, meeting.pk, 2]),
                          headers={"HX-Request": "true"})
        assert page.status_code == 200
        html = page.content.decode()
        assert html.lstrip().startswith('<div id="meeting"') and "2 / 5" in html
        assert "q0 · alpha: annotators split" in html

        response = client.post(reverse("review-adjudicate", args=[project.slug, meeting.pk]), {
            "output": agenda_project[0].pk, "target": "", "verdict": "fail", "reason": "r",
            "position": 2,
        }, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert "Adjudicated q0 · alpha on the holistic verdict: fail." in response.content.decode()
        assert Adjudication.objects.get(meeting=meeting).output == agenda_project[0]

        bad = client.post(reverse("review-adjudicate", args=[project.slug, meeting.pk]), {
            "output": agenda_project[0].pk, "verdict": "meh", "position": 2,
        }, headers={"HX-Request": "true"})
        assert bad.status_code == 400 and "Choose pass, fail or unsure." in bad.content.decode()
        assert Adjudication.objects.filter(meeting=meeting).count() == 1

    def test_plain_posts_redirect_back_to_the_item(self, client, project, reviewer, agenda_project):
        client.force_login(reviewer)
        meeting = meeting_start(project=project, started_by=reviewer)
        url = reverse("review-send-back", args=[project.slug, meeting.pk])

        response = client.post(url, {"output": agenda_project[1].pk, "reason": "look", "position": 3})

        assert response["Location"] == reverse("review-meeting-item", args=[project.slug, meeting.pk, 3])
        assert RegradeRequest.objects.get().output == agenda_project[1]

    def test_notes_are_saved_as_typed_until_the_meeting_ends(self, client, project, reviewer, annotator, agenda_project):
        meeting = meeting_start(project=project, started_by=reviewer)
        url = reverse("review-meeting-notes", args=[project.slug, meeting.pk])
        client.force_login(reviewer)

        assert client.post(url, {"notes": " Tone needs a criterion. "}).status_code == 204
        assert ReviewMeeting.objects.get().notes == "Tone needs a criterion."
        client.force_login(annotator)
        assert client.post(url, {"notes": "hijack"}).status_code == 403
        meeting_end(meeting=meeting, ended_by=reviewer)
        client.force_login(reviewer)
        late = client.post(url, {"notes": "late"})
        assert (late.status_code, late.content.decode()) == (
            400, "This meeting has ended; start a new one to record more decisions.")
        assert ReviewMeeting.objects.get().notes == "Tone needs a criterion."

    def test_an_unknown_item_is_not_found(self, client, project, reviewer, agenda_project):
        client.force_login(reviewer)
        meeting = meeting_start(project=project, started_by=reviewer)

        assert client.get(reverse("review-meeting-item", args=[project.slug, meeting.pk, 99])).status_code == 404

    def test_end_and_download_the_summary(self, client, project, reviewer, agenda_project):
        client.force_login(reviewer)
        meeting = meeting_start(project=project, started_by=reviewer, title="Weekly")

        response = client.post(reverse("review-meeting-end", args=[project.slug, meeting.pk]),
                               {"notes": "Done."})
        summary = client.get(reverse("review-meeting-summary", args=[project.slug, meeting.pk]))

        assert response["Location"] == f"{reverse('review', args=[project.slug])}#meeting-{meeting.pk}"
        assert summary["Content-Type"] == "text/markdown; charset=utf-8"
        assert summary["Content-Disposition"] == f'attachment; filename="support-bot-meeting-{meeting.pk}.md"'
        assert summary.content.decode().startswith("# Weekly\n")
        assert ReviewAgendaItem.objects.filter(meeting=meeting).count() == 5


@pytest.mark.django_db
def test_sent_back_output_comes_first_in_the_queue(project, owner, annotator, make_outputs):
    from annotate.services.assignments import assignment_claim_next
    from annotate.services.grades import grade_submit
    from annotate.services.review import meeting_send_back, meeting_start

    outputs = make_outputs(n_samples=5, systems=("alpha",))
    target = outputs[3]
    grade_submit(output=target, annotator=annotator, verdict="pass")
    meeting = meeting_start(project=project, started_by=owner)
    meeting_send_back(meeting=meeting, outputs=[target], reason="criterion changed", author=owner)

    claim = assignment_claim_next(project=project, annotator=annotator)

    assert claim.output_id == target.pk and claim.priority == 1
    assert claim.why == "sent back for re-grading by a review meeting: criterion changed"
