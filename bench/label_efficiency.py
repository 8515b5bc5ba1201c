"""Label-efficiency study: `manage.py simulate` on the shared dev files (DESIGN §7).

    .venv/bin/python bench/label_efficiency.py                  # every study below
    .venv/bin/python bench/label_efficiency.py --only frank     # one of them
    .venv/bin/python bench/label_efficiency.py --report         # table + figure from results

Each study runs in a fresh throw-away database (bench/_setup.py) and writes
bench/results/label_efficiency/<study>.json and .png; `--report` prints the table of all
results and draws the combined figure (docs/label_efficiency.png with --figure). Reads the
labelled files from ../shared/data (never copied into the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results" / "label_efficiency"
VALIDATORS = ROOT / "bench" / "validators"

SINGLE = (
    "random,ranking_uncertainty,validator_choice,uncertainty,mad_validators,variance,evalgen,"
    "metric_var,irt,diversity,s2e_metric_var,s2e_metric_avg,s2e_diversity"
)
# MQM's 3,052 outputs make a run ~10x longer: the selectors that matter, to every output.
MQM = (
    "random,ranking_uncertainty,validator_choice,mad_validators,metric_var,s2e_metric_var,"
    "s2e_metric_avg,s2e_diversity"
)


def grid(step: int, last: int) -> str:
    return ",".join(str(b) for b in [*range(step, last, step), last])

STUDIES: dict[str, dict] = {
    "frank": {
        "data": "frank_valid_dev.jsonl", "validators": "frank_valid_dev.json",
        "budgets": grid(25, 512), "selectors": SINGLE,
    },
    # SummEval has Likert 1–5 means of 3 experts and no binary label: pass = mean ≥ 4 ("good"
    # or better on average); 73% of the summaries pass, so both classes have examples.
    "summeval": {
        "data": "summeval_dev.jsonl", "validators": "summeval_dev.json",
        "budgets": grid(20, 320), "selectors": SINGLE,
        "extra": ["--scale", "rating", "--pass-threshold", "4", "--scale-min", "1", "--scale-max", "5"],
    },
    "mqm": {
        "data": "mqm_ted_ende_dev.jsonl", "validators": "mqm_ted_ende_dev.json",
        "budgets": "50,100,200,300,400,600,800,1000,1200,1400,1600,1800,2000,2200,2400,2600,"
                   "2800,3052",
        "selectors": MQM,
    },
    "pandalm": {
        "data": "pandalm_dev_pairs.jsonl", "budgets": "20,40,80,120,160",
        "selectors": "random,mad_systems",
    },
}


def run_study(name: str, seeds: int, overrides: dict[str, str] | None = None, tag: str = "") -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from _setup import fresh_database

    fresh_database(f"label_efficiency_{name}")
    from django.core.management import call_command

    study = {**STUDIES[name], **(overrides or {})}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}{tag}.json"
    args = [
        "--data", str(DATA / study["data"]), "--selectors", study["selectors"],
        "--budgets", study["budgets"], "--seeds", str(seeds), "--out", str(out),
        "--plot", str(RESULTS / f"{name}{tag}.png"), *study.get("extra", []),
    ]
    if "validators" in study:
        args += ["--validators", str(VALIDATORS / study["validators"])]
    started = time.perf_counter()
    call_command("simulate", *args)
    print(f"{name}: {time.perf_counter() - started:.0f} s")
    return out


def _show(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}f}"
    return f"{value:g}"


def _criteria_parity(entry: dict, selectors: dict) -> str:
    """Per criterion, labels until its regret stays ≤ 0.02 against random's: how many criteria
    need at most half (≤ 0.5) and at most as many (≤ 1; reaching it where random never does
    counts) of random's labels."""
    random = selectors.get("random", {}).get("labels_to_regret_0_02", {})
    mine = entry.get("labels_to_regret_0_02", {})
    half = at_most = 0
    for key, needed in mine.items():
        baseline = random.get(key)
        if needed is None:
            continue
        if baseline is None:
            at_most += 1
            continue
        half += needed <= 0.5 * baseline
        at_most += needed <= baseline
    return f"{half} / {at_most} of {len(mine)}" if mine else ""


def table(results: dict[str, dict]) -> str:
    """Markdown table: per study and selector, τ at the largest budget, labels to τ ≥ 0.9 and
    its parity, the share of criteria holding the full-data validator at the largest budget,
    labels until every criterion's regret stays ≤ 0.02 and that parity."""
    import numpy as np

    lines = [
        "| data | selector | τ @max | labels τ≥0.9 | parity τ | τ ≥ best s2e | hit @max "
        "| labels regret≤0.02 (all) | parity validator | criteria at parity ≤ 0.5 / ≤ 1 | ms/label |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for study, result in results.items():
        selectors = result["selectors"]
        s2e = [s for s in selectors if s.startswith("s2e_")]
        best_s2e = np.max([np.mean(selectors[s]["tau"], axis=0) for s in s2e], axis=0) if s2e else None
        for name, entry in selectors.items():
            mean_tau = np.mean(entry["tau"], axis=0)
            hits = entry["validator_hit"]
            hit = np.mean([np.mean(v, axis=0)[-1] for v in hits.values()]) if hits else None
            versus = (
                "" if best_s2e is None or name.startswith("s2e_")
                else f"{int(np.sum(mean_tau >= best_s2e - 1e-9))}/{len(mean_tau)} budgets"
            )
            lines.append(
                f"| {study} | {name} | {mean_tau[-1]:.3f} | {_show(entry['labels_to_tau_0_9'])} "
                f"| {_show(entry['parity_tau'])} | {versus} | {_show(hit)} "
                f"| {_show(entry.get('labels_to_regret_0_02_all'))} "
                f"| {_show(entry['parity_validator'])} | {_criteria_parity(entry, selectors)} "
                f"| {_show(entry.get('ms_per_label'), 0)} |"
            )
    return "\n".join(lines)


def figure(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # Twelve selectors: tab20's paired shades keep neighbours apart better than the default ten.
    plt.rcParams["axes.prop_cycle"] = plt.cycler(color=plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2])
    rows = len(results)
    fig, axes = plt.subplots(rows, 2, figsize=(13, 3.9 * rows), squeeze=False)
    for row, result in enumerate(results.values()):
        budgets = result["budgets"]
        for name, entry in result["selectors"].items():
            style = "--" if name.startswith("s2e_") else "-"
            width = 2.6 if name == "random" else 1.3
            tau = np.asarray(entry["tau"], dtype=float)
            (line,) = axes[row][0].plot(budgets, tau.mean(0), style, lw=width, marker="o",
                                        markersize=2.5, label=name)
            axes[row][0].fill_between(budgets, tau.min(0), tau.max(0), color=line.get_color(), alpha=0.1)
            if entry["validator_hit"]:
                hit = np.mean([np.asarray(v, dtype=float) for v in entry["validator_hit"].values()], axis=0)
                axes[row][1].plot(budgets, hit.mean(0), style, lw=width, marker="o", markersize=2.5,
                                  color=line.get_color(), label=name)
                axes[row][1].fill_between(budgets, hit.min(0), hit.max(0), color=line.get_color(), alpha=0.1)
        if not any(entry["validator_hit"] for entry in result["selectors"].values()):
            axes[row][1].set_visible(False)
        axes[row][0].axhline(0.9, color="grey", lw=0.8, ls=":")
        axes[row][0].set_title(f"{result['data']} — Kendall τ vs full-data ranking")
        axes[row][1].set_title(f"{result['data']} — share of criteria holding the full-data validator")
        for axis in axes[row]:
            axis.set_xlabel("labels")
            axis.grid(alpha=0.3)
        axes[row][0].legend(fontsize=6.5, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(STUDIES), action="append")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--selectors", help="comma-separated selectors instead of the study's")
    parser.add_argument("--budgets", help="comma-separated budgets instead of the study's")
    parser.add_argument("--tag", default="", help="suffix of the result files (partial runs)")
    parser.add_argument("--report", action="store_true", help="only read results and report")
    parser.add_argument("--figure", help="combined figure path (default: results folder)")
    args = parser.parse_args()
    names = args.only or list(STUDIES)
    if not args.report:
        for name in names:
            overrides = {key: getattr(args, key) for key in ("selectors", "budgets") if getattr(args, key)}
            run_study(name, args.seeds, overrides, args.tag)
    results = {
        name: json.loads((RESULTS / f"{name}{args.tag}.json").read_text())
        for name in STUDIES if (RESULTS / f"{name}{args.tag}.json").exists()
    }
    if not results:
        parser.error(f"no results in {RESULTS} (tag {args.tag!r}): run a study first")
    print(table(results))
    figure(results, Path(args.figure) if args.figure else RESULTS / f"label_efficiency{args.tag}.png")


if __name__ == "__main__":
    main()
