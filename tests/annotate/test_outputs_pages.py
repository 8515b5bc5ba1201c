"""The outputs list (search, filters, pagination, permissions, hostile parameters) and the
output page (grade history, verdicts, comparisons, a bounded number of queries)."""

from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotate.models import Assignment, AssignmentStatus, Grade, Output, Role
from annotate.output_search import SearchTerm, _id_list, search_terms, text_search
from annotate.services.assignments import assignment_claim_next, assignment_skip
from annotate.services.criteria import criterion_version_publish
from annotate.services.grades import comparison_submit, grade_retract, grade_submit
from annotate.services.output_actions import outputs_assign, outputs_exclude
from annotate.services.projects import membership_set, project_create
from tests.factories import OutputFactory, SampleFactory, UserFactory
from validators.matrix import forget
from validators.models import PairVerdict, Target, Validator, VerdictRecord

HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "output-results"}


def list_url(project, **params):
    base = reverse("output-list", args=[project.slug])
    return f"{base}?{urlencode(params, doseq=True)}" if params else base


def detail_url(project, output):
    return reverse("output-detail", args=[project.slug, output.pk])


def current_grade_of(annotator, output) -> Grade:
    return Grade.objects.get(output=output, annotator=annotator, superseded_by__isnull=True)


def shown_ids(response) -> list[int]:
    return [row.output.pk for row in response.context["rows"]]


@pytest.fixture
def texts(project):
    """Three inputs, two systems each, with words to search for in every field."""
    rows = [
        ("order-17", "Where is my parcel?", "It ships within two days.",
         {"alpha": "Your parcel left the depot today.", "beta": "Please ask for a refund in the app."}),
        ("order-18", "Can I return the blender?", "Returns are free for thirty days.",
         {"alpha": "Yes, returns are free.", "beta": "No."}),
        ("billing-3", "Why was I charged twice?", None,
         {"alpha": "A duplicate charge is refunded automatically.", "beta": "Contact your bank."}),
    ]
    outputs = {}
    for external_id, question, reference, answers in rows:
        sample = SampleFactory(project=project, external_id=external_id, input_text=question, reference=reference)
        for system, text in answers.items():
            outputs[(external_id, system)] = OutputFactory(sample=sample, project=project, system=system, text=text)
    return outputs


@pytest.mark.django_db
class TestAccess:
    def test_members_of_every_role_see_the_list_and_the_page(self, client, project, owner, annotator, reviewer, texts):
        output = texts[("order-17", "alpha")]
        for user in (owner, annotator, reviewer):
            client.force_login(user)
            assert client.get(list_url(project)).status_code == 200
            assert client.get(detail_url(project, output)).status_code == 200

    def test_outsiders_get_404_and_anonymous_users_the_login_page(self, client, project, outsider, texts):
        output = texts[("order-17", "alpha")]
        client.force_login(outsider)
        assert client.get(list_url(project)).status_code == 404
        assert client.get(detail_url(project, output)).status_code == 404
        client.logout()
        answer = client.get(list_url(project))
        assert answer.status_code == 302 and answer["Location"].startswith("/login/")

    def test_an_output_of_another_project_is_404(self, client, project, owner, reviewer, texts):
        other = project_create(name="Other", slug="other", owner=owner)
        foreign = OutputFactory(sample=SampleFactory(project=other), project=other)
        client.force_login(reviewer)
        assert client.get(reverse("output-detail", args=[project.slug, foreign.pk])).status_code == 404
        assert foreign.pk not in shown_ids(client.get(list_url(project)))


@pytest.mark.django_db
class TestSearch:
    """Runs on SQLite (substring fallback) and on PostgreSQL (websearch full text)."""

    def test_a_word_in_the_output_text(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        assert shown_ids(client.get(list_url(project, q="depot"))) == [texts[("order-17", "alpha")].pk]
        # "refunded" holds "refund" (a substring on SQLite, the same stem on PostgreSQL).
        found = shown_ids(client.get(list_url(project, q="refund")))
        assert sorted(found) == sorted([texts[("order-17", "beta")].pk, texts[("billing-3", "alpha")].pk])

    def test_a_word_in_the_input_finds_every_output_of_that_input(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, q="blender")))
        assert sorted(found) == sorted([texts[("order-18", "alpha")].pk, texts[("order-18", "beta")].pk])

    def test_a_word_in_the_reference(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, q="thirty")))
        assert sorted(found) == sorted([texts[("order-18", "alpha")].pk, texts[("order-18", "beta")].pk])

    def test_every_word_must_match(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        assert shown_ids(client.get(list_url(project, q="parcel depot"))) == [texts[("order-17", "alpha")].pk]
        assert shown_ids(client.get(list_url(project, q="parcel blender"))) == []

    def test_a_minus_excludes_a_word(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, q="parcel -depot")))
        assert found == [texts[("order-17", "beta")].pk]

    def test_or_between_two_words_and_a_quoted_phrase(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        either = shown_ids(client.get(list_url(project, q="blender or depot")))
        phrase = shown_ids(client.get(list_url(project, q='"free for thirty"')))
        assert sorted(either) == sorted(
            [texts[("order-17", "alpha")].pk, texts[("order-18", "alpha")].pk, texts[("order-18", "beta")].pk]
        )
        assert sorted(phrase) == sorted([texts[("order-18", "alpha")].pk, texts[("order-18", "beta")].pk])

    def test_postgres_stems_skips_stop_words_and_reads_the_stored_documents(self, client, project, reviewer, texts, on_postgres):
        if not on_postgres:
            pytest.skip("full text search and its GIN indexes exist on PostgreSQL only")
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, q="the refunds")))
        assert sorted(found) == sorted([texts[("order-17", "beta")].pk, texts[("billing-3", "alpha")].pk])
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # six rows: the planner would scan them
        plan = text_search(Output.objects.filter(project=project), "parcel").explain()
        assert "search_document @@" in plan and "annotate_sample_search" in plan

    def test_search_within_a_system(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, q="returns", system="alpha")))
        assert found == [texts[("order-18", "alpha")].pk]

    def test_the_api_searches_the_same_way(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        answer = client.get(f"/api/projects/{project.slug}/outputs/?q=depot")
        assert answer.status_code == 200
        assert [o["id"] for o in answer.json()["results"]] == [texts[("order-17", "alpha")].pk]


@pytest.mark.django_db
class TestFilters:
    def test_systems_one_or_several(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        alpha = sorted(o.pk for (_, system), o in texts.items() if system == "alpha")
        assert sorted(shown_ids(client.get(list_url(project, system="alpha")))) == alpha
        assert len(shown_ids(client.get(list_url(project, system=["alpha", "beta"])))) == 6

    @pytest.mark.parametrize("yes, no", [("yes", "no"), ("1", "0"), ("true", "false")])
    def test_labelled_in_every_spelling(self, client, project, reviewer, annotator, texts, yes, no):
        graded = texts[("order-17", "alpha")]
        grade_submit(output=graded, annotator=annotator, verdict="pass")
        client.force_login(reviewer)
        assert shown_ids(client.get(list_url(project, labelled=yes))) == [graded.pk]
        assert graded.pk not in shown_ids(client.get(list_url(project, labelled=no)))
        assert len(shown_ids(client.get(list_url(project, labelled=no)))) == 5

    def test_human_verdict_holistic_and_per_criterion(self, client, project, reviewer, annotator, texts, grounded):
        a, b = texts[("order-17", "alpha")], texts[("order-17", "beta")]
        grade_submit(output=a, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
        grade_submit(output=b, annotator=annotator, verdict="fail", criteria={"grounded": "fail"})
        client.force_login(reviewer)
        assert shown_ids(client.get(list_url(project, human="holistic:fail"))) == [b.pk]
        assert shown_ids(client.get(list_url(project, human="grounded:pass"))) == [a.pk]
        # Two verdict filters combine with AND.
        assert shown_ids(client.get(list_url(project, human=["holistic:fail", "grounded:pass"]))) == []

    def test_an_unknown_criterion_is_ignored_with_a_message(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        answer = client.get(list_url(project, human="tone:pass"))
        assert answer.status_code == 200
        assert len(shown_ids(answer)) == 6
        assert answer.context["errors"] == ["Human verdict 'tone:pass' ignored: no criterion 'tone' in this project."]
        assert "no criterion &#x27;tone&#x27; in this project" in answer.content.decode()

    def test_validator_verdict(self, client, project, reviewer, texts):
        judge = Validator.objects.create(project=project, name="mentions refund", kind="code", source="x")
        failed = texts[("order-17", "beta")]
        VerdictRecord.objects.bulk_create(
            [VerdictRecord(validator=judge, output=o, outcome="fail" if o == failed else "pass") for o in texts.values()]
        )
        client.force_login(reviewer)
        assert shown_ids(client.get(list_url(project, validator=f"{judge.pk}:fail"))) == [failed.pk]
        assert len(shown_ids(client.get(list_url(project, validator=f"{judge.pk}:pass")))) == 5
        assert shown_ids(client.get(list_url(project, validator=f"{judge.pk}:error"))) == []

    def test_a_validator_of_another_project_is_ignored(self, client, project, owner, reviewer, texts):
        other = project_create(name="Other", slug="other", owner=owner)
        foreign = Validator.objects.create(project=other, name="theirs", kind="code", source="x")
        client.force_login(reviewer)
        answer = client.get(list_url(project, validator=f"{foreign.pk}:fail"))
        assert len(shown_ids(answer)) == 6
        assert answer.context["errors"] == [
            f"Validator verdict '{foreign.pk}:fail' ignored: no validator #{foreign.pk} in this project."
        ]

    def test_stale(self, client, project, owner, reviewer, annotator, texts, grounded):
        old, fresh = texts[("order-17", "alpha")], texts[("order-18", "alpha")]
        grade_submit(output=old, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
        criterion_version_publish(criterion=grounded, author=owner, definition="Every claim cites a source.",
                                  reason="sources matter")
        grade_submit(output=fresh, annotator=annotator, verdict="pass", criteria={"grounded": "pass"})
        client.force_login(reviewer)
        answer = client.get(list_url(project, stale="1"))
        assert shown_ids(answer) == [old.pk]
        assert answer.context["rows"][0].stale is True

    def test_skipped(self, client, project, reviewer, annotator, texts):
        claim = assignment_claim_next(project=project, annotator=annotator)
        assignment_skip(assignment=claim, annotator=annotator)
        client.force_login(reviewer)
        answer = client.get(list_url(project, skipped="yes"))
        assert shown_ids(answer) == [claim.output_id]
        assert answer.context["rows"][0].skipped is True

    def test_disagreement_with_the_chosen_validator(self, client, project, reviewer, annotator, texts):
        forget()
        project.min_labels_per_class = 2  # two passing labels are all six outputs leave
        project.save()
        judge = Validator.objects.create(project=project, name="alpha is good", kind="code", source="x")
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=judge, output=o, outcome="pass" if o.system == "alpha" else "fail")
            for o in texts.values()
        ])
        odd_one = texts[("billing-3", "alpha")]
        for output in texts.values():
            human = "fail" if output.system == "beta" or output == odd_one else "pass"
            grade_submit(output=output, annotator=annotator, verdict=human)
        client.force_login(reviewer)
        answer = client.get(list_url(project, disagree="1"))
        assert shown_ids(answer) == [odd_one.pk]
        [row] = answer.context["rows"]
        assert [(c.target, c.verdict) for c in row.chosen] == [("holistic", "pass")]
        forget()

    def test_filters_combine(self, client, project, reviewer, annotator, texts):
        for (_, system), output in texts.items():
            grade_submit(output=output, annotator=annotator, verdict="pass" if system == "alpha" else "fail")
        client.force_login(reviewer)
        found = shown_ids(client.get(list_url(project, system="beta", human="holistic:fail", q="refund")))
        assert found == [texts[("order-17", "beta")].pk]


@pytest.mark.django_db
class TestPagesAndSwaps:
    def test_fifty_per_page_and_links_keep_the_filters(self, client, project, reviewer, make_outputs):
        make_outputs(n_samples=60, systems=("alpha", "beta"))
        client.force_login(reviewer)
        first = client.get(list_url(project, system="alpha"))
        second = client.get(list_url(project, system="alpha", page="2"))
        assert len(shown_ids(first)) == 50 and len(shown_ids(second)) == 10
        assert "system=alpha&amp;page=2" in first.content.decode()
        assert not set(shown_ids(first)) & set(shown_ids(second))

    def test_htmx_gets_only_the_results(self, client, project, reviewer, texts):
        client.force_login(reviewer)
        body = client.get(list_url(project, q="depot"), **HTMX_RESULTS).content.decode()
        assert '<div id="output-results"' in body and "<html" not in body
        assert body.count('name="output" value=') == 1

    def test_rows_hold_checkboxes_of_the_bulk_form(self, client, project, reviewer, annotator, texts):
        client.force_login(reviewer)
        body = client.get(list_url(project)).content.decode()
        assert '<form id="output-bulk-form"' in body and 'data-testid="output-bulk-actions"' in body
        assert body.count('type="checkbox" name="output" value=') == 6
        assert body.count('form="output-bulk-form"') == 6
        # Annotators see the list but not the controls.
        client.force_login(annotator)
        body = client.get(list_url(project)).content.decode()
        assert 'data-testid="output-bulk-actions"' not in body

    def test_excluded_and_assigned_outputs_are_flagged_and_filtered(
        self, client, project, owner, reviewer, annotator, texts
    ):
        outputs = list(Output.objects.filter(project=project).order_by("pk"))
        outputs_exclude(project=project, output_ids=[outputs[0].pk], reason="duplicate prompt", by=owner)
        outputs_assign(project=project, output_ids=[outputs[1].pk], annotators=[annotator], by=owner)
        client.force_login(reviewer)
        body = client.get(list_url(project, excluded="1")).content.decode()
        assert body.count('type="checkbox" name="output" value=') == 1
        assert f'data-output="{outputs[0].pk}"' in body and "excluded from sampling</span>" in body
        body = client.get(list_url(project, assigned="yes")).content.decode()
        assert body.count('type="checkbox" name="output" value=') == 1
        assert f'data-output="{outputs[1].pk}"' in body and "assigned to arjun" in body
        page = client.get(reverse("output-detail", args=[project.slug, outputs[0].pk])).content.decode()
        assert 'data-testid="exclusions"' in page and "duplicate prompt" in page

    def test_texts_are_escaped(self, client, project, reviewer):
        sample = SampleFactory(project=project, input_text="<script>alert(1)</script>")
        OutputFactory(sample=sample, project=project, text="<img src=x onerror=alert(2)>")
        client.force_login(reviewer)
        body = client.get(list_url(project)).content.decode()
        assert "<script>alert(1)" not in body and "<img src=x" not in body
        assert "&lt;img src=x onerror=alert(2)&gt;" in body


JUNK = [
    {"page": "abc"}, {"page": "-1"}, {"page": "9" * 40}, {"page": "2.5"},
    {"q": "x" * 20000}, {"q": "refund\x00"}, {"q": "\x00"}, {"q": '"unclosed'}, {"q": "!!! & | :* <->"},
    {"q": "-"}, {"system": "\x00"}, {"system": ["s"] * 500}, {"system": "x" * 5000},
    {"labelled": "maybe"}, {"labelled": "\x00"}, {"human": ":::"}, {"human": "holistic:"}, {"human": "x" * 3000},
    {"validator": "abc:pass"}, {"validator": "1" * 30 + ":pass"}, {"validator": "-1:fail"}, {"validator": "٣:pass"},
    {"disagree": "perhaps"}, {"stale": "2"}, {"skipped": ["1", "0"]},
]


@pytest.mark.django_db
@pytest.mark.parametrize("params", JUNK)
def test_junk_parameters_never_cause_an_error(client, project, reviewer, texts, params):
    client.force_login(reviewer)
    answer = client.get(list_url(project, **params))
    assert answer.status_code == 200
    htmx = client.get(list_url(project, **params), **HTMX_RESULTS)
    assert htmx.status_code == 200


@pytest.mark.django_db
def test_junk_parameters_to_the_api_are_refused_not_crashed(client, project, reviewer, texts):
    client.force_login(reviewer)
    assert client.get(f"/api/projects/{project.slug}/outputs/?q=%00").status_code in (200, 400)
    assert client.get(f"/api/projects/{project.slug}/outputs/?q=" + "x" * 5000).status_code == 400


@pytest.mark.django_db
class TestBlindGrading:
    def test_annotators_see_and_filter_only_their_own_grades(self, client, project, owner, annotator, texts):
        output = texts[("order-17", "alpha")]
        grade_submit(output=output, annotator=owner, verdict="fail", note="owner thinks it invents facts")
        client.force_login(annotator)

        listed = client.get(list_url(project, human="holistic:fail"))
        page = client.get(detail_url(project, output)).content.decode()
        comparing = client.get(list_url(project, disagree="1"))

        assert shown_ids(listed) == []
        assert "owner thinks it invents facts" not in page
        assert 'data-testid="blind-note"' in page
        assert len(shown_ids(comparing)) == 6
        assert "'disagree' was ignored" in comparing.context["errors"][0]


@pytest.mark.django_db
class TestOutputPage:
    def test_grade_history_with_superseded_and_undone_versions(self, client, project, reviewer, annotator, texts, grounded, owner):
        output = texts[("order-17", "alpha")]
        first = grade_submit(output=output, annotator=annotator, verdict="pass", criteria={"grounded": "pass"},
                             note="looks fine")
        criterion_version_publish(criterion=grounded, author=owner, definition="Cites a source.", reason="sources")
        second = grade_submit(output=output, annotator=annotator, verdict="fail", criteria={"grounded": "fail"},
                              note="no source after all")
        grade_submit(output=output, annotator=owner, verdict="pass")
        undone = grade_retract(grade=current_grade_of(owner, output), annotator=owner)
        client.force_login(reviewer)

        answer = client.get(detail_url(project, output))
        record = answer.context["record"]
        body = answer.content.decode()

        histories = {h.annotator.username: [(v.grade.pk, v.current) for v in h.versions] for h in record.histories}
        assert histories["arjun"] == [(second.pk, True), (first.pk, False)]
        assert histories["olivia"][0] == (undone.pk, True) and len(histories["olivia"]) == 2
        assert record.n_current_grades == 1
        assert "looks fine" in body and "no source after all" in body
        assert "grounded: pass <small>v1</small>" in body and "grounded: fail <small>v2</small>" in body
        assert ">undone<" in body

    def test_verdicts_with_details_and_the_cards_choice(self, client, project, reviewer, annotator, texts):
        forget()
        judge = Validator.objects.create(project=project, name="alpha is good", kind="code", source="x")
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=judge, output=o, outcome="pass" if o.system == "alpha" else "fail",
                          detail=f"checked {o.pk}", score=0.5)
            for o in texts.values()
        ])
        for output in texts.values():
            grade_submit(output=output, annotator=annotator, verdict="pass" if output.system == "alpha" else "fail")
        output = texts[("order-17", "beta")]
        client.force_login(reviewer)

        body = client.get(detail_url(project, output)).content.decode()

        assert f'data-validator="{judge.pk}"' in body
        assert f"checked {output.pk}" in body
        assert 'data-testid="chosen-for">chosen: holistic<' in body
        forget()

    def test_comparisons_and_judge_verdicts_link_to_the_other_output(self, client, project, reviewer, annotator, texts):
        this, other = texts[("order-17", "alpha")], texts[("order-17", "beta")]
        comparison_submit(output_a=this, output_b=other, annotator=annotator, choice="b", note="b is polite")
        judge = Validator.objects.create(project=project, name="pair judge", kind="code", source="x", target=Target.PAIR)
        a, b = sorted([this, other], key=lambda o: o.pk)
        PairVerdict.objects.create(validator=judge, output_a=a, output_b=b, winner="a" if a == this else "b")
        client.force_login(reviewer)

        answer = client.get(detail_url(project, this))
        record = answer.context["record"]
        body = answer.content.decode()

        assert [(r.other.pk, r.outcome) for r in record.comparisons] == [(other.pk, "other")]
        assert [(p.other_output_id, p.winner) for p in record.pair_verdicts] == [(other.pk, "this")]
        assert body.count(f'href="{detail_url(project, other)}"') == 2
        assert "b is polite" in body

    def test_the_number_of_queries_does_not_grow_with_the_grades(self, client, project, reviewer, texts, grounded):
        forget()
        output = texts[("order-17", "alpha")]
        judge = Validator.objects.create(project=project, name="alpha is good", kind="code", source="x")
        VerdictRecord.objects.bulk_create([
            VerdictRecord(validator=judge, output=o, outcome="pass" if o.system == "alpha" else "fail")
            for o in texts.values()
        ])
        client.force_login(reviewer)

        def queries_with(n_annotators: int) -> int:
            for i in range(n_annotators):
                person = UserFactory(username=f"grader{i}-{n_annotators}")
                membership_set(project=project, user=person, role=Role.ANNOTATOR)
                grade_submit(output=output, annotator=person, verdict="pass", criteria={"grounded": "fail"},
                             note=f"note {i}")
            client.get(detail_url(project, output))  # the in-memory label log and matrix catch up
            with CaptureQueriesContext(connection) as captured:
                assert client.get(detail_url(project, output)).status_code == 200
            return len(captured)

        few, many = queries_with(1), queries_with(8)
        assert few == many
        assert many <= 40
        forget()


@pytest.mark.django_db
def test_skip_shows_on_the_output_page(client, project, reviewer, annotator, texts):
    claim = assignment_claim_next(project=project, annotator=annotator)
    assignment_skip(assignment=claim, annotator=annotator)
    Assignment.objects.filter(pk=claim.pk).update(closed_at=timezone.now())
    client.force_login(reviewer)
    body = client.get(reverse("output-detail", args=[project.slug, claim.output_id])).content.decode()
    assert 'data-testid="skips"' in body and "arjun" in body
    assert Assignment.objects.get(pk=claim.pk).status == AssignmentStatus.SKIPPED


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(params=st.dictionaries(
    st.sampled_from(["q", "system", "labelled", "human", "validator", "disagree", "stale", "skipped", "page"]),
    st.lists(st.text(max_size=400), min_size=1, max_size=3),
    max_size=5,
))
def test_any_parameters_are_read_or_explained(client, project, reviewer, texts, params):
    """Whatever the query string holds, the page answers 200 with at most the project's outputs."""
    client.force_login(reviewer)
    answer = client.get(list_url(project, **params))
    assert answer.status_code == 200
    assert answer.context["page"].paginator.count <= 6


def test_search_terms_read_web_search_syntax():
    assert search_terms('refund -"store credit" parcel or order  "half') == [
        [SearchTerm("refund")],
        [SearchTerm("store credit", excluded=True, phrase=True)],
        [SearchTerm("parcel"), SearchTerm("order")],
        [SearchTerm("half", phrase=True)],
    ]
    # A leading "or" joins nothing, so it is a word; dashes and empty quotes are nothing.
    assert search_terms('or - -- "" ') == [[SearchTerm("or")]]


@pytest.mark.django_db
def test_a_computed_id_list_takes_more_ids_than_sqlite_takes_variables(project):
    """The `disagree` filter's ids come from Python; 40,000 of them must not hit SQLite's
    limit of 32,766 bind variables (an OperationalError, a 500) nor PostgreSQL's."""
    outputs = [OutputFactory(project=project) for _ in range(3)]
    ids = set(range(10**6, 10**6 + 40_000)) | {outputs[0].pk, outputs[2].pk}

    found = Output.objects.filter(pk__in=_id_list(ids)).order_by("pk").values_list("pk", flat=True)

    assert list(found) == [outputs[0].pk, outputs[2].pk]
    assert not Output.objects.filter(pk__in=_id_list(set())).exists()
