"""The judge-choice simulator: its pure engine and `manage.py simulate` with judges files."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from annotate.sampling_weights import importance_ratios, lure_weights
from simulator import metrics
from simulator.pairwise_judges import (
    disagreement_probabilities,
    full_data,
    judge_panel_from_external,
    judge_panel_from_recorded,
    replay_seed,
    simulate_judge_choice,
    validators_file_kind,
)
from validators.pairwise_alignment import weighted_accuracy, weighted_consistency


def _pairs(preferences: str) -> list[dict]:
    return [{"item_id": f"p{i}", "input": f"q{i}", "system_a": None, "output_a": f"x{i}",
             "system_b": None, "output_b": f"y{i}", "human_preference": h}
            for i, h in enumerate(preferences)]


def _recorded(judge: str, item_id: str, shown: str | None, swapped: str | None) -> dict:
    return {"item_id": item_id, "judge": judge, "model": judge.split("/")[0], "strategy": "S",
            "mode": "comparison", "aux": [], "scores": None,
            "runs": [{"swap": False, "completion": "…", "winner": shown},
                     {"swap": True, "completion": "…", "winner": swapped}]}


def _external(winners: dict[str, str]) -> list[dict]:
    return [{"validator": name, "item_id": f"p{i}", "winner": w}
            for name, row in winners.items() for i, w in enumerate(row)]


# Six pairs; "steady" is right everywhere and consistent, "flip" is right but changes its answer
# with the order on half the pairs (consistency 0.5 < 0.6), "rater" scores.
PREFERENCES = "abab" "ab"
RECORDED = (
    [_recorded("steady", f"p{i}", h, h) for i, h in enumerate(PREFERENCES)]
    + [_recorded("flip", f"p{i}", h, h if i % 2 else {"a": "b", "b": "a"}[h])
       for i, h in enumerate(PREFERENCES)]
    + [{"item_id": f"p{i}", "judge": "rater", "model": "r", "strategy": "Rating",
        "mode": "rating", "aux": [], "runs": [],
        "scores": {"a": "Rating: 7", "b": "5" if i < 4 else "7"}} for i in range(6)]
)


def test_recorded_judges_combine_both_orders_and_rating_scores() -> None:
    panel = judge_panel_from_recorded(_pairs(PREFERENCES), RECORDED)

    assert panel.names == ["flip", "rater", "steady"]
    assert panel.verdict.tolist() == [[2, 1, 2, 1, 2, 1], [0, 0, 0, 0, 2, 2], [0, 1, 0, 1, 0, 1]]
    assert panel.asked_twice.tolist() == [True, False, True]
    assert panel.human.tolist() == [0, 1, 0, 1, 0, 1]


def test_the_full_data_keeps_the_best_consistent_judge() -> None:
    full = full_data(judge_panel_from_recorded(_pairs(PREFERENCES), RECORDED))

    assert full.chosen == 2
    assert full.accuracy.tolist() == [0.5, 2 / 6, 1.0]
    assert full.consistency[0] == 0.5 and np.isnan(full.consistency[1]) and full.consistency[2] == 1.0


def test_the_engine_returns_the_documented_shape_and_no_regret_once_all_is_labelled() -> None:
    panel = judge_panel_from_recorded(_pairs(PREFERENCES), RECORDED)

    result = simulate_judge_choice(panel, selectors=["random", "judge_disagreement"], seeds=4,
                                   budgets=[2, 4, 6])

    assert (result["mode"], result["pairs"], result["judges"], result["budgets"]) == (
        "judge_choice", 6, 3, [2, 4, 6])
    assert result["full_data"]["chosen"] == "steady"
    for entry in result["selectors"].values():
        assert set(entry) == {
            "judge_regret", "judge_hit", "judge_chosen", "labels_to_regret_0_02",
            "labels_to_regret_0_02_p10", "labels_to_regret_0_02_p50",
            "labels_to_regret_0_02_p90", "parity_judge"}
        assert [len(seed) for seed in entry["judge_regret"]] == [3, 3, 3, 3]
        assert [seed[-1] for seed in entry["judge_regret"]] == [0.0, 0.0, 0.0, 0.0]
        assert [seed[-1] for seed in entry["judge_hit"]] == [1, 1, 1, 1]
    assert result["selectors"]["random"]["parity_judge"] == 1.0


def test_random_draws_the_same_pairs_for_the_same_seed() -> None:
    panel = judge_panel_from_recorded(_pairs(PREFERENCES), RECORDED)
    full = full_data(panel)

    orders = [replay_seed(panel, full, "random", seed, [6]).order for seed in (3, 3, 4)]

    assert orders[0] == orders[1]
    assert sorted(orders[0]) == [0, 1, 2, 3, 4, 5]
    assert orders[0] != orders[2]


def test_disagreement_probabilities_are_half_uniform_half_where_leaders_differ() -> None:
    leaders = np.array([[0, 0, 1, 0], [0, 1, 1, 1]])

    everywhere = disagreement_probabilities(leaders, np.array([True, True, True, True]))
    without_second = disagreement_probabilities(leaders, np.array([True, False, True, True]))
    agreeing = disagreement_probabilities(leaders[:, [0, 2]], np.array([True, True]))

    assert everywhere.tolist() == [0.125, 0.375, 0.125, 0.375]
    assert without_second.tolist() == pytest.approx([1 / 6, 0.0, 1 / 6, 2 / 3])
    assert agreeing.tolist() == [0.5, 0.5]


# Twenty pairs, human "a" everywhere; the judges disagree on the first five only.
CONTESTED = {"right": "a" * 20, "wrong_when_contested": "b" * 5 + "a" * 15,
             "also_wrong": "b" * 5 + "a" * 15}


def test_the_disagreement_selector_draws_with_its_documented_probabilities() -> None:
    panel = judge_panel_from_external(_pairs("a" * 20), _external(CONTESTED))
    full = full_data(panel)

    first = [replay_seed(panel, full, "judge_disagreement", seed, [1]).order[0] for seed in range(2000)]

    # d = 1 − (0 + 2·1)/(3·2) = 2/3 on the five contested pairs, 0 elsewhere:
    # q = 0.5/20 + 0.5/5 = 0.125 each there, 0.025 each elsewhere.
    share_contested = np.mean(np.array(first) < 5)
    assert share_contested == pytest.approx(0.625, abs=0.03)


def test_weighted_accuracy_stays_unbiased_under_disagreement_draws() -> None:
    # given the draws of the disagreement selector, which favour the contested pairs
    panel = judge_panel_from_external(_pairs("a" * 20), _external(CONTESTED))
    full = full_data(panel)
    judge = panel.names.index("wrong_when_contested")
    weighted, plain = [], []
    for seed in range(1500):
        trace = replay_seed(panel, full, "judge_disagreement", seed, [8])
        ratios = importance_ratios(np.array(trace.probabilities), np.array(trace.pool_sizes))
        weights = lure_weights(ratios, np.array(trace.pool_sizes), 20, 8)
        labelled = np.array(trace.order)
        weighted.append(weighted_accuracy(panel.human[labelled], panel.verdict[judge, labelled], weights))
        plain.append(weighted_accuracy(panel.human[labelled], panel.verdict[judge, labelled], np.ones(8)))

    # then the weighted mean is near the full-data 0.75, the plain share well below it
    assert full.accuracy[judge] == 0.75
    assert np.mean(weighted) == pytest.approx(0.75, abs=0.03)
    assert np.mean(plain) < 0.65


def test_weighted_accuracy_and_consistency_exact_values() -> None:
    human, judge = np.array([0, 1, 2, 0]), np.array([0, 0, 0, 1])
    first, second = np.array([0, 1, -1, 0]), np.array([0, 0, 1, 0])
    weights = np.array([1.0, 2.0, 3.0, 4.0])

    assert weighted_accuracy(human, judge, weights) == 1 / 7
    assert weighted_consistency(first, second, weights) == 5 / 7
    assert weighted_accuracy(np.array([2]), np.array([0]), np.array([1.0])) is None


def test_labels_quantile_counts_a_seed_that_never_gets_there_as_infinite() -> None:
    per_seed = [5, 10, None, 20]

    assert metrics.labels_quantile(per_seed, 0.1) == 6.5
    assert metrics.labels_quantile(per_seed, 0.5) == 15.0
    assert metrics.labels_quantile(per_seed, 0.9) is None


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_validators_files_are_told_apart_by_their_keys(tmp_path: Path) -> None:
    recorded = _write(tmp_path / "judges.jsonl", RECORDED)
    external = _write(tmp_path / "external.jsonl", _external(CONTESTED))
    definitions = tmp_path / "validators.json"
    definitions.write_text(json.dumps({"validators": []}, indent=1), encoding="utf-8")

    kinds = [validators_file_kind(p) for p in (recorded, external, definitions)]

    assert kinds == ["recorded_judges", "external", "validators"]


@pytest.mark.django_db
@pytest.mark.parametrize("judges", ["recorded", "external"])
def test_simulate_command_chooses_judges_and_prints_parity(tmp_path: Path, judges: str) -> None:
    data = _write(tmp_path / "pairs.jsonl", _pairs(PREFERENCES if judges == "recorded" else "a" * 20))
    validators = _write(tmp_path / "judges.jsonl",
                        RECORDED if judges == "recorded" else _external(CONTESTED))
    out, printed = tmp_path / "result.json", StringIO()

    call_command("simulate", "--data", str(data), "--validators", str(validators),
                 "--seeds", "5", "--budgets", "2,4,6", "--out", str(out), stdout=printed)

    result = json.loads(out.read_text(encoding="utf-8"))
    assert list(result["selectors"]) == ["random", "judge_disagreement", "judge_choice"]
    assert result["seeds"] == 5 and result["budgets"] == [2, 4, 6]
    assert result["full_data"]["chosen"] == ("steady" if judges == "recorded" else "right")
    assert [len(s) for s in result["selectors"]["judge_disagreement"]["judge_regret"]] == [3] * 5
    assert "parity judge" in printed.getvalue()
    assert result["selectors"]["random"]["parity_judge"] == 1.0


def test_the_judge_choice_selector_draws_with_the_products_probabilities() -> None:
    # given CONTESTED: with nothing compared the leader is "also_wrong" (the first name among
    # judges asked once, all at accuracy 0), "right" and "wrong_when_contested" its rivals
    panel = judge_panel_from_external(_pairs("a" * 20), _external(CONTESTED))
    full = full_data(panel)

    traces = [replay_seed(panel, full, "judge_choice", seed, [1]) for seed in range(2000)]

    # "wrong_when_contested" gives the leader's winners everywhere and is no rival; "right"
    # differs on the first five: q = 0.2/20 + 0.8/5 = 0.17 there, 0.01 elsewhere
    first = [t.order[0] for t in traces]
    probabilities = {t.order[0]: t.probabilities[0] for t in traces}
    assert probabilities[0] == pytest.approx(0.17) and probabilities[10] == pytest.approx(0.01)
    assert np.mean(np.array(first) < 5) == pytest.approx(0.85, abs=0.02)


def test_judge_choice_stops_spending_once_the_choice_is_settled() -> None:
    panel = judge_panel_from_external(_pairs("a" * 20), _external(CONTESTED))
    full = full_data(panel)

    trace = replay_seed(panel, full, "judge_choice", 0, list(range(1, 21)))

    # once the five contested pairs are compared, "right" is known to lead by 5/20: every
    # later pair is drawn uniformly from what is left
    contested_done = max(trace.order.index(p) for p in range(5))
    later = range(contested_done + 1, 20)
    assert [trace.probabilities[i] for i in later] == pytest.approx([1 / trace.pool_sizes[i] for i in later])
    assert trace.regret[contested_done:] == [0.0] * (20 - contested_done)
    assert trace.chosen[-1] == "right"


def test_simulate_command_runs_judge_choice_on_a_written_judges_file(tmp_path: Path) -> None:
    data = _write(tmp_path / "pairs.jsonl", _pairs("a" * 20))
    validators = _write(tmp_path / "judges.jsonl", _external(CONTESTED))
    out = tmp_path / "result.json"

    call_command("simulate", "--data", str(data), "--validators", str(validators), "--selectors",
                 "random,judge_choice", "--seeds", "30", "--budgets", ",".join(map(str, range(1, 21))),
                 "--out", str(out), stdout=StringIO())

    result = json.loads(out.read_text(encoding="utf-8"))
    entry = result["selectors"]["judge_choice"]
    assert result["full_data"]["chosen"] == "right"
    assert len(entry["labels_to_regret_0_02"]) == 30
    # "right" is ahead only on the five contested pairs: random needs one of them, judge_choice
    # draws them 85% of the time
    quantiles = {name: [e[f"labels_to_regret_0_02_p{q}"] for q in (10, 50, 90)]
                 for name, e in result["selectors"].items()}
    assert quantiles == {"random": [1.0, 3.0, 8.0], "judge_choice": [1.0, 1.0, 2.0]}
    assert entry["parity_judge"] == pytest.approx(1 / 3)
