"""Which selector finds the right validator per criterion with the fewest labels? Many seeds.

    .venv/bin/python bench/validator_choice_replay.py [--seeds 50] [--only frank]
                                                      [--selectors random,validator_choice]
    .venv/bin/python bench/validator_choice_replay.py --data any.jsonl --validators any.json

A thin use of `simulate`'s in-memory engine (simulator.engine), which `manage.py simulate`
runs by default: the code validators run once through the sandbox pool, the registered
selectors and chooser (ε = 0.1) pick outputs as the claim path does, re-scored after every
label, an oracle reveals the file's holistic and per-criterion labels, and at each budget the
report card's own functions (`alignment_table` with LURE weights from
`annotate.sampling_weights`, then `select_validator` with the project defaults: FFR ceiling
0.25, 3 labels per class) choose a validator per criterion. Regret is the full-data alignment
of the full-data choice minus that of the current choice; per criterion, "labels needed" is the
smallest budget from which regret stays ≤ 0.02 (median over seeds, a seed that never gets
there counting as infinitely many: "—" when the median is such a seed), and parity divides it
by random's. FRANK, MQM, SummEval (a rating project: pass = score ≥ 4, as the import makes it)
or --data (with --scale rating for a rating file). p10 / p50 / p90 of both goals at once:
bench/both_goals_replay.py. Reads ../shared/data, never copies it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))
VALIDATORS = ROOT / "bench" / "validators"

from simulator import engine  # noqa: E402

FILES = {"frank": "frank_valid_dev", "summeval": "summeval_dev", "mqm": "mqm_ted_ende_dev"}
# SummEval is a rating project, as the import makes it: pass = score ≥ 4, per criterion too.
SCALES = {"summeval": {"scale": "rating", "pass_threshold": 4.0, "scale_min": 1.0, "scale_max": 5.0}}
REGRET = 0.02


def budgets_for(n: int) -> tuple[int, ...]:
    step = 25 if n < 1000 else 100
    return tuple(int(b) for b in np.unique(np.r_[np.arange(step, n, step), n]))


def replay(data: Path, validators: Path, selectors: list[str], seeds: int, jobs: int,
           scale: dict | None = None) -> dict:
    records = [json.loads(line) for line in data.open(encoding="utf-8") if line.strip()]
    entries = engine.file_validators(json.loads(validators.read_text(encoding="utf-8")))
    built = engine.build_replay(records, data_name=data.name, validator_entries=entries, **(scale or {}))
    budgets = budgets_for(built.n_outputs)
    return engine.simulate_replay(built, selectors, seeds, budgets, jobs=jobs)["selectors"]


def needed(entry: dict) -> dict[str, float]:
    by_key = {("holistic" if k == "__holistic__" else k): v for k, v in entry["labels_to_regret_0_02"].items()}
    by_key["all"] = entry["labels_to_regret_0_02_all"]
    return {k: float("inf") if v is None else float(v) for k, v in by_key.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--only", choices=list(FILES), action="append")
    parser.add_argument("--selectors", default="random,validator_choice,mad_validators,variance")
    parser.add_argument("--data", help="any binary per-output JSONL instead of the dev files")
    parser.add_argument("--validators", help="its validators file (DESIGN §6); needed with --data")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--scale", choices=["binary", "rating"], default="binary", help="of --data")
    parser.add_argument("--pass-threshold", type=float, default=4.0)
    parser.add_argument("--scale-min", type=float, default=1.0)
    parser.add_argument("--scale-max", type=float, default=5.0)
    args = parser.parse_args()
    if args.data:
        if not args.validators:
            parser.error("--data needs --validators")
        files = {Path(args.data).stem: (Path(args.data), Path(args.validators))}
        if args.scale == "rating":
            SCALES[Path(args.data).stem] = {"scale": "rating", "pass_threshold": args.pass_threshold,
                                            "scale_min": args.scale_min, "scale_max": args.scale_max}
    else:
        files = {name: (DATA / f"{stem}.jsonl", VALIDATORS / f"{stem}.json") for name, stem in FILES.items()
                 if not args.only or name in args.only}
    selectors = args.selectors.split(",")
    if "random" not in selectors:
        selectors.insert(0, "random")
    for name, (data, validators) in files.items():
        entries = replay(data, validators, selectors, args.seeds, args.jobs, SCALES.get(name))
        results = {s: needed(entry) for s, entry in entries.items()}
        baseline = results["random"]
        print(f"\n{name}: labels until regret ≤ {REGRET} stays, median of {args.seeds} seeds "
              "(parity against random)")
        keys = list(baseline)
        print(f"{'selector':18} " + " ".join(f"{k[:11]:>15}" for k in keys) + "  ≤0.5  seconds")
        for selector, result in results.items():
            cells, half = [], 0
            for key in keys:
                value = result[key]
                parity = value / baseline[key] if np.isfinite(value) and np.isfinite(baseline[key]) else None
                half += parity is not None and parity <= 0.5 and key != "all"
                cells.append(f"{value:>7.0f} ({parity:4.2f})" if parity is not None else f"{value:>15.0f}")
            print(f"{selector:18} " + " ".join(f"{c:>15}" for c in cells)
                  + f"  {half:>4}  {entries[selector]['seconds']:.0f}")


if __name__ == "__main__":
    main()
