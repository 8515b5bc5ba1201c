"""`manage.py simulate` end to end on small generated files, and its pure metrics."""

import json
import sys

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotate.models import Project
from simulator import metrics as m
from simulator import report, runner, static_orderings
from validators.models import Validator

SYSTEMS = {"alpha": 0.9, "beta": 0.5, "gamma": 0.2}
DESIGN_KEYS = {
    "tau", "validator_hit", "validator_regret", "labels_to_tau_0_9", "labels_to_regret_0_02",
    "parity_tau", "parity_validator",
}
VALIDATORS = {"validators": [
    {"name": "says_ok", "criterion": None, "kind": "code", "threshold": None,
     "source": "def check(output, input, reference, meta):\n    return 'ok' in output\n"},
    {"name": "long_enough", "criterion": None, "kind": "code", "threshold": 24,
     "source": "def check(output, input, reference, meta):\n    return len(output)\n"},
    {"name": "says_ok", "criterion": "accuracy", "kind": "code", "threshold": None,
     "source": "def check(output, input, reference, meta):\n    return 'ok' in output\n"},
    {"name": "no_bad_word", "criterion": "accuracy", "kind": "code", "threshold": None,
     "source": "def check(output, input, reference, meta):\n    return 'wrong' not in output\n"},
]}


def _records(n_items: int = 30) -> list[dict]:
    """Three systems with pass rates 0.9 / 0.5 / 0.2 (exact per 10 items); a passing output says
    'ok', a failing one 'wrong'; every fifth output is padded so length is only a rough signal."""
    records = []
    for i in range(n_items):
        for system, rate in SYSTEMS.items():
            passed = (i % 10) < round(rate * 10)
            text = f"{system} answer {i} is {'ok' if passed else 'wrong'}"
            if i % 5 == 0:
                text += " with padding"
            records.append({
                "item_id": f"q{i}", "input": f"Question {i}?", "reference": f"Answer {i} is ok",
                "system": system, "output": text,
                "human": {"score": 1.0 if passed else 0.0, "label": int(passed),
                          "criteria": {"accuracy": int(passed)}},
            })
    return records


@pytest.fixture
def data_files(tmp_path):
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    validators = tmp_path / "validators.json"
    validators.write_text(json.dumps(VALIDATORS))
    return data, validators


@pytest.mark.django_db
def test_simulate_writes_design_shape_and_cleans_up(data_files, tmp_path):
    data, validators = data_files
    out = tmp_path / "result.json"
    projects_before = Project.objects.count()
    users_before = get_user_model().objects.count()

    call_command(
        "simulate", "--data", str(data), "--validators", str(validators),
        "--selectors", "random,ranking_uncertainty,s2e_metric_var", "--budgets", "10,20,30",
        "--seeds", "2", "--out", str(out), "--plot", str(tmp_path / "plot.png"), verbosity=0,
    )

    result = json.loads(out.read_text())
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = report.plot_series(result)
    assert [s.label for s in panels["tau"]] == ["random", "ranking_uncertainty", "s2e_metric_var"]
    assert [s.label for s in panels["validator"]] == ["random", "ranking_uncertainty", "s2e_metric_var"]
    for series in panels["tau"]:
        np.testing.assert_allclose(series.mean, np.mean(result["selectors"][series.label]["tau"], axis=0))
    assert (result["data"], result["outputs"], result["systems"]) == ("tiny.jsonl", 90, 3)
    assert (result["seeds"], result["budgets"]) == (2, [10, 20, 30])
    assert set(result["selectors"]) == {"random", "ranking_uncertainty", "s2e_metric_var"}
    assert result["full_data"]["chosen"] == {"__holistic__": "says_ok", "accuracy": "says_ok"}
    for entry in result["selectors"].values():
        assert DESIGN_KEYS <= set(entry)
        assert len(entry["tau"]) == 2 and all(len(seed) == 3 for seed in entry["tau"])
        assert all(-1.0 <= tau <= 1.0 for seed in entry["tau"] for tau in seed)
        assert set(entry["validator_hit"]) == {"__holistic__", "accuracy"}
        for key in ("validator_hit", "validator_regret"):
            for curves in entry[key].values():
                assert np.asarray(curves).shape == (2, 3)
        assert all(v in (0.0, 1.0) for c in entry["validator_hit"].values() for s in c for v in s)
        assert all(
            0.0 <= v <= 1.0 for c in entry["validator_regret"].values() for s in c for v in s
        )
    random = result["selectors"]["random"]
    assert random["parity_tau"] == 1.0
    assert random["parity_validator"] == 1.0
    # Every label the oracle gave is consistent with the full data: once both classes have
    # three labels, the perfect assertion is chosen and holds (regret 0).
    assert random["validator_regret"]["accuracy"][0][-1] == 0.0
    assert Project.objects.count() == projects_before
    assert get_user_model().objects.count() == users_before
    assert not Validator.objects.exists()


@pytest.mark.django_db
def test_simulate_creates_the_criteria_its_validators_file_names(data_files, tmp_path):
    # Given a validators file naming 'tone', which no label in the data mentions
    data, _ = data_files
    validators = tmp_path / "with_tone.json"
    validators.write_text(json.dumps({"validators": VALIDATORS["validators"] + [
        {"name": "polite", "criterion": "tone", "kind": "code", "threshold": None,
         "source": "def check(output, input, reference, meta):\n    return 'wrong' not in output\n"},
    ]}))
    out = tmp_path / "result.json"

    # When
    call_command(
        "simulate", "--data", str(data), "--validators", str(validators), "--selectors", "random",
        "--budgets", "10", "--seeds", "1", "--out", str(out), verbosity=0,
    )

    # Then 'tone' exists in the simulation; no line labels it, so nothing is chosen for it
    result = json.loads(out.read_text())
    assert result["full_data"]["chosen"] == {
        "__holistic__": "says_ok", "accuracy": "says_ok", "tone": None,
    }
    # With no full-data choice there is no regret to follow for 'tone'.
    assert set(result["selectors"]["random"]["validator_hit"]) == {"__holistic__", "accuracy"}
    assert not Validator.objects.exists()


def _pair_records() -> list[dict]:
    records = []
    names = list(SYSTEMS)
    for i in range(12):
        for a in range(3):
            for b in range(a + 1, 3):
                records.append({
                    "item_id": f"p{i}-{a}{b}", "input_id": f"q{i}", "input": f"Question {i}?",
                    "system_a": names[a], "output_a": f"{names[a]} says {i} {'x' * a}",
                    "system_b": names[b], "output_b": f"{names[b]} says {i} {'y' * b}",
                    # alpha beats beta beats gamma, with a tie now and then.
                    "human_preference": "tie" if i % 6 == 0 else "a",
                })
    return records


@pytest.mark.django_db
def test_simulate_pairwise_file(tmp_path):
    data = tmp_path / "tiny_pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _pair_records()))
    out = tmp_path / "pairs.json"

    call_command(
        "simulate", "--data", str(data), "--selectors", "random,mad_systems", "--budgets", "6,12",
        "--seeds", "2", "--out", str(out), verbosity=0,
    )

    result = json.loads(out.read_text())
    assert (result["systems"], result["budgets"]) == (3, [6, 12])
    for entry in result["selectors"].values():
        assert np.asarray(entry["tau"]).shape == (2, 2)
        assert entry["validator_hit"] == {} and entry["labels_to_regret_0_02"] == {}
    assert result["selectors"]["random"]["parity_tau"] == 1.0
    assert not Project.objects.filter(slug__startswith="simulate-").exists()


@pytest.mark.django_db
def test_budget_beyond_the_file_is_refused(data_files, tmp_path):
    data, _ = data_files
    with pytest.raises(CommandError, match="exceeds the file's 90 outputs"):
        call_command("simulate", "--data", str(data), "--selectors", "random",
                     "--budgets", "50,100", "--out", str(tmp_path / "x.json"), verbosity=0)
    assert not (tmp_path / "x.json").exists()


def test_unknown_selector_and_missing_random_are_refused(data_files, tmp_path):
    data, _ = data_files
    settings = runner.SimulationSettings(
        data=data, selectors=("variance",), budgets=(10,), seeds=1
    )
    with pytest.raises(runner.SimulationError, match="include it"):
        runner.check_settings(settings, 90, False)
    settings = runner.SimulationSettings(
        data=data, selectors=("random", "mad_systems"), budgets=(10,), seeds=1
    )
    with pytest.raises(runner.SimulationError, match="unknown selector"):
        runner.check_settings(settings, 90, False)


def test_oracle_answers_follow_the_import_rules(tmp_path):
    binary = runner.SimulationSettings(data=tmp_path, selectors=("random",), budgets=(1,), seeds=1)
    rating = runner.SimulationSettings(
        data=tmp_path, selectors=("random",), budgets=(1,), seeds=1, scale="rating",
        pass_threshold=4.0,
    )
    record = {"item_id": "a", "human": {"label": 0, "score": 4.5, "criteria": {"x": 1},
                                        "criteria_scores": {"y": 3.0}}}
    assert runner.oracle_answer(record, binary) == runner.Answer("fail", None, {"x": "pass"}, 0.0)
    assert runner.oracle_answer(record, rating) == runner.Answer(
        "pass", 4.5, {"x": "pass", "y": "fail"}, 4.5
    )
    no_label = {"item_id": "b", "human": {"label": None, "criteria": {"x": 1, "z": 0}}}
    assert runner.oracle_answer(no_label, binary).verdict == "fail"


def test_static_order_takes_whole_items_by_utility():
    records = [{"item_id": i, "system": s} for i in ("a", "b") for s in ("x", "y")]
    items = [{"i": 0}, {"i": 1}]
    order = static_orderings.static_order(records, items, ["a", "b"], [0.1, 0.7], seed=0)
    assert sorted(order[:2]) == [2, 3] and sorted(order[2:]) == [0, 1]


def test_s2e_transcription_matches_the_package_when_installed(monkeypatch):
    items, _, _ = static_orderings.s2e_items(_records(6))
    for method in ("metric_var", "metric_avg"):
        monkeypatch.setitem(sys.modules, "subset2evaluate", None)
        own, source = static_orderings.s2e_utilities(items, method)
        assert source == "own"
        monkeypatch.delitem(sys.modules, "subset2evaluate")
        pytest.importorskip("subset2evaluate")
        package, source = static_orderings.s2e_utilities(items, method)
        assert source.startswith("subset2evaluate")
        np.testing.assert_allclose(own, package)


# -- pure metrics ---------------------------------------------------------------------------------
def test_labels_needed_is_where_the_curve_stays_on_target():
    budgets = [50, 100, 200, 400]
    assert m.labels_needed_per_seed([0.95, 0.8, 0.91, 0.93], budgets, 0.9, at_least=True) == 200
    assert m.labels_needed_per_seed([0.9, 0.9, 0.9, 0.9], budgets, 0.9, at_least=True) == 50
    assert m.labels_needed_per_seed([0.9, 0.9, 0.9, 0.89], budgets, 0.9, at_least=True) is None
    assert m.labels_needed_per_seed([0.3, 0.01, 0.05, 0.02], budgets, 0.02, at_least=False) == 400


def test_labels_needed_is_the_median_over_seeds_with_never_as_infinity():
    budgets = [50, 100, 200]
    curves = [[0.95, 0.95, 0.95], [0.5, 0.92, 0.97], [0.5, 0.5, 0.5]]
    assert m.labels_needed(curves, budgets, 0.9, at_least=True) == 100.0
    assert m.labels_needed(curves[1:], budgets, 0.9, at_least=True) is None
    assert m.median_labels([50, 200]) == 125.0
    assert m.median_labels([]) is None


def test_parity_is_the_ratio_to_random():
    assert m.parity(100.0, 400.0) == 0.25
    assert m.parity(400.0, 400.0) == 1.0
    assert m.parity(None, 400.0) is None
    assert m.parity(100.0, None) is None


def test_regret_counts_nothing_chosen_as_alignment_zero():
    alignment = {"best": 0.8, "close": 0.75, "poor": 0.1}
    assert m.regret(alignment, "best", "best") == 0.0
    assert m.regret(alignment, "best", "close") == pytest.approx(0.05)
    assert m.regret(alignment, "best", None) == 0.8


def test_all_below_takes_the_worst_criterion_per_seed_and_budget():
    curves = {"a": [[0.5, 0.0], [0.1, 0.0]], "b": [[0.2, 0.3], [0.0, 0.01]]}
    assert m.all_below(curves) == [[0.5, 0.3], [0.1, 0.01]]
    assert m.all_below({}) == []


def test_system_means_fill_unlabelled_systems_and_weight():
    means = m.system_means(np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]), 3)
    np.testing.assert_allclose(means, [0.5, 1.0, 2 / 3])
    weighted = m.system_means(
        np.array([0, 0]), np.array([1.0, 0.0]), 2, weights=np.array([3.0, 1.0])
    )
    np.testing.assert_allclose(weighted, [0.75, 0.75])


def test_ranking_tau_is_zero_when_undefined():
    assert m.ranking_tau(np.array([0.5, 0.5, 0.5]), np.array([0.1, 0.2, 0.3])) == 0.0
    assert m.ranking_tau(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])) == 1.0
    assert m.ranking_tau(np.array([3.0, 2.0, 1.0]), np.array([0.1, 0.2, 0.3])) == -1.0


PLOT_RESULT = {"data": "tiny.jsonl", "budgets": [10, 20], "selectors": {
    "random": {"tau": [[0.2, 0.9], [0.4, 1.0]], "validator_hit": {
        "__holistic__": [[0, 1], [1, 1]], "accuracy": [[0, 0], [0, 1]]}},
    "s2e_metric_var": {"tau": [[0.1, 0.5], [0.3, 0.7]], "validator_hit": {}},
}}


def test_plot_series_are_the_means_and_bands_over_seeds():
    panels = report.plot_series(PLOT_RESULT)

    assert list(panels) == ["tau", "validator"]
    assert [(s.label, s.style, s.width) for s in panels["tau"]] == [
        ("random", "-", 2.4), ("s2e_metric_var", "--", 1.4)]
    random, s2e = panels["tau"]
    np.testing.assert_allclose([random.mean, random.low, random.high], [[0.3, 0.95], [0.2, 0.9], [0.4, 1.0]])
    np.testing.assert_allclose([s2e.mean, s2e.low, s2e.high], [[0.2, 0.6], [0.1, 0.5], [0.3, 0.7]])
    # Per seed, the share of criteria holding the full-data validator: seed 0 [0, 0.5],
    # seed 1 [0.5, 1]; a selector without validator hits has no line there.
    (hits,) = panels["validator"]
    assert hits.label == "random"
    np.testing.assert_allclose([hits.mean, hits.low, hits.high], [[0.25, 0.75], [0.0, 0.5], [0.5, 1.0]])


def test_plot_without_validators_has_only_the_tau_panel():
    result = {**PLOT_RESULT, "selectors": {
        name: {**entry, "validator_hit": {}} for name, entry in PLOT_RESULT["selectors"].items()}}

    assert list(report.plot_series(result)) == ["tau"]


def test_plot_draws_tau_and_validator_panels(tmp_path):
    figure = report.plot_figure(PLOT_RESULT)
    tau_axis, validator_axis = figure.axes

    assert tau_axis.get_title() == "tiny.jsonl: system ranking"
    assert validator_axis.get_title() == "validator choice"
    tau_lines = {line.get_label(): line for line in tau_axis.get_lines() if not line.get_label().startswith("_")}
    assert list(tau_lines) == ["random", "s2e_metric_var"]
    np.testing.assert_allclose(tau_lines["random"].get_ydata(), [0.3, 0.95])
    np.testing.assert_allclose(tau_lines["s2e_metric_var"].get_ydata(), [0.2, 0.6])
    assert tau_lines["s2e_metric_var"].get_linestyle() == "--"
    assert [t.get_text() for t in tau_axis.get_legend().get_texts()] == ["random", "s2e_metric_var"]
    (hit_line,) = validator_axis.get_lines()
    np.testing.assert_allclose(hit_line.get_ydata(), [0.25, 0.75])
    assert hit_line.get_color() == tau_lines["random"].get_color()
    path = tmp_path / "plot.png"

    report.plot_result(PLOT_RESULT, path)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_printed_table_has_a_row_per_selector():
    result = {"data": "tiny.jsonl", "outputs": 90, "systems": 3, "seeds": 2, "budgets": [10, 20],
              "selectors": {
                  "random": {**PLOT_RESULT["selectors"]["random"], "labels_to_tau_0_9": 20,
                             "parity_tau": 1.0, "labels_to_regret_0_02_all": 10,
                             "parity_validator": 1.0, "ms_per_label": 3.5},
                  "s2e_metric_var": {**PLOT_RESULT["selectors"]["s2e_metric_var"],
                                     "labels_to_tau_0_9": None, "parity_tau": None,
                                     "parity_validator": None},
              }}

    assert report.format_table(result).splitlines() == [
        "tiny.jsonl: 90 outputs, 3 systems, 2 seeds, budgets [10, 20]",
        "selector                tau@max  τ≥0.9 at  parity τ  hit@max regret≤.02 at parity val  ms/label",
        "random                    0.950        20         1     0.75            10          1       3.5",
        "s2e_metric_var            0.600         —         —      nan             —          —       nan",
    ]
