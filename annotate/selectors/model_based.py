"""Selectors that fit a small model to the grades so far (DESIGN §4.3): uncertainty and irt.

Both fits are a handful of Newton steps in numpy over the labelled rows only (a few thousand),
so they are refitted on every call. Their parameters are kept between calls, per evidence
matrix, as a warm start: a call whose labelled set is unchanged reuses them without fitting, one
whose labelled set moved by at most 10 labels (or 5 %) takes a few steps from them, and any
other call fits from scratch.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from annotate.selectors.base import (
    ScoredPool,
    SelectionContext,
    derived,
    register_selector,
    validator_pass_rates,
    vote_counts,
)
from annotate.selectors.evidence_based import VarianceSelector


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for very negative z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def imputed_verdicts(evidence: np.ndarray) -> np.ndarray:
    """(N, M) float32 verdicts with a missing one replaced by that validator's pass rate."""

    def compute() -> np.ndarray:
        rates = np.nan_to_num(validator_pass_rates(evidence), nan=0.5).astype(np.float32)
        return np.where(np.isnan(evidence), rates, evidence).astype(np.float32)

    return derived("imputed_verdicts", (evidence,), compute)


def _labelled_fingerprint(ctx: SelectionContext) -> bytes:
    rows = np.flatnonzero(ctx.labelled_mask)
    digest = hashlib.blake2b(rows.tobytes(), digest_size=16)
    digest.update(ctx.human[rows].astype(np.float32).tobytes())
    return digest.digest()


class _WarmStart:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fingerprint: object = None
        self.parameters: tuple[np.ndarray, ...] | None = None
        self.n_observations = 0

    def is_close(self, n_observations: int) -> bool:
        """Whether the last fit saw nearly the same labels, so a few steps from it suffice."""
        moved = abs(n_observations - self.n_observations)
        return self.parameters is not None and moved <= max(10, n_observations // 20)


def _warm_start(kind: str, *arrays: np.ndarray) -> _WarmStart:
    return derived(kind, arrays, _WarmStart)


def fit_logistic(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    l2: float,
    steps: int,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method (IRLS); weights[0] is the intercept.

    The intercept is not penalised. Stops early once a step moves no weight by more than 1e-6.
    """
    design = np.hstack([np.ones((features.shape[0], 1)), features.astype(np.float64)])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    weights = np.zeros(design.shape[1]) if start is None else start.copy()
    for _ in range(steps):
        p = _sigmoid(design @ weights)
        gradient = design.T @ (labels - p) - penalty * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        weights += step
        if np.abs(step).max() < 1e-6:
            break
    return weights


@register_selector(menu_position=70)
@dataclass(frozen=True)
class UncertaintySelector:
    """Uncertainty sampling (Lewis & Gale 1994): a logistic model from the validators' verdicts
    to the human label; the output whose predicted pass probability is closest to ½.

    Before two labels of each class the model cannot separate anything, and validator
    disagreement (variance) decides instead.
    """

    name: ClassVar[str] = "uncertainty"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "Uncertainty"
    summary: ClassVar[str] = (
        "Outputs a model trained on the grades so far is least sure about (pass vs fail)."
    )
    uses_embeddings: ClassVar[bool] = False
    l2: float = 1.0
    newton_steps: int = 8
    min_per_class: int = 2

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        labelled = np.flatnonzero(ctx.labelled_mask)
        labels = (ctx.human[labelled] >= ctx.pass_threshold).astype(np.float64)
        n_pass = int(labels.sum())
        n_fail = labels.shape[0] - n_pass
        if min(n_pass, n_fail) < self.min_per_class or ctx.evidence.shape[1] == 0:
            fallback = VarianceSelector().score(ctx, rng)
            need = f"{n_pass} passing and {n_fail} failing grades so far; need {self.min_per_class}"
            return ScoredPool(
                fallback.indices,
                fallback.scores,
                lambda row: f"{need} of each: " + fallback.explain(row),
            )
        features = imputed_verdicts(ctx.evidence)
        state = _warm_start("uncertainty_fit", ctx.evidence)
        fingerprint = (_labelled_fingerprint(ctx), self.l2)
        with state.lock:
            if state.fingerprint == fingerprint and state.parameters is not None:
                weights = state.parameters[0]
            else:
                start = state.parameters[0] if state.is_close(labelled.shape[0]) else None
                weights = fit_logistic(
                    features[labelled], labels, l2=self.l2, steps=self.newton_steps, start=start
                )
                state.fingerprint, state.parameters = fingerprint, (weights,)
                state.n_observations = labelled.shape[0]
        pool = ctx.pool
        # einsum, not BLAS: a multi-threaded gemv on a tall, 20-column matrix was 10× slower
        # than this loop whenever the other core was busy.
        logits = np.einsum("ij,j->i", features, weights[1:].astype(np.float32))
        logits += np.float32(weights[0])
        p_pass = _sigmoid(logits[pool].astype(np.float64))
        n_grades = labelled.shape[0]

        def explain(row: int) -> str:
            p = float(_sigmoid(np.float64(logits[row])))
            return (
                f"the model from validator verdicts is least sure here (P(pass) = {p:.2f}, "
                f"fitted on {n_grades} grades)"
            )

        return ScoredPool(pool, -np.abs(p_pass - 0.5), explain)


@dataclass(frozen=True)
class IrtParameters:
    ability: np.ndarray  # (S,) θ per system
    difficulty: np.ndarray  # (I,) b per sample
    log_discrimination: np.ndarray  # (I,) log a per sample


def evidence_priors(
    evidence: np.ndarray, system_codes: np.ndarray, sample_codes: np.ndarray,
    n_systems: int, n_samples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Prior means (θ0, b0) from the validators' pass fractions.

    An additive model on the logit scale, logit(pass) ≈ θ_s − b_i, read off the system and sample
    means: θ0_s = logit(m_s), b0_i = logit(m) − logit(m_i). Validators stand in as
    pseudo-observations until human grades outweigh them.
    """
    fraction = vote_counts(evidence).pass_fraction
    present = ~np.isnan(fraction)
    values = fraction[present]

    def group_mean(codes: np.ndarray, size: int, overall: float) -> np.ndarray:
        n = np.bincount(codes[present], minlength=size)
        total = np.bincount(codes[present], weights=values, minlength=size)
        return np.divide(total, n, out=np.full(size, overall), where=n > 0)

    overall = float(values.mean()) if values.shape[0] else 0.5
    clip = (0.02, 0.98)
    system_mean = np.clip(group_mean(system_codes, n_systems, overall), *clip)
    sample_mean = np.clip(group_mean(sample_codes, n_samples, overall), *clip)
    ability = _logit(system_mean)
    difficulty = _logit(np.clip(overall, *clip)) - _logit(sample_mean)
    return ability, difficulty


def fit_irt_2pl(
    systems: np.ndarray,
    samples: np.ndarray,
    outcomes: np.ndarray,
    *,
    prior_ability: np.ndarray,
    prior_difficulty: np.ndarray,
    prior_scale: float = 1.0,
    discrimination_scale: float = 0.5,
    steps: int,
    start: IrtParameters | None = None,
) -> IrtParameters:
    """MAP fit of the 2PL model P(pass) = σ(a_i (θ_s − b_i)) (Birnbaum 1968).

    Systems are the subjects and samples the items, as in subset2evaluate's IRT selectors.
    Block-coordinate Newton: abilities, then difficulties, then log discriminations, each
    with its diagonal Hessian and a Gaussian prior (θ ~ N(θ0, σ²), b ~ N(b0, σ²),
    log a ~ N(0, σ_a²)). Outcomes may be fractional (a rating scale normalised to [0, 1]).
    """
    n_systems, n_samples = prior_ability.shape[0], prior_difficulty.shape[0]
    if start is None:
        ability, difficulty = prior_ability.copy(), prior_difficulty.copy()
        log_a = np.zeros(n_samples)
    else:
        ability = start.ability.copy()
        difficulty = start.difficulty.copy()
        log_a = start.log_discrimination.copy()
    precision = 1.0 / prior_scale**2
    a_precision = 1.0 / discrimination_scale**2

    def residuals() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a = np.exp(log_a[samples])
        z = a * (ability[systems] - difficulty[samples])
        p = _sigmoid(z)
        return a, z, outcomes - p, p * (1 - p)

    for _ in range(steps):
        a, _, r, w = residuals()
        gradient = np.bincount(systems, a * r, n_systems) - precision * (ability - prior_ability)
        curvature = np.bincount(systems, a * a * w, n_systems) + precision
        ability += np.clip(gradient / curvature, -1.0, 1.0)

        a, _, r, w = residuals()
        gradient = -np.bincount(samples, a * r, n_samples) - precision * (
            difficulty - prior_difficulty
        )
        curvature = np.bincount(samples, a * a * w, n_samples) + precision
        difficulty += np.clip(gradient / curvature, -1.0, 1.0)

        _, z, r, w = residuals()
        gradient = np.bincount(samples, z * r, n_samples) - a_precision * log_a
        curvature = np.bincount(samples, z * z * w, n_samples) + a_precision
        log_a += np.clip(gradient / curvature, -0.5, 0.5)
    return IrtParameters(ability, difficulty, log_a)


@register_selector(menu_position=90)
@dataclass(frozen=True)
class IrtSelector:
    """Fisher information of a grade under a 2PL IRT model with systems as subjects.

    Grading output (s, i) tells most about θ_s where its information a_i² p(1 − p) is largest
    (Lord 1980), i.e. where the sample's difficulty matches the system's ability.
    """

    name: ClassVar[str] = "irt"
    pairwise: ClassVar[bool] = False
    label: ClassVar[str] = "IRT (Fisher information)"
    summary: ClassVar[str] = (
        "Outputs an item-response model says are most informative about the systems' abilities."
    )
    uses_embeddings: ClassVar[bool] = False
    cold_steps: int = 40
    warm_steps: int = 4

    def score(self, ctx: SelectionContext, rng: np.random.Generator) -> ScoredPool:
        n_systems, n_samples = ctx.n_systems, ctx.n_samples
        prior_ability, prior_difficulty = derived(
            "irt_priors",
            (ctx.evidence, ctx.system_codes, ctx.sample_codes),
            lambda: evidence_priors(
                ctx.evidence, ctx.system_codes, ctx.sample_codes, n_systems, n_samples
            ),
            n_systems,
            n_samples,
        )
        state = _warm_start("irt_fit", ctx.evidence, ctx.system_codes, ctx.sample_codes)
        fingerprint = _labelled_fingerprint(ctx)
        with state.lock:
            if state.fingerprint == fingerprint and state.parameters is not None:
                parameters = IrtParameters(*state.parameters)
            else:
                labelled = np.flatnonzero(ctx.labelled_mask)
                warm = state.is_close(labelled.shape[0])
                parameters = fit_irt_2pl(
                    ctx.system_codes[labelled],
                    ctx.sample_codes[labelled],
                    ctx.human[labelled].astype(np.float64),
                    prior_ability=prior_ability,
                    prior_difficulty=prior_difficulty,
                    steps=self.warm_steps if warm else self.cold_steps,
                    start=IrtParameters(*state.parameters) if warm else None,
                )
                state.fingerprint, state.n_observations = fingerprint, labelled.shape[0]
                state.parameters = (
                    parameters.ability, parameters.difficulty, parameters.log_discrimination
                )
        pool = ctx.pool
        systems, samples = ctx.system_codes[pool], ctx.sample_codes[pool]
        a = np.exp(parameters.log_discrimination)[samples]
        p = _sigmoid(a * (parameters.ability[systems] - parameters.difficulty[samples]))
        information = a * a * p * (1 - p)

        def explain(row: int) -> str:
            system, sample = int(ctx.system_codes[row]), int(ctx.sample_codes[row])
            a_row = float(np.exp(parameters.log_discrimination[sample]))
            theta, b = float(parameters.ability[system]), float(parameters.difficulty[sample])
            p_row = float(_sigmoid(np.float64(a_row * (theta - b))))
            return (
                f"IRT: most informative about {ctx.system_name(system)}'s ability "
                f"(ability {theta:.2f}, difficulty {b:.2f}, P(pass) = {p_row:.2f})"
            )

        return ScoredPool(pool, information, explain)
