"""Which selector finds the right validator per criterion with the fewest labels? Many seeds.

    .venv/bin/python bench/validator_choice_replay.py [--seeds 50] [--only frank]
                                                      [--selectors random,validator_choice]

The simulator (`manage.py simulate`) answers this through the database; at 10 seeds its
"labels needed" is dominated by seed noise. This replay keeps everything else the same:
the code validators of bench/validators/ run once through the sandbox pool, the real selectors
and chooser (ε = 0.1) pick outputs from a SelectionContext rebuilt after every label, an oracle
reveals the file's holistic and per-criterion labels, and at each budget the report card's own
functions (`alignment_table` with LURE weights from `annotate.sampling_weights`, then
`select_validator` with the project defaults: FFR ceiling 0.25, 3 labels per class) choose a
validator per criterion. Regret is the full-data alignment of the full-data choice minus that
of the current choice; per criterion, "labels needed" is the smallest budget from which regret
stays ≤ 0.02 (median over seeds), and parity divides it by random's. Binary files only
(FRANK, MQM). Reads ../shared/data, never copies it.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
VALIDATORS = ROOT / "bench" / "validators"

from annotate.sampling_weights import lure_weights  # noqa: E402
from annotate.selectors import HOLISTIC, SelectionContext, choose, get_selector  # noqa: E402
from validators.alignment import alignment_table  # noqa: E402
from validators.sandbox.pool import CheckItem, SandboxPool  # noqa: E402
from validators.selection import Candidate, select_validator  # noqa: E402

FILES = {"frank": "frank_valid_dev", "mqm": "mqm_ted_ende_dev"}
CEILING, MIN_LABELS, REGRET = 0.25, 3, 0.02
CODES = {"pass": 1, "fail": 0, "error": -1}


def verdicts(records: list[dict], validators: list[dict]) -> np.ndarray:
    """(N, M) verdict codes (1 pass, 0 fail, -1 error), run in the sandbox as the product does."""
    items = [CheckItem(r["output"], r["input"], r.get("reference"), {}) for r in records]
    matrix = np.empty((len(records), len(validators)), dtype=np.int8)
    pool = SandboxPool(size=2)
    try:
        for column, validator in enumerate(validators):
            results = pool.run(validator["source"], items, threshold=validator.get("threshold"))
            matrix[:, column] = [CODES[r.outcome] for r in results]
    finally:
        pool.close()
    return matrix


def choice(labels, matrix, columns, weights):
    """The validator column the report card holds for one criterion, or None."""
    labelled = np.flatnonzero(labels >= 0)
    metrics = alignment_table(labels[labelled], matrix[np.ix_(labelled, columns)],
                              weights=None if weights is None else weights[labelled])
    candidates = [Candidate(int(c), "code", str(c), m) for c, m in zip(columns, metrics, strict=True)]
    chosen = select_validator(candidates, ffr_ceiling=CEILING, min_labels=MIN_LABELS).chosen
    return None if chosen is None else chosen.validator_id


def replay(name: str, selector: str, seeds: int) -> dict:
    stem = FILES[name]
    records = [json.loads(line) for line in (DATA / f"{stem}.jsonl").open()]
    validators = json.loads((VALIDATORS / f"{stem}.json").read_text())["validators"]
    matrix = verdicts(records, validators)
    criteria = sorted({v["criterion"] for v in validators if v["criterion"]})
    targets = [None, *criteria]
    truth = {
        None: np.array([r["human"]["label"] for r in records], dtype=np.int8),
        **{c: np.array([r["human"]["criteria"][c] for r in records], dtype=np.int8) for c in criteria},
    }
    columns = {t: np.array([i for i, v in enumerate(validators) if v["criterion"] == t]) for t in targets}
    full_alignment, best = {}, {}
    for t in targets:
        full_alignment[t] = {
            int(c): (m.alignment or 0.0)
            for c, m in zip(columns[t], alignment_table(truth[t], matrix[:, columns[t]]), strict=True)
        }
        best[t] = choice(truth[t], matrix, columns[t], None)
    targets = [t for t in targets if best[t] is not None]
    n = len(records)
    budgets = np.unique(np.r_[np.arange(25 if n < 1000 else 100, n, 25 if n < 1000 else 100), n])
    systems = sorted({r["system"] for r in records})
    evidence = np.where(matrix >= 0, matrix, np.nan).astype(np.float32)
    code_of = {t: (HOLISTIC if t is None else criteria.index(t)) for t in [None, *criteria]}
    base = SelectionContext(
        candidate_mask=np.ones(n, bool),
        system_codes=np.array([systems.index(r["system"]) for r in records], dtype=np.int32),
        sample_codes=np.unique([r["item_id"] for r in records], return_inverse=True)[1].astype(np.int32),
        evidence=evidence, evidence_scores=None,
        validator_criteria=np.array([code_of[v["criterion"]] for v in validators], dtype=np.int32),
        human=np.full(n, np.nan, np.float32),
        human_by_criterion=np.full((n, len(criteria)), np.nan, np.float32), embeddings=None,
        n_labelled=0, criterion_names=tuple(criteria),
    )
    needed = {t: [] for t in [*targets, "all"]}
    started = time.perf_counter()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(n) if selector == "random" else None
        human = np.full(n, np.nan, np.float32)
        by_criterion = np.full((n, len(criteria)), np.nan, np.float32)
        ratios, pools, rows = [], [], []
        regret = {t: [] for t in targets}
        for step in range(1, n + 1):
            if order is not None:
                row, probability = int(order[step - 1]), 1.0 / (n - step + 1)
            else:
                ctx = replace(base, candidate_mask=np.isnan(human), human=human.copy(),
                              human_by_criterion=by_criterion.copy(), n_labelled=step - 1)
                picked = choose(get_selector(selector), ctx, epsilon=0.1, rng=rng)
                row, probability = picked.row, picked.probability
            rows.append(row)
            pools.append(n - step + 1)
            ratios.append(1.0 / ((n - step + 1) * probability))
            human[row] = truth[None][row]
            for j, c in enumerate(criteria):
                by_criterion[row, j] = truth[c][row]
            if step not in budgets:
                continue
            weights = np.ones(n)
            weights[rows] = lure_weights(np.array(ratios), np.array(pools, float), n, step)
            unweighted = np.allclose(weights[rows], 1.0)
            for t in targets:
                labels = np.full(n, -1, np.int8)
                labels[rows] = truth[t][rows]
                held = choice(labels, matrix, columns[t], None if unweighted else weights)
                lost = full_alignment[t][best[t]] - (0.0 if held is None else full_alignment[t][held])
                regret[t].append(lost)
        regret["all"] = np.max([regret[t] for t in targets], axis=0)
        for t in [*targets, "all"]:
            ok = np.array(regret[t]) <= REGRET
            first = next((int(budgets[i]) for i in range(ok.size) if ok[i:].all()), None)
            needed[t].append(np.inf if first is None else first)
    return {
        "needed": {("holistic" if t is None else t): float(np.median(v)) for t, v in needed.items()},
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--only", choices=list(FILES), action="append")
    parser.add_argument("--selectors", default="random,validator_choice,mad_validators,variance")
    args = parser.parse_args()
    for name in args.only or list(FILES):
        results = {s: replay(name, s, args.seeds) for s in args.selectors.split(",")}
        baseline = results["random"]["needed"] if "random" in results else None
        print(f"\n{name}: labels until regret ≤ {REGRET} stays, median of {args.seeds} seeds "
              "(parity against random)")
        keys = list(next(iter(results.values()))["needed"])
        print(f"{'selector':18} " + " ".join(f"{k[:11]:>15}" for k in keys) + "  ≤0.5  seconds")
        for selector, result in results.items():
            cells, half = [], 0
            for key in keys:
                value = result["needed"][key]
                parity = value / baseline[key] if baseline and np.isfinite(value) and baseline[key] else None
                half += parity is not None and parity <= 0.5 and key != "all"
                cells.append(f"{value:>7.0f} ({parity:4.2f})" if parity is not None else f"{value:>15.0f}")
            print(f"{selector:18} " + " ".join(f"{c:>15}" for c in cells) + f"  {half:>4}  {result['seconds']:.0f}")


if __name__ == "__main__":
    main()
