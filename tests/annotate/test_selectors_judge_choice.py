"""The judge_choice selector's pure maths (annotate/selectors/judge_choice.py): its bounds, when
a choice between pairwise judges is settled, the draw probabilities, and that the weighted
accuracy stays unbiased under its draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from annotate.sampling_weights import importance_ratios, lure_weights
from annotate.selectors.judge_choice import (
    JudgeRace,
    card_leader,
    judge_accuracies,
    judge_choice_probabilities,
    judge_race,
    wilson_bounds,
)
from simulator.pairwise_judges import (
    JudgePanel,
    card_choice,
    choose_judge,
    judge_panel_from_external,
)
from validators.pairwise_alignment import WIN_MISSING, weighted_accuracy

Z95 = stats.norm.ppf(0.975)


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 10), (17, 20), (40, 40), (1, 1)])
def test_wilson_bounds_match_scipy(k: int, n: int) -> None:
    low, high = wilson_bounds(np.array([k / n]), np.array([n]), z=Z95)

    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low[0] == pytest.approx(expected.low, abs=1e-12)
    assert high[0] == pytest.approx(expected.high, abs=1e-12)


def test_wilson_bounds_with_nothing_seen_and_the_finite_population_correction() -> None:
    # Nothing seen: anything is possible. All M seen: the mean is the population's.
    low, high = wilson_bounds(np.array([0.3, 0.3, 0.3]), np.array([0, 10, 5]), z=Z95,
                              population=np.array([10, 10, 9]))

    assert (low[0], high[0]) == (0.0, 1.0)
    assert (low[1], high[1]) == pytest.approx((0.3, 0.3), abs=1e-15)
    # 5 of 9: z shrinks by √(4/8).
    shrunk = wilson_bounds(np.array([0.3]), np.array([5]), z=Z95 * np.sqrt(0.5))
    assert (low[2], high[2]) == (shrunk[0][0], shrunk[1][0])


def test_judge_accuracies_match_weighted_accuracy() -> None:
    rng = np.random.default_rng(3)
    verdict = rng.integers(-2, 3, size=(5, 40)).astype(np.int8)
    human = rng.integers(-2, 3, size=40).astype(np.int8)
    human[human == -1] = 2
    weights = rng.uniform(0.5, 3.0, size=40)

    got = judge_accuracies(verdict, human, weights)

    expected = [weighted_accuracy(human, verdict[j], weights) for j in range(5)]
    assert got == pytest.approx(np.array(expected, dtype=np.float64))


def test_the_vectorised_card_choice_is_the_report_card_rule() -> None:
    # given random panels with ties, errors, missing answers and judges asked once or twice
    rng = np.random.default_rng(7)
    for trial in range(60):
        n_judges, n_pairs = 6, 15
        verdict = rng.choice([0, 1, 2, -1], size=(n_judges, n_pairs), p=[0.45, 0.35, 0.1, 0.1]).astype(np.int8)
        first, second = verdict.copy(), verdict.copy()
        flips = rng.random((n_judges, n_pairs)) < 0.3
        second[flips] = 1 - np.clip(second[flips], 0, 1)
        once = rng.random(n_judges) < 0.3
        first[once], second[once] = WIN_MISSING, WIN_MISSING
        human = rng.choice([0, 1, 2], size=n_pairs, p=[0.45, 0.45, 0.1]).astype(np.int8)
        panel = JudgePanel([f"p{i}" for i in range(n_pairs)], human, [f"j{j}" for j in range(n_judges)],
                           ["pairwise"] * n_judges, verdict, first, second)
        labelled = rng.choice(n_pairs, size=int(rng.integers(1, n_pairs)), replace=False)
        weights = rng.choice([1.0, 2.0, 0.5], size=labelled.size)

        # then both give the same judge
        chosen = choose_judge(panel, labelled, weights).chosen
        assert card_choice(panel, labelled, weights) == (None if chosen is None else chosen.validator_id), trial


def test_card_leader_ties_by_consistency_then_index() -> None:
    accuracy = np.array([0.9, 0.95, 0.95, 0.95, np.nan])
    consistency = np.array([1.0, 0.9, np.nan, 0.5, 1.0])

    # 3 is below the floor; 1 and 2 tie on accuracy, 1 has a consistency and 2 was asked once.
    assert card_leader(accuracy, consistency) == 1
    assert card_leader(np.array([np.nan]), np.array([1.0])) is None


# Twelve pairs, human always 'a'. "leader" right on all; "near" differs on 1 pair in 100's
# proportion (here: none), "rival" differs from the leader on pairs 0-3, "weak" is below the floor.
HUMAN = np.zeros(12, np.int8)
VERDICT = np.array([
    [0] * 12,                       # leader
    [1, 1, 1, 1] + [0] * 8,         # rival: wrong where it differs
    [0] * 12,                       # twin: same winners as the leader
    [1] * 12,                       # weak (consistency 0.4)
], dtype=np.int8)
CONSISTENCY = np.array([1.0, 0.9, 0.8, 0.4])


def _race(labelled: list[int]) -> JudgeRace:
    human = np.full(12, WIN_MISSING, np.int8)
    human[labelled] = HUMAN[labelled]
    return judge_race(VERDICT, human, np.ones(12), CONSISTENCY)


def test_a_judge_that_gives_the_leaders_winners_is_settled_without_labels() -> None:
    race = _race([])

    # Nothing compared: the leader is the most consistent judge; the twin cannot differ from it
    # at all, the rival can by 4/12, the weak judge is never a challenger.
    assert race.leader == 0
    assert race.gap_upper[2] == 0.0
    assert race.gap_upper[1] == pytest.approx(4 / 12)
    assert race.gap_upper[3] == -np.inf
    assert list(race.open) == [False, True, False, False]
    assert not race.settled
    assert list(race.rivals()) == [1]


def test_the_race_settles_once_the_pairs_that_could_change_it_are_compared() -> None:
    # One of the four contested pairs, won by the leader: the three left could still go the
    # rival's way, so it stays open.
    early = _race([0, 7])
    assert early.open[1]
    # Three of four, all won by the leader: z (Bonferroni over the 2 challengers) shrinks by
    # √(1/3), and the bound is below 0.
    partly = _race([0, 1, 2, 7])
    _, high = wilson_bounds(np.array([0.0]), np.array([3]), z=stats.norm.ppf(1 - 0.05 / 2) * np.sqrt(1 / 3))
    assert partly.gap_upper[1] == pytest.approx(4 / 12 * (2 * high[0] - 1))
    assert partly.gap_upper[1] < 0 and partly.settled
    # All four: the difference is known exactly (−4/12), nothing is open.
    done = _race([0, 1, 2, 3])
    assert done.gap_upper[1] == pytest.approx(-4 / 12)
    assert done.settled
    assert done.leader == 0


def test_judge_choice_probabilities_exact_values() -> None:
    race = _race([])
    pool = np.ones(12, bool)
    pool[5] = False

    q = judge_choice_probabilities(VERDICT, race, pool, uniform_share=0.2)

    # 0.2 spread over 11 pool pairs, 0.8 over the 4 pairs where the leader and its rival differ.
    assert q[:4] == pytest.approx([0.2 / 11 + 0.8 / 4] * 4)
    assert q[5] == 0.0
    assert q[[4, 6, 7, 8, 9, 10, 11]] == pytest.approx([0.2 / 11] * 7)
    assert q.sum() == pytest.approx(1.0)
    # Settled: uniform over the pool.
    settled = judge_choice_probabilities(VERDICT, _race([0, 1, 2, 3]), pool, uniform_share=0.2)
    assert settled[pool] == pytest.approx([1 / 11] * 11)


def test_lure_weighted_accuracy_is_unbiased_under_judge_choice_draws() -> None:
    # given 20 pairs where the rival is right on 2 of the 6 it disputes with the leader, and
    # draws that follow the race (8 comparisons without replacement, redrawn 1500 times)
    human = np.zeros(20, np.int8)
    leader = np.array([0] * 20, np.int8)
    leader[[0, 1]] = 1
    rival = leader.copy()
    rival[:6] = 1 - leader[:6]
    verdict = np.vstack([leader, rival])
    truth = float(np.mean(rival == human))
    rng = np.random.default_rng(11)
    lure, plain = [], []
    for _ in range(1500):
        pool = np.ones(20, bool)
        known = np.full(20, WIN_MISSING, np.int8)
        probabilities, pool_sizes, order = [], [], []
        for _ in range(8):
            race = judge_race(verdict, known, np.ones(20), np.array([1.0, 1.0]), tolerance=0.0)
            q = judge_choice_probabilities(verdict, race, pool, uniform_share=0.2)
            drawn = int(rng.choice(20, p=q))
            probabilities.append(q[drawn])
            pool_sizes.append(int(pool.sum()))
            order.append(drawn)
            pool[drawn] = False
            known[drawn] = human[drawn]
        sizes = np.array(pool_sizes, np.float64)
        v = lure_weights(importance_ratios(np.array(probabilities), sizes), sizes, 20, 8)
        correct = (rival[order] == human[order]).astype(np.float64)
        lure.append(float(np.mean(v * correct)))
        plain.append(float(correct.mean()))

    # then LURE's estimate (Farquhar et al. 2021) averages to the full-data accuracy; the plain
    # share follows the draw, which favours the disputed pairs
    assert truth == 0.8
    assert np.mean(lure) == pytest.approx(truth, abs=0.015)
    assert np.mean(plain) < 0.7


def test_the_simulator_selector_uses_the_same_race() -> None:
    pairs = [{"item_id": f"p{i}", "human_preference": "a"} for i in range(12)]
    rows = [{"validator": name, "item_id": f"p{i}", "winner": "ab"[int(w)]}
            for name, ws in (("leader", VERDICT[0]), ("rival", VERDICT[1])) for i, w in enumerate(ws)]
    panel = judge_panel_from_external(pairs, rows)

    race = judge_race(panel.verdict, np.full(12, WIN_MISSING, np.int8), np.ones(12),
                      np.array([np.nan, np.nan]))

    assert panel.names == ["leader", "rival"]
    assert (race.leader, list(race.rivals())) == (0, [1])
