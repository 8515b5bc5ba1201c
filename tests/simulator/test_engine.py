"""The in-memory engine of `manage.py simulate` against the services path, and its JSON."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from simulator import engine, traces

SYSTEMS = {"alpha": 0.8, "beta": 0.5, "gamma": 0.3}
VALIDATORS = {"validators": [
    {"name": "says_fine", "criterion": None, "kind": "code", "threshold": None,
     "source": "def check(output, input, reference, meta):\n    return 'fine' in output\n"},
    {"name": "no_typo", "criterion": "spelling", "kind": "code", "threshold": None,
     "source": "def check(output, input, reference, meta):\n    return 'teh' not in output\n"},
]}
SELECTORS = "random,ranking_uncertainty,validator_choice,uncertainty"


def _records() -> list[dict]:
    """14 inputs × 3 systems = 42 outputs. An output passes at its system's rate; the spelling
    criterion fails on 'teh', which also fails some passing outputs, so neither validator is
    perfect."""
    records = []
    for i in range(14):
        for system, rate in SYSTEMS.items():
            passed = (i % 10) < round(rate * 10)
            typo = i % 4 == 0
            text = f"{system} says {i} is {'fine' if passed else 'bad'}{' teh' if typo else ''}"
            records.append({
                "item_id": f"q{i}", "input": f"Question {i}?", "system": system, "output": text,
                "human": {"label": int(passed and not (typo and i % 8 == 0)),
                          "score": 4 + i % 2 if passed else 1 + i % 3,
                          "criteria": {"spelling": int(not typo)}},
            })
    return records


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    validators = tmp_path / "validators.json"
    validators.write_text(json.dumps(VALIDATORS))
    return data, validators


def _simulate(files, tmp_path, name: str, *flags: str) -> dict:
    data, validators = files
    out = tmp_path / f"{name}.json"
    call_command(
        "simulate", "--data", str(data), "--validators", str(validators), "--selectors", SELECTORS,
        "--budgets", "6,12,24,36", "--out", str(out), *flags, verbosity=0,
    )
    return json.loads(out.read_text())


def _figures(result: dict) -> dict:
    """Everything but the timings, which differ between runs by nature."""
    return {
        name: {k: v for k, v in entry.items() if k not in ("seconds", "ms_per_label")}
        for name, entry in result["selectors"].items()
    }


@pytest.mark.django_db
def test_engine_and_services_give_identical_figures_for_one_seed(files, tmp_path):
    # Given one seed, both paths on the same file and validators
    in_memory = _simulate(files, tmp_path, "engine", "--seeds", "1", "--jobs", "1")
    services = _simulate(files, tmp_path, "services", "--seeds", "1", "--through-services")

    # Then every figure agrees exactly, curves, choices and labels needed alike
    assert _figures(in_memory) == _figures(services)
    assert in_memory["full_data"] == services["full_data"]
    assert in_memory["full_data"]["chosen"] == {"__holistic__": "says_fine", "spelling": "no_typo"}
    assert in_memory["engine"] == {"kind": "in-memory", "jobs": 1, "batch": 1, "exact_until": None}
    assert "engine" not in services
    # Not a trivial agreement: the selectors did not all pick the same outputs.
    assert len({json.dumps(entry["tau"]) for entry in in_memory["selectors"].values()}) > 1


@pytest.mark.django_db
def test_engine_and_services_agree_on_a_rating_scale(files, tmp_path):
    rating = ("--scale", "rating", "--pass-threshold", "4", "--scale-min", "1", "--scale-max", "5")

    in_memory = _simulate(files, tmp_path, "engine", "--seeds", "1", "--jobs", "1", *rating)
    services = _simulate(files, tmp_path, "services", "--seeds", "1", "--through-services", *rating)

    assert _figures(in_memory) == _figures(services)
    assert in_memory["full_data"] == services["full_data"]
    # The ranking averages the scores: alpha's 12 passing outputs score 4 or 5.
    assert in_memory["full_data"]["system_values"]["alpha"] == pytest.approx(
        sum(4 + i % 2 if i % 10 < 8 else 1 + i % 3 for i in range(14)) / 14
    )


@pytest.mark.django_db
def test_engine_writes_the_design_shape_with_label_quantiles(files, tmp_path):
    result = _simulate(files, tmp_path, "engine", "--seeds", "3", "--jobs", "1")

    assert (result["outputs"], result["systems"], result["seeds"]) == (42, 3, 3)
    assert result["budgets"] == [6, 12, 24, 36]
    assert list(result["selectors"]) == SELECTORS.split(",")
    for entry in result["selectors"].values():
        assert {"tau", "validator_hit", "validator_regret", "labels_to_tau_0_9",
                "labels_to_regret_0_02", "parity_tau", "parity_validator"} <= set(entry)
        assert [len(curve) for curve in entry["tau"]] == [4, 4, 4]
        assert set(entry["validator_regret"]) == {"__holistic__", "spelling"}
        assert set(entry["labels_to_tau_0_9_quantiles"]) == {"p10", "p50", "p90"}
        # p50 is the median the DESIGN key reports.
        assert entry["labels_to_tau_0_9_quantiles"]["p50"] == entry["labels_to_tau_0_9"]
    assert result["selectors"]["random"]["parity_tau"] == 1.0


def test_parallel_seeds_give_the_sequential_result():
    replay = engine.build_replay(
        _records(), data_name="tiny", validator_entries=VALIDATORS["validators"],
        verdicts=_verdicts(),
    )
    selectors = SELECTORS.split(",")

    sequential = engine.simulate_replay(replay, selectors, 3, (6, 12, 24), jobs=1)
    parallel = engine.simulate_replay(replay, selectors, 3, (6, 12, 24), jobs=2)

    assert _figures(sequential) == _figures(parallel)


def _verdicts() -> tuple[np.ndarray, np.ndarray]:
    """The two validators' verdicts written out, so a test needs no sandbox."""
    records = _records()
    fine = np.array(["fine" in r["output"] for r in records])
    no_typo = np.array(["teh" not in r["output"] for r in records])
    codes = np.column_stack([fine, no_typo]).astype(np.int8)
    return codes, codes.astype(np.float32)


def test_full_data_choice_and_alignment_come_from_the_report_card_functions():
    replay = engine.build_replay(
        _records(), data_name="tiny", validator_entries=VALIDATORS["validators"], verdicts=_verdicts(),
    )

    # 18 outputs fail: the 15 that say 'bad', which says_fine catches, and the 3 'fine … teh'
    # of input 0, which it passes; it fails no passing output (FFR 0). no_typo fails exactly the
    # outputs with 'teh'.
    assert replay.full.chosen == {"__holistic__": "says_fine", "spelling": "no_typo"}
    assert replay.full.alignments["spelling"] == {"no_typo": 1.0}
    coverage = 15 / 18
    assert replay.full.alignments["__holistic__"]["says_fine"] == pytest.approx(
        2 * coverage / (coverage + 1.0)
    )
    assert replay.criteria == ("spelling",)
    assert replay.sample_codes[:6].tolist() == [0, 0, 0, 1, 1, 1]


def test_batches_measure_every_budget_at_its_count():
    replay = engine.build_replay(
        _records(), data_name="tiny", validator_entries=VALIDATORS["validators"], verdicts=_verdicts(),
    )
    batching = engine.Batching(size=5, exact_until=4)

    trace = engine.run_seed(replay, "ranking_uncertainty", 0, (6, 12, 24), batching=batching)

    assert trace.labels == 24
    assert len(trace.tau) == 3
    assert [batching.take(n, b) for n, b in ((0, 6), (4, 6), (6, 12), (10, 12))] == [1, 2, 5, 2]


def test_label_quantiles_interpolate_and_treat_never_as_infinite():
    assert traces.label_quantiles([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]) == {
        "p10": 20.0, "p50": 60.0, "p90": 100.0,
    }
    # numpy's linear rule: position (n - 1) q = 0.3 between 10 and 20 gives 13.
    assert traces.label_quantiles([10, 20, 30, 40]) == {"p10": 13.0, "p50": 25.0, "p90": 37.0}
    assert traces.label_quantiles([10, 20, None, None]) == {"p10": 13.0, "p50": None, "p90": None}


def test_llm_validators_are_left_to_the_services_path():
    with pytest.raises(engine.EngineError, match="--through-services"):
        engine.file_validators({"validators": [
            {"name": "judge", "kind": "llm", "criterion": None, "source": "Is {output} good?"},
        ]})
    kept = engine.file_validators({"validators": [
        *VALIDATORS["validators"], VALIDATORS["validators"][0],
        {"name": "pick", "kind": "pairwise", "source": "def compare(a, b, i, r, m):\n    return 'tie'\n"},
    ]})
    assert [v["name"] for v in kept] == ["says_fine", "no_typo"]


def _reaching(budgets: list[int], first: int | None) -> list[float]:
    """A τ curve that reaches 0.9 at budget `first` and stays (never, for None)."""
    return [1.0 if first is not None and b >= first else 0.0 for b in budgets]


def test_selector_entry_reports_label_quantiles_over_seeds():
    budgets = [10, 20, 30, 40]
    firsts = [10, 10, 20, 20, 20, 30, 30, 40, None, None]
    runs = [traces.RunTrace(tau=_reaching(budgets, f), tau_ipw=_reaching(budgets, f)) for f in firsts]

    entry = traces.selector_entry(runs, budgets)

    # Sorted: 10 10 20 20 20 30 30 40 ∞ ∞. p10 at position 0.9 → 10; p50 at 4.5 → 25;
    # p90 at 8.1 touches a seed that never got there.
    assert entry["labels_to_tau_0_9_quantiles"] == {"p10": 10.0, "p50": 25.0, "p90": None}
    assert entry["labels_to_tau_0_9"] == 25.0
    assert entry["labels_to_regret_0_02_quantiles"] == {}
    assert entry["labels_to_regret_0_02_all_quantiles"] is None


def test_progress_bar_redraws_one_line():
    stream = io.StringIO()
    bar = engine.ProgressBar(2, stream, width=10)

    bar.advance("random seed 0")
    first = stream.getvalue()
    bar.advance("random seed 1")

    assert first.startswith("\r[#####-----] 1/2 runs, ")
    assert "random seed 0" in first
    assert stream.getvalue()[len(first):].startswith("\r[##########] 2/2 runs, ")
    assert stream.getvalue().endswith("\n")
