"""bench/both_goals_replay.py: per-seed labels needed read from the engine's traces, and
selector variants for one process."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from annotate import selectors
from annotate.selectors import base, get_selector
from simulator import engine, metrics
from simulator.traces import selector_entry
from tests.simulator.test_engine import VALIDATORS, _records, _verdicts

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "both_goals_replay.py"


@pytest.fixture(scope="module")
def replay_script():
    spec = importlib.util.spec_from_file_location("both_goals_replay", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_seed_medians_are_the_engines_labels_needed(replay_script):
    replay = engine.build_replay(
        _records(), data_name="tiny", validator_entries=VALIDATORS["validators"], verdicts=_verdicts(),
    )
    budgets = [6, 12, 18, 24, 30, 36, 42]
    runs = engine.run_all(replay, ["validator_choice"], 5, budgets)["validator_choice"]
    entry = selector_entry(runs, budgets)

    needed = replay_script.per_seed(entry, budgets)

    assert sorted(needed) == ["all", "holistic", "spelling", "tau"]
    assert all(len(values) == 5 for values in needed.values())
    assert metrics.median_labels(needed["tau"]) == entry["labels_to_tau_0_9"]
    assert metrics.median_labels(needed["all"]) == entry["labels_to_regret_0_02_all"]
    assert metrics.median_labels(needed["holistic"]) == entry["labels_to_regret_0_02"]["__holistic__"]
    assert metrics.median_labels(needed["spelling"]) == entry["labels_to_regret_0_02"]["spelling"]
    assert replay_script.quantiles(needed["tau"]) == tuple(
        entry["labels_to_tau_0_9_quantiles"][q] for q in ("p10", "p50", "p90")
    )


def test_a_variant_replaces_the_registry_entry_both_goals_reads(replay_script, monkeypatch):
    # monkeypatch restores both registries after the test.
    monkeypatch.setitem(selectors.SELECTORS, "validator_choice", selectors.SELECTORS["validator_choice"])
    monkeypatch.setitem(base._REGISTERED, "validator_choice", base._REGISTERED["validator_choice"])

    replay_script.use_variants({"validator_choice": {"pilot_labels": 7}})

    variant = get_selector("validator_choice")
    assert (variant.name, variant.pilot_labels, variant.uniform_share) == ("validator_choice", 7, 0.3)
    assert base.registered_selectors()["validator_choice"]().pilot_labels == 7


def test_cells_print_quantiles_and_the_parity_of_medians(replay_script):
    random = [100, 200, 300, 400, None]
    other = [50, 100, 150, 200, 250]

    text = replay_script.cell(other, random)

    p10, p50, p90 = (metrics.labels_quantile(other, q) for q in (0.1, 0.5, 0.9))
    parity = np.median(other) / np.median([100, 200, 300, 400, np.inf])
    assert text == f"{p10:,.0f} / {p50:,.0f} / {p90:,.0f} ({parity:.2f})"
    assert replay_script.cell(random, None) == "140 / 300 / —"
