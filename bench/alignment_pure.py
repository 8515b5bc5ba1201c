"""Time the pure half of the report card: alignment tables and EvalGen selection.

    python bench/alignment_pure.py [--outputs 100000] [--labelled 10000] [--repetitions 50]

Generates an int8 verdict matrix (outputs x criteria*validators) whose verdicts follow a
hidden label per criterion, with errors and missing verdicts, and human labels on a subset.
Each repetition runs `alignment_table` and `select_validator` for every criterion. Printed:
median and p95 in milliseconds for the verdict matrix passed whole (unlabelled rows included)
and restricted to the labelled rows beforehand, the suite metrics alone, and a naive baseline
measured in the same run: a Python loop calling scikit-learn's `confusion_matrix` once per
validator, then the same metric assembly and selection. The target (DESIGN §4.2, "recomputes
within milliseconds after each grade") is 20 ms for 100,000 outputs x 50 validators.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from validators.alignment import alignment_table, metrics_from_counts  # noqa: E402
from validators.selection import Candidate, select_validator, suite_metrics  # noqa: E402

TARGET_MS = 20.0


def generate(
    n_outputs: int, n_labelled: int, n_criteria: int, per_criterion: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Human labels (n_criteria, n_outputs) with -1 off the labelled subset, and verdicts
    (n_outputs, n_criteria * per_criterion) following each criterion's hidden label."""
    rng = np.random.default_rng(seed)
    hidden = (rng.random((n_criteria, n_outputs)) < 0.7).astype(np.int8)  # 30% fail
    labelled = rng.choice(n_outputs, size=n_labelled, replace=False)
    human = np.full((n_criteria, n_outputs), -1, dtype=np.int8)
    annotator_slip = rng.random((n_criteria, n_labelled)) < 0.05
    human[:, labelled] = np.where(annotator_slip, 1 - hidden[:, labelled], hidden[:, labelled])

    verdicts = np.empty((n_outputs, n_criteria * per_criterion), dtype=np.int8)
    for criterion in range(n_criteria):
        truth = hidden[criterion]
        for k in range(per_criterion):
            catch_rate = rng.uniform(0.5, 0.98)
            false_failure_rate = rng.uniform(0.01, 0.4)
            draw = rng.random(n_outputs)
            fails = np.where(truth == 0, draw < catch_rate, draw < false_failure_rate)
            column = np.where(fails, 0, 1).astype(np.int8)
            trouble = rng.random(n_outputs)
            column[trouble < 0.02] = -1
            column[(trouble >= 0.02) & (trouble < 0.03)] = -2
            verdicts[:, criterion * per_criterion + k] = column
    return human, verdicts


def candidates_for(metrics, first_id: int) -> list[Candidate]:
    return [
        Candidate(
            validator_id=first_id + k,
            kind="code" if k % 2 == 0 else "llm",
            name=f"validator_{first_id + k}",
            metrics=m,
        )
        for k, m in enumerate(metrics)
    ]


def select_all(tables: list[list], per_criterion: int) -> list:
    return [
        select_validator(
            candidates_for(table, criterion * per_criterion), ffr_ceiling=0.25, min_labels=3
        )
        for criterion, table in enumerate(tables)
    ]


def sklearn_table(human: np.ndarray, verdicts: np.ndarray) -> list:
    from sklearn.metrics import confusion_matrix

    labelled = human != -1
    table = []
    for column in range(verdicts.shape[1]):
        v = verdicts[:, column]
        judged = labelled & (v >= 0)
        (tp, fn), (fp, tn) = confusion_matrix(human[judged], v[judged], labels=[0, 1])
        table.append(
            metrics_from_counts(
                tp=tp,
                fn=fn,
                fp=fp,
                tn=tn,
                n_error=np.count_nonzero(labelled & (v == -1)),
                n_missing=np.count_nonzero(labelled & (v == -2)),
            )
        )
    return table


@dataclass(frozen=True)
class Timings:
    wall: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def p95(self) -> float:
        return float(np.percentile(self.wall, 95))

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def timed(run: Callable[[], object], repetitions: int, warm_up: int = 3) -> Timings:
    for _ in range(warm_up):
        run()
    wall, cpu = [], []
    for _ in range(repetitions):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        run()
        cpu.append((time.process_time() - cpu_start) * 1000.0)
        wall.append((time.perf_counter() - wall_start) * 1000.0)
    return Timings(wall=wall, cpu=cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--labelled", type=int, default=10_000)
    parser.add_argument("--criteria", type=int, default=5)
    parser.add_argument("--per-criterion", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    human, verdicts = generate(
        args.outputs, args.labelled, args.criteria, args.per_criterion, args.seed
    )
    width = args.per_criterion
    # Column slices of the one matrix are views: nothing is copied before the clock starts.
    blocks = [verdicts[:, c * width : (c + 1) * width] for c in range(args.criteria)]
    labelled = np.flatnonzero(human[0] != -1)
    labelled_human = [h[labelled] for h in human]
    labelled_blocks = [np.ascontiguousarray(b[labelled]) for b in blocks]

    def whole_matrix() -> list:
        tables = [alignment_table(h, b) for h, b in zip(human, blocks, strict=True)]
        return select_all(tables, width)

    def labelled_only() -> list:
        tables = [
            alignment_table(h, b) for h, b in zip(labelled_human, labelled_blocks, strict=True)
        ]
        return select_all(tables, width)

    chosen_columns = [
        int(s.chosen.validator_id) for s in whole_matrix() if s.chosen is not None
    ]

    def suite() -> object:
        return suite_metrics(human[0], verdicts[:, chosen_columns])

    def baseline() -> list:
        tables = [sklearn_table(h, b) for h, b in zip(human, blocks, strict=True)]
        return select_all(tables, width)

    # The baseline must agree, or the comparison means nothing.
    assert [s.to_dict() for s in baseline()] == [s.to_dict() for s in whole_matrix()]

    rows = [
        ("alignment_table + select, whole matrix", timed(whole_matrix, args.repetitions)),
        ("alignment_table + select, labelled rows", timed(labelled_only, args.repetitions)),
        (f"suite_metrics ({len(chosen_columns)} chosen)", timed(suite, args.repetitions)),
        ("baseline: sklearn confusion_matrix loop", timed(baseline, args.repetitions)),
    ]
    baseline = rows[-1][1]

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.outputs:,} outputs x {verdicts.shape[1]} validators"
        f" ({args.criteria} criteria x {width}), {args.labelled:,} labelled,"
        f" {args.repetitions} repetitions; {os.cpu_count()} CPUs, load average {load}"
    )
    print(
        f"{'what':<44}{'median ms':>11}{'p95 ms':>9}{'CPU ms':>9}{'baseline/this':>15}"
    )
    for name, timings in rows:
        print(
            f"{name:<44}{timings.median:>11.2f}{timings.p95:>9.2f}{timings.cpu_median:>9.2f}"
            f"{baseline.median / timings.median:>15.1f}"
        )
    verdict = "met" if rows[0][1].p95 <= TARGET_MS else "MISSED"
    print(f"target {TARGET_MS:.0f} ms (p95 wall clock, whole matrix): {verdict}")
    print("(median/p95: wall clock; CPU: median process time, less sensitive to other load)")


if __name__ == "__main__":
    main()
