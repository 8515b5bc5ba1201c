"""What one simulated run records, and the DESIGN §7 JSON built from many. Pure, no Django:
shared by the in-memory engine (simulator.engine) and the services path (simulator.runner), so
both write the same keys computed the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import metrics

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


@dataclass
class RunTrace:
    tau: list[float] = field(default_factory=list)
    tau_ipw: list[float] = field(default_factory=list)
    hit: dict[str, list[float]] = field(default_factory=dict)
    regret: dict[str, list[float]] = field(default_factory=dict)
    chosen: dict[str, list[str | None]] = field(default_factory=dict)
    labels: int = 0
    seconds: float = 0.0


@dataclass
class FullData:
    """What the whole file says: the system statistic and, per criterion, the report card's
    choice and every candidate's alignment."""

    system_values: np.ndarray
    chosen: dict[str, str | None] = field(default_factory=dict)
    alignments: dict[str, dict[str, float]] = field(default_factory=dict)


def label_quantiles(per_seed: list[int | None]) -> dict[str, float | None]:
    """p10 / p50 / p90 over seeds of the labels needed; a seed that never got there counts as
    infinitely many, so a quantile touching it is None (p50 is `metrics.median_labels`)."""
    return {name: metrics.labels_quantile(per_seed, q) for name, q in QUANTILES.items()}


def _per_seed(curves, budgets, threshold, *, at_least: bool) -> list[int | None]:
    return [metrics.labels_needed_per_seed(c, budgets, threshold, at_least=at_least) for c in curves]


def selector_entry(runs: list[RunTrace], budgets: list[int]) -> dict:
    tau = [t.tau for t in runs]
    criteria = list(runs[0].hit) if runs else []
    regret = {key: [t.regret[key] for t in runs] for key in criteria}
    worst = metrics.all_below(regret) if criteria else None
    return {
        "tau": tau,
        "validator_hit": {key: [t.hit[key] for t in runs] for key in criteria},
        "validator_regret": regret,
        "labels_to_tau_0_9": metrics.labels_needed(tau, budgets, metrics.TAU_TARGET, at_least=True),
        "labels_to_regret_0_02": {
            key: metrics.labels_needed(regret[key], budgets, metrics.REGRET_TARGET, at_least=False)
            for key in criteria
        },
        # Extras beside DESIGN §7's keys.
        "labels_to_tau_0_9_quantiles": label_quantiles(
            _per_seed(tau, budgets, metrics.TAU_TARGET, at_least=True)
        ),
        "labels_to_regret_0_02_quantiles": {
            key: label_quantiles(_per_seed(regret[key], budgets, metrics.REGRET_TARGET, at_least=False))
            for key in criteria
        },
        "labels_to_regret_0_02_all": metrics.labels_needed(
            worst, budgets, metrics.REGRET_TARGET, at_least=False
        ) if criteria else None,
        "labels_to_regret_0_02_all_quantiles": label_quantiles(
            _per_seed(worst, budgets, metrics.REGRET_TARGET, at_least=False)
        ) if criteria else None,
        "validator_chosen": {key: [t.chosen[key] for t in runs] for key in criteria},
        "tau_ipw": [t.tau_ipw for t in runs],
        "labels_to_tau_0_9_ipw": metrics.labels_needed(
            [t.tau_ipw for t in runs], budgets, metrics.TAU_TARGET, at_least=True
        ),
        "seconds": round(sum(t.seconds for t in runs), 2),
        "ms_per_label": round(
            1000 * sum(t.seconds for t in runs) / max(sum(t.labels for t in runs), 1), 3
        ),
    }


def add_parity(selectors: dict[str, dict]) -> None:
    random = selectors["random"]
    for name, entry in selectors.items():
        if name == "random":
            # Random against itself on the same seeds: 1 by definition, reached or not.
            entry["parity_tau"] = 1.0
            entry["parity_validator"] = 1.0
            entry["parity_validator_by_criterion"] = {k: 1.0 for k in entry["labels_to_regret_0_02"]}
            continue
        entry["parity_tau"] = metrics.parity(entry["labels_to_tau_0_9"], random["labels_to_tau_0_9"])
        entry["parity_validator"] = metrics.parity(
            entry["labels_to_regret_0_02_all"], random["labels_to_regret_0_02_all"]
        )
        entry["parity_validator_by_criterion"] = {
            key: metrics.parity(needed, random["labels_to_regret_0_02"].get(key))
            for key, needed in entry["labels_to_regret_0_02"].items()
        }


def build_result(
    *, data_name: str, n_outputs: int, systems: list[str], seeds: int, budgets: list[int],
    traces: dict[str, list[RunTrace]], full: FullData, scale: str, pass_threshold: float | None,
) -> dict:
    selectors = {name: selector_entry(runs, budgets) for name, runs in traces.items()}
    add_parity(selectors)
    return {
        "data": data_name,
        "outputs": n_outputs,
        "systems": len(systems),
        "seeds": seeds,
        "budgets": budgets,
        "selectors": selectors,
        "scale": scale,
        "pass_threshold": pass_threshold,
        "estimator": "per-system mean of the labels so far (tau); Hájek IPW in tau_ipw",
        "full_data": {
            "system_values": dict(zip(systems, map(float, full.system_values), strict=True)),
            "chosen": full.chosen,
            "alignment": full.alignments,
        },
    }
