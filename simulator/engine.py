"""The in-memory replay behind `manage.py simulate` (DESIGN §7). Pure numpy, no Django.

The services path (simulator.runner) drives `assignment_claim_next` and `grade_submit` against
a database: 33–70 ms a label. This engine replays the same thing over arrays and reuses the
code those services call, so for one seed the two give the same figures (a test holds them to
it):

- choosing: the registered selectors (`annotate.selectors.get_selector`) on a
  `SelectionContext` built as `annotate.selection.selection_context` builds it, through
  `choose_many` with k = 20 and the project's default ε, exactly as the claim path ranks its
  candidates and claims the first (the other 19 draws are made all the same: they move the
  random stream). The random selector is drawn as the claim path draws it
  (`annotate.selection._rank_uniform`), not through the chooser. Arrays that did not change
  between labels are passed as the very same objects, as the claim path's per-project cache
  does, so selectors that warm-start from their previous call see the same history.
- the report card: `alignment_table` with LURE weights (`annotate.sampling_weights`, from the
  probability and pool size each claim recorded), then `select_validator` with the project
  defaults, as `validators.report_card.report_card` calls them (a validator with a threshold
  whose numbers were stored without a verdict is read at that threshold, as `_read_scores`
  does).
- the figures: `simulator.metrics` and `simulator.traces`, shared with the services path.

Rows are the file's records in order, which is the order of the output ids an import
creates; sample codes follow first appearance, as sample ids do.

Re-scoring after every label is what the app does; on large files a run may instead re-score
after every label up to `Batching.exact_until`, then take `Batching.size` items per scoring
from the same `choose_many` (each with the probability it had given the earlier ones were
taken, so the LURE weights stay exact). bench/simulate_speed.py measures what that changes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np

from annotate.sampling_weights import importance_ratios, lure_weights
from annotate.selectors import (
    EMBEDDING_SELECTORS,
    SELECTORS,
    SelectionContext,
    Selector,
    choose_many,
    get_selector,
)
from annotate.selectors.base import unchanged_or_fresh
from annotate.statistics import (
    LABEL_FAIL,
    LABEL_PASS,
    NO_LABEL,
    OUTCOME_CODES,
    VERDICT_ERROR,
    VERDICT_MISSING,
    as_outcomes,
)
from simulator import metrics
from simulator.traces import FullData, RunTrace, build_result
from validators.alignment import alignment_table
from validators.selection import Candidate, CriterionSelection, select_validator
from validators.thresholds import verdicts_at

HOLISTIC_KEY = "__holistic__"
# annotate.services.assignments.MAX_CLAIM_ATTEMPTS: how many candidates a claim ranks.
CLAIM_RANKING = 20
# The project defaults a simulation project is created with (annotate.models.Project).
DEFAULT_EPSILON, DEFAULT_FFR_CEILING, DEFAULT_MIN_LABELS = 0.1, 0.25, 3
# Selector names that replay a fixed order instead of choosing (simulator.static_orderings).
StaticOrders = dict[tuple[str, int], list[int]]
Progress = Callable[[str], None]


class EngineError(ValueError):
    pass


@dataclass(frozen=True)
class ValidatorColumn:
    name: str
    criterion: str | None
    kind: str
    threshold: float | None
    # The name in the JSON: unique within its criterion (simulator.runner.validator_labels).
    label: str


@dataclass(frozen=True)
class Batching:
    """Re-score after every label up to `exact_until` labels, then take `size` items per
    scoring. The default (size 1) is what the app does."""

    size: int = 1
    exact_until: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.exact_until < 0:
            raise EngineError("a batch holds at least one item, after a non-negative number of labels")

    def take(self, labelled: int, next_budget: int) -> int:
        if self.size == 1 or labelled < self.exact_until:
            return 1
        # A batch never straddles a budget: every budget is measured at exactly its count.
        return max(1, min(self.size, next_budget - labelled))


@dataclass(frozen=True)
class Replay:
    """Everything a run reads, fixed for the whole simulation (and pickled to each worker)."""

    data_name: str
    system_names: tuple[str, ...]
    system_codes: np.ndarray         # (N,) int32, systems in sorted order
    sample_codes: np.ndarray         # (N,) int32, inputs in order of first appearance
    holistic: np.ndarray             # (N,) int8, the oracle's LABEL_PASS / LABEL_FAIL
    scores: np.ndarray               # (N,) float64 the oracle's score, NaN on a binary project
    values: np.ndarray               # (N,) float64 what the system ranking averages
    criteria: tuple[str, ...]        # criterion keys in the project's order
    criteria_codes: np.ndarray       # (N, C) int8, NO_LABEL where the file gives none
    validators: tuple[ValidatorColumn, ...]
    verdict_codes: np.ndarray        # (N, M) int8: 1 pass, 0 fail, -1 error, -2 missing
    verdict_scores: np.ndarray       # (N, M) float32, NaN where no number
    embeddings: np.ndarray | None    # (N, D) float32, for the selectors that read them
    full: FullData
    epsilon: float = DEFAULT_EPSILON
    ffr_ceiling: float = DEFAULT_FFR_CEILING
    min_labels: int = DEFAULT_MIN_LABELS
    # (low, high, pass threshold) on a rating project with a usable scale, else None.
    rating: tuple[float, float, float] | None = None
    scale: str = "binary"
    pass_threshold: float | None = None

    @property
    def n_outputs(self) -> int:
        return int(self.holistic.size)


# -- the file ------------------------------------------------------------------------------------
def _verdict(label, score, rating_threshold: float | None) -> int | None:
    """The import's rule (annotate.services.imports): on a rating project a score decides
    (at or above the pass threshold passes), else the binary label."""
    if rating_threshold is not None and score is not None:
        return LABEL_PASS if score >= rating_threshold else LABEL_FAIL
    if label is not None:
        return LABEL_PASS if label == 1 else LABEL_FAIL
    return None


def oracle_arrays(
    records: Sequence[dict], *, scale: str, pass_threshold: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[dict[str, int]]]:
    """(holistic codes, scores, ranking values, criteria in order of first use, per-record
    criterion codes): what `simulator.runner.oracle_answer` answers, as arrays."""
    rating = scale == "rating"
    threshold = pass_threshold if rating else None
    holistic = np.empty(len(records), np.int8)
    scores = np.full(len(records), np.nan)
    values = np.empty(len(records))
    order: dict[str, None] = {}
    per_record: list[dict[str, int]] = []
    for row, record in enumerate(records):
        human = record.get("human") or {}
        labels, numbers = human.get("criteria") or {}, human.get("criteria_scores") or {}
        criteria = {}
        for name in sorted(set(labels) | (set(numbers) if rating else set())):
            verdict = _verdict(labels.get(name), numbers.get(name), threshold)
            if verdict is not None:
                criteria[name] = verdict
                order.setdefault(name, None)
        per_record.append(criteria)
        if rating:
            score = human.get("score")
            if score is None:
                raise EngineError(f"item {record.get('item_id')!r} has no human.score to rate with")
            holistic[row] = _verdict(None, score, threshold)
            scores[row] = values[row] = float(score)
            continue
        verdict = _verdict(human.get("label"), None, None)
        if verdict is None:
            if not criteria:
                raise EngineError(f"item {record.get('item_id')!r} has no human label")
            # As the import does: no overall label, so the output passes only if every criterion does.
            verdict = LABEL_FAIL if LABEL_FAIL in criteria.values() else LABEL_PASS
        holistic[row] = verdict
        values[row] = 1.0 if verdict == LABEL_PASS else 0.0
    return holistic, scores, values, list(order), per_record


def file_validators(data: dict | list) -> list[dict]:
    """The per-output entries of a validators file (DESIGN §6) that the engine can run, in file
    order, without the duplicates an import skips. Pairwise entries judge pairs, never one
    output: the per-output replay leaves them out, as the report card does."""
    entries = data.get("validators") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise EngineError("a validators file holds a list of validators")
    kept, seen = [], set()
    for entry in entries:
        kind = entry.get("kind", "code")
        if kind == "pairwise" or entry.get("target") == "pair":
            continue
        if kind != "code":
            raise EngineError(
                f"validator {entry.get('name')!r} is {kind!r}: the in-memory engine runs code "
                "validators; use --through-services for the others"
            )
        key = (entry.get("source"), entry.get("criterion"), entry.get("threshold"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(entry)
    return kept


def validator_columns(entries: Sequence[dict]) -> tuple[ValidatorColumn, ...]:
    counts = Counter((e.get("criterion"), e["name"]) for e in entries)
    columns = []
    for e in entries:
        threshold = e.get("threshold")
        unique = counts[(e.get("criterion"), e["name"])] == 1
        label = e["name"] if unique or threshold is None else f"{e['name']}@{threshold:g}"
        columns.append(ValidatorColumn(e["name"], e.get("criterion"), "code", threshold, label))
    return tuple(columns)


def check_items(records: Sequence[dict]) -> list:
    """What `check(output, input, reference, meta)` receives for each record after an import:
    the input and reference of the sample (the first record of the input, or the first with a
    reference), and meta as `validators.services.evaluation.output_meta` builds it."""
    from validators.sandbox.pool import CheckItem

    reserved = {
        "item_id", "input", "reference", "context", "system", "output", "human", "metadata", "meta",
        "system_a", "system_b", "output_a", "output_b", "human_preference", "input_id",
    }
    sample: dict[str, dict] = {}
    for r in records:
        key = str(r["item_id"]).strip()
        if key not in sample or (sample[key].get("reference") is None and r.get("reference")):
            sample[key] = r
    items = []
    for r in records:
        first = sample[str(r["item_id"]).strip()]
        metadata = r.get("metadata", r.get("meta")) or {}
        meta = {**{k: v for k, v in r.items() if k not in reserved}, **metadata,
                "system": str(r["system"]).strip(), "context": first.get("context")}
        items.append(CheckItem(r["output"], first["input"], first.get("reference"), meta))
    return items


def code_verdicts(records: Sequence[dict], entries: Sequence[dict], *, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(codes, scores) of every code validator on every record, run once through the sandbox
    pool as a validator run does."""
    from validators.sandbox.pool import SandboxPool

    n, m = len(records), len(entries)
    codes = np.full((n, m), VERDICT_MISSING, dtype=np.int8)
    scores = np.full((n, m), np.nan, dtype=np.float32)
    if not m or not n:
        return codes, scores
    items = check_items(records)
    pool = SandboxPool(size=workers)
    try:
        for column, entry in enumerate(entries):
            for row, result in enumerate(pool.run(entry["source"], items, threshold=entry.get("threshold"))):
                codes[row, column] = OUTCOME_CODES.get(result.outcome, VERDICT_MISSING if result.outcome == "score" else VERDICT_ERROR)
                if result.score is not None:
                    scores[row, column] = result.score
    finally:
        pool.close()
    return codes, scores


def first_appearance_codes(keys: Sequence[str]) -> np.ndarray:
    code: dict[str, int] = {}
    return np.array([code.setdefault(k, len(code)) for k in keys], dtype=np.int32)


def build_replay(
    records: Sequence[dict], *, data_name: str, validator_entries: Sequence[dict] = (),
    verdicts: tuple[np.ndarray, np.ndarray] | None = None, scale: str = "binary",
    pass_threshold: float | None = None, scale_min: float | None = None,
    scale_max: float | None = None, epsilon: float | None = None, with_embeddings: bool = False,
) -> Replay:
    """The replay of a per-output file. `verdicts` are the validators' (codes, scores); None runs
    the code validators in the sandbox."""
    if scale == "rating" and pass_threshold is None:
        raise EngineError("a rating scale needs a pass threshold")
    holistic, scores, values, criteria, per_record = oracle_arrays(
        records, scale=scale, pass_threshold=pass_threshold
    )
    # The project's criteria: the file's labels first (the import creates them), then those only
    # the validators name (the validators import creates them).
    for entry in validator_entries:
        if entry.get("criterion") and entry["criterion"] not in criteria:
            criteria.append(entry["criterion"])
    criteria_codes = np.full((len(records), len(criteria)), NO_LABEL, dtype=np.int8)
    column = {name: j for j, name in enumerate(criteria)}
    for row, given in enumerate(per_record):
        for name, verdict in given.items():
            criteria_codes[row, column[name]] = verdict
    systems = sorted({str(r["system"]).strip() for r in records})
    system_code = {name: code for code, name in enumerate(systems)}
    system_codes = np.array([system_code[str(r["system"]).strip()] for r in records], dtype=np.int32)
    columns = validator_columns(validator_entries)
    if verdicts is None:
        verdicts = code_verdicts(records, validator_entries)
    embeddings = None
    if with_embeddings:
        from annotate.embeddings_math import embed_texts

        embeddings = embed_texts([r["output"] for r in records])
    rating = None
    if scale == "rating" and scale_min is not None and scale_max is not None and scale_max > scale_min:
        rating = (float(scale_min), float(scale_max), float(pass_threshold))
    replay = Replay(
        data_name=data_name, system_names=tuple(systems), system_codes=system_codes,
        sample_codes=first_appearance_codes([str(r["item_id"]).strip() for r in records]),
        holistic=holistic, scores=scores, values=values, criteria=tuple(criteria),
        criteria_codes=criteria_codes, validators=columns, verdict_codes=verdicts[0],
        verdict_scores=verdicts[1], embeddings=embeddings,
        full=FullData(metrics.system_means(system_codes, values, len(systems))),
        epsilon=DEFAULT_EPSILON if epsilon is None else float(epsilon), rating=rating, scale=scale,
        pass_threshold=pass_threshold,
    )
    return _with_full_card(replay)


# -- the report card -----------------------------------------------------------------------------
def _targets(replay: Replay) -> list[tuple[str, int | None]]:
    return [(HOLISTIC_KEY, None), *((key, j) for j, key in enumerate(replay.criteria))]


def card_selections(
    replay: Replay, labelled_rows: np.ndarray, weights: np.ndarray | None,
) -> dict[str, CriterionSelection]:
    """Per criterion key, the report card's selection when `labelled_rows` hold the oracle's
    labels; `weights` (N,) are the LURE weights, None when every draw was uniform."""
    codes = replay.verdict_codes.copy()
    scores = replay.verdict_scores
    selections = {}
    for key, criterion in _targets(replay):
        labels = np.full(replay.n_outputs, NO_LABEL, dtype=np.int8)
        source = replay.holistic if criterion is None else replay.criteria_codes[:, criterion]
        labels[labelled_rows] = source[labelled_rows]
        wanted = None if criterion is None else replay.criteria[criterion]
        columns = [j for j, v in enumerate(replay.validators) if v.criterion == wanted]
        for j in columns:
            threshold = replay.validators[j].threshold
            # validators.report_card._read_scores: a number stored without a verdict is read at
            # the validator's own threshold (code validators are no scored kind: never swept).
            score_only = np.isfinite(scores[:, j]) & (codes[:, j] == VERDICT_MISSING)
            if threshold is not None and score_only.any():
                codes[:, j] = verdicts_at(codes[:, j], scores[:, j], np.array([threshold], dtype=scores.dtype))[:, 0]
        labelled = np.flatnonzero(labels >= 0)
        table = alignment_table(
            labels[labelled], codes[np.ix_(labelled, columns)],
            weights=weights[labelled] if weights is not None else None,
        ) if columns else []
        candidates = [
            Candidate(validator_id=j, kind=replay.validators[j].kind, name=replay.validators[j].name, metrics=m)
            for j, m in zip(columns, table, strict=True)
        ]
        selections[key] = select_validator(
            candidates, ffr_ceiling=replay.ffr_ceiling, min_labels=max(1, replay.min_labels),
        )
    return selections


def _with_full_card(replay: Replay) -> Replay:
    """The replay with the full data's choices: every label known, drawn by nobody (weight 1)."""
    chosen, alignments = {}, {}
    everything = np.arange(replay.n_outputs)
    for key, selection in card_selections(replay, everything, None).items():
        if not selection.ranked:
            continue
        chosen[key] = None if selection.chosen is None else replay.validators[selection.chosen.validator_id].label
        alignments[key] = {
            replay.validators[r.candidate.validator_id].label: float(r.candidate.metrics.alignment or 0.0)
            for r in selection.ranked
        }
    full = FullData(replay.full.system_values, chosen, alignments)
    return Replay(**{**replay.__dict__, "full": full})


def label_weights(replay: Replay, rows: list[int], probabilities: list[float | None],
                  pool_sizes: list[int | None]) -> np.ndarray | None:
    """annotate.labels.output_weights over the run's grades, or None when all are 1 (the report
    card then reads no weights at all)."""
    n = replay.n_outputs
    probability = np.array([np.nan if p is None else p for p in probabilities], dtype=np.float64)
    pools = np.array([np.nan if s is None else s for s in pool_sizes], dtype=np.float64)
    ratios = importance_ratios(probability, pools)
    ratios = np.where(np.isnan(ratios), 1.0, ratios)
    weights = np.ones(n)
    weights[np.asarray(rows, dtype=np.int64)] = lure_weights(ratios, pools, n, len(rows))
    graded = weights[np.asarray(rows, dtype=np.int64)]
    return weights if np.any(np.abs(graded - 1.0) > 1e-9) else None


def measure(replay: Replay, trace: RunTrace, rows: list[int], probabilities: list[float | None],
            pool_sizes: list[int | None]) -> None:
    """simulator.runner.Oracle.measure: τ (plain and IPW) and, per criterion the full data
    chooses for, the card's choice, hit and regret."""
    index = np.asarray(rows, dtype=np.int64)
    codes = replay.system_codes[index].astype(np.int64)
    values = replay.values[index]
    n_systems = len(replay.system_names)
    full = replay.full
    trace.tau.append(metrics.ranking_tau(metrics.system_means(codes, values, n_systems), full.system_values))
    inverse = np.array([1.0 / p if p else 1.0 for p in probabilities])
    trace.tau_ipw.append(metrics.ranking_tau(
        metrics.system_means(codes, values, n_systems, weights=inverse), full.system_values
    ))
    if not full.chosen:
        return
    selections = card_selections(replay, index, label_weights(replay, rows, probabilities, pool_sizes))
    for key, best in full.chosen.items():
        if best is None:
            continue
        held = selections[key].chosen
        chosen = None if held is None else replay.validators[held.validator_id].label
        trace.chosen.setdefault(key, []).append(chosen)
        trace.hit.setdefault(key, []).append(1.0 if chosen == best else 0.0)
        trace.regret.setdefault(key, []).append(metrics.regret(full.alignments[key], best, chosen))


# -- one run -------------------------------------------------------------------------------------
class _Arrays:
    """What the claim path's per-project cache (annotate.selection._ProjectArrays) keeps: an
    unchanged array is handed over as the same object, so selector caches see what they see
    in the app."""

    def __init__(self) -> None:
        self.cached: dict[str, np.ndarray] = {}

    def stable(self, name: str, fresh: np.ndarray) -> np.ndarray:
        return unchanged_or_fresh(self.cached, name, fresh)


@dataclass
class _Run:
    replay: Replay
    selector: str
    labelled: np.ndarray            # (N,) bool
    human_codes: np.ndarray         # (N,) int8
    criteria_codes: np.ndarray      # (N, C) int8
    arrays: _Arrays
    # Fresh per run, as each run project has its own: selector caches never cross runs.
    system_codes: np.ndarray
    sample_codes: np.ndarray
    # Constant over a run: the claim path's cache hands over its first copy every time.
    evidence: np.ndarray
    evidence_scores: np.ndarray
    validator_criteria: np.ndarray
    embeddings: np.ndarray | None
    # The claims so far (row, probability, pool size), for the LURE weights the claim path
    # hands the selectors (annotate.labels.output_weights).
    claimed_rows: list[int] = field(default_factory=list)
    claimed_probabilities: list[float | None] = field(default_factory=list)
    claimed_pool_sizes: list[int | None] = field(default_factory=list)

    def context(self) -> SelectionContext:
        replay, arrays = self.replay, self.arrays
        human = as_outcomes(self.human_codes, np.float32)
        pass_threshold = 0.5
        if replay.rating is not None:
            low, high, threshold = replay.rating
            scored = self.labelled & np.isfinite(replay.scores)
            human[scored] = np.clip((replay.scores[scored] - low) / (high - low), 0.0, 1.0)
            pass_threshold = float(np.clip((threshold - low) / (high - low), 0.0, 1.0))
        human = arrays.stable("human", human)
        by_criterion = np.column_stack([
            as_outcomes(self.criteria_codes[:, j], np.float32) for j in range(len(replay.criteria))
        ]) if replay.criteria else np.zeros((replay.n_outputs, 0), dtype=np.float32)
        return SelectionContext(
            candidate_mask=~self.labelled,
            system_codes=self.system_codes,
            sample_codes=self.sample_codes,
            evidence=self.evidence,
            evidence_scores=self.evidence_scores,
            validator_criteria=self.validator_criteria,
            human=human,
            human_by_criterion=arrays.stable("human_by_criterion", by_criterion.astype(np.float32)),
            embeddings=self.embeddings,
            n_labelled=int(np.count_nonzero(~np.isnan(human))),
            system_names=replay.system_names,
            validator_names=tuple(v.label for v in replay.validators),
            criterion_names=replay.criteria,
            pass_threshold=pass_threshold,
            label_weights=self.weights(),
            ffr_ceiling=replay.ffr_ceiling,
            min_labels_per_class=max(1, replay.min_labels),
        )

    def weights(self) -> np.ndarray:
        if not self.claimed_rows:
            return np.ones(self.replay.n_outputs)
        weights = label_weights(self.replay, self.claimed_rows, self.claimed_probabilities,
                                self.claimed_pool_sizes)
        return np.ones(self.replay.n_outputs) if weights is None else weights

    def grade(self, row: int) -> None:
        self.labelled[row] = True
        self.human_codes[row] = self.replay.holistic[row]
        self.criteria_codes[row] = self.replay.criteria_codes[row]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _new_run(replay: Replay, selector: str) -> _Run:
    criterion_code = {name: j for j, name in enumerate(replay.criteria)}
    n = replay.n_outputs
    return _Run(
        replay=replay, selector=selector, labelled=np.zeros(n, bool),
        human_codes=np.full(n, NO_LABEL, np.int8),
        criteria_codes=np.full((n, len(replay.criteria)), NO_LABEL, np.int8), arrays=_Arrays(),
        system_codes=replay.system_codes.copy(), sample_codes=replay.sample_codes.copy(),
        evidence=_frozen(as_outcomes(replay.verdict_codes, np.float32)),
        evidence_scores=_frozen(replay.verdict_scores.copy()),
        validator_criteria=_frozen(np.array(
            [-1 if v.criterion is None else criterion_code[v.criterion] for v in replay.validators],
            dtype=np.int32,
        )),
        embeddings=None if replay.embeddings is None or selector not in EMBEDDING_SELECTORS
        else replay.embeddings.copy(),
    )


def _draw(run: _Run, rng: np.random.Generator, take: int, custom: Selector | None = None) -> list[tuple[int, float, int]]:
    """(row, probability, pool size) of the next `take` items, as the claim path draws them;
    `custom` is a selector object outside the registry (a bench's oracle)."""
    if custom is None and run.selector == "random":
        # annotate.selection._rank_uniform: the claim ranks 20 uniformly and takes the first.
        pool = np.flatnonzero(~run.labelled)
        if pool.size == 0:
            return []
        rows = rng.choice(pool.size, size=min(CLAIM_RANKING, pool.size), replace=False)
        return [(int(pool[rows[0]]), 1.0 / pool.size, int(pool.size))]
    # A pairwise selector says nothing about single outputs: the claim path draws uniformly.
    if custom is None:
        custom = get_selector("random" if SELECTORS[run.selector].pairwise else run.selector)
    choices = choose_many(
        custom, run.context(), k=max(CLAIM_RANKING, take), epsilon=run.replay.epsilon, rng=rng,
    )
    return [(c.row, c.probability, c.pool_size) for c in choices[:take]]


def run_seed(
    replay: Replay, selector: str, seed: int, budgets: Sequence[int], *,
    batching: Batching = Batching(), order: Sequence[int] | None = None,
    custom: Selector | None = None,
) -> RunTrace:
    """One oracle run to the largest budget: items chosen by `selector` (or the selector object
    `custom`, named `selector`), or, with `order`, the rows of a static ordering graded in turn
    (no claim, so no probability)."""
    started = time.perf_counter()
    run = _new_run(replay, selector if custom is None else "")
    rng = np.random.default_rng(seed)
    trace = RunTrace()
    rows, probabilities, pool_sizes = run.claimed_rows, run.claimed_probabilities, run.claimed_pool_sizes
    pending = list(budgets)
    while pending:
        if order is not None:
            if len(rows) >= len(order):
                raise EngineError(f"{selector} ran out of outputs after {len(rows)} labels")
            drawn = [(int(order[len(rows)]), None, None)]
        else:
            drawn = _draw(run, rng, batching.take(len(rows), pending[0]), custom)
            if not drawn:
                raise EngineError(f"{selector} ran out of outputs after {len(rows)} labels")
        for row, probability, pool_size in drawn:
            run.grade(row)
            rows.append(row)
            probabilities.append(probability)
            pool_sizes.append(pool_size)
        if len(rows) == pending[0]:
            measure(replay, trace, rows, probabilities, pool_sizes)
            pending.pop(0)
    trace.labels = len(rows)
    trace.seconds = time.perf_counter() - started
    return trace


# -- many runs -----------------------------------------------------------------------------------
_worker_replay: Replay | None = None


def _init_worker(replay: Replay) -> None:
    global _worker_replay
    _worker_replay = replay


def _run_task(task: tuple[str, int, tuple[int, ...], Batching, list[int] | None]) -> tuple[str, int, RunTrace]:
    selector, seed, budgets, batching, order = task
    assert _worker_replay is not None
    return selector, seed, run_seed(_worker_replay, selector, seed, budgets, batching=batching, order=order)


class ProgressBar:
    """`[#####-----] 12/40 runs, 3.1 s` on one line of a stream, redrawn in place."""

    def __init__(self, total: int, stream=None, width: int = 30) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()

    def advance(self, label: str = "") -> None:
        self.done += 1
        filled = self.width * self.done // max(self.total, 1)
        elapsed = time.perf_counter() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} runs, "
            f"{elapsed:.1f} s {label[:40]:<40}"
        )
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def run_all(
    replay: Replay, selectors: Sequence[str], seeds: int, budgets: Sequence[int], *,
    jobs: int = 1, batching: Batching = Batching(), static_orders: StaticOrders | None = None,
    on_run: Callable[[str, int, RunTrace], None] | None = None,
) -> dict[str, list[RunTrace]]:
    """Every (selector, seed) run, in `jobs` spawned processes (1: in this one). Each run
    depends only on its selector and seed, so the result does not depend on `jobs`."""
    static_orders = static_orders or {}
    tasks = [
        (selector, seed, tuple(budgets), batching, static_orders.get((selector, seed)))
        for selector in selectors for seed in range(seeds)
    ]
    found: dict[tuple[str, int], RunTrace] = {}
    if jobs <= 1:
        _init_worker(replay)
        for task in tasks:
            selector, seed, trace = _run_task(task)
            found[(selector, seed)] = trace
            if on_run:
                on_run(selector, seed, trace)
    else:
        # One BLAS thread per process: the processes are the parallelism.
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_init_worker,
            initargs=(replay,),
        ) as executor:
            futures = [executor.submit(_run_task, task) for task in tasks]
            for future in as_completed(futures):
                selector, seed, trace = future.result()
                found[(selector, seed)] = trace
                if on_run:
                    on_run(selector, seed, trace)
    return {selector: [found[(selector, seed)] for seed in range(seeds)] for selector in selectors}


def simulate_replay(
    replay: Replay, selectors: Sequence[str], seeds: int, budgets: Sequence[int], *,
    jobs: int = 1, batching: Batching = Batching(), static_orders: StaticOrders | None = None,
    progress_bar: ProgressBar | None = None,
) -> dict:
    """The DESIGN §7 JSON of every selector over `seeds` seeds."""
    def on_run(selector: str, seed: int, trace: RunTrace) -> None:
        if progress_bar is not None:
            progress_bar.advance(f"{selector} seed {seed}")

    traces = run_all(
        replay, selectors, seeds, budgets, jobs=jobs, batching=batching,
        static_orders=static_orders, on_run=on_run,
    )
    result = build_result(
        data_name=replay.data_name, n_outputs=replay.n_outputs, systems=list(replay.system_names),
        seeds=seeds, budgets=list(budgets), traces=traces, full=replay.full, scale=replay.scale,
        pass_threshold=replay.pass_threshold,
    )
    result["engine"] = {
        "kind": "in-memory", "jobs": jobs, "batch": batching.size,
        "exact_until": batching.exact_until if batching.size > 1 else None,
    }
    return result
