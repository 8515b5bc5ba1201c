"""Glue between the database and the pure selectors (annotate/selectors/).

Builds a `SelectionContext` from the project's outputs, the human labels and the evidence
providers, and keeps the arrays per project between requests: the selectors cache derived
quantities by array identity, so an unchanged array is reused rather than rebuilt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max

from annotate.embeddings import load_embeddings
from annotate.evidence import load_evidence, load_pair_judges
from annotate.labels import load_votes, mean_scores, output_weights, pair_choices
from annotate.models import Criterion, Output, Project, Scale
from annotate.selectors import (
    EMBEDDING_SELECTORS,
    PAIRWISE_SELECTORS,
    SELECTORS,
    SelectionContext,
    choose_many,
    get_selector,
)
from annotate.selectors.base import WIN_MISSING, PairJudges, unchanged_or_fresh
from annotate.statistics import as_outcomes, majority


@dataclass(frozen=True)
class RankedItem:
    output_id: int
    output_b_id: int | None
    selector: str
    why: str
    probability: float | None
    pool_size: int | None = None


@dataclass
class _ProjectArrays:
    signature: tuple
    output_ids: np.ndarray
    system_codes: np.ndarray
    sample_codes: np.ndarray
    system_names: tuple[str, ...]
    cached: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: np.ndarray | None = None

    def stable(self, name: str, fresh: np.ndarray) -> np.ndarray:
        """The previous array when nothing changed, so selector caches stay warm."""
        return unchanged_or_fresh(self.cached, name, fresh)


_lock = threading.Lock()
_arrays: dict[tuple[int, object], _ProjectArrays] = {}


def _project_arrays(project: Project) -> _ProjectArrays:
    state = Output.objects.filter(project=project).aggregate(n=Count("id"), top=Max("id"))
    signature = (state["n"], state["top"])
    key = (project.pk, project.created_at)
    with _lock:
        arrays = _arrays.get(key)
        if arrays is None or arrays.signature != signature:
            rows = list(
                Output.objects.filter(project=project).order_by("id").values_list("id", "system", "sample_id")
            )
            systems = sorted({r[1] for r in rows})
            system_code = {name: code for code, name in enumerate(systems)}
            samples = np.array([r[2] for r in rows], dtype=np.int64)
            _, sample_codes = np.unique(samples, return_inverse=True)
            arrays = _ProjectArrays(
                signature=signature,
                output_ids=np.array([r[0] for r in rows], dtype=np.int64),
                system_codes=np.array([system_code[r[1]] for r in rows], dtype=np.int32),
                sample_codes=sample_codes.astype(np.int32),
                system_names=tuple(systems),
            )
            _arrays[key] = arrays
        return arrays


def forget_contexts() -> None:
    with _lock:
        _arrays.clear()


def selection_context(
    *, project: Project, annotator: AbstractBaseUser, pool: np.ndarray, selector: str,
    compared_pairs: np.ndarray | None = None, pool_mask: np.ndarray | None = None,
    pair_judges: PairJudges | None = None,
) -> tuple[SelectionContext, _ProjectArrays]:
    arrays = _project_arrays(project)
    ids = arrays.output_ids
    evidence = load_evidence(project, ids)
    criteria = list(
        Criterion.objects.filter(project=project, archived=False).order_by("position", "id").values_list("id", "key")
    )
    criterion_code = {cid: code for code, (cid, _) in enumerate(criteria)}
    votes = load_votes(project)
    human = as_outcomes(majority(ids, votes.output_ids, votes.holistic), np.float32)
    pass_threshold = 0.5
    scale = _rating_scale(project)
    if scale is not None:
        # Selectors see a rating project's mean score on [0, 1], so the ranking they chase is
        # the ranking by mean score, and pass/fail is the score against the pass threshold.
        low, high, threshold = scale
        scores = mean_scores(ids, votes)
        scored = np.isfinite(scores)
        human[scored] = np.clip((scores[scored] - low) / (high - low), 0.0, 1.0)
        pass_threshold = float(np.clip((threshold - low) / (high - low), 0.0, 1.0))
    human = arrays.stable("human", human)
    by_criterion = np.column_stack([
        as_outcomes(majority(ids, votes.output_ids, votes.codes(cid)), np.float32) for cid, _ in criteria
    ]) if criteria else np.zeros((ids.size, 0), dtype=np.float32)
    embeddings = None
    if selector in EMBEDDING_SELECTORS:
        if arrays.embeddings is None or arrays.embeddings.shape[0] != ids.size:
            arrays.embeddings = load_embeddings(project, ids)
        embeddings = arrays.embeddings
    mask = pool_mask if pool_mask is not None else np.isin(ids, pool)
    context = SelectionContext(
        candidate_mask=mask,
        system_codes=arrays.system_codes,
        sample_codes=arrays.sample_codes,
        evidence=arrays.stable("evidence", evidence.outcomes.astype(np.float32)),
        evidence_scores=arrays.stable("scores", evidence.scores) if evidence.scores is not None else None,
        validator_criteria=arrays.stable("validator_criteria", np.array(
            [criterion_code.get(int(c), -1) for c in evidence.column_criteria], dtype=np.int32
        )),
        human=human,
        human_by_criterion=arrays.stable("human_by_criterion", by_criterion.astype(np.float32)),
        embeddings=embeddings,
        n_labelled=int(np.count_nonzero(~np.isnan(human))),
        system_names=arrays.system_names,
        validator_names=evidence.column_names,
        criterion_names=tuple(key for _, key in criteria),
        compared_pairs=compared_pairs,
        pass_threshold=pass_threshold,
        pair_judges=pair_judges,
        label_weights=output_weights(ids, votes),
        ffr_ceiling=project.default_ffr_ceiling,
        min_labels_per_class=max(1, project.min_labels_per_class),
    )
    return context, arrays


def _rating_scale(project: Project) -> tuple[float, float, float] | None:
    """(low, high, pass threshold) of a rating project with a usable scale, else None."""
    if project.scale != Scale.RATING or project.pass_threshold is None:
        return None
    if project.scale_min is None or project.scale_max is None or project.scale_max <= project.scale_min:
        return None
    return float(project.scale_min), float(project.scale_max), float(project.pass_threshold)


def rank_pool(
    *, project: Project, annotator: AbstractBaseUser, pool: np.ndarray, selector: str,
    rng: np.random.Generator, limit: int,
) -> list[RankedItem]:
    """Order the pool by the named selector."""
    if selector == "random":
        return _rank_uniform(pool, rng, limit)
    return rank_with_selector(
        project=project, annotator=annotator, pool=pool, selector=selector, rng=rng, limit=limit
    )


def _rank_uniform(pool: np.ndarray, rng: np.random.Generator, limit: int) -> list[RankedItem]:
    """Uniform order, P = 1/|pool| as the random selector gives (DESIGN §4.3). Drawn here
    because it needs none of the selection context (outputs, labels, evidence), which costs
    far more than the draw on a project of 100,000 outputs."""
    rows = rng.choice(pool.size, size=min(limit, pool.size), replace=False)
    # The same words as annotate.selectors.RandomSelector, which this stands in for.
    why = f"chosen at random from {pool.size} item{'' if pool.size == 1 else 's'}"
    return [
        RankedItem(int(pool[row]), None, "random", why, 1.0 / pool.size, int(pool.size))
        for row in rows
    ]


def rank_with_selector(
    *, project: Project, annotator: AbstractBaseUser, pool: np.ndarray, selector: str,
    rng: np.random.Generator, limit: int,
) -> list[RankedItem]:
    if selector not in SELECTORS:
        raise ValueError(f"unknown selector {selector!r}; known: {', '.join(SELECTORS)}")
    # A pairwise selector has nothing to say about single outputs: those are drawn uniformly.
    name = "random" if SELECTORS[selector].pairwise else selector
    context, arrays = selection_context(project=project, annotator=annotator, pool=pool, selector=name)
    choices = choose_many(
        selector_for_project(project, name), context, k=limit, epsilon=project.random_mix, rng=rng
    )
    return [
        RankedItem(int(arrays.output_ids[c.row]), None, c.selector, c.why, c.probability, c.pool_size)
        for c in choices
    ]


def selector_for_project(project: Project, name: str):
    """The named selector with the project settings it declares in `project_settings` (e.g. the
    both-goals selector's `goal_balance`)."""
    settings = getattr(SELECTORS[name], "project_settings", ())
    return get_selector(name, **{setting: getattr(project, setting) for setting in settings})


def rank_pairs(
    *, project: Project, annotator: AbstractBaseUser, exclude: set[tuple[int, int]],
    selector: str, rng: np.random.Generator, limit: int = 20, left_out: np.ndarray | None = None,
) -> list[RankedItem]:
    """Pairs of outputs of the same input. A pairwise selector (MAD-systems, judge choice)
    chooses them when asked; any other selector draws a random pair not yet compared by this
    annotator. No pair includes an output of `left_out` (excluded from sampling)."""
    arrays = _project_arrays(project)
    eligible = np.ones(arrays.output_ids.size, dtype=bool)
    if left_out is not None and left_out.size:
        eligible = ~np.isin(arrays.output_ids, left_out)
    if selector in PAIRWISE_SELECTORS:
        rows = {int(o): i for i, o in enumerate(arrays.output_ids)}
        compared = np.array(
            [(rows[a], rows[b]) for a, b in exclude if a in rows and b in rows], dtype=np.int64
        ).reshape(-1, 2)
        per_sample = np.bincount(
            arrays.sample_codes[eligible], minlength=int(arrays.sample_codes.max(initial=-1)) + 1
        )
        mask = eligible & (per_sample[arrays.sample_codes] >= 2)
        judges = (_pair_judges(project, rows) if getattr(SELECTORS[selector], "uses_pair_judges", False)
                  else None)
        context, _ = selection_context(
            project=project, annotator=annotator, pool=arrays.output_ids, selector=selector,
            compared_pairs=compared, pool_mask=mask, pair_judges=judges,
        )
        choices = choose_many(get_selector(selector), context, k=limit, epsilon=project.random_mix, rng=rng)
        ranked = []
        for c in choices:
            # A selector may pair any two outputs of a sample it picked.
            if c.row_b is None or not (eligible[c.row] and eligible[c.row_b]):
                continue
            a, b = int(arrays.output_ids[c.row]), int(arrays.output_ids[c.row_b])
            # Which side is shown left is random, so position bias cannot follow the selector.
            if rng.random() < 0.5:
                a, b = b, a
            ranked.append(RankedItem(a, b, c.selector, c.why, c.probability, c.pool_size))
        return ranked
    return _random_pairs(arrays, exclude, rng, limit, eligible)


def _pair_judges(project: Project, rows: dict[int, int]) -> PairJudges | None:
    """The project's pairwise judges over the pairs they judged, with the current human
    choice and LURE weight of each (the pairs judged are the population the weights assume)."""
    verdicts = load_pair_judges(project)
    if verdicts is None:
        return None
    known = np.array([a in rows and b in rows for a, b in verdicts.pairs.tolist()], dtype=bool)
    pairs = verdicts.pairs[known]
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(pairs.tolist())}
    human = np.full(len(index), WIN_MISSING, np.int8)
    weights = np.zeros(len(index))
    choices = pair_choices(project, n_population=len(index))
    codes = {"a": 0, "b": 1, "tie": 2}
    for pair, choice, weight in zip(choices.pairs, choices.choices, choices.weights, strict=True):
        i = index.get(pair)
        if i is not None and choice in codes:
            human[i], weights[i] = codes[choice], weight
    pair_rows = np.array([(rows[a], rows[b]) for a, b in pairs.tolist()], dtype=np.int64).reshape(-1, 2)
    return PairJudges(
        pair_rows=pair_rows, verdict=verdicts.verdict[:, known], consistency=verdicts.consistency,
        human=human, weights=weights, names=verdicts.names, floor=verdicts.floor,
    )


def _random_pairs(arrays: _ProjectArrays, exclude, rng, limit, eligible: np.ndarray) -> list[RankedItem]:
    order = np.argsort(arrays.sample_codes, kind="stable")
    order = order[eligible[order]]
    codes = arrays.sample_codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], codes.size]
    comparable = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= 2]
    ranked: list[RankedItem] = []
    for index in rng.permutation(len(comparable)):
        start, end = comparable[index]
        ids = arrays.output_ids[order[start:end]]
        pairs = [
            (int(a), int(b)) for i, a in enumerate(ids) for b in ids[i + 1:]
            if (min(a, b), max(a, b)) not in exclude
        ]
        if not pairs:
            continue
        a, b = pairs[int(rng.integers(len(pairs)))]
        if rng.random() < 0.5:
            a, b = b, a
        ranked.append(RankedItem(a, b, "random", "pair chosen at random", None))
        if len(ranked) >= limit:
            break
    return ranked
