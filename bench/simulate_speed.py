"""How fast is `simulate`'s in-memory engine, and what does batched re-scoring change?

    DEBUG=1 .venv/bin/python bench/simulate_speed.py [--outputs 8000] [--seeds 30] [--jobs 2]
        [--batch 20] [--exact-until 200] [--skip-services] [--skip-parity]

1. Baseline, measured in the same run: the services path (`simulate --through-services`,
   a throw-away SQLite database) and the engine on the same slice of the MQM dev file
   (random and ranking_uncertainty, one seed): ms per label and their ratio.
2. The target: every registered per-output selector × `--seeds` seeds on an `--outputs`-output
   file in `--jobs` processes, re-scoring after every label up to `--exact-until` labels and
   then every `--batch` labels. No dev file has 8,000 outputs: this one is built here, in a
   temporary folder, by tiling ../shared/data/mqm_ted_ende_dev.jsonl with new item_ids
   (`<item_id>~<copy>`), never committed. The bench/validators/mqm_ted_ende_dev.json code
   validators run once through the sandbox on the dev file; a tiled copy has the same texts, so
   its verdicts are the dev file's, tiled (the sandbox time is printed apart).
3. What batching changes: batch 1 against the batched setting on a smaller file (FRANK dev,
   512 outputs, 9 systems, with bench/validators/frank_valid_dev.json), where both targets are
   reached: labels needed (p10 / p50 / p90 over the seeds), parity against random, and the
   mean τ and worst-criterion regret at the largest budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _setup import ROOT, fresh_database

DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEV = DATA / "mqm_ted_ende_dev.jsonl"
VALIDATORS = ROOT / "bench" / "validators" / "mqm_ted_ende_dev.json"
SMALL = DATA / "frank_valid_dev.jsonl"
SMALL_VALIDATORS = ROOT / "bench" / "validators" / "frank_valid_dev.json"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def tiled(records: list[dict], n: int) -> tuple[list[dict], np.ndarray]:
    """`n` records: copies of the file with new item_ids, and which dev row each one copies."""
    out, source = [], []
    copy = 0
    while len(out) < n:
        for row, record in enumerate(records):
            if len(out) == n:
                break
            out.append({**record, "item_id": f"{record['item_id']}~{copy}"})
            source.append(row)
        copy += 1
    return out, np.array(source)


def write(records: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def services_baseline(folder: Path, records: list[dict], budget: int) -> dict[str, float]:
    """ms per label of both paths on the same slice, one seed, random and ranking_uncertainty."""
    from django.core.management import call_command

    data = write(records, folder / "slice.jsonl")
    timings = {}
    for name, flags in (("services", ["--through-services"]), ("engine", ["--jobs", "1"])):
        out = folder / f"slice_{name}.json"
        call_command(
            "simulate", "--data", str(data), "--validators", str(VALIDATORS),
            "--selectors", "random,ranking_uncertainty", "--budgets", str(budget), "--seeds", "1",
            "--out", str(out), *flags, verbosity=0,
        )
        result = json.loads(out.read_text())
        entries = result["selectors"].values()
        labels = sum(len(e["tau"]) * budget for e in entries)
        timings[name] = 1000 * sum(e["seconds"] for e in entries) / labels
        timings[f"{name}_tau"] = [e["tau"] for e in entries]
    return timings


def labels_row(entry: dict) -> str:
    q = entry["labels_to_tau_0_9_quantiles"]
    v = entry.get("labels_to_regret_0_02_all_quantiles") or {}

    def cell(d):
        return "/".join("—" if d.get(k) is None else f"{d[k]:.0f}" for k in ("p10", "p50", "p90"))

    last_tau = np.mean([curve[-1] for curve in entry["tau"]])
    regret = entry["validator_regret"]
    worst = np.mean(np.max([[curve[-1] for curve in regret[k]] for k in regret], axis=0)) if regret else np.nan
    return (f"τ≥0.9 {cell(q):>14}  regret≤0.02 {cell(v):>14}  at the last budget: "
            f"τ {last_tau:5.3f}, regret {worst:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--exact-until", type=int, default=200)
    parser.add_argument("--budgets", default="100,200,400,800,1600")
    parser.add_argument("--slice", type=int, default=300, help="outputs of the services baseline")
    parser.add_argument("--parity-budgets", default="50,100,150,200,250,300,350,400,450,500")
    parser.add_argument("--parity-seeds", type=int, default=30)
    parser.add_argument("--skip-services", action="store_true")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    budgets = tuple(int(b) for b in args.budgets.split(","))
    fresh_database("simulate_speed")

    from annotate.selectors import SELECTORS

    selectors = ["random", *(s for s in SELECTORS if not SELECTORS[s].pairwise and s != "random")]
    dev = read(DEV)
    folder = Path(tempfile.mkdtemp(prefix="concord-simulate-speed-"))
    print(f"files in {folder} (not kept in the repository)")

    if not args.skip_services:
        timings = services_baseline(folder, dev[: args.slice], budget=100)
        print(f"\n1. one seed, random + ranking_uncertainty, {args.slice} outputs, 100 labels each")
        print(f"   services path {timings['services']:8.2f} ms/label")
        print(f"   engine        {timings['engine']:8.2f} ms/label   "
              f"ratio {timings['services'] / timings['engine']:.0f}× faster")
        print(f"   same τ curves: {timings['services_tau'] == timings['engine_tau']}")

    if not args.skip_speed:
        speed(args, dev, folder, selectors, budgets)
    if not args.skip_parity:
        parity(args, selectors)


def speed(args, dev: list[dict], folder: Path, selectors: list[str], budgets: tuple[int, ...]) -> None:
    from simulator import engine

    entries = engine.file_validators(json.loads(VALIDATORS.read_text()))
    started = time.perf_counter()
    codes, scores = engine.code_verdicts(dev, entries)
    sandbox_seconds = time.perf_counter() - started
    records, source = tiled(dev, args.outputs)
    write(records, folder / f"mqm_tiled_{args.outputs}.jsonl")
    started = time.perf_counter()
    replay = engine.build_replay(
        records, data_name=f"mqm_tiled_{args.outputs}.jsonl", validator_entries=entries,
        verdicts=(codes[source], scores[source]), with_embeddings=True,
    )
    setup_seconds = time.perf_counter() - started
    batching = engine.Batching(size=args.batch, exact_until=args.exact_until)
    bar = engine.ProgressBar(len(selectors) * args.seeds)
    started = time.perf_counter()
    result = engine.simulate_replay(replay, selectors, args.seeds, budgets, jobs=args.jobs,
                                    batching=batching, progress_bar=bar)
    wall = time.perf_counter() - started
    labels = sum(len(e["tau"]) * budgets[-1] for e in result["selectors"].values())
    print(f"\n2. {len(selectors)} selectors × {args.seeds} seeds on {args.outputs} outputs, "
          f"{len(entries)} validators, budgets {budgets}, {args.jobs} processes, "
          f"batch {args.batch} after {args.exact_until} labels")
    print(f"   sandbox (dev file, once) {sandbox_seconds:.0f} s; replay set-up {setup_seconds:.1f} s")
    print(f"   wall {wall:.0f} s = {wall / 60:.1f} min  ({1000 * wall * args.jobs / labels:.2f} ms per label per core)")
    for name, entry in result["selectors"].items():
        print(f"   {name:20} {labels_row(entry)}  {entry['ms_per_label']:6.2f} ms/label")
    (folder / "speed_result.json").write_text(json.dumps(result, indent=1))



def parity(args, selectors: list[str]) -> None:
    from simulator import engine

    records = read(SMALL)
    entries = engine.file_validators(json.loads(SMALL_VALIDATORS.read_text()))
    replay = engine.build_replay(records, data_name=SMALL.name, validator_entries=entries, with_embeddings=True)
    budgets = tuple(int(b) for b in args.parity_budgets.split(","))
    batching = engine.Batching(size=args.batch, exact_until=args.exact_until)
    print(f"\n3. batch 1 against batch {args.batch} after {args.exact_until}: {SMALL.name} "
          f"({replay.n_outputs} outputs), {args.parity_seeds} seeds, budgets {budgets}; labels "
          "needed p10/p50/p90, parity against random")
    for label, setting in (("batch 1", engine.Batching()), (f"batch {args.batch}", batching)):
        started = time.perf_counter()
        outcome = engine.simulate_replay(replay, selectors, args.parity_seeds, budgets,
                                         jobs=args.jobs, batching=setting)
        print(f"   {label} ({time.perf_counter() - started:.0f} s)")
        for name, entry in outcome["selectors"].items():
            shown = " ".join("   —" if p is None else f"{p:4.2f}" for p in (entry["parity_tau"], entry["parity_validator"]))
            print(f"     {name:20} {labels_row(entry)}  parity τ / validator {shown}")


if __name__ == "__main__":
    sys.exit(main())
