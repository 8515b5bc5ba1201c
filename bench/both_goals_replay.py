"""Both goals from ONE replay per seed, on every dev file: the system ranking (τ ≥ 0.9) and the
validator choice (regret ≤ 0.02 per criterion and on every criterion at once), any registered
selectors against random, p10 / p50 / p90 over seeds.

    .venv/bin/python bench/both_goals_replay.py --data frank --seeds 30 \
        --selectors random,ranking_uncertainty,validator_choice,both_goals \
        [--params '{"validator_choice": {"uniform_share": 0.5}}'] [--out F.json]
    .venv/bin/python bench/both_goals_replay.py --report F.json [G.json ...]   # the tables again

A thin use of `simulate`'s in-memory engine (simulator.engine, what `manage.py simulate` runs by
default): the code validators run once in the sandbox (cached under bench/results/, git-ignored),
the registered selectors pick through the claim path's chooser (ε = 0.1, re-scored after every
label), an oracle reveals the file's labels, and at each budget the report card's own functions
choose a validator per criterion (LURE weights) and τ-b compares the plain per-system means of
the labels so far with the full-data ones. SummEval is a rating project, as the import makes
it: human pass = score ≥ 4 (per criterion too), validators' pass / fail against that, and the
ranking (and the selectors) use the mean score. Per seed, "labels needed" is the smallest budget
from which the goal holds at every later budget (a seed that never gets there counts as
infinitely many: "—"); parity divides medians by random's on the same seeds and budgets.

`--params` gives selectors other defaults for this process only (a bench of variants; the
registry entry is replaced, so `both_goals` uses the variant of `validator_choice` too); it
runs seeds in this process. Reads ../shared/data, never copies it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
VALIDATORS = ROOT / "bench" / "validators"
CACHE = ROOT / "bench" / "results" / "both_goals"

from simulator import engine, metrics  # noqa: E402
from simulator.traces import selector_entry  # noqa: E402

# name: (file stem, build_replay's scale arguments, budget step)
FILES: dict[str, tuple[str, dict, int]] = {
    "frank": ("frank_valid_dev", {}, 25),
    "summeval": ("summeval_dev", {"scale": "rating", "pass_threshold": 4.0, "scale_min": 1.0, "scale_max": 5.0}, 20),
    "mqm": ("mqm_ted_ende_dev", {}, 100),
}


def budgets_for(n: int, step: int) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unique(np.r_[np.arange(step, n, step), n]))


def build(name: str) -> engine.Replay:
    stem, scale, _ = FILES[name]
    data = DATA / f"{stem}.jsonl"
    records = [json.loads(line) for line in data.open(encoding="utf-8") if line.strip()]
    entries = engine.file_validators(json.loads((VALIDATORS / f"{stem}.json").read_text(encoding="utf-8")))
    cached = CACHE / f"{stem}.verdicts.npz"
    if cached.exists():
        stored = np.load(cached)
        verdicts = (stored["codes"], stored["scores"])
    else:
        verdicts = engine.code_verdicts(records, entries)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cached, codes=verdicts[0], scores=verdicts[1])
    return engine.build_replay(records, data_name=data.name, validator_entries=entries, verdicts=verdicts, **scale)


def use_variants(params: dict[str, dict]) -> None:
    """Give registered selectors other defaults in this process (both the registry that
    `get_selector` reads and the one `both_goals` instantiates from)."""
    from annotate import selectors
    from annotate.selectors import base

    for name, overrides in params.items():
        original = selectors.SELECTORS[name]
        fields = [(k, type(v), dataclasses.field(default=v)) for k, v in overrides.items()]
        variant = dataclasses.make_dataclass(original.__name__, fields, bases=(original,), frozen=True)
        selectors.SELECTORS[name] = variant
        base._REGISTERED[name] = (base._REGISTERED[name][0], variant)


def per_seed(entry: dict, budgets: list[int]) -> dict[str, list[int | None]]:
    """Labels needed per seed: τ, every criterion at once, and each criterion."""
    result = {"tau": [metrics.labels_needed_per_seed(c, budgets, metrics.TAU_TARGET, at_least=True)
                      for c in entry["tau"]]}
    regret = entry["validator_regret"]
    if regret:
        worst = metrics.all_below(regret)
        result["all"] = [metrics.labels_needed_per_seed(c, budgets, metrics.REGRET_TARGET, at_least=False)
                         for c in worst]
    for key, curves in regret.items():
        result["holistic" if key == engine.HOLISTIC_KEY else key] = [
            metrics.labels_needed_per_seed(c, budgets, metrics.REGRET_TARGET, at_least=False) for c in curves
        ]
    return result


def quantiles(values: list[int | None]) -> tuple[float | None, float | None, float | None]:
    return tuple(metrics.labels_quantile(values, q) for q in (0.1, 0.5, 0.9))


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def cell(values: list[int | None], baseline: list[int | None] | None) -> str:
    p10, p50, p90 = quantiles(values)
    text = f"{_number(p10)} / {_number(p50)} / {_number(p90)}"
    if baseline is not None:
        parity = metrics.parity(p50, metrics.labels_quantile(baseline, 0.5))
        text += f" ({'—' if parity is None else f'{parity:.2f}'})"
    return text


def batched(study: dict) -> str:
    if study.get("batch", 1) == 1:
        return ", re-scored after every label"
    return f", re-scored after every label to {study['exact_until']}, then every {study['batch']}"


def report(study: dict) -> str:
    needed = study["needed"]
    baseline = needed.get("random")
    keys = list(next(iter(needed.values())))
    lines = [f"{study['data']} ({study['outputs']} outputs), {study['seeds']} seeds, budgets every "
             f"{study['step']}{batched(study)}; labels needed p10 / p50 / p90 (parity of medians against random); "
             f"parameters {study.get('params') or {}}", "",
             "| selector | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, by_key in needed.items():
        cells = [cell(by_key[k], None if name == "random" else baseline[k]) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(FILES), default="frank")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--selectors", default="random,ranking_uncertainty,validator_choice,both_goals")
    parser.add_argument("--params", default="{}", help="JSON: selector name → keyword defaults")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="items per scoring after --exact-until labels")
    parser.add_argument("--exact-until", type=int, default=0)
    parser.add_argument("--out", help="write every seed's labels needed as JSON")
    parser.add_argument("--report", nargs="+", help="print the tables of earlier --out files")
    args = parser.parse_args()
    if args.report:
        for path in args.report:
            print(report(json.loads(Path(path).read_text())), end="\n\n")
        return
    params = json.loads(args.params)
    if params:
        if args.jobs > 1:
            parser.error("--params replaces registry entries in this process: use --jobs 1")
        use_variants(params)
    replay = build(args.data)
    step = FILES[args.data][2]
    budgets = list(budgets_for(replay.n_outputs, step))
    selectors = args.selectors.split(",")
    if "random" not in selectors:
        selectors.insert(0, "random")
    batching = engine.Batching(size=args.batch, exact_until=args.exact_until)
    needed, seconds = {}, {}
    for name in selectors:
        started = time.perf_counter()
        traces = engine.run_all(replay, [name], args.seeds, budgets, jobs=args.jobs, batching=batching)
        needed[name] = per_seed(selector_entry(traces[name], budgets), budgets)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    study = {"data": replay.data_name, "outputs": replay.n_outputs, "seeds": args.seeds, "step": step,
             "budgets": budgets, "params": params, "batch": args.batch, "exact_until": args.exact_until, "needed": needed, "seconds": seconds}
    print(report(study))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(study))


if __name__ == "__main__":
    main()
