"""The report card for issue 13's judges: pairwise judges against human comparisons, scored
validators at the threshold the card picks, the owners' settings and the pages."""

import json

import numpy as np
import pytest
from django.urls import reverse
from sklearn.metrics import accuracy_score, cohen_kappa_score

from annotate.services.criteria import criterion_create
from annotate.services.grades import comparison_submit, grade_submit
from tests.factories import OutputFactory, SampleFactory
from validators.matrix import forget
from validators.models import (
    PairVerdict,
    PairwiseSetting,
    Provider,
    Suite,
    Validator,
    VerdictRecord,
)
from validators.report_card import report_card

HUMAN = ["a", "b", "a", "tie", "b", "a"]
CODES = {"a": 0, "b": 1, "tie": 2}


@pytest.fixture(autouse=True)
def fresh_matrix_cache(project):
    forget()
    yield
    forget()


def pair_judge(project, name, kind, **fields):
    provider = None
    if kind in ("llm", "rating"):
        provider, _ = Provider.objects.get_or_create(project=project, name="default", defaults={
            "base_url": "http://127.0.0.1:9/v1", "model": "judge-model"})
    return Validator.objects.create(
        project=project, name=name, kind=kind, target="pair", provider=provider,
        source=fields.pop("source", "Which is better?\n{input}\n(a) {output_a}\n(b) {output_b}"), **fields,
    )


def pair_verdicts(judge, pairs, winners, *, first=None, second=None, inconsistent=False, tokens=None):
    PairVerdict.objects.bulk_create([
        PairVerdict(
            validator=judge, output_a=a, output_b=b, winner=w,
            first_winner=(first[i] if first else ""), second_winner=(second[i] if second else ""),
            inconsistent=inconsistent, tokens=tokens,
        )
        for i, ((a, b), w) in enumerate(zip(pairs, winners, strict=True))
    ])


@pytest.fixture
def compared(project, annotator, make_outputs):
    """Six pairs (alpha, beta per input), compared by one annotator: HUMAN in canonical order.
    The last pair was shown with beta on the left, so its 'b' is canonical 'a'."""
    outputs = make_outputs(n_samples=6, systems=("alpha", "beta"))
    pairs = [(outputs[2 * i], outputs[2 * i + 1]) for i in range(6)]
    for (a, b), choice in zip(pairs[:5], HUMAN[:5], strict=True):
        comparison_submit(output_a=a, output_b=b, annotator=annotator, choice=choice)
    comparison_submit(output_a=pairs[5][1], output_b=pairs[5][0], annotator=annotator, choice="b")
    return pairs


@pytest.fixture
def judges(project, compared):
    careful = pair_judge(project, "careful", "llm")
    careful_winners = ["a", "b", "a", "tie", "b", "b"]
    pair_verdicts(careful, compared, careful_winners, first=careful_winners, second=careful_winners, tokens=100)
    biased = pair_judge(project, "biased", "llm")
    # Always the output shown first: a in the first order, b (mapped back) in the second.
    pair_verdicts(biased, compared, ["tie"] * 6, first=["a"] * 6, second=["b"] * 6, inconsistent=True, tokens=40)
    comparator = pair_judge(project, "comparator", "code", source="def compare(output_a, output_b, input, reference, meta):\n    return 0")
    pair_verdicts(comparator, compared, ["a", "b", "a", "a", "b", "a"])
    return careful, biased, comparator


@pytest.mark.django_db
def test_given_pair_judges_when_the_card_is_read_then_metrics_equal_sklearn_and_every_reason_is_given(project, judges):
    careful, biased, comparator = judges

    card = report_card(project).pairwise

    assert (card.floor, card.min_comparisons, card.n_comparisons) == (0.6, project.min_labels_per_class, 6)
    assert card.chosen.validator_id == comparator.pk
    assert card.selection.reason == (
        "highest accuracy (1.00 on 5 comparisons) among judges whose position consistency meets 0.60"
    )
    assert card.selection.why_not == {
        careful.pk: "accuracy 0.80 is below comparator's 1.00",
        biased.pk: ("position consistency 0.00 is below the floor 0.60 "
                    "(it changes its answer when the outputs swap places)"),
    }
    by_id = {c.validator_id: c for c in card.candidates}
    human = np.array([CODES[c] for c in HUMAN])
    judge = np.array([CODES[c] for c in ["a", "b", "a", "tie", "b", "b"]])
    decided = human != CODES["tie"]
    m = by_id[careful.pk].metrics
    assert m.accuracy == accuracy_score(human[decided], judge[decided]) == 0.8
    assert m.kappa == pytest.approx(cohen_kappa_score(human, judge, labels=[0, 1, 2]))
    assert (m.n_pairs, m.n_decided, m.accuracy_ties_half, m.consistency, m.first_position_rate, m.error_rate) == (
        6, 5, 5 / 6, 1.0, 0.5, 0.0)
    assert by_id[careful.pk].cost == 100.0
    assert by_id[biased.pk].metrics.consistency == 0.0
    assert by_id[biased.pk].metrics.first_position_rate == 1.0
    assert by_id[biased.pk].cost == 40.0
    # A comparator is asked once: no consistency to hold against the floor, and it costs nothing.
    assert (by_id[comparator.pk].metrics.consistency, by_id[comparator.pk].cost) == (None, 0.0)


@pytest.mark.django_db
def test_given_an_owners_floor_pin_and_exclusion_then_the_card_follows_them(client, project, owner, judges):
    careful, biased, comparator = judges
    client.force_login(owner)

    response = client.post(reverse("pairwise-setting", args=[project.slug]), {
        "consistency_floor": "0", "excluded": [str(comparator.pk)],
    })

    assert response.status_code == 302
    card = report_card(project).pairwise
    assert card.floor == 0.0 and card.excluded == (comparator.pk,)
    assert card.chosen.validator_id == careful.pk
    assert card.selection.why_not == {
        comparator.pk: "excluded by an owner", biased.pk: "accuracy 0.00 is below careful's 0.80",
    }

    client.post(reverse("pairwise-setting", args=[project.slug]), {"pinned": str(biased.pk)})

    card = report_card(project).pairwise
    assert (card.floor, card.chosen.validator_id, card.selection.reason) == (0.6, biased.pk, "pinned by an owner")


@pytest.mark.django_db
def test_given_an_annotator_or_a_bad_floor_then_nothing_is_saved(client, project, annotator, owner, judges):
    client.force_login(annotator)
    refused = client.post(reverse("pairwise-setting", args=[project.slug]), {"consistency_floor": "0.2"})
    client.force_login(owner)
    for floor in ("1.5", "nan", "abc", "1e999"):
        answer = client.post(reverse("pairwise-setting", args=[project.slug]), {"consistency_floor": floor})
        assert answer.status_code == 302

    assert refused.status_code == 403
    assert PairwiseSetting.objects.count() == 0


@pytest.mark.django_db
def test_given_no_pair_judge_and_no_comparison_then_there_is_no_pairwise_section(project, make_outputs):
    make_outputs(n_samples=2)

    assert report_card(project).pairwise is None
    assert report_card(project).to_dict()["pairwise"] is None


@pytest.mark.django_db
def test_given_comparisons_but_no_judge_then_the_section_says_so(project, compared):
    card = report_card(project).pairwise

    assert (card.n_comparisons, card.chosen, card.selection.reason) == (6, None, "no pairwise judge has verdicts yet")


@pytest.fixture
def scored(project, annotator):
    """Ten graded outputs, the first four failing on 'grounded', an external judge's scores
    stored without a threshold, and a code validator with a fixed threshold."""
    outputs = []
    for i in range(5):
        sample = SampleFactory(project=project, external_id=f"s{i}", input_text=f"Summarise {i}.")
        outputs += [OutputFactory(sample=sample, project=project, system=s, text=f"{s} sums up {i}.")
                    for s in ("alpha", "beta")]
    grounded = criterion_create(project=project, key="grounded", definition="Supported by the article.")
    for index, output in enumerate(outputs):
        verdict = "fail" if index < 4 else "pass"
        grade_submit(output=output, annotator=annotator, verdict=verdict, criteria={"grounded": verdict})
    imported = Validator.objects.create(project=project, name="imported scores", kind="external", criterion=grounded)
    scores = [0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9, 0.95, 0.4]
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=imported, output=o, outcome="score", score=s) for o, s in zip(outputs, scores, strict=True)
    ])
    fixed = Validator.objects.create(
        project=project, name="length", kind="code", criterion=grounded, threshold=0.5,
        source="def check(output, input, reference, meta):\n    return 1.0",
    )
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=fixed, output=o, outcome="fail" if i < 2 else "pass", score=0.2 if i < 2 else 0.8)
        for i, o in enumerate(outputs)
    ])
    return outputs, grounded, imported, fixed


@pytest.mark.django_db
def test_given_a_scored_validator_then_the_card_picks_its_threshold_and_chooses_it(project, scored):
    outputs, grounded, imported, fixed = scored

    card = report_card(project)

    entry = next(c for c in card.criteria if c.key == "grounded")
    assert entry.sweeps[imported.pk].threshold == 0.4
    assert entry.sweeps[imported.pk].reason == "threshold picked: 0.4 (alignment 0.86, FFR 0.00; 10 thresholds tried)"
    assert entry.selection.chosen.validator_id == imported.pk
    chosen = entry.selection.chosen.metrics
    assert (chosen.tp, chosen.fn, chosen.fp, chosen.tn) == (3, 1, 0, 6)
    candidates = {c["name"]: c for c in entry.to_dict()["candidates"]}
    assert (candidates["imported scores"]["threshold"], candidates["imported scores"]["threshold_source"]) == (0.4, "picked")
    assert (candidates["length"]["threshold"], candidates["length"]["threshold_source"]) == (0.5, "fixed")
    assert card.threshold_of(imported.pk) == (0.4, "picked")
    assert card.suite.coverage == 0.75 and card.suite.false_failure_rate == 0.0


@pytest.mark.django_db
def test_report_card_page_shows_thresholds_and_the_pairwise_judge(client, project, owner, scored, judges):
    _, _, imported, _ = scored
    careful, biased, comparator = judges
    client.force_login(owner)

    page = client.get(reverse("report-card", args=[project.slug]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "threshold picked: 0.4" in html
    assert f'<canvas data-threshold-chart="{imported.pk}"' in html
    curves = json.loads(html.split('<script id="threshold-data" type="application/json">')[1].split("</script>")[0])
    assert curves[str(imported.pk)]["chosen"] == 0.4
    assert curves[str(imported.pk)]["thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert f'<strong data-pairwise-chosen="{comparator.pk}">comparator</strong>' in html
    assert "highest accuracy (1.00 on 5 comparisons) among judges whose position consistency meets 0.60" in html
    assert "accuracy 0.80 is below comparator&#x27;s 1.00" in html
    assert "Measured on 6 compared pairs · position consistency floor 0.60" in html
    assert 'action="/p/support-bot/pairwise-settings/"' in html
    assert '<script src="/static/thresholds.js" defer></script>' in html


@pytest.mark.django_db
def test_annotators_see_the_card_without_the_settings_form(client, project, annotator, judges):
    client.force_login(annotator)

    html = client.get(reverse("report-card", args=[project.slug])).content.decode()

    assert "Pairwise judge" in html and "pairwise-settings" not in html


@pytest.mark.django_db
def test_verdict_matrix_has_a_pairs_view_and_shows_scores(client, project, owner, scored, judges):
    outputs, _, imported, _ = scored
    careful, biased, comparator = judges
    client.force_login(owner)

    pairs_page = client.get(reverse("verdict-matrix", args=[project.slug]) + "?view=pairs")
    outputs_page = client.get(reverse("verdict-matrix", args=[project.slug]))

    rows = pairs_page.context["pair_rows"]
    assert pairs_page.status_code == 200
    assert [j.name for j in pairs_page.context["judges"]] == ["careful", "biased", "comparator"]
    compared = [r for r in rows if r.human]
    assert [r.human for r in compared] == HUMAN
    assert [c.winner for c in compared[5].cells] == ["b", "tie", "a"]
    html = pairs_page.content.decode()
    assert 'tie<sup title="the two orders disagreed">≠</sup>' in html
    assert outputs_page.status_code == 200
    assert "biased" not in [v.name for v in outputs_page.context["validators"]]
    assert ">0.95<" in outputs_page.content.decode()


@pytest.mark.django_db
def test_a_suite_of_only_a_pairwise_judge_is_saved_from_the_page_and_shown(client, project, owner, judges):
    careful, biased, comparator = judges
    client.force_login(owner)

    saved = client.post(reverse("suite-save", args=[project.slug]), {"name": "Judges"})

    suite = Suite.objects.get()
    assert saved.status_code == 302 and saved["Location"] == reverse("suite-detail", args=[project.slug, suite.pk])
    assert [v.pk for v in suite.validators.all()] == [comparator.pk]
    assert suite.snapshot["pairwise"]["chosen"] == comparator.pk
    page = client.get(saved["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["pairwise_row"]["saved_chosen"]["name"] == "comparator"
    assert "<td>comparator</td>" in html
    assert '<td class="num">1.00 → 1.00</td>' in html
    assert '<td class="num">— → —</td>' in html


@pytest.mark.django_db
def test_given_scores_under_a_fixed_threshold_or_no_scores_then_nothing_is_picked(project, scored):
    outputs, grounded, imported, fixed = scored
    rated = Validator.objects.create(project=project, name="fixed 0.7", kind="external", criterion=grounded,
                                     threshold=0.7)
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=rated, output=o, outcome="score", score=0.7 if i >= 4 else 0.2)
        for i, o in enumerate(outputs)
    ])
    verdicts_only = Validator.objects.create(project=project, name="imported verdicts", kind="external",
                                             criterion=grounded)
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=verdicts_only, output=o, outcome="fail" if i < 4 else "pass")
        for i, o in enumerate(outputs)
    ])

    entry = next(c for c in report_card(project).criteria if c.key == "grounded")

    assert entry.threshold_of(rated.pk) == (0.7, "fixed")
    assert entry.threshold_of(verdicts_only.pk) == (None, None)
    ranked = {r.candidate.name: r.candidate.metrics for r in entry.selection.ranked}
    # 0.7 stored is 0.699999988 in the float32 matrix; it must still pass at 0.7.
    assert (ranked["fixed 0.7"].tp, ranked["fixed 0.7"].tn) == (4, 6)
    assert (ranked["imported verdicts"].tp, ranked["imported verdicts"].tn) == (4, 6)
