"""Selectors that read only the validator evidence matrix (DESIGN §4.3).

random, evalgen, variance (validator disagreement), metric_var and mad_validators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from annotate.selectors.base import (
    ScoredPool,
    SelectionContext,
    criterion_labels,
    criterion_values,
    derived,
    evidence_columns,
    register_selector,
    validator_pass_rates,
    vote_counts,
)
from annotate.selectors.settling import Settling, criterion_settling


@register_selector(menu_position=10)
@dataclass(frozen=True)
class RandomSelector:
    """Uniform over the pool: every score ties, so the chooser's probability is exactly 1/P."""

    name: ClassVar[str] = "random"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Random"
    summary: ClassVar[str] = (
        "Every ungraded output equally likely: unbiased, the baseline every other selector is measured against."
    )
    uses_embeddings: ClassVar[bool] = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        pool = ctx.pool
        size = pool.shape[0]
        items = f"{size} item" if size == 1 else f"{size} items"
        return ScoredPool(pool, np.zeros(size), lambda row: f"chosen at random from {items}")


def _evalgen_priority(evidence: np.ndarray) -> np.ndarray:
    def compute() -> np.ndarray:
        rates = np.nan_to_num(validator_pass_rates(evidence), nan=0.0)
        return (evidence == 0).astype(np.float32) @ rates.astype(np.float32)

    return derived("evalgen_priority", (evidence,), compute)


@register_selector(menu_position=20)
@dataclass(frozen=True)
class EvalGenSelector:
    """EvalGen's grading order (Shankar et al. 2024, "Who Validates the Validators?").

    An output failed by validators that usually pass is likely bad; the order alternates between
    the most likely bad and the most likely good ungraded output so both classes get labels.
    """

    name: ClassVar[str] = "evalgen"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "EvalGen priority"
    summary: ClassVar[str] = (
        "EvalGen's own rule: outputs the candidate validators fail most, so the report card sees failures early."
    )
    uses_embeddings: ClassVar[bool] = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        pool = ctx.pool
        priority = _evalgen_priority(ctx.evidence)[pool].astype(np.float64)
        likely_bad = ctx.n_labelled % 2 == 0
        rates = validator_pass_rates(ctx.evidence)

        def explain(row: int) -> str:
            failing = np.flatnonzero(ctx.evidence[row] == 0)
            failing = failing[np.argsort(-np.nan_to_num(rates[failing]), kind="stable")]
            shown = ", ".join(f"{rates[c]:.2f}" for c in failing[:3])
            more = "…" if failing.shape[0] > 3 else ""
            fails = (
                f"fails {failing.shape[0]} validator{'s' if failing.shape[0] != 1 else ''} "
                f"with pass rate{'s' if failing.shape[0] != 1 else ''} {shown}{more}"
                if failing.shape[0]
                else "fails no validator"
            )
            return f"EvalGen: likely {'bad' if likely_bad else 'good'} ({fails})"

        return ScoredPool(pool, priority if likely_bad else -priority, explain)


def _least_settled_criterion(ctx: SelectionContext) -> int | None:
    """The criterion (with ≥ 2 validators) whose labels hold the fewest of their minority class.

    A criterion lacking fail (or pass) grades is the one whose validator choice cannot be made
    yet (DESIGN §4.2 needs `min_labels` of each class); ties go to the lowest code.
    """
    codes, counts = np.unique(ctx.validator_criteria, return_counts=True)
    best: tuple[float, int] | None = None
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        if count < 2:
            continue
        _, known = criterion_labels(ctx, code)
        n_pass = int((known >= ctx.pass_threshold).sum())
        minority = min(n_pass, known.shape[0] - n_pass)
        if best is None or minority < best[0]:
            best = (minority, code)
    return None if best is None else best[1]


@register_selector(menu_position=30)
@dataclass(frozen=True)
class VarianceSelector:
    """Validator disagreement: the variance p(1 − p) of the pass/fail votes on an output.

    For binary votes the vote entropy is a monotone function of p(1 − p), so both order the
    pool the same way. With `least_settled_criterion`, only the validators of the criterion
    whose choice is least settled vote.
    """

    name: ClassVar[str] = "variance"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Validator disagreement"
    summary: ClassVar[str] = (
        "Outputs the candidate validators disagree on: one grade there separates good validators from bad."
    )
    uses_embeddings: ClassVar[bool] = False
    least_settled_criterion: bool = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        criterion = _least_settled_criterion(ctx) if self.least_settled_criterion else None
        columns = None if criterion is None else np.flatnonzero(ctx.validator_criteria == criterion)
        counts = vote_counts(ctx.evidence, columns)
        pool = ctx.pool
        fraction = counts.pass_fraction[pool]
        spread = np.nan_to_num(fraction * (1.0 - fraction), nan=0.0)
        about = "" if criterion is None else f" on {ctx.criterion_name(criterion)}"

        def explain(row: int) -> str:
            n_pass = int(counts.n_pass[row])
            n_fail = int(counts.n_verdicts[row]) - n_pass
            return f"validators disagree most here{about} ({n_pass} pass, {n_fail} fail)"

        return ScoredPool(pool, spread, explain)


def output_metric(evidence: np.ndarray, evidence_scores: np.ndarray | None) -> np.ndarray:
    """(N,) one metric per output: the mean over validators of a [0, 1] value.

    A validator that returns numbers contributes its score min-max scaled over all outputs
    (scales differ between validators); one that returns verdicts contributes 1 or 0.
    """

    def compute() -> np.ndarray:
        values = evidence.astype(np.float64)
        if evidence_scores is not None:
            scores = evidence_scores.astype(np.float64)
            numeric = ~np.isnan(scores)
            has_scores = numeric.any(axis=0)
            if has_scores.any():
                low = np.nanmin(np.where(numeric, scores, np.inf), axis=0)
                high = np.nanmax(np.where(numeric, scores, -np.inf), axis=0)
                width = np.where(high > low, high - low, 1.0)
                scaled = (scores - low) / width
                values = np.where(numeric, scaled, values)
        present = ~np.isnan(values)
        total = np.where(present, values, 0.0).sum(axis=1)
        n = present.sum(axis=1)
        return np.divide(total, n, out=np.full(total.shape, np.nan), where=n > 0)

    return derived("output_metric", (evidence, evidence_scores), compute)


def sample_metric_variance(
    metric: np.ndarray, sample_codes: np.ndarray, n_samples: int
) -> np.ndarray:
    """(I,) per sample, the population variance over systems of the per-output metric.

    subset2evaluate's `metric_var` (Zouhar et al. 2025, "How to Select Datapoints for Efficient
    Human Evaluation of NLG Models?"; `methods.metric_var` computes `np.var` over the systems'
    scores of each item). Outputs without any validator value are left out; a sample with no
    value gets 0.
    """
    present = ~np.isnan(metric)
    codes = sample_codes[present]
    values = metric[present]
    n = np.bincount(codes, minlength=n_samples).astype(np.float64)
    total = np.bincount(codes, weights=values, minlength=n_samples)
    squares = np.bincount(codes, weights=values * values, minlength=n_samples)
    mean = np.divide(total, n, out=np.zeros(n_samples), where=n > 0)
    variance = np.divide(squares, n, out=np.zeros(n_samples), where=n > 0) - mean * mean
    return np.maximum(variance, 0.0)


@register_selector(menu_position=40)
@dataclass(frozen=True)
class MetricVarSelector:
    """Inputs on which the systems' validator scores vary most (subset2evaluate's metric_var).

    The sample is picked first; among its pool outputs, the system with the fewest grades so
    far, so the per-system estimates fill evenly.
    """

    name: ClassVar[str] = "metric_var"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Metric variance across systems"
    summary: ClassVar[str] = (
        "Inputs where systems' validator scores vary most: grades that tell systems apart."
    )
    uses_embeddings: ClassVar[bool] = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        n_samples, n_systems = ctx.n_samples, ctx.n_systems

        def compute() -> np.ndarray:
            metric = output_metric(ctx.evidence, ctx.evidence_scores)
            return sample_metric_variance(metric, ctx.sample_codes, n_samples)

        variance = derived(
            "sample_metric_variance",
            (ctx.evidence, ctx.evidence_scores, ctx.sample_codes),
            compute,
        )
        pool = ctx.pool
        graded = np.bincount(ctx.system_codes[ctx.labelled_mask], minlength=n_systems)
        # Lexicographic (sample variance, then fewest grades) in exact integers.
        _, variance_rank = np.unique(variance, return_inverse=True)
        slots = int(graded.max()) + 1 if graded.shape[0] else 1
        scores = (
            variance_rank[ctx.sample_codes[pool]].astype(np.float64) * slots
            + (slots - 1 - graded[ctx.system_codes[pool]])
        )

        def explain(row: int) -> str:
            sample, system = int(ctx.sample_codes[row]), int(ctx.system_codes[row])
            return (
                f"systems' validator scores vary most on this input "
                f"(variance {variance[sample]:.3f}); {ctx.system_name(system)} has the fewest "
                f"grades ({int(graded[system])})"
            )

        return ScoredPool(pool, scores, explain)


def alignment_scores(verdicts: np.ndarray, labels_pass: np.ndarray) -> np.ndarray:
    """(M,) alignment of each validator column with binary human labels.

    DESIGN §4.1: harmonic mean of coverage (fails caught) and 1 − FFR. Add-one smoothing keeps it
    defined from the first grade, so a ranking exists before both classes have labels; a
    validator with no verdict on a labelled output is not counted there.
    """
    human = np.stack([~labels_pass, labels_pass]).astype(np.float64)
    fails = (verdicts == 0).astype(np.float64)
    decided = (~np.isnan(verdicts)).astype(np.float64)
    # One product gives all four counts per validator (rows: human fail, human pass).
    counts = human @ np.hstack([fails, decided])
    m = verdicts.shape[1]
    caught, false_fail = counts[0, :m], counts[1, :m]
    n_human_fail, n_human_pass = counts[0, m:], counts[1, m:]
    coverage = (caught + 1.0) / (n_human_fail + 2.0)
    keeps = 1.0 - (false_fail + 1.0) / (n_human_pass + 2.0)
    return 2 * coverage * keeps / (coverage + keeps)


@register_selector(menu_position=50)
@dataclass(frozen=True)
class MadValidatorsSelector:
    """Maximum discrepancy between the two closest candidate validators of one criterion.

    MAD competition (Wang et al. 2020, "I Am Going MAD: Maximum Discrepancy Competition for
    Comparing Classifiers Adaptively"): the items on which two close rivals disagree are the
    ones whose label separates them. Criteria are tried from the smallest alignment gap up
    until one has a pool output where its top two disagree; before any grade there is no
    ranking to break, and validator disagreement (variance) decides.
    """

    name: ClassVar[str] = "mad_validators"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "MAD between validators"
    summary: ClassVar[str] = (
        "Outputs where the two leading validators disagree: settles which of them to trust."
    )
    uses_embeddings: ClassVar[bool] = False

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        pool = ctx.pool
        if ctx.graded_rows.shape[0]:
            columns = evidence_columns(ctx.evidence)
            for criterion, first, second, gap in self._rivalries(ctx):
                a, b = columns[first][pool], columns[second][pool]
                # NaN compares unequal to everything, so "a != b" alone would count it.
                disagree = (a != b) & ~np.isnan(a) & ~np.isnan(b)
                if disagree.any():
                    return ScoredPool(
                        pool,
                        disagree.astype(np.float64),
                        self._explainer(ctx, criterion, first, second, gap),
                    )
        fallback = VarianceSelector().score(ctx, rng)
        return ScoredPool(
            fallback.indices,
            fallback.scores,
            lambda row: "no validator pair to separate yet; " + fallback.explain(row),
        )

    @staticmethod
    def _rivalries(ctx: SelectionContext) -> list[tuple[int, int, int, float]]:
        """(criterion, best column, runner-up column, alignment gap), smallest gap first."""
        rivalries = []
        graded_evidence = ctx.evidence[ctx.graded_rows]
        for criterion in np.unique(ctx.validator_criteria).tolist():
            columns = np.flatnonzero(ctx.validator_criteria == criterion)
            if columns.shape[0] < 2:
                continue
            values = criterion_values(ctx, criterion)
            known = ~np.isnan(values)
            if not known.any():
                continue
            verdicts = graded_evidence[known][:, columns]
            alignment = alignment_scores(verdicts, values[known] >= ctx.pass_threshold)
            order = np.argsort(-alignment, kind="stable")
            gap = float(alignment[order[0]] - alignment[order[1]])
            rivalries.append((criterion, int(columns[order[0]]), int(columns[order[1]]), gap))
        rivalries.sort(key=lambda rivalry: (rivalry[3], rivalry[0]))
        return rivalries

    @staticmethod
    def _explainer(ctx: SelectionContext, criterion: int, first: int, second: int, gap: float):
        def explain(row: int) -> str:
            said_first = "passes" if ctx.evidence[row, first] == 1 else "fails"
            said_second = "passes" if ctx.evidence[row, second] == 1 else "fails"
            return (
                f"the two best validators for {ctx.criterion_name(criterion)} are closest "
                f"(alignment gap {gap:.3f}) and disagree here: {ctx.validator_name(first)} "
                f"{said_first}, {ctx.validator_name(second)} {said_second}"
            )

        return explain



def criteria_settling(ctx: SelectionContext) -> dict[int, tuple[np.ndarray, Settling]]:
    """Per criterion with ≥ 2 candidate columns: (its columns, its `Settling`) on the current
    labels, LURE-weighted when the context carries weights, as the report card weighs them."""
    result: dict[int, tuple[np.ndarray, Settling]] = {}
    if not ctx.graded_rows.shape[0]:
        return result
    weights_all = ctx.label_weights
    for criterion in np.unique(ctx.validator_criteria).tolist():
        columns = np.flatnonzero(ctx.validator_criteria == criterion)
        if columns.shape[0] < 2:
            continue
        rows, values = criterion_labels(ctx, criterion)
        weights = None if weights_all is None else weights_all[rows].astype(np.float64)
        settling = criterion_settling(
            values >= ctx.pass_threshold, ctx.evidence[np.ix_(rows, columns)], weights,
            ffr_ceiling=ctx.ffr_ceiling, min_labels=ctx.min_labels_per_class,
            population=ctx.n_outputs,
        )
        result[criterion] = (columns, settling)
    return result


@register_selector(menu_position=110)
@dataclass(frozen=True)
class ValidatorChoiceSelector:
    """Labels only where they can still change a criterion's validator choice (ε-good
    identification with confidence bounds; `annotate.selectors.settling`).

    Per criterion, the candidate the report card's rule holds on the LURE-weighted estimates is
    the leader; a challenger that could still beat it by more than the tolerance (0.02, 95%
    confidence) keeps the criterion open. A settled criterion gets no more draw mass; each open
    one gets an equal share, spread over the pool outputs where an open challenger and its
    leader disagree (MAD: Wang et al. 2020), or over the whole pool while no candidate
    qualifies. A `uniform_share` of every draw stays uniform, so every output keeps a known,
    bounded chance and the report card reweights grades by it (importance sampling; Kossen et
    al. 2021, "Active Testing"). When every criterion is settled the draw is uniform.

    Published active model selection (Model Selector, CODA) labels only where candidates
    disagree; under an FFR ceiling, a share of all outputs, that needed 10–60× random's labels.
    """

    name: ClassVar[str] = "validator_choice"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Validator choice (sampled disagreement)"
    summary: ClassVar[str] = (
        "Samples where a criterion's leading validator and a challenger that could still beat it disagree, part at random so estimates stay unbiased; a criterion whose choice is settled gets no more labels from it."
    )
    uses_embeddings: ClassVar[bool] = False
    sampling: ClassVar[str] = "proportional"
    uniform_share: float = 0.3
    # Off by default: on FRANK (30 seeds) it moved RelE from 0.88× to 1.38× random.
    doubt_focus: bool = False
    # A criterion whose held candidate's FFR interval straddles the ceiling is open on an
    # absolute rate (does it qualify at all?), which disagreement draws do not estimate: its
    # share is drawn uniformly. Off by default: 30 seeds, every criterion at once went from
    # 0.68× to 0.88× random on FRANK, 0.79× to 0.97× on SummEval and 0.75× to 0.85× on MQM.
    doubt_uniform: bool = False
    # Uniform until this many labels: a pilot sample, so criteria random settles within a few
    # dozen labels are not held up by a pair chosen on a handful (two-phase sampling). Off by
    # default: at 50 it cleared FRANK's EntE (3.0× → 1.0×) but the card as a whole went from
    # 0.68× to 0.76× (FRANK) and 0.79× to 0.90× (SummEval), SummEval relevance still 2.5×.
    pilot_labels: int = 0

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        pool = ctx.pool
        if ctx.n_labelled < self.pilot_labels:
            why = f"a uniform pilot sample ({ctx.n_labelled} of {self.pilot_labels} labels) before choosing where validators disagree"
            return ScoredPool(pool, np.ones(pool.shape[0]), lambda row: why)
        settling = criteria_settling(ctx)
        open_criteria = {c: v for c, v in settling.items() if not v[1].settled}
        if not open_criteria:
            why = (
                "every criterion's validator choice is settled: drawn uniformly"
                if settling else "no two candidate validators to separate yet: drawn uniformly"
            )
            return ScoredPool(pool, np.ones(pool.shape[0]), lambda row: why)
        columns_all = evidence_columns(ctx.evidence)
        focus = np.zeros(pool.shape[0])
        reasons: dict[int, list[tuple[int, int, int]]] = {}
        for criterion, (columns, state) in open_criteria.items():
            share = np.zeros(pool.shape[0])
            if self.doubt_uniform and state.leader_in_doubt:
                focus += 1.0
                reasons[criterion] = []
                continue
            pairs = state.pairs if state.leader is not None else self._first_rivals(ctx, criterion, columns)
            for held, challenger in pairs:
                a, b = columns_all[columns[held]][pool], columns_all[columns[challenger]][pool]
                share += (a != b) & ~np.isnan(a) & ~np.isnan(b)
            if self.doubt_focus and state.leader_in_doubt:
                # The held candidate's FFR may cross the ceiling: its false failures can only
                # be among the outputs it fails, where a label moves that estimate most (a
                # ratio estimator's optimal draw is ∝ |y − R·x|: about 3× there at FFR 0.25).
                share += 2.0 * (columns_all[columns[state.leader]][pool] == 0)
            mean = float(share.mean()) if share.size else 0.0
            # No leader yet, or no open pair disagrees on any pool output: only fresh labels
            # anywhere can move the estimates, so this criterion's share is uniform.
            focus += share / mean if mean > 0 else 1.0
            reasons[criterion] = [(criterion, int(columns[h]), int(columns[c])) for h, c in pairs]
        focus /= len(open_criteria)
        scores = self.uniform_share + (1.0 - self.uniform_share) * focus
        n_open, n_all = len(open_criteria), len(settling)

        def explain(row: int) -> str:
            for pairs in reasons.values():
                for criterion, held, challenger in pairs:
                    a, b = ctx.evidence[row, held], ctx.evidence[row, challenger]
                    if not np.isnan(a) and not np.isnan(b) and a != b:
                        return (
                            f"{n_open} of {n_all} criteria's validator choices are still open; on "
                            f"{ctx.criterion_name(criterion)}, {ctx.validator_name(held)} (held) and "
                            f"{ctx.validator_name(challenger)} (could still beat it by more than "
                            "0.02) disagree here; drawn in proportion to that and reweighted on the "
                            "report card"
                        )
            return (
                f"{n_open} of {n_all} criteria's validator choices are still open; drawn at "
                "random within the uniform share, so the report card's estimates stay unbiased"
            )

        return ScoredPool(pool, scores, explain)

    @staticmethod
    def _first_rivals(ctx: SelectionContext, criterion: int, columns: np.ndarray) -> tuple[tuple[int, int], ...]:
        """Before any candidate qualifies: the two leading on smoothed alignment (as
        mad_validators ranks them), so early labels already separate the likely contenders."""
        rows, values = criterion_labels(ctx, criterion)
        if not rows.shape[0]:
            return ()
        alignment = alignment_scores(ctx.evidence[np.ix_(rows, columns)], values >= ctx.pass_threshold)
        order = np.argsort(-alignment, kind="stable")
        return ((int(order[0]), int(order[1])),)
