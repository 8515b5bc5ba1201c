"""Both goals from ONE replay per seed: the system ranking (τ ≥ 0.9) and the validator choice
(regret ≤ 0.02 on every criterion), for any registered selector against random.

    .venv/bin/python bench/both_goals_replay.py --data frank --seeds 30 \
        --selectors random,both_goals [--params '{"goal_balance": 0.5}'] [--procs 2] [--out F.json]

`bench/ranking_bound.py` replays the ranking with a one-column dummy evidence matrix, and
`bench/validator_choice_replay.py` the report card alone; a selector that serves both goals
must see the real validator evidence and the per-criterion labels, and be judged on both at
once. The pieces are theirs: the sandbox verdicts and the report card's choice
(`validator_choice_replay.verdicts`, `.choice`: `alignment_table` with LURE weights, then
`select_validator` with the project defaults), the real chooser with ε = 0.1 on a
SelectionContext rebuilt after every label, and τ-b of the plain per-system means of the labels
so far against the full-data means (`ranking_bound.tau`; systems without labels get the mean of
all labels). `tau_ipw` is the same τ from the LURE-weighted (Hájek) per-system means, the
rankings page's IPW estimator. Per seed, "labels needed" is the smallest budget from which the
goal holds at every later budget; the table prints p10/p50/p90 over seeds and the parity of
medians against random. Binary files only (FRANK, MQM). Reads ../shared/data, never copies it;
the verdict matrix is cached under bench/results/ (git-ignored).
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "bench" / "results" / "both_goals"

import validator_choice_replay as card  # noqa: E402
from ranking_bound import tau  # noqa: E402

from annotate.sampling_weights import lure_weights  # noqa: E402
from annotate.selectors import HOLISTIC, SelectionContext, choose, get_selector  # noqa: E402
from validators.alignment import alignment_table  # noqa: E402

FILES = {"frank": "frank_valid_dev", "mqm": "mqm_ted_ende_dev"}
TAU, REGRET = 0.9, 0.02

# One replay's fixed inputs, set once per worker process (fork or spawn alike).
FILE: dict = {}


def load(name: str) -> None:
    stem = FILES[name]
    records = [json.loads(line) for line in (DATA / f"{stem}.jsonl").open()]
    validators = json.loads((ROOT / "bench" / "validators" / f"{stem}.json").read_text())["validators"]
    cached = CACHE / f"{stem}.npy"
    if cached.exists():
        matrix = np.load(cached)
    else:
        matrix = card.verdicts(records, validators)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cached, matrix)
    criteria = sorted({v["criterion"] for v in validators if v["criterion"]})
    truth = {
        None: np.array([r["human"]["label"] for r in records], dtype=np.int8),
        **{c: np.array([r["human"]["criteria"][c] for r in records], dtype=np.int8) for c in criteria},
    }
    columns = {
        t: np.array([i for i, v in enumerate(validators) if v["criterion"] == t]) for t in [None, *criteria]
    }
    full_alignment, best = {}, {}
    for t in columns:
        metrics = alignment_table(truth[t], matrix[:, columns[t]])
        full_alignment[t] = {int(c): (m.alignment or 0.0) for c, m in zip(columns[t], metrics, strict=True)}
        best[t] = card.choice(truth[t], matrix, columns[t], None)
    n = len(records)
    step = 25 if n < 1000 else 100
    systems = sorted({r["system"] for r in records})
    system_codes = np.array([systems.index(r["system"]) for r in records], dtype=np.int32)
    code_of = {t: (HOLISTIC if t is None else criteria.index(t)) for t in columns}
    FILE.update(
        criteria=criteria, targets=[t for t in columns if best[t] is not None], truth=truth,
        columns=columns, full_alignment=full_alignment, best=best, matrix=matrix,
        budgets=np.unique(np.r_[np.arange(step, n, step), n]), system_codes=system_codes,
        full_means=np.array([truth[None][system_codes == s].mean() for s in range(len(systems))]),
        context=SelectionContext(
            candidate_mask=np.ones(n, bool), system_codes=system_codes,
            sample_codes=np.unique([r["item_id"] for r in records], return_inverse=True)[1].astype(np.int32),
            evidence=np.where(matrix >= 0, matrix, np.nan).astype(np.float32), evidence_scores=None,
            validator_criteria=np.array([code_of[v["criterion"]] for v in validators], dtype=np.int32),
            human=np.full(n, np.nan, np.float32),
            human_by_criterion=np.full((n, len(criteria)), np.nan, np.float32), embeddings=None,
            n_labelled=0, criterion_names=tuple(criteria),
        ),
    )


def first_budget_from_which(holds: np.ndarray, budgets: np.ndarray) -> float:
    return next((float(budgets[i]) for i in range(holds.size) if holds[i:].all()), np.inf)


def system_means(system_codes, rows, values, weights, n_systems) -> np.ndarray:
    """Per-system (weighted) mean of the labels so far; a system without any gets the mean."""
    codes = system_codes[rows]
    total = np.bincount(codes, weights=weights * values, minlength=n_systems)
    mass = np.bincount(codes, weights=weights, minlength=n_systems)
    overall = float((weights * values).sum() / weights.sum())
    return np.divide(total, mass, out=np.full(n_systems, overall), where=mass > 0)


def replay_seed(job: tuple[str, int, dict]) -> dict[str, float]:
    selector_name, seed, params = job
    truth, budgets, criteria = FILE["truth"], FILE["budgets"], FILE["criteria"]
    n, n_systems = FILE["system_codes"].size, FILE["full_means"].size
    rng = np.random.default_rng(seed)
    order = rng.permutation(n) if selector_name == "random" else None
    selector = None if order is not None else get_selector(selector_name, **params)
    human = np.full(n, np.nan, np.float32)
    by_criterion = np.full((n, len(criteria)), np.nan, np.float32)
    ratios, pools, rows = [], [], []
    regret = {t: [] for t in FILE["targets"]}
    taus, taus_ipw = [], []
    for step in range(1, n + 1):
        if order is not None:
            row, probability = int(order[step - 1]), 1.0 / (n - step + 1)
        else:
            ctx = replace(FILE["context"], candidate_mask=np.isnan(human), human=human.copy(),
                          human_by_criterion=by_criterion.copy(), n_labelled=step - 1)
            picked = choose(selector, ctx, epsilon=0.1, rng=rng)
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
        for t in FILE["targets"]:
            labels = np.full(n, -1, np.int8)
            labels[rows] = truth[t][rows]
            held = card.choice(labels, FILE["matrix"], FILE["columns"][t], None if unweighted else weights)
            chosen = 0.0 if held is None else FILE["full_alignment"][t][held]
            regret[t].append(FILE["full_alignment"][t][FILE["best"][t]] - chosen)
        labelled = np.array(rows)
        values = truth[None][labelled].astype(float)
        for curve, w in ((taus, np.ones(labelled.size)), (taus_ipw, weights[labelled])):
            means = system_means(FILE["system_codes"], labelled, values, w, n_systems)
            curve.append(tau(means, FILE["full_means"]))
    needed = {
        "tau": first_budget_from_which(np.array(taus) >= TAU, budgets),
        "tau_ipw": first_budget_from_which(np.array(taus_ipw) >= TAU, budgets),
    }
    for t in FILE["targets"]:
        needed["holistic" if t is None else t] = first_budget_from_which(
            np.array(regret[t]) <= REGRET, budgets
        )
    worst = np.max([regret[t] for t in FILE["targets"]], axis=0)
    needed["all"] = first_budget_from_which(worst <= REGRET, budgets)
    return needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(FILES), default="frank")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--selectors", default="random,both_goals")
    parser.add_argument("--params", default="{}", help="JSON keyword arguments for the selectors")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--out", help="write every seed's labels needed as JSON")
    args = parser.parse_args()
    params = json.loads(args.params)
    load(args.data)
    results = {}
    for name in args.selectors.split(","):
        started = time.perf_counter()
        jobs = [(name, seed, {} if name == "random" else params) for seed in range(args.seeds)]
        with Pool(args.procs, initializer=load, initargs=(args.data,)) as pool:
            per_seed = pool.map(replay_seed, jobs)
        results[name] = {key: [seed[key] for seed in per_seed] for key in per_seed[0]}
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    baseline = results.get("random")
    print(f"\n{args.data}: labels needed, p10/p50/p90 over {args.seeds} seeds (parity of medians "
          f"against random); selector parameters {params}")
    for name, needed in results.items():
        cells = []
        for key, values in needed.items():
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            parity = f"{p50 / np.median(baseline[key]):.2f}" if baseline else "-"
            cells.append(f"{key} {p10:.0f}/{p50:.0f}/{p90:.0f} ({parity})")
        print(f"{name:20} " + "  ".join(cells))
    if args.out:
        Path(args.out).write_text(json.dumps({
            "data": args.data, "seeds": args.seeds, "params": params, "needed": results,
        }))


if __name__ == "__main__":
    main()
