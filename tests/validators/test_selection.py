"""validators.selection: the EvalGen rule, its reasons, the suite and the smallest suite."""

import itertools
import json
import random

import numpy as np
import pytest

from validators.alignment import alignment_metrics, metrics_from_counts
from validators.selection import (
    REASON_ALL_EXCLUDED,
    REASON_CATCHES_NOTHING,
    REASON_NO_CANDIDATES,
    REASON_NO_VERDICTS,
    REASON_PINNED,
    STATUSES,
    Candidate,
    select_validator,
    smallest_suite,
    suite_metrics,
    suite_verdicts,
)

CEILING = 0.25
MIN_LABELS = 3


def candidate(validator_id, *, tp, fn, fp, tn, n_error=0, n_missing=0, kind="code", name=None):
    return Candidate(
        validator_id=validator_id,
        kind=kind,
        name=name or f"v{validator_id}",
        metrics=metrics_from_counts(
            tp=tp, fn=fn, fp=fp, tn=tn, n_error=n_error, n_missing=n_missing
        ),
    )


def select(candidates, **overrides):
    options = {"ffr_ceiling": CEILING, "min_labels": MIN_LABELS, **overrides}
    return select_validator(candidates, **options)


def summary(selection):
    return [
        (entry.candidate.validator_id, entry.status, entry.reason) for entry in selection.ranked
    ]


# coverage 0.8, FFR 0.1: alignment 2*0.8*0.9/1.7 = 144/170 = 0.847
GOOD = {"tp": 8, "fn": 2, "fp": 1, "tn": 9}


# the rule and its reasons


def test_every_candidate_is_ranked_with_its_status_and_reason():
    # Given one candidate of every kind of outcome
    candidates = [
        candidate(2, tp=6, fn=4, fp=2, tn=8, kind="llm"),  # alignment 96/140 = 0.686
        candidate(3, tp=10, fn=0, fp=4, tn=6),  # FFR 0.4
        candidate(1, **GOOD),
        candidate(4, tp=2, fn=0, fp=0, tn=5, kind="llm"),
        candidate(5, tp=0, fn=0, fp=0, tn=0, n_error=5),
        candidate(6, **GOOD),
    ]

    # When
    selection = select(candidates, excluded={6})

    # Then
    assert selection.chosen.validator_id == 1
    assert selection.reason == "highest alignment (0.85) among 2 qualifying candidates"
    assert summary(selection) == [
        (1, "chosen", "highest alignment (0.85) among 2 qualifying candidates"),
        (2, "lower_alignment", "lower alignment (0.69 < 0.85)"),
        (3, "ffr_above_ceiling", "FFR 0.40 above the ceiling 0.25"),
        (4, "too_few_labels", "2 failing grades so far; 3 needed"),
        (5, "no_verdicts", "no pass/fail verdict on a labelled output (5 errors)"),
        (6, "excluded", "excluded"),
    ]
    assert [entry.rank for entry in selection.ranked] == [1, 2, 3, 4, 5, 6]
    assert {entry.status for entry in selection.ranked} <= set(STATUSES)


def test_the_only_qualifying_candidate_says_so():
    selection = select([candidate(1, **GOOD), candidate(2, tp=10, fn=0, fp=4, tn=6)])

    assert selection.reason == "the only qualifying candidate (alignment 0.85)"


def test_ranking_does_not_depend_on_input_order():
    candidates = [candidate(i, tp=5 + i % 4, fn=5 - i % 4, fp=i % 3, tn=8) for i in range(1, 9)]
    expected = summary(select(candidates))

    shuffled = candidates[:]
    random.Random(0).shuffle(shuffled)

    assert summary(select(shuffled)) == expected


def test_equal_alignment_goes_to_the_lower_ffr():
    # Given coverage 0.9 / FFR 0.2 and coverage 0.8 / FFR 0.1: the same harmonic mean 144/170
    wide = candidate(1, tp=9, fn=1, fp=2, tn=8)
    careful = candidate(2, **GOOD)
    assert wide.metrics.alignment == careful.metrics.alignment

    # When
    selection = select([wide, careful])

    # Then
    assert summary(selection) == [
        (2, "chosen", "highest alignment (0.85) among 2 qualifying candidates;"
         " tie broken by lower FFR"),
        (1, "lower_alignment", "same alignment (0.85), higher FFR (0.20 > 0.10)"),
    ]


def test_equal_alignment_and_ffr_goes_to_code_before_llm():
    selection = select([candidate(1, **GOOD, kind="llm"), candidate(2, **GOOD, kind="code")])

    assert summary(selection) == [
        (2, "chosen", "highest alignment (0.85) among 2 qualifying candidates;"
         " tie broken by kind (code before llm: fixed verdicts before LLM calls)"),
        (1, "lower_alignment", "same alignment (0.85) and FFR; llm ranks after code"),
    ]


def test_an_imported_judge_tied_with_an_llm_is_named_as_external():
    selection = select([candidate(1, **GOOD, kind="rating"), candidate(2, **GOOD, kind="external")])

    assert summary(selection) == [
        (2, "chosen", "highest alignment (0.85) among 2 qualifying candidates;"
         " tie broken by kind (external before rating: fixed verdicts before LLM calls)"),
        (1, "lower_alignment", "same alignment (0.85) and FFR; rating ranks after external"),
    ]


def test_then_the_lower_skip_rate():
    selection = select([candidate(1, **GOOD, n_error=1), candidate(2, **GOOD)])

    assert summary(selection) == [
        (2, "chosen", "highest alignment (0.85) among 2 qualifying candidates;"
         " tie broken by lower skip rate"),
        (1, "lower_alignment", "same alignment (0.85), FFR and kind; higher skip rate"
         " (0.05 > 0.00)"),
    ]


def test_then_the_lower_validator_id():
    selection = select([candidate(7, **GOOD, n_missing=4), candidate(3, **GOOD)])

    assert summary(selection) == [
        (3, "chosen", "highest alignment (0.85) among 2 qualifying candidates;"
         " tie broken by lower validator id"),
        (7, "lower_alignment", "same alignment (0.85), FFR, kind and skip rate;"
         " higher validator id (7 > 3)"),
    ]


def test_alignment_beats_every_tie_break():
    # Given an llm candidate with a higher skip rate and FFR but better alignment
    better = candidate(9, tp=10, fn=0, fp=2, tn=8, n_error=3, kind="llm")  # 160/180 = 0.889
    selection = select([candidate(1, **GOOD), better])

    assert selection.chosen.validator_id == 9


def test_ffr_exactly_at_the_ceiling_qualifies():
    at_quarter = candidate(1, tp=3, fn=0, fp=1, tn=3)
    at_three_tenths = candidate(2, tp=3, fn=0, fp=3, tn=7)

    assert select([at_quarter]).chosen == at_quarter
    assert select([at_three_tenths], ffr_ceiling=0.3).chosen == at_three_tenths


def test_reasons_show_enough_decimals_to_tell_ffr_from_the_ceiling():
    selection = select([candidate(1, tp=10, fn=0, fp=2501, tn=7499)])

    assert summary(selection) == [(1, "ffr_above_ceiling", "FFR 0.2501 above the ceiling 0.2500")]
    assert selection.reason == (
        "every candidate's false failure rate is above the ceiling 0.2500 (best: 0.2501)"
    )


def test_lower_alignment_shows_enough_decimals_to_differ():
    # 2*10*8 / (10*10 + 8*11) = 160/188 = 0.85106 against 144/170 = 0.84706
    selection = select([candidate(1, **GOOD), candidate(2, tp=10, fn=1, fp=2, tn=8)])

    assert summary(selection)[1] == (1, "lower_alignment", "lower alignment (0.847 < 0.851)")


# when nothing qualifies


def test_no_candidates():
    selection = select([])

    assert (selection.chosen, selection.reason, selection.ranked) == (
        None, REASON_NO_CANDIDATES, []
    )
    assert REASON_NO_CANDIDATES == "no candidate validators"


def test_too_few_failing_grades():
    selection = select([candidate(1, tp=2, fn=0, fp=0, tn=8)])

    assert selection.chosen is None
    assert selection.reason == "2 failing grades so far; 3 needed"


def test_too_few_passing_grades_singular():
    selection = select([candidate(1, tp=3, fn=2, fp=0, tn=1)])

    assert selection.reason == "1 passing grade so far; 3 needed"


def test_too_few_of_both():
    selection = select([candidate(1, tp=1, fn=0, fp=0, tn=0)])

    assert selection.reason == "1 failing grade and 0 passing grades so far; 3 of each needed"


def test_too_few_labels_reports_the_candidate_nearest_to_qualifying():
    # Given a candidate with more verdicts on labelled outputs than the others
    candidates = [
        candidate(1, tp=0, fn=1, fp=0, tn=1),
        candidate(2, tp=1, fn=1, fp=1, tn=3),
        candidate(3, tp=1, fn=0, fp=0, tn=2, n_missing=3),
    ]

    selection = select(candidates, min_labels=3)

    assert selection.reason == "2 failing grades so far; 3 needed"


def test_every_ffr_above_the_ceiling_reports_the_best():
    candidates = [candidate(1, tp=5, fn=0, fp=40, tn=60), candidate(2, tp=5, fn=0, fp=31, tn=69)]

    selection = select(candidates)

    assert selection.chosen is None
    assert selection.reason == (
        "every candidate's false failure rate is above the ceiling 0.25 (best: 0.31)"
    )
    assert [entry.status for entry in selection.ranked] == ["ffr_above_ceiling"] * 2


def test_ffr_above_ceiling_alongside_too_few_labels():
    candidates = [candidate(1, tp=5, fn=0, fp=31, tn=69), candidate(2, tp=1, fn=0, fp=0, tn=9)]

    selection = select(candidates)

    assert selection.reason == (
        "every candidate with enough grades has a false failure rate above the ceiling 0.25"
        " (best: 0.31)"
    )


def test_every_candidate_excluded():
    selection = select([candidate(1, **GOOD), candidate(2, **GOOD)], excluded=[1, 2])

    assert selection.chosen is None
    assert selection.reason == REASON_ALL_EXCLUDED
    assert [entry.status for entry in selection.ranked] == ["excluded", "excluded"]


def test_no_candidate_with_verdicts():
    candidates = [
        candidate(1, tp=0, fn=0, fp=0, tn=0, n_error=2, n_missing=1),
        candidate(2, tp=0, fn=0, fp=0, tn=0, n_missing=1),
    ]

    selection = select(candidates)

    assert selection.reason == REASON_NO_VERDICTS
    assert summary(selection) == [
        (1, "no_verdicts", "no pass/fail verdict on a labelled output (2 errors, 1 not run)"),
        (2, "no_verdicts", "no pass/fail verdict on a labelled output (1 not run)"),
    ]


def test_no_labels_at_all_is_too_few_labels_not_missing_verdicts():
    selection = select([candidate(1, tp=0, fn=0, fp=0, tn=0)])

    assert summary(selection) == [
        (1, "too_few_labels", "0 failing grades and 0 passing grades so far; 3 of each needed")
    ]


# excluded and pinned


def test_an_excluded_candidate_is_never_chosen_even_when_best():
    best = candidate(1, tp=10, fn=0, fp=0, tn=10)

    selection = select([best, candidate(2, **GOOD)], excluded=[1])

    assert selection.chosen.validator_id == 2
    assert summary(selection)[-1] == (1, "excluded", "excluded")


def test_a_pin_overrides_the_rule_even_above_the_ceiling():
    # Given a pinned candidate over the ceiling and two that qualify
    pinned = candidate(3, tp=10, fn=0, fp=4, tn=6, name="regex_refusal")
    candidates = [candidate(1, **GOOD), candidate(2, tp=6, fn=4, fp=2, tn=8), pinned]

    # When
    selection = select(candidates, pinned=3)

    # Then it is chosen, its metrics are kept, and the others say why they lost
    assert selection.chosen == pinned
    assert selection.reason == REASON_PINNED == "pinned by an owner"
    assert selection.ranked[0].candidate.metrics.false_failure_rate == 0.4
    assert summary(selection) == [
        (3, "chosen", "pinned by an owner; FFR 0.40 above the ceiling 0.25"),
        (1, "not_pinned", "qualifies, but an owner pinned regex_refusal"),
        (2, "not_pinned", "qualifies, but an owner pinned regex_refusal"),
    ]


def test_a_qualifying_pin_ranks_the_others_against_it():
    pinned = candidate(2, tp=6, fn=4, fp=2, tn=8, name="judge")  # 0.69
    candidates = [candidate(1, **GOOD), pinned, candidate(3, tp=5, fn=5, fp=2, tn=8)]  # 80/130

    selection = select(candidates, pinned=2)

    assert summary(selection) == [
        (2, "chosen", "pinned by an owner"),
        (1, "not_pinned", "qualifies, but an owner pinned judge"),
        (3, "lower_alignment", "lower alignment (0.62 < 0.69)"),
    ]


def test_a_pin_on_an_excluded_candidate_is_ignored():
    selection = select([candidate(1, **GOOD), candidate(2, **GOOD)], pinned=1, excluded=[1])

    assert selection.chosen.validator_id == 2
    assert selection.reason == "the only qualifying candidate (alignment 0.85)"
    assert summary(selection)[-1] == (1, "excluded", "excluded; its pin is ignored")


def test_a_pin_on_an_unknown_id_is_ignored():
    selection = select([candidate(1, **GOOD)], pinned=99)

    assert selection.chosen.validator_id == 1
    assert selection.reason == "the only qualifying candidate (alignment 0.85)"


# input checks and serialisation


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ffr_ceiling": 1.5}, "ffr_ceiling"),
        ({"ffr_ceiling": -0.1}, "ffr_ceiling"),
        ({"min_labels": 0}, "min_labels"),
    ],
)
def test_select_validator_rejects_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        select([candidate(1, **GOOD)], **options)


def test_select_validator_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="distinct"):
        select([candidate(1, **GOOD), candidate(1, **GOOD)])


def test_candidate_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        candidate(1, **GOOD, kind="regex")


def test_selection_to_dict_is_json_ready():
    selection = select([candidate(1, **GOOD), candidate(2, tp=10, fn=0, fp=4, tn=6)])

    as_dict = json.loads(json.dumps(selection.to_dict()))

    assert as_dict["chosen"] == 1
    assert as_dict["reason"] == "the only qualifying candidate (alignment 0.85)"
    assert [(r["validator_id"], r["rank"], r["status"]) for r in as_dict["ranked"]] == [
        (1, 1, "chosen"), (2, 2, "ffr_above_ceiling"),
    ]
    assert as_dict["ranked"][0]["metrics"]["coverage"] == 0.8
    assert as_dict["ranked"][0]["kind"] == "code"
    assert as_dict["ranked"][0]["name"] == "v1"


def test_selection_on_alignment_table_output():
    # Given real verdict columns: a strict and a lenient check
    human = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, -1], dtype=np.int8)
    strict = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0], dtype=np.int8)  # FFR 0.4
    lenient = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], dtype=np.int8)  # coverage 0.75, FFR 0
    candidates = [
        Candidate(1, "code", "strict", alignment_metrics(human, strict)),
        Candidate(2, "llm", "lenient", alignment_metrics(human, lenient)),
    ]

    selection = select(candidates)

    assert selection.chosen.name == "lenient"
    assert summary(selection)[1] == (1, "ffr_above_ceiling", "FFR 0.40 above the ceiling 0.25")


# suite


def test_suite_verdicts_follow_the_documented_rules():
    chosen = np.array(
        [
            [1, 1],  # every one passes -> pass
            [1, 0],  # any fail -> fail
            [-1, 0],  # a fail beside an error is still a fail
            [-2, 0],
            [1, -1],  # pass beside an error: unknown, counted as error
            [1, -2],  # pass beside not run: unknown, missing
            [-1, -2],  # error beside not run: error
            [-2, -2],  # no verdict at all: missing
        ],
        dtype=np.int8,
    )

    assert suite_verdicts(chosen).tolist() == [1, 0, 0, 0, -1, -2, -1, -2]
    assert suite_verdicts(chosen).dtype == np.int8


def test_an_empty_suite_has_no_verdicts():
    assert suite_verdicts(np.zeros((3, 0), dtype=np.int8)).tolist() == [-2, -2, -2]

    metrics = suite_metrics(np.array([0, 1, 1], dtype=np.int8), np.zeros((3, 0), dtype=np.int8))

    assert (metrics.n_validators, metrics.n_missing, metrics.coverage) == (0, 3, None)


def test_suite_metrics_exact_counts():
    # Given two validators over 8 labelled outputs and one unlabelled
    human = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1], dtype=np.int8)
    chosen = np.array(
        [[0, 1], [1, 0], [1, 1], [-1, 1], [1, 1], [0, 1], [1, -1], [1, 1], [0, 0]],
        dtype=np.int8,
    )

    # When
    metrics = suite_metrics(human, chosen)

    # Then tp 2 (rows 0, 1), fn 1 (row 2), row 3 unknown; fp 1 (row 5), tn 2, row 6 unknown
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (2, 1, 1, 2)
    assert (metrics.n_fail, metrics.n_pass, metrics.n_error, metrics.n_missing) == (3, 3, 2, 0)
    assert metrics.coverage == 2 / 3
    assert metrics.false_failure_rate == 1 / 3
    assert metrics.skip_rate == 2 / 8
    assert metrics.n_validators == 2
    assert json.loads(json.dumps(metrics.to_dict()))["coverage_ci"] == list(metrics.coverage_ci)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suite_metrics_match_a_loop_over_outputs(seed):
    rng = np.random.default_rng(seed)
    human = rng.choice([-1, 0, 1], size=300).astype(np.int8)
    chosen = rng.choice([1, 0, -1, -2], size=(300, 3), p=[0.6, 0.2, 0.1, 0.1]).astype(np.int8)
    expected = []
    for row in chosen.tolist():
        if 0 in row:
            expected.append(0)
        elif all(v == 1 for v in row):
            expected.append(1)
        elif -1 in row:
            expected.append(-1)
        else:
            expected.append(-2)

    metrics = suite_metrics(human, chosen)

    reference = alignment_metrics(human, np.array(expected, dtype=np.int8))
    assert (metrics.tp, metrics.fn, metrics.fp, metrics.tn) == (
        reference.tp, reference.fn, reference.fp, reference.tn
    )
    assert (metrics.coverage, metrics.false_failure_rate, metrics.ffr_ci) == (
        reference.coverage, reference.false_failure_rate, reference.ffr_ci
    )
    assert (metrics.n_error, metrics.n_missing) == (reference.n_error, reference.n_missing)


# smallest suite


def brute_force(human, verdict_matrix, *, min_coverage, max_ffr):
    """Every subset by size; the first of the best tp - fp at the smallest feasible size."""
    for size in range(1, verdict_matrix.shape[1] + 1):
        best = None
        for columns in itertools.combinations(range(verdict_matrix.shape[1]), size):
            metrics = suite_metrics(human, verdict_matrix[:, list(columns)])
            if (
                metrics.coverage is not None
                and metrics.coverage >= min_coverage
                and metrics.false_failure_rate is not None
                and metrics.false_failure_rate <= max_ffr
                and (best is None or metrics.tp - metrics.fp > best[0])
            ):
                best = (metrics.tp - metrics.fp, list(columns))
        if best is not None:
            return best[1]
    return None


def random_instance(seed):
    rng = np.random.default_rng(seed)
    n_outputs, n_validators = int(rng.integers(3, 40)), int(rng.integers(1, 7))
    human = rng.choice([-1, 0, 1], size=n_outputs, p=[0.1, 0.45, 0.45]).astype(np.int8)
    unknown = rng.choice([0.0, 0.05, 0.3])
    verdicts = rng.choice(
        [1, 0, -1, -2],
        size=(n_outputs, n_validators),
        p=[0.6 - unknown / 2, 0.4 - unknown / 2, unknown / 2, unknown / 2],
    ).astype(np.int8)
    targets = {
        "min_coverage": float(rng.choice([0.3, 0.5, 0.6, 0.75, 0.9, 1.0])),
        "max_ffr": float(rng.choice([0.0, 0.1, 0.25, 0.4, 0.5, 1.0])),
    }
    return human, verdicts, targets


def test_random_instances_cover_feasible_and_infeasible_and_several_sizes():
    sizes = []
    for seed in range(120):
        human, verdicts, targets = random_instance(seed)
        found = brute_force(human, verdicts, **targets)
        sizes.append(0 if found is None else len(found))

    assert np.bincount(sizes).tolist() == [82, 27, 9, 2]


@pytest.mark.parametrize("seed_block", range(4))
def test_smallest_suite_by_enumeration_equals_brute_force(seed_block):
    for seed in range(seed_block * 30, seed_block * 30 + 30):
        human, verdicts, targets = random_instance(seed)

        assert smallest_suite(human, verdicts, **targets) == brute_force(
            human, verdicts, **targets
        ), seed


@pytest.mark.parametrize("max_enumerated", [0, 3])
@pytest.mark.parametrize("seed_block", range(4))
def test_smallest_suite_by_integer_programme_matches_brute_force(max_enumerated, seed_block):
    # max_enumerated=0 solves everything as the programme; 3 mixes both
    for seed in range(seed_block * 30, seed_block * 30 + 30):
        human, verdicts, targets = random_instance(seed)
        expected = brute_force(human, verdicts, **targets)

        found = smallest_suite(human, verdicts, **targets, max_enumerated=max_enumerated)

        if expected is None:
            assert found is None, seed
            continue
        found_metrics = suite_metrics(human, verdicts[:, found])
        expected_metrics = suite_metrics(human, verdicts[:, expected])
        assert len(found) == len(expected), seed
        assert found_metrics.tp - found_metrics.fp == expected_metrics.tp - expected_metrics.fp
        assert found_metrics.coverage >= targets["min_coverage"]
        assert found_metrics.false_failure_rate <= targets["max_ffr"]


def modes_instance(n_outputs=300, n_validators=9, seed=0):
    """Three failure modes; validator j catches most of mode j % 3 and rarely fails a pass."""
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 2, n_outputs).astype(np.int8)
    mode = rng.integers(0, 3, n_outputs)
    verdicts = np.ones((n_outputs, n_validators), dtype=np.int8)
    for j in range(n_validators):
        caught = (human == 0) & (mode == j % 3) & (rng.random(n_outputs) < 0.95)
        false = (human == 1) & (rng.random(n_outputs) < 0.03)
        verdicts[caught | false, j] = 0
    return human, verdicts


@pytest.mark.parametrize("max_enumerated", [0, 20_000])
def test_three_failure_modes_need_three_validators(max_enumerated):
    # Given three failure modes, each caught by three of the nine validators
    human, verdicts = modes_instance()
    expected = brute_force(human, verdicts, min_coverage=0.9, max_ffr=0.1)

    # When
    found = smallest_suite(
        human, verdicts, min_coverage=0.9, max_ffr=0.1, max_enumerated=max_enumerated
    )

    # Then one validator per mode
    assert expected == [1, 2, 3]
    assert sorted(j % 3 for j in found) == [0, 1, 2]
    metrics = suite_metrics(human, verdicts[:, found])
    expected_metrics = suite_metrics(human, verdicts[:, expected])
    assert metrics.tp - metrics.fp == expected_metrics.tp - expected_metrics.fp


def test_an_unreachable_target_gives_none():
    human, verdicts = modes_instance()

    assert smallest_suite(human, verdicts, min_coverage=0.9, max_ffr=0.0) is None
    assert smallest_suite(human, verdicts, min_coverage=0.9, max_ffr=0.0, max_enumerated=0) is None


def test_an_unknown_suite_verdict_leaves_the_output_out_of_the_targets():
    # Given validator 0 catches every failing output but errors on every passing one, so on
    # its own its FFR is undefined; validator 1 passes everything
    human = np.array([0, 0, 1, 1], dtype=np.int8)
    verdicts = np.array([[0, 1], [0, 1], [-1, 1], [-1, 1]], dtype=np.int8)

    # When / Then: no suite has a defined FFR and full coverage (the pair's passes are unknown)
    for max_enumerated in (0, 20_000):
        assert (
            smallest_suite(
                human, verdicts, min_coverage=1.0, max_ffr=1.0, max_enumerated=max_enumerated
            )
            is None
        )


def test_smallest_suite_without_both_classes_or_validators_gives_none():
    verdicts = np.zeros((3, 2), dtype=np.int8)

    assert smallest_suite(np.array([0, 0, -1]), verdicts, min_coverage=0.5, max_ffr=1.0) is None
    assert smallest_suite(np.array([1, 1, 1]), verdicts, min_coverage=0.5, max_ffr=1.0) is None
    assert smallest_suite(
        np.array([0, 1, 1]), np.zeros((3, 0), np.int8), min_coverage=0.5, max_ffr=1.0
    ) is None


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"min_coverage": 0.0, "max_ffr": 0.2}, "min_coverage"),
        ({"min_coverage": 1.1, "max_ffr": 0.2}, "min_coverage"),
        ({"min_coverage": 0.9, "max_ffr": -0.1}, "max_ffr"),
    ],
)
def test_smallest_suite_rejects_bad_targets(targets, message):
    with pytest.raises(ValueError, match=message):
        smallest_suite(np.array([0, 1]), np.zeros((2, 1), np.int8), **targets)


def test_smallest_suite_raises_when_out_of_time():
    human, verdicts = modes_instance(n_outputs=2000, n_validators=20, seed=1)

    with pytest.raises(TimeoutError, match="stopped early"):
        smallest_suite(
            human, verdicts, min_coverage=0.97, max_ffr=0.1, max_enumerated=0, time_limit=1e-6
        )


# a candidate that catches nothing (DESIGN §4.2)


def test_an_always_pass_candidate_is_never_chosen():
    # Given a validator that passes every output: FFR 0, coverage 0, alignment 0
    always_pass = candidate(1, tp=0, fn=5, fp=0, tn=7)

    # When
    selection = select([always_pass])

    # Then
    assert selection.chosen is None
    assert selection.reason == REASON_CATCHES_NOTHING == "no candidate catches any failure yet"
    assert summary(selection) == [
        (1, "catches_nothing", "catches none of the 5 failing grades (coverage 0.00)"),
    ]


def test_alignment_zero_with_some_coverage_is_never_chosen_even_under_a_ceiling_of_one():
    # Given a validator that fails everything: coverage 1, FFR 1, alignment 0
    always_fail = candidate(1, tp=4, fn=0, fp=6, tn=0)

    # When
    selection = select([always_fail], ffr_ceiling=1.0)

    # Then
    assert selection.chosen is None
    assert selection.reason == "no candidate catches any failure yet"
    assert summary(selection) == [
        (1, "catches_nothing", "alignment 0.00: fails every output people passed"),
    ]


def test_a_weak_but_nonzero_candidate_beats_one_that_catches_nothing():
    # Given one candidate catching 1 of 5 failures and one catching none
    selection = select([candidate(1, tp=0, fn=5, fp=0, tn=7), candidate(2, tp=1, fn=4, fp=0, tn=7)])

    # Then the weak one (alignment 2*1*7/(1*7+7*5) = 14/42 = 0.33) is chosen, the other ranked
    assert selection.chosen.validator_id == 2
    assert selection.reason == "the only qualifying candidate (alignment 0.33)"
    assert summary(selection)[1] == (
        1, "catches_nothing", "catches none of the 5 failing grades (coverage 0.00)"
    )


def test_catching_nothing_alongside_ffr_above_the_ceiling_names_both():
    # Given a candidate that catches nothing and one that catches failures at FFR 0.40
    selection = select([candidate(1, tp=0, fn=5, fp=0, tn=10), candidate(2, tp=5, fn=0, fp=4, tn=6)])

    # Then
    assert selection.chosen is None
    assert selection.reason == (
        "no candidate within the FFR ceiling 0.25 catches any failure yet (the others' best FFR: 0.40)"
    )
    assert [entry.status for entry in selection.ranked] == ["ffr_above_ceiling", "catches_nothing"]


def test_too_few_labels_comes_before_catching_nothing():
    # Given only 2 failing grades: the shortfall is the reason, whatever the candidate catches
    selection = select([candidate(1, tp=0, fn=2, fp=0, tn=7)])

    assert selection.chosen is None
    assert selection.reason == "2 failing grades so far; 3 needed"


def test_a_pin_still_overrides_a_candidate_that_catches_nothing():
    selection = select([candidate(1, tp=0, fn=5, fp=0, tn=7)], pinned=1)

    assert selection.chosen.validator_id == 1
    assert summary(selection) == [
        (1, "chosen", "pinned by an owner; catches none of the 5 failing grades (coverage 0.00)"),
    ]
