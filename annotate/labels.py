"""Human labels as arrays: each annotator's current verdicts, and the majority per output.

The per-criterion vote of one grade is its verdict for that criterion if given under the
criterion's current version (DESIGN §4.1); a grade without one gives no vote for it. A verdict
given under an older version is stale: left out unless the caller includes stale verdicts.

A project may opt in to "a holistic pass means every criterion passed"
(`Project.holistic_pass_implies_criteria`). Then, on an output where nobody's vote for a
criterion counts, each grade with a holistic pass and no verdict for the criterion votes
*pass*, marked inferred. Inferred votes never mix with given ones, so an output's label
for a criterion is either wholly given or wholly inferred, and is counted apart. A holistic fail
implies nothing: a failing output may fail for one criterion and pass the others.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.utils import timezone

from annotate.models import CriterionVersion, Grade, GradeCriterion, Project
from annotate.sampling_weights import importance_ratios, lure_weights
from annotate.statistics import LABEL_PASS, NO_LABEL, VERDICT_CODES, rows_of


@dataclass(frozen=True)
class LabelVotes:
    """One row per current grade (output, annotator)."""

    grade_ids: np.ndarray
    output_ids: np.ndarray
    annotator_ids: np.ndarray
    holistic: np.ndarray                       # int8 codes
    # Importance ratio of each vote's output: 1 / (pool size × selection probability) when the
    # item was drawn by a selector with a known probability, else 1 (uniform, manual, imported);
    # and the size of the pool it was drawn from (NaN when unknown). See `output_weights`.
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # A rating-scale grade's score, NaN for pass/fail grades.
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    criteria: dict[int, np.ndarray] = field(default_factory=dict)  # criterion id -> int8 codes
    stale: dict[int, np.ndarray] = field(default_factory=dict)     # criterion id -> bool
    inferred: dict[int, np.ndarray] = field(default_factory=dict)  # criterion id -> bool

    def codes(self, criterion_id: int | None) -> np.ndarray:
        """Every vote for the target, inferred ones included; NO_LABEL where a grade gave none."""
        if criterion_id is None:
            return self.holistic
        codes = self.criteria.get(criterion_id)
        return np.full(self.holistic.size, NO_LABEL, np.int8) if codes is None else codes

    def inferred_votes(self, criterion_id: int | None) -> np.ndarray:
        """Which votes for the target are inferred from a holistic pass."""
        found = self.inferred.get(criterion_id) if criterion_id is not None else None
        return np.zeros(self.holistic.size, bool) if found is None else found

    def given_codes(self, criterion_id: int | None) -> np.ndarray:
        """The votes people gave for the target: inferred ones become NO_LABEL."""
        codes = self.codes(criterion_id)
        return np.where(self.inferred_votes(criterion_id), NO_LABEL, codes).astype(np.int8)


def current_versions(project: Project) -> dict[int, tuple[int, int]]:
    """Per criterion of the project, its current version as (number, version id)."""
    latest: dict[int, tuple[int, int]] = {}
    for criterion_id, number, version_id in CriterionVersion.objects.filter(
        criterion__project=project
    ).values_list("criterion_id", "number", "id"):
        if criterion_id not in latest or number > latest[criterion_id][0]:
            latest[criterion_id] = (number, version_id)
    return latest


def current_version_ids(project: Project) -> dict[int, int]:
    return {c: v for c, (_, v) in current_versions(project).items()}


# -- the rules over arrays (load_votes here, and annotate.gold chunk by chunk) ---------------
def current_mask(grade_ids: np.ndarray, supersedes: np.ndarray, retracted: np.ndarray) -> np.ndarray:
    """Which grades are current: the head of their chain (no grade supersedes them; 0 in
    `supersedes` means none) and not retracted."""
    return ~np.isin(grade_ids, supersedes[supersedes > 0]) & ~retracted


@dataclass(frozen=True)
class CriterionVotes:
    """One criterion's votes, one per current grade (the rules of the module docstring)."""

    codes: np.ndarray        # int8: the vote, NO_LABEL for none (stale ones unless included)
    stale: np.ndarray        # bool: the verdict was given under an older version
    inferred: np.ndarray     # bool: the vote is inferred from a holistic pass
    version_ids: np.ndarray  # int64: the version the verdict was given under, 0 for none


def criterion_votes(
    *, output_ids: np.ndarray, holistic: np.ndarray, verdicts: np.ndarray, rows: np.ndarray,
    found: np.ndarray, criterion_id: int, current_version_id: int, include_stale: bool,
    infer: bool,
) -> CriterionVotes:
    """The criterion's vote of each current grade.

    `output_ids` and `holistic` are per current grade; `verdicts` holds the per-criterion
    verdicts as rows (grade id, criterion id, version id, code), and `rows`, `found` where
    each one's grade is among the current grades (`rows_of`). `infer`: the project's
    "a holistic pass means every criterion passed" option.
    """
    n = output_ids.size
    codes = np.full(n, NO_LABEL, dtype=np.int8)
    stale = np.zeros(n, bool)
    version_ids = np.zeros(n, np.int64)
    mine = found & (verdicts[:, 1] == criterion_id)
    where = rows[mine]
    version_ids[where] = verdicts[mine, 2]
    stale[where] = verdicts[mine, 2] != current_version_id
    codes[where] = verdicts[mine, 3]
    if not include_stale:
        codes[stale] = NO_LABEL
    inferred = np.zeros(n, bool)
    if infer:
        has_verdict = np.zeros(n, bool)
        has_verdict[where] = True
        given_outputs = output_ids[codes != NO_LABEL]
        inferred = (
            ~has_verdict & (holistic == LABEL_PASS) & ~np.isin(output_ids, given_outputs)
        )
        codes[inferred] = LABEL_PASS
    return CriterionVotes(codes, stale, inferred, version_ids)


SETTLE_SECONDS = 10
# How often a process checks that no grade below its settled id arrived late: a transaction
# that holds its id for longer than SETTLE_SECONDS (a long import) would otherwise stay unseen.
VERIFY_SECONDS = 30.0


class GradeHeads:
    """The current grade of every (output, annotator), patched as grade rows arrive: a chain's
    head is its highest id. Counts the annotators whose current grade has a verdict (not
    retracted) per output, for claiming and progress (annotate.queries)."""

    def __init__(self) -> None:
        self.heads: dict[tuple[int, int], tuple[int, bool]] = {}
        self.graders: dict[int, set[int]] = {}        # output -> annotators with a verdict
        self.by_annotator: dict[int, set[int]] = {}   # annotator -> outputs with a verdict
        # len(graders) laid out along one output-id array, patched where grades changed.
        self.aligned_ids: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self.changed: set[int] = set()

    def apply(self, rows) -> None:
        """Take in (id, output, annotator, retracted) rows; rows seen before change nothing."""
        for pk, output_id, annotator_id, retracted in rows:
            pair = (output_id, annotator_id)
            previous = self.heads.get(pair)
            if previous is not None and previous[0] >= pk:
                continue
            self.heads[pair] = (pk, retracted)
            counted = previous is not None and not previous[1]
            if counted == (not retracted):
                continue
            self.changed.add(output_id)
            if counted and retracted:
                graders = self.graders[output_id]
                graders.discard(annotator_id)
                if not graders:
                    del self.graders[output_id]
                self.by_annotator[annotator_id].discard(output_id)
            elif not counted and not retracted:
                self.graders.setdefault(output_id, set()).add(annotator_id)
                self.by_annotator.setdefault(annotator_id, set()).add(output_id)

    def counts_along(self, ids: np.ndarray) -> np.ndarray:
        """Number of annotators with a verdict, per output of `ids` (ascending)."""
        if self.aligned_ids is not ids:
            outputs = np.fromiter(self.graders.keys(), dtype=np.int64, count=len(self.graders))
            values = np.fromiter(
                (len(g) for g in self.graders.values()), dtype=np.int32, count=len(self.graders)
            )
            self.aligned_ids, self.counts = ids, np.zeros(ids.size, dtype=np.int32)
        elif self.changed:
            outputs = np.fromiter(self.changed, dtype=np.int64, count=len(self.changed))
            values = np.array([len(self.graders.get(int(o), ())) for o in outputs], dtype=np.int32)
        else:
            return self.counts
        self.changed.clear()
        rows, found = rows_of(ids, outputs)
        self.counts[rows[found]] = values[found]
        return self.counts


@dataclass
class _GradeLog:
    """Every grade row of a project (grades are append-only), refreshed incrementally, and the
    chain heads of those rows.

    Rows created within SETTLE_SECONDS are re-read on the next refresh, because ids from
    concurrent transactions may commit out of order; re-reading is idempotent. The window is
    one of time, not of ids: how late a row commits depends on how long its transaction stays
    open, while how many ids pass meanwhile depends on the load of the whole table (every
    project's grades share one id sequence)."""

    grades: np.ndarray = field(default_factory=lambda: np.zeros((0, 6), dtype=np.int64))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pool_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    verdicts: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    settled_grade_id: int = 0
    heads: GradeHeads = field(default_factory=GradeHeads)
    refreshed_at: float = -math.inf  # time.monotonic() of the last read
    verified_at: float = -math.inf   # of the last check for rows below settled_grade_id


# Keyed by (pk, created_at) so that a deleted project's log never serves a new project that
# reuses its primary key (SQLite reuses row ids).
_logs: dict[tuple[int, object], _GradeLog] = {}
_logs_lock = threading.Lock()
_RETRACTED = 3


def _refresh(project: Project, max_age: float = 0.0) -> _GradeLog:
    """The project's log with the rows committed since the last read, unless that read is less
    than `max_age` seconds old. Call with `_logs_lock` held."""
    key = (project.pk, project.created_at)
    log = _logs.setdefault(key, _GradeLog())
    now = time.monotonic()
    if now - log.refreshed_at <= max_age:
        return log
    if log.settled_grade_id and now - log.verified_at > VERIFY_SECONDS:
        log.verified_at = now
        stored = Grade.objects.filter(project=project, id__lte=log.settled_grade_id).count()
        if stored != int(np.count_nonzero(log.grades[:, 0] <= log.settled_grade_id)):
            # A row committed after its id was settled: read the whole log again.
            log = _logs[key] = _GradeLog()
    since = log.settled_grade_id
    if since == 0:
        log.verified_at = now  # a full read needs no check
    rows = list(
        Grade.objects.filter(project=project, id__gt=since).order_by("id").values_list(
            "id", "output_id", "annotator_id", "verdict", "retracted", "supersedes_id", "submitted_at",
            "selector_probability", "selector_pool_size", "score",
        )
    )
    log.refreshed_at = now
    if rows:
        log.heads.apply((g, o, a, retracted) for g, o, a, _, retracted, *_ in rows)
        settle_before = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
        fresh = np.array([
            (g, o, a, _RETRACTED if retracted else VERDICT_CODES[v], s or 0, 0)
            for g, o, a, v, retracted, s, *_ in rows
        ], dtype=np.int64)
        # None becomes NaN in a float array.
        probabilities, fresh_pools, fresh_scores = (
            np.array([row[column] for row in rows], dtype=np.float64) for column in (7, 8, 9)
        )
        ratios = importance_ratios(probabilities, fresh_pools)
        fresh_weights = np.where(np.isnan(ratios), 1.0, ratios)
        verdicts = np.array(list(
            GradeCriterion.objects.filter(grade__project=project, grade_id__gt=since).values_list(
                "grade_id", "criterion_id", "criterion_version_id", "verdict"
            )
        ), dtype=object).reshape(-1, 4)
        if verdicts.size:
            verdicts[:, 3] = [VERDICT_CODES[v] for v in verdicts[:, 3]]
        kept = log.grades[:, 0] <= since
        log.grades = np.vstack([log.grades[kept], fresh])
        log.weights = np.concatenate([log.weights[kept], fresh_weights])
        log.scores = np.concatenate([log.scores[kept], fresh_scores])
        log.pool_sizes = np.concatenate([log.pool_sizes[kept], fresh_pools])
        log.verdicts = np.vstack([
            log.verdicts[log.verdicts[:, 0] <= since], verdicts.astype(np.int64)
        ])
        settled = [row[0] for row in rows if row[6] < settle_before]
        if settled:
            log.settled_grade_id = max(settled)
    return log


def forget_votes() -> None:
    with _logs_lock:
        _logs.clear()


@contextmanager
def grade_heads(project: Project, *, max_age: float = 0.0) -> Iterator[GradeHeads]:
    """The project's chain heads, held locked while in use. `max_age` seconds: how old the
    last read of new grades may be (0: read them now)."""
    with _logs_lock:
        yield _refresh(project, max_age).heads


def load_votes(project: Project, *, include_stale: bool | set[int] = False) -> LabelVotes:
    with _logs_lock:
        log = _refresh(project)
        # A later refresh replaces these arrays; it never changes them in place.
        grades, weights, scores = log.grades, log.weights, log.scores
        pool_sizes, per_criterion = log.pool_sizes, log.verdicts
    keep = current_mask(grades[:, 0], grades[:, 4], grades[:, 3] == _RETRACTED)
    current = grades[keep]
    grade_ids = current[:, 0]
    holistic = current[:, 3].astype(np.int8)
    votes = LabelVotes(
        grade_ids=grade_ids, output_ids=current[:, 1], annotator_ids=current[:, 2],
        holistic=holistic, weights=weights[keep], scores=scores[keep], pool_sizes=pool_sizes[keep],
    )
    rows, found = rows_of(grade_ids, per_criterion[:, 0])
    for criterion_id, current_version in current_version_ids(project).items():
        found_votes = criterion_votes(
            output_ids=votes.output_ids, holistic=holistic, verdicts=per_criterion, rows=rows,
            found=found, criterion_id=criterion_id, current_version_id=current_version,
            include_stale=include_stale is True or (
                isinstance(include_stale, set) and criterion_id in include_stale
            ),
            infer=project.holistic_pass_implies_criteria,
        )
        votes.criteria[criterion_id] = found_votes.codes
        votes.stale[criterion_id] = found_votes.stale
        votes.inferred[criterion_id] = found_votes.inferred
    return votes


def inferred_outputs(
    target_output_ids: np.ndarray, votes: LabelVotes, criterion_id: int | None
) -> np.ndarray:
    """Per target output (ascending ids), whether its votes for the target are inferred (then
    all of them are, and its label is inferred)."""
    return np.isin(target_output_ids, votes.output_ids[votes.inferred_votes(criterion_id)])


def output_weights(target_output_ids: np.ndarray, votes: LabelVotes) -> np.ndarray:
    """Per target output (ascending ids: the whole population), the mean LURE weight of its
    current votes; 1 where it has none. With several annotators each claim had its own
    chance; their mean is the output's weight."""
    n = target_output_ids.size
    rows, known = rows_of(target_output_ids, votes.output_ids)
    counts = np.bincount(rows[known], minlength=n)
    n_labelled = int(np.count_nonzero(counts))
    weights = lure_weights(votes.weights[known], votes.pool_sizes[known], n, n_labelled)
    sums = np.bincount(rows[known], weights=weights, minlength=n)
    return np.divide(sums, counts, out=np.ones(n), where=counts > 0)


def mean_scores(target_output_ids: np.ndarray, votes: LabelVotes) -> np.ndarray:
    """Per target output (ascending ids), the mean score of its current scored votes; NaN
    where it has none."""
    scored = np.isfinite(votes.scores)
    return mean_per_output(target_output_ids, votes.output_ids[scored], votes.scores[scored])


def mean_per_output(
    target_output_ids: np.ndarray, vote_output_ids: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Per target output (ascending ids), the mean of its votes' `values`; NaN where none."""
    n = target_output_ids.size
    rows, known = rows_of(target_output_ids, vote_output_ids)
    counts = np.bincount(rows[known], minlength=n)
    sums = np.bincount(rows[known], weights=np.asarray(values, dtype=np.float64)[known], minlength=n)
    result = np.full(n, np.nan)
    np.divide(sums, counts, out=result, where=counts > 0)
    return result


@dataclass(frozen=True)
class PairChoices:
    """The current human comparisons per pair, in canonical order (the lower output id is `a`)."""

    pairs: list[tuple[int, int]]   # ascending
    choices: list[str]             # the majority's 'a' | 'b' | 'tie' (a split vote is a tie)
    weights: np.ndarray            # (len(pairs),) mean LURE weight of the pair's comparisons


def canonical_choice(a: int, b: int, choice: str) -> tuple[tuple[int, int], str]:
    """A pair and a choice made with `a` shown left, in canonical order."""
    if a < b:
        return (a, b), choice
    return (b, a), {"a": "b", "b": "a"}.get(choice, choice)


def pair_choices(project: Project, *, n_population: int | None = None) -> PairChoices:
    """Per compared pair, the majority choice and the LURE weight (annotate.sampling_weights) of
    the draws that brought it, `n_population` being the pairs a selector could draw from (the
    project's same-input pairs when None). A comparison drawn uniformly, or with no recorded
    probability (an import, a random pair), weighs 1."""
    from collections import Counter, defaultdict

    from annotate.models import Comparison

    votes: dict[tuple[int, int], Counter] = defaultdict(Counter)
    draws: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for a, b, choice, probability, pool_size in Comparison.objects.filter(
        project=project, retracted=False, superseded_by__isnull=True
    ).values_list("output_a_id", "output_b_id", "choice", "selector_probability", "selector_pool_size"):
        pair, choice = canonical_choice(a, b, choice)
        votes[pair][choice] += 1
        draws[pair].append((np.nan if probability is None else probability,
                            np.nan if pool_size is None else pool_size))
    pairs = sorted(votes)
    choices = []
    for pair in pairs:
        (top, n_top), *rest = votes[pair].most_common()
        choices.append("tie" if rest and rest[0][1] == n_top else top)
    if n_population is None:
        n_population = same_input_pair_count(project)
    flat = [(i, p, s) for i, pair in enumerate(pairs) for p, s in draws[pair]]
    weights = np.ones(len(pairs))
    if flat:
        rows = np.array([i for i, _, _ in flat], dtype=np.int64)
        pool_sizes = np.array([s for _, _, s in flat], dtype=np.float64)
        ratios = importance_ratios(np.array([p for _, p, _ in flat], dtype=np.float64), pool_sizes)
        per_draw = lure_weights(np.where(np.isnan(ratios), 1.0, ratios), pool_sizes,
                                max(n_population, len(pairs)), len(pairs))
        sums = np.bincount(rows, weights=per_draw, minlength=len(pairs))
        weights = sums / np.bincount(rows, minlength=len(pairs))
    return PairChoices(pairs, choices, weights)


def same_input_pair_count(project: Project) -> int:
    """How many unordered pairs of outputs share an input: k(k − 1)/2 per input of k outputs."""
    from django.db.models import Count

    from annotate.models import Output

    sizes = Output.objects.filter(project=project).values("sample_id").annotate(n=Count("id")).values_list("n", flat=True)
    return int(sum(n * (n - 1) // 2 for n in sizes))
