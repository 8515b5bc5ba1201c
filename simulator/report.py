"""What `manage.py simulate` shows a person: the plot (τ and the validator-pick rate against
labels, per selector) and the summary table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator import metrics
from simulator.static_orderings import S2E_PREFIX

# -- the plot ------------------------------------------------------------------------------------
TAU_TITLE, TAU_YLABEL = "{data}: system ranking", "Kendall τ vs full-data ranking"
VALIDATOR_TITLE = "validator choice"
VALIDATOR_YLABEL = "share of criteria holding the full-data validator"


@dataclass(frozen=True)
class PlotSeries:
    """One line of the plot: a selector's mean over seeds, with a min–max band."""

    label: str
    style: str
    width: float
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def plot_series(result: dict) -> dict[str, list[PlotSeries]]:
    """What `plot_result` draws, per panel ("tau", and "validator" when any selector has
    validator hits): one series per selector, so the figure's content is checked without
    matplotlib."""
    with_validators = any(entry["validator_hit"] for entry in result["selectors"].values())
    panels: dict[str, list[PlotSeries]] = {"tau": []}
    if with_validators:
        panels["validator"] = []
    for name, entry in result["selectors"].items():
        style = "--" if name.startswith(S2E_PREFIX) else "-"
        width = 2.4 if name == "random" else 1.4
        panels["tau"].append(PlotSeries(name, style, width, *metrics.summarise(entry["tau"])))
        if with_validators and entry["validator_hit"]:
            per_seed = np.mean([np.asarray(v, dtype=float) for v in entry["validator_hit"].values()], axis=0)
            panels["validator"].append(
                PlotSeries(name, style, width, *metrics.summarise(per_seed))
            )
    return panels


def plot_figure(result: dict):
    """τ and the validator-pick rate against labels, one line per selector (mean over seeds)
    with a min–max band; a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = result["budgets"]
    panels = plot_series(result)
    columns = len(panels)
    figure, axes = plt.subplots(1, columns, figsize=(6.5 * columns, 4.6), squeeze=False)
    tau_axis = axes[0][0]
    colours = {}
    for series in panels["tau"]:
        (line,) = tau_axis.plot(
            budgets, series.mean, series.style, marker="o", markersize=3, lw=series.width,
            label=series.label,
        )
        tau_axis.fill_between(budgets, series.low, series.high, color=line.get_color(), alpha=0.12)
        colours[series.label] = line.get_color()
    for series in panels.get("validator", []):
        colour = colours[series.label]
        axes[0][1].plot(budgets, series.mean, series.style, marker="o", markersize=3,
                        lw=series.width, color=colour, label=series.label)
        axes[0][1].fill_between(budgets, series.low, series.high, color=colour, alpha=0.12)
    tau_axis.axhline(metrics.TAU_TARGET, color="grey", lw=0.8, ls=":")
    tau_axis.set_xlabel("labels")
    tau_axis.set_ylabel(TAU_YLABEL)
    tau_axis.set_title(TAU_TITLE.format(data=result["data"]))
    tau_axis.legend(fontsize=7, ncol=2)
    if "validator" in panels:
        axes[0][1].set_xlabel("labels")
        axes[0][1].set_ylabel(VALIDATOR_YLABEL)
        axes[0][1].set_ylim(-0.02, 1.02)
        axes[0][1].set_title(VALIDATOR_TITLE)
    for axis in axes[0]:
        axis.grid(alpha=0.3)
        if budgets[-1] / max(budgets[0], 1) >= 8:
            axis.set_xscale("log")
    figure.tight_layout()
    return figure


def plot_result(result: dict, path: Path) -> None:
    """Draw `plot_figure` to a PNG."""
    import matplotlib.pyplot as plt

    figure = plot_figure(result)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def format_table(result: dict) -> str:
    """The summary the command prints: labels needed and parities per selector."""
    def show(value) -> str:
        if value is None:
            return "—"
        return f"{value:.2f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"

    lines = [
        f"{result['data']}: {result['outputs']} outputs, {result['systems']} systems, "
        f"{result['seeds']} seeds, budgets {result['budgets']}",
        f"{'selector':<22} {'tau@max':>8} {'τ≥0.9 at':>9} {'parity τ':>9} "
        f"{'hit@max':>8} {'regret≤.02 at':>13} {'parity val':>10} {'ms/label':>9}",
    ]
    for name, entry in result["selectors"].items():
        tau_max = float(np.mean([curve[-1] for curve in entry["tau"]]))
        hits = entry["validator_hit"]
        hit_max = (
            float(np.mean([[seed[-1] for seed in v] for v in hits.values()])) if hits else math.nan
        )
        lines.append(
            f"{name:<22} {tau_max:>8.3f} {show(entry['labels_to_tau_0_9']):>9} "
            f"{show(entry['parity_tau']):>9} {hit_max:>8.2f} "
            f"{show(entry.get('labels_to_regret_0_02_all')):>13} {show(entry['parity_validator']):>10} "
            f"{entry.get('ms_per_label', math.nan):>9}"
        )
    return "\n".join(lines)


def format_judge_table(result: dict) -> str:
    """The summary of a judge-choice simulation: labels needed to hold the full-data judge
    (regret ≤ 0.02 from then on), p10/p50/p90 over seeds, and parity against random."""
    def show(value) -> str:
        return "—" if value is None else f"{value:g}"

    full = result["full_data"]
    chosen = full["chosen"]
    lines = [
        f"{result['data']}: {result['pairs']} pairs, {result['judges']} judges, "
        f"{result['seeds']} seeds, budgets {result['budgets'][0]}..{result['budgets'][-1]}",
        f"full data holds {chosen} (accuracy {full['accuracy'][chosen]:.3f}); {full['reason']}",
        f"{'selector':<20} {'p10':>6} {'p50':>6} {'p90':>6} {'hit@max':>8} {'parity judge':>13}",
    ]
    for name, entry in result["selectors"].items():
        hit_max = float(np.mean([seed[-1] for seed in entry["judge_hit"]]))
        lines.append(
            f"{name:<20} {show(entry['labels_to_regret_0_02_p10']):>6} "
            f"{show(entry['labels_to_regret_0_02_p50']):>6} {show(entry['labels_to_regret_0_02_p90']):>6} "
            f"{hit_max:>8.2f} {show(entry['parity_judge']):>13}"
        )
    return "\n".join(lines)
