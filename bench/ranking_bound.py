"""How few labels can a system ranking need? Random vs ranking_uncertainty vs an oracle.

    .venv/bin/python bench/ranking_bound.py [--seeds 20] [--only frank]
    .venv/bin/python bench/ranking_bound.py --data any.jsonl [--scale 1,5] [--seeds 20]

A thin use of `simulate`'s in-memory engine (simulator.engine): the file's human labels (or
mean scores on a rating file, normalised to [0, 1] for the selectors) are revealed output by
output as the claim path would choose them, with no database. Three ways to pick the next
output:

* random — uniform over the ungraded outputs (the baseline of the label-efficiency study);
* ranking_uncertainty — Concord's selector (annotate/selectors/ranking.py) through the real
  chooser with ε = 0.1, re-scored after every label;
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))

from annotate.selectors import SelectionContext  # noqa: E402
from annotate.selectors.base import ScoredPool  # noqa: E402
from annotate.selectors.ranking import grade_value, standing_from, system_standing  # noqa: E402
from simulator import engine, metrics  # noqa: E402

FILES = {
    "frank": ("frank_valid_dev.jsonl", None),
    "summeval": ("summeval_dev.jsonl", (1.0, 5.0)),
    "mqm": ("mqm_ted_ende_dev.jsonl", None),
}


def load(path: Path, scale: tuple[float, float] | None) -> engine.Replay:
    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    if scale is None:
        return engine.build_replay(records, data_name=path.name)
    low, high = scale
    # Any pass threshold: the ranking and the selector read the mean score, not pass/fail.
    return engine.build_replay(records, data_name=path.name, scale="rating",
                               pass_threshold=(low + high) / 2, scale_min=low, scale_max=high)


def budgets_for(n: int) -> tuple[int, ...]:
    step = 25 if n <= 600 else 100
    return tuple(int(b) for b in np.unique(np.r_[np.arange(step, n, step), n]))


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


def oracle_for(replay: engine.Replay) -> OracleRanking:
    values = replay.values
    if replay.rating is not None:
        low, high, _ = replay.rating
        values = (values - low) / (high - low)
    return OracleRanking(values, replay.system_codes, len(replay.system_names))


def needed(replay: engine.Replay, method: str, seeds: int, budgets, jobs: int) -> list[int | None]:
    if method == "oracle":
        # The oracle is no registered selector: run in this process.
        oracle = oracle_for(replay)
        curves = [engine.run_seed(replay, "oracle", seed, budgets, custom=oracle).tau for seed in range(seeds)]
    else:
        curves = [t.tau for t in engine.run_all(replay, [method], seeds, budgets, jobs=jobs)[method]]
    return [metrics.labels_needed_per_seed(c, budgets, metrics.TAU_TARGET, at_least=True) for c in curves]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--only", choices=list(FILES), action="append")
    parser.add_argument("--data", help="any per-output JSONL instead of the dev files")
    parser.add_argument("--scale", help="low,high of a rating file's human.score (else binary labels)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.data:
        scale = tuple(float(x) for x in args.scale.split(",")) if args.scale else None
        files = {Path(args.data).stem: (Path(args.data), scale)}
    else:
        files = {name: (DATA / file, scale) for name, (file, scale) in FILES.items()
                 if not args.only or name in args.only}
    print(f"{'data':9} {'method':20} {'median labels':>13} {'parity':>7} {'of':>6}  seconds")
    for name, (path, scale) in files.items():
        replay = load(path, scale)
        budgets = budgets_for(replay.n_outputs)
        medians = {}
        for method in ("random", "ranking_uncertainty", "oracle"):
            started = time.perf_counter()
            median = metrics.median_labels(needed(replay, method, args.seeds, budgets, args.jobs))
            medians[method] = float("inf") if median is None else median
            parity = medians[method] / medians["random"]
            print(f"{name:9} {method:20} {medians[method]:13.0f} {parity:7.2f} {replay.n_outputs:6d}  "
                  f"{time.perf_counter() - started:.0f}", flush=True)


if __name__ == "__main__":
    main()
