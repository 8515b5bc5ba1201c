"""How few labels can a system ranking need? Random vs ranking_uncertainty vs an oracle.

    .venv/bin/python bench/ranking_bound.py [--seeds 20] [--only frank]

Pure numpy, no database: the shared dev files' human labels (or mean scores on SummEval,
normalised to [0, 1]) are revealed output by output, as `manage.py simulate` does through the
services, but here thousands of seeded runs take minutes. Three ways to pick the next output:

* random — uniform over the ungraded outputs (the baseline of the label-efficiency study);
* ranking_uncertainty — Concord's selector (annotate/selectors/ranking.py) through the real
  chooser with ε = 0.1, on a SelectionContext rebuilt after every label;
* oracle — the same allocation rule fed the *true* per-system means and variances (which no
  selector can know): a lower bound on the labels any rule that picks a system, then an output
  uniformly within it, can need.

For each, "labels needed" is the smallest budget from which Kendall τ-b of the per-system means
of the labels so far against the full-data means stays ≥ 0.9 (systems without labels get the
mean of all labels), checked on a grid of budgets; the table prints the median over seeds and
its ratio to random's (parity; below 1 is better). Reads ../shared/data, never copies it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))

from annotate.selectors import SelectionContext, choose, get_selector  # noqa: E402
from annotate.selectors.base import ScoredPool  # noqa: E402
from annotate.selectors.ranking import grade_value, standing_from, system_standing  # noqa: E402

FILES = {
    "frank": ("frank_valid_dev.jsonl", None),
    "summeval": ("summeval_dev.jsonl", (1.0, 5.0)),
    "mqm": ("mqm_ted_ende_dev.jsonl", None),
}


def load(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    file, scale = FILES[name]
    records = [json.loads(line) for line in (DATA / file).open()]
    if scale:
        low, high = scale
        human = np.array([(r["human"]["score"] - low) / (high - low) for r in records])
    else:
        human = np.array([r["human"]["label"] for r in records], dtype=float)
    systems = sorted({r["system"] for r in records})
    codes = np.array([systems.index(r["system"]) for r in records], dtype=np.int32)
    return human, codes, len(systems)


def budgets_for(n: int) -> np.ndarray:
    step = 25 if n <= 600 else 100
    return np.unique(np.r_[np.arange(step, n, step), n])


def tau(estimate: np.ndarray, full: np.ndarray) -> float:
    value = kendalltau(estimate, full).statistic
    return 0.0 if np.isnan(value) else float(value)


class OracleRanking:
    """ranking_uncertainty's rule on the true means and variances (finite-population)."""

    name = "oracle"
    pairwise = False

    def __init__(self, human: np.ndarray, codes: np.ndarray, n_systems: int):
        self.truth = np.array([human[codes == s].mean() for s in range(n_systems)])
        self.variance = np.array([max(human[codes == s].var(ddof=1), 1e-6) for s in range(n_systems)])

    def score(self, ctx: SelectionContext, rng: np.random.Generator):
        standing = system_standing(ctx)
        oracle = standing_from(standing.n_grades, standing.n_outputs, self.truth, self.variance)
        value = grade_value(oracle)
        return ScoredPool(ctx.pool, value[ctx.system_codes[ctx.pool]], lambda row: "oracle")


def run(human, codes, n_systems, budgets, method: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = human.size
    full = np.array([human[codes == s].mean() for s in range(n_systems)])
    observed = np.full(n, np.nan, dtype=np.float32)
    base = SelectionContext(
        candidate_mask=np.ones(n, bool), system_codes=codes, sample_codes=np.arange(n, dtype=np.int32),
        evidence=np.ones((n, 1), np.float32), evidence_scores=None,
        validator_criteria=np.array([-1], np.int32), human=observed, human_by_criterion=None,
        embeddings=None, n_labelled=0,
    )
    selector = OracleRanking(human, codes, n_systems) if method == "oracle" else get_selector(method)
    order = rng.permutation(n) if method == "random" else None
    taus = []
    wanted = set(budgets.tolist())
    for step in range(1, n + 1):
        if order is not None:
            row = int(order[step - 1])
        else:
            ctx = replace(base, candidate_mask=np.isnan(observed), human=observed.copy(), n_labelled=step - 1)
            row = choose(selector, ctx, epsilon=0.1, rng=rng).row
        observed[row] = human[row]
        if step in wanted:
            known = ~np.isnan(observed)
            overall = float(observed[known].mean())
            estimate = np.array([
                observed[known & (codes == s)].mean() if (known & (codes == s)).any() else overall
                for s in range(n_systems)
            ])
            taus.append(tau(estimate, full))
    return np.array(taus)


def labels_needed(curve: np.ndarray, budgets: np.ndarray) -> float:
    good = curve >= 0.9
    for index in range(budgets.size):
        if good[index:].all():
            return float(budgets[index])
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--only", choices=list(FILES), action="append")
    args = parser.parse_args()
    print(f"{'data':9} {'method':20} {'median labels':>13} {'parity':>7} {'of':>6}  seconds")
    for name in args.only or list(FILES):
        human, codes, n_systems = load(name)
        budgets = budgets_for(human.size)
        medians = {}
        for method in ("random", "ranking_uncertainty", "oracle"):
            started = time.perf_counter()
            needed = [
                labels_needed(run(human, codes, n_systems, budgets, method, seed), budgets)
                for seed in range(args.seeds)
            ]
            medians[method] = float(np.median(needed))
            parity = medians[method] / medians["random"]
            print(f"{name:9} {method:20} {medians[method]:13.0f} {parity:7.2f} {human.size:6d}  "
                  f"{time.perf_counter() - started:.0f}", flush=True)


if __name__ == "__main__":
    main()
