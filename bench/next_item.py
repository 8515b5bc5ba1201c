"""Latency of choosing the next item, for every active selector (DESIGN §7).

    .venv/bin/python bench/next_item.py [--trials 200] [--labels 2000] [--layout both]
                                        [--blas-threads 1] [--embed]

Synthetic project: N = 100,000 outputs × M = 20 validators (four criteria of five validators,
a quarter of them numeric), laid out as 500 samples × 200 systems or 5,000 samples × 20
systems, 64-dimensional unit embeddings, and some 2,000 human labels. Each trial grades the
previous choice (the project grows by one label, as in real use), builds a fresh context around
the same evidence and embedding arrays, and times `choose` with ε = 0.1.

"cold" is the first call on a fresh cache: the one-off precomputation (vote counts, row tables,
similarity to the labelled set, the first IRT / logistic fit) plus one choice. The naive
baselines, measured in the same run: a Python loop scoring each candidate for `variance`, and
a k-center step that recomputes every candidate's similarity to the whole labelled set (no
incremental cache) for `diversity`.

The cpu columns are this thread's CPU time (time.thread_time): with `--blas-threads 1` that is
all the work, and unlike wall clock it does not grow when other processes share the cores.

`--embed` also times the default embeddings (TF-IDF + truncated SVD, annotate.embeddings_math)
of 100,000 synthetic Zipf-distributed texts: the one-off cost of the embedding matrix.
Timings are wall clock: on a shared machine, run it twice and read the quieter run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotate.embeddings_math import embed_texts  # noqa: E402
from annotate.selectors import (  # noqa: E402
    SELECTORS,
    SelectionContext,
    choose,
    clear_cache,
    get_selector,
)

N_OUTPUTS = 100_000
N_VALIDATORS = 20
DIMENSIONS = 64


def synthetic_project(
    n_samples: int, n_systems: int, n_labels: int, seed: int
) -> tuple[SelectionContext, np.ndarray]:
    """A context with `n_labels` labels, and the oracle's label for every output."""
    rng = np.random.default_rng(seed)
    system_codes = np.repeat(np.arange(n_systems, dtype=np.int32), n_samples)
    sample_codes = np.tile(np.arange(n_samples, dtype=np.int32), n_systems)
    ability = rng.normal(0.0, 1.0, n_systems)
    difficulty = rng.normal(-0.5, 1.0, n_samples)
    quality = ability[system_codes] - difficulty[sample_codes] + rng.normal(0, 0.7, N_OUTPUTS)
    oracle = (quality > 0).astype(np.float32)

    noise = rng.normal(0.0, 1.0, (N_OUTPUTS, N_VALIDATORS))
    thresholds = rng.normal(0.0, 0.8, N_VALIDATORS)
    raw = quality[:, None] + noise * rng.uniform(0.3, 2.0, N_VALIDATORS)
    evidence = (raw > thresholds).astype(np.float32)
    evidence[rng.random(evidence.shape) < 0.05] = np.nan
    evidence_scores = np.full(evidence.shape, np.nan, dtype=np.float32)
    numeric = np.arange(N_VALIDATORS) % 4 == 0
    evidence_scores[:, numeric] = np.where(
        np.isnan(evidence[:, numeric]), np.nan, raw[:, numeric]
    )
    criteria = np.repeat(np.array([-1, 0, 1, 2], dtype=np.int32), N_VALIDATORS // 4)

    centres = rng.normal(0.0, 1.0, (n_samples, DIMENSIONS)).astype(np.float32)
    embeddings = centres[sample_codes] + rng.normal(0, 0.6, (N_OUTPUTS, DIMENSIONS)).astype(
        np.float32
    )
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)

    human = np.full(N_OUTPUTS, np.nan, dtype=np.float32)
    labelled = rng.choice(N_OUTPUTS, n_labels, replace=False)
    human[labelled] = oracle[labelled]
    by_criterion = np.full((N_OUTPUTS, 3), np.nan, dtype=np.float32)
    by_criterion[labelled] = (rng.random((n_labels, 3)) < 0.8) * oracle[labelled, None]
    ctx = SelectionContext(
        candidate_mask=np.isnan(human),
        system_codes=system_codes,
        sample_codes=sample_codes,
        evidence=evidence,
        evidence_scores=evidence_scores,
        validator_criteria=criteria,
        human=human,
        human_by_criterion=by_criterion,
        embeddings=embeddings,
        n_labelled=n_labels,
        system_names=tuple(f"sys-{s}" for s in range(n_systems)),
    )
    return ctx, oracle


def graded(ctx: SelectionContext, rows: list[int], oracle: np.ndarray) -> SelectionContext:
    human = ctx.human.copy()
    human[rows] = oracle[rows]
    by_criterion = ctx.human_by_criterion.copy()
    by_criterion[rows] = oracle[rows, None]
    return replace(
        ctx,
        human=human,
        human_by_criterion=by_criterion,
        candidate_mask=np.isnan(human),
        n_labelled=ctx.n_labelled + 1,
    )


def time_selector(
    name: str, base: SelectionContext, oracle: np.ndarray, trials: int
) -> tuple[float, list[float], list[float]]:
    """Cold ms, then per trial wall-clock ms and this thread's CPU ms."""
    selector = get_selector(name)
    rng = np.random.default_rng(7)
    clear_cache()
    ctx = replace(base)
    started = time.perf_counter()
    choice = choose(selector, ctx, epsilon=0.1, rng=rng)
    cold = (time.perf_counter() - started) * 1e3
    wall, cpu = [], []
    for _ in range(trials):
        rows = [choice.row] + ([choice.row_b] if choice.row_b is not None else [])
        ctx = graded(ctx, rows, oracle)
        started, started_cpu = time.perf_counter(), time.thread_time()
        choice = choose(selector, ctx, epsilon=0.1, rng=rng)
        cpu.append((time.thread_time() - started_cpu) * 1e3)
        wall.append((time.perf_counter() - started) * 1e3)
        if choice is None:
            break
    return cold, wall, cpu


def naive_variance(ctx: SelectionContext, evidence_rows: list[list[float]]) -> int:
    best_row, best_score = -1, -1.0
    for row in np.flatnonzero(ctx.candidate_mask).tolist():
        n_pass = n_verdicts = 0
        for outcome in evidence_rows[row]:
            if outcome == outcome:
                n_verdicts += 1
                n_pass += outcome == 1.0
        if n_verdicts:
            p = n_pass / n_verdicts
            if p * (1 - p) > best_score:
                best_row, best_score = row, p * (1 - p)
    return best_row


def naive_diversity(ctx: SelectionContext) -> int:
    pool = np.flatnonzero(ctx.candidate_mask)
    labelled = np.flatnonzero(~np.isnan(ctx.human))
    similarity = (ctx.embeddings[pool] @ ctx.embeddings[labelled].T).max(axis=1)
    return int(pool[np.argmin(similarity)])


def timed(function, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


def time_embeddings(n_texts: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(20_000)])
    zipf = 1.0 / np.arange(1, vocabulary.shape[0] + 1)
    zipf /= zipf.sum()
    texts = [
        " ".join(vocabulary[rng.choice(vocabulary.shape[0], size=rng.integers(10, 40), p=zipf)])
        for _ in range(n_texts)
    ]
    started = time.perf_counter()
    embed_texts(texts)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument("--layout", choices=["500x200", "5000x20", "both"], default="both")
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument(
        "--blas-threads", type=int, default=None,
        help="cap BLAS threads (a web worker serving one request at a time needs 1)",
    )
    parser.add_argument("--embed", action="store_true", help="also time embed_texts")
    args = parser.parse_args()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads)
    if args.embed:
        seconds = time_embeddings(N_OUTPUTS)
        print(f"embed_texts on {N_OUTPUTS:,} synthetic texts: {seconds:.1f} s")
    layouts = {"500x200": (500, 200), "5000x20": (5000, 20)}
    chosen = list(layouts) if args.layout == "both" else [args.layout]

    for layout in chosen:
        n_samples, n_systems = layouts[layout]
        started = time.perf_counter()
        base, oracle = synthetic_project(n_samples, n_systems, args.labels, seed=0)
        built = time.perf_counter() - started
        print(
            f"\n{layout}: N={N_OUTPUTS:,} outputs, M={N_VALIDATORS} validators, "
            f"{n_samples} samples × {n_systems} systems, {args.labels} labels, "
            f"{args.trials} trials (synthetic data built in {built:.1f} s)"
        )
        print(
            f"{'selector':<22}{'cold ms':>9}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}"
            f"{'cpu median':>12}{'cpu p95':>9}"
        )
        medians = {}
        for name in SELECTORS:
            cold, wall, cpu = time_selector(name, base, oracle, args.trials)
            medians[name] = float(np.median(wall))
            print(
                f"{name:<22}{cold:>9.1f}{medians[name]:>11.2f}"
                f"{np.percentile(wall, 95):>9.2f}{max(wall):>9.2f}"
                f"{np.median(cpu):>12.2f}{np.percentile(cpu, 95):>9.2f}"
            )

        evidence_rows = base.evidence.tolist()
        naive = timed(lambda b=base, e=evidence_rows: naive_variance(b, e), args.naive_repeats)
        print(
            f"naive variance (Python loop over {int(base.candidate_mask.sum()):,} candidates): "
            f"median {np.median(naive):.0f} ms = {np.median(naive) / medians['variance']:.0f}× "
            f"the variance selector"
        )
        naive = timed(lambda b=base: naive_diversity(b), args.naive_repeats)
        print(
            f"naive diversity (recompute similarity to all {args.labels} labels): "
            f"median {np.median(naive):.0f} ms = {np.median(naive) / medians['diversity']:.0f}× "
            f"the diversity selector"
        )


if __name__ == "__main__":
    main()
