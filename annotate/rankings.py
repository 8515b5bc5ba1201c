"""System rankings and pass-rate estimates (DESIGN §4.4).

Pairwise comparisons are given as parallel arrays: ``winners[i]`` beat ``losers[i]`` unless
``ties[i]``, in which case the order of the two is irrelevant. Systems are integer indices in
``range(n_systems)``. Single grades are given per labelled output: ``system_index[i]`` and
``human_pass[i]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import kendalltau

from annotate.statistics import wilson_interval

# N(0, 10^2) on each log-strength: negligible once a system has a few comparisons, but it keeps
# a system that never loses (or never wins) finite and pins each disconnected group of systems
# to mean 0.
DEFAULT_PRIOR_PRECISION = 0.01
# Pass-rate intervals use z = 1.96, not Z_95 (annotate.statistics): the rankings API has
# always reported them so, and its tests pin the 1.96 values.
Z_RANKINGS = 1.96

_NEWTON_TOLERANCE = 1e-10
_NEWTON_MAX_ITERATIONS = 100


@dataclass(frozen=True)
class SystemStrength:
    """Bradley-Terry strength of one system.

    ``score`` is the log-strength, centred so that the mean over systems is 0; ``win_probability``
    is the modelled chance of beating a system of average strength, sigmoid(score). ``wins``
    counts a tie as half a win. A system without comparisons sits at the prior mean 0 with no
    interval.
    """

    system: int
    n_comparisons: int
    wins: float
    score: float
    ci_low: float | None
    ci_high: float | None
    win_probability: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BradleyTerryResult:
    systems: tuple[SystemStrength, ...]
    n_comparisons: int
    n_bootstrap: int
    prior_precision: float

    @property
    def scores(self) -> np.ndarray:
        return np.array([system.score for system in self.systems])

    def ranking(self) -> list[int]:
        """System indices from strongest to weakest (stable for equal scores)."""
        return [int(i) for i in np.argsort(-self.scores, kind="stable")]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SystemEstimate:
    system: int
    n: int
    pass_rate: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _validated_comparisons(
    winners: np.ndarray, losers: np.ndarray, ties: np.ndarray, n_systems: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    winners = np.asarray(winners, dtype=np.int64).ravel()
    losers = np.asarray(losers, dtype=np.int64).ravel()
    ties = np.asarray(ties, dtype=bool).ravel()
    if not winners.size == losers.size == ties.size:
        raise ValueError("winners, losers and ties must have the same length")
    for side in (winners, losers):
        if side.size and (side.min() < 0 or side.max() >= n_systems):
            raise ValueError(f"system indices must lie in range({n_systems})")
    if np.any(winners == losers):
        raise ValueError("a system cannot be compared with itself")
    return winners, losers, ties


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _penalised_log_likelihood(
    strengths: np.ndarray, win_counts: np.ndarray, prior_precision: float
) -> np.ndarray:
    differences = strengths[..., :, None] - strengths[..., None, :]
    log_likelihood = -(win_counts * np.logaddexp(0.0, -differences)).sum(axis=(-2, -1))
    return log_likelihood - 0.5 * prior_precision * (strengths**2).sum(axis=-1)


def _fit_strengths(win_counts: np.ndarray, prior_precision: float) -> np.ndarray:
    """Maximise the penalised Bradley-Terry likelihood for a batch of (S, S) win matrices.

    ``win_counts[..., i, j]`` is how often i beat j (ties already split in halves). The
    objective is strictly concave for a positive prior precision, so damped Newton converges
    from 0 (Hunter 2004's MM also would, but needs hundreds of iterations on sparse data).
    """
    batch_shape, n_systems = win_counts.shape[:-2], win_counts.shape[-1]
    strengths = np.zeros(batch_shape + (n_systems,))
    encounters = win_counts + np.swapaxes(win_counts, -1, -2)
    identity = np.eye(n_systems)
    objective = _penalised_log_likelihood(strengths, win_counts, prior_precision)
    active = np.ones(batch_shape, dtype=bool)
    for _ in range(_NEWTON_MAX_ITERATIONS):
        probability = _sigmoid(strengths[..., :, None] - strengths[..., None, :])
        gradient = (win_counts - encounters * probability).sum(axis=-1)
        gradient -= prior_precision * strengths
        information = encounters * probability * (1.0 - probability)
        # Negative Hessian: graph Laplacian of the Fisher information plus the prior.
        curvature = (
            information.sum(axis=-1)[..., :, None] * identity
            - information
            + prior_precision * identity
        )
        step = np.linalg.solve(curvature, gradient[..., None])[..., 0]
        step[~active] = 0.0
        scale = np.ones(batch_shape)
        for _ in range(40):
            candidate = strengths + scale[..., None] * step
            candidate_objective = _penalised_log_likelihood(candidate, win_counts, prior_precision)
            worse = candidate_objective < objective - 1e-12 * np.abs(objective)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2.0, scale)
        strengths, objective = candidate, candidate_objective
        active &= np.abs(scale[..., None] * step).max(axis=-1, initial=0.0) > _NEWTON_TOLERANCE
        if not active.any():
            break
    return strengths - strengths.mean(axis=-1, keepdims=True)


def _win_matrix(
    winners: np.ndarray, losers: np.ndarray, ties: np.ndarray, n_systems: int
) -> np.ndarray:
    credit = np.where(ties, 0.5, 1.0)
    cells = n_systems * n_systems
    wins = np.bincount(winners * n_systems + losers, weights=credit, minlength=cells)
    tied = np.bincount(losers * n_systems + winners, weights=np.where(ties, 0.5, 0.0),
                       minlength=cells)
    return (wins + tied).reshape(n_systems, n_systems)


def _bootstrap_win_matrices(
    winners: np.ndarray,
    losers: np.ndarray,
    ties: np.ndarray,
    n_systems: int,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Win matrices of comparisons resampled with replacement.

    Resampling n comparisons with replacement is a multinomial draw over the distinct
    outcomes (winner, loser, tie) weighted by how often each occurred, so the draw costs the
    number of distinct outcomes, not the number of comparisons.
    """
    low, high = np.minimum(winners, losers), np.maximum(winners, losers)
    first = np.where(ties, low, winners)
    second = np.where(ties, high, losers)
    outcome_codes = (first * n_systems + second) * 2 + ties
    outcomes, frequency = np.unique(outcome_codes, return_counts=True)
    outcome_first = outcomes // 2 // n_systems
    outcome_second = outcomes // 2 % n_systems
    outcome_tie = (outcomes % 2).astype(bool)
    resampled = rng.multinomial(winners.size, frequency / winners.size, size=n_bootstrap)

    credit = np.where(outcome_tie, 0.5, 1.0)
    forward = outcome_first * n_systems + outcome_second
    backward = outcome_second * n_systems + outcome_first
    cells = n_systems * n_systems
    offsets = (np.arange(n_bootstrap) * cells)[:, None]
    weights = resampled * credit
    matrices = np.bincount(
        (offsets + forward).ravel(), weights=weights.ravel(), minlength=n_bootstrap * cells
    )
    matrices += np.bincount(
        (offsets + backward).ravel(),
        weights=(resampled * np.where(outcome_tie, 0.5, 0.0)).ravel(),
        minlength=n_bootstrap * cells,
    )
    return matrices.reshape(n_bootstrap, n_systems, n_systems)


def bradley_terry(
    winners: np.ndarray,
    losers: np.ndarray,
    ties: np.ndarray,
    n_systems: int,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
    prior_precision: float = DEFAULT_PRIOR_PRECISION,
) -> BradleyTerryResult:
    """Bradley-Terry log-strengths by penalised maximum likelihood, with bootstrap intervals.

    P(i beats j) = sigmoid(score_i - score_j); a tie counts as half a win for each side. The
    log-likelihood gets a Gaussian prior N(0, 1/prior_precision) on every score. Intervals are
    2.5/97.5 percentiles over ``n_bootstrap`` resamples of the comparisons (none when
    ``n_bootstrap`` is 0).
    """
    if prior_precision <= 0:
        raise ValueError("prior_precision must be positive")
    winners, losers, ties = _validated_comparisons(winners, losers, ties, n_systems)
    win_counts = _win_matrix(winners, losers, ties, n_systems)
    scores = _fit_strengths(win_counts, prior_precision)
    n_comparisons = np.bincount(winners, minlength=n_systems) + np.bincount(
        losers, minlength=n_systems
    )
    wins = win_counts.sum(axis=1)

    low = high = None
    if n_bootstrap > 0 and winners.size > 0:
        rng = np.random.default_rng(seed)
        resampled_counts = _bootstrap_win_matrices(
            winners, losers, ties, n_systems, n_bootstrap, rng
        )
        resampled_scores = _fit_strengths(resampled_counts, prior_precision)
        low, high = np.percentile(resampled_scores, [2.5, 97.5], axis=0)

    systems = tuple(
        SystemStrength(
            system=system,
            n_comparisons=int(n_comparisons[system]),
            wins=float(wins[system]),
            score=float(scores[system]),
            ci_low=float(low[system]) if low is not None and n_comparisons[system] else None,
            ci_high=float(high[system]) if high is not None and n_comparisons[system] else None,
            win_probability=float(_sigmoid(scores[system])),
        )
        for system in range(n_systems)
    )
    return BradleyTerryResult(systems, int(winners.size), int(n_bootstrap), prior_precision)


def elo(
    winners: np.ndarray,
    losers: np.ndarray,
    ties: np.ndarray,
    n_systems: int,
    *,
    k: float = 4.0,
    initial: float = 1000.0,
) -> np.ndarray:
    """Online Elo ratings over the comparisons in the given order.

    Base 10, scale 400, as in the Chatbot Arena / MAD-Eval reports (K = 4, start at 1000);
    the update is zero-sum, so ratings always average ``initial``.
    """
    winners, losers, ties = _validated_comparisons(winners, losers, ties, n_systems)
    ratings = [float(initial)] * n_systems
    for winner, loser, tie in zip(winners.tolist(), losers.tolist(), ties.tolist(), strict=True):
        expected = 1.0 / (1.0 + 10.0 ** ((ratings[loser] - ratings[winner]) / 400.0))
        change = k * ((0.5 if tie else 1.0) - expected)
        ratings[winner] += change
        ratings[loser] -= change
    return np.array(ratings)


def _validated_grades(
    system_index: np.ndarray, human_pass: np.ndarray, n_systems: int
) -> tuple[np.ndarray, np.ndarray]:
    system_index = np.asarray(system_index, dtype=np.int64).ravel()
    human_pass = np.asarray(human_pass).ravel()
    if system_index.size != human_pass.size:
        raise ValueError("system_index and human_pass must have the same length")
    if system_index.size and (system_index.min() < 0 or system_index.max() >= n_systems):
        raise ValueError(f"system indices must lie in range({n_systems})")
    if not np.all((human_pass == 0) | (human_pass == 1)):
        raise ValueError("human_pass must be boolean (or 0/1)")
    return system_index, human_pass.astype(float)


def pass_rates(
    system_index: np.ndarray, human_pass: np.ndarray, n_systems: int
) -> list[SystemEstimate]:
    """Share of labelled outputs that passed, per system, with a 95% Wilson interval."""
    system_index, human_pass = _validated_grades(system_index, human_pass, n_systems)
    n = np.bincount(system_index, minlength=n_systems)
    passed = np.bincount(system_index, weights=human_pass, minlength=n_systems)
    estimates = []
    for system in range(n_systems):
        interval = wilson_interval(float(passed[system]), int(n[system]), z=Z_RANKINGS)
        estimates.append(
            SystemEstimate(
                system=system,
                n=int(n[system]),
                pass_rate=float(passed[system] / n[system]) if n[system] else None,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
            )
        )
    return estimates


def _weighted_estimates(
    system_index: np.ndarray,
    human_pass: np.ndarray,
    weight: np.ndarray,
    control: np.ndarray,
    control_mean: np.ndarray,
    n_systems: int,
) -> list[SystemEstimate]:
    """Hájek estimate of each system's pass rate, optionally with a control variate.

    mu = hbar_w - alpha (sbar_w - E[s]), alpha = Cov_w(h, s) / Var_w(s) on the labelled outputs
    (the regression estimator; Särndal, Swensson & Wretman 1992, §6.4). alpha is 0 where it is
    undefined (fewer than 2 outputs, constant s, or E[s] unknown), which leaves the Hájek mean.
    Variance is the linearised one of a ratio, sum(w^2 e^2) / sum(w)^2 with residuals e, which
    treats E[s] and alpha as known. The interval is Wilson's at the effective sample size
    mu (1 - mu) / variance (Korn & Graubard 1998), so it stays inside [0, 1] and, with equal
    weights and no control variate, equals the plain Wilson interval; where that size is
    undefined (mu at 0 or 1, or zero variance) Kish's effective size sum(w)^2 / sum(w^2) is used.
    """
    n = np.bincount(system_index, minlength=n_systems)
    total_weight = np.bincount(system_index, weights=weight, minlength=n_systems)
    squared_weight = np.bincount(system_index, weights=weight**2, minlength=n_systems)
    labelled = n > 0
    safe_total = np.where(labelled, total_weight, 1.0)

    def weighted_mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(system_index, weights=weight * values, minlength=n_systems) / safe_total

    human_mean, control_labelled_mean = weighted_mean(human_pass), weighted_mean(control)
    human_centred = human_pass - human_mean[system_index]
    control_centred = control - control_labelled_mean[system_index]
    covariance = weighted_mean(human_centred * control_centred)
    control_variance = weighted_mean(control_centred**2)
    usable = (n >= 2) & (control_variance > 1e-12) & np.isfinite(control_mean)
    alpha = np.where(usable, covariance / np.where(usable, control_variance, 1.0), 0.0)
    known_mean = np.where(usable, control_mean, 0.0)
    estimate = human_mean - alpha * (control_labelled_mean - known_mean)
    estimate = np.clip(estimate, 0.0, 1.0)

    residual = human_centred - alpha[system_index] * control_centred
    variance = (
        np.bincount(system_index, weights=(weight * residual) ** 2, minlength=n_systems)
        / safe_total**2
    )
    kish_size = np.where(labelled, total_weight**2 / np.where(labelled, squared_weight, 1.0), 0.0)
    interior = (estimate > 0.0) & (estimate < 1.0) & (variance > 1e-15)
    effective_size = np.where(
        interior, estimate * (1.0 - estimate) / np.where(interior, variance, 1.0), kish_size
    )

    estimates = []
    for system in range(n_systems):
        if not labelled[system]:
            estimates.append(SystemEstimate(system, 0, None, None, None))
            continue
        size = float(effective_size[system])
        low, high = wilson_interval(float(estimate[system]) * size, size, z=Z_RANKINGS)
        estimates.append(SystemEstimate(system, int(n[system]), float(estimate[system]), low, high))
    return estimates


def _validated_probability(probability: np.ndarray, size: int) -> np.ndarray:
    probability = np.asarray(probability, dtype=float).ravel()
    if probability.size != size:
        raise ValueError("one selection probability is needed per labelled output")
    if not np.all((probability > 0.0) & (probability <= 1.0)):
        raise ValueError("selection probabilities must lie in (0, 1]")
    return probability


def pass_rates_ipw(
    system_index: np.ndarray,
    human_pass: np.ndarray,
    probability: np.ndarray,
    n_systems: int,
) -> list[SystemEstimate]:
    """Pass rate per system when outputs were picked for labelling with known probabilities.

    ``probability[i]`` is the chance that labelled output i was selected. The Hájek estimator
    sum(h / p) / sum(1 / p) removes the selection bias of an active selector, up to the O(1/n)
    bias of a ratio. The 95% interval is Wilson's at the effective sample size
    mu (1 - mu) / Var, Var being the linearised Hájek variance (Korn & Graubard 1998); with
    equal probabilities it is exactly the plain Wilson interval of ``pass_rates``.
    """
    system_index, human_pass = _validated_grades(system_index, human_pass, n_systems)
    weight = 1.0 / _validated_probability(probability, system_index.size)
    no_control = np.zeros_like(human_pass)
    return _weighted_estimates(
        system_index, human_pass, weight, no_control, np.full(n_systems, np.nan), n_systems
    )


def pass_rates_control_variate(
    system_index: np.ndarray,
    human_pass: np.ndarray,
    validator_pass_labelled: np.ndarray,
    validator_pass_all_mean_per_system: np.ndarray,
    *,
    probability: np.ndarray | None = None,
) -> list[SystemEstimate]:
    """Pass rate per system with the validator's verdicts as a control variate (DESIGN §4.4).

    mu = mean(h - alpha s) + alpha E[s], where s is the validator verdict on the labelled
    outputs, E[s] its mean over all of the system's outputs (NaN when unknown) and
    alpha = Cov(h, s) / Var(s) on the labelled outputs. With ``probability`` the means are
    Hájek-weighted by 1 / probability, for labels chosen actively.
    """
    validator_mean = np.asarray(validator_pass_all_mean_per_system, dtype=float).ravel()
    n_systems = validator_mean.size
    system_index, human_pass = _validated_grades(system_index, human_pass, n_systems)
    control = np.asarray(validator_pass_labelled, dtype=float).ravel()
    if control.size != human_pass.size:
        raise ValueError("validator_pass_labelled needs one verdict per labelled output")
    weight = (
        np.ones_like(human_pass)
        if probability is None
        else 1.0 / _validated_probability(probability, human_pass.size)
    )
    return _weighted_estimates(
        system_index, human_pass, weight, control, validator_mean, n_systems
    )


def kendall_tau(scores_a: np.ndarray, scores_b: np.ndarray) -> float | None:
    """Kendall's tau-b between two scorings of the same systems.

    Positions where either score is missing (None or NaN) are dropped. None when fewer than
    two systems remain or either side is constant, where tau-b is 0/0.
    """
    scores_a = np.asarray(scores_a, dtype=float).ravel()
    scores_b = np.asarray(scores_b, dtype=float).ravel()
    if scores_a.size != scores_b.size:
        raise ValueError("both scorings must cover the same systems")
    both = np.isfinite(scores_a) & np.isfinite(scores_b)
    if both.sum() < 2:
        return None
    a, b = scores_a[both], scores_b[both]
    if np.all(a == a[0]) or np.all(b == b[0]):
        return None
    tau = kendalltau(a, b, variant="b").statistic
    return None if np.isnan(tau) else float(tau)


@dataclass(frozen=True)
class SystemMean:
    system: int
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def mean_scores(
    system_index: np.ndarray,
    scores: np.ndarray,
    n_systems: int,
    *,
    probability: np.ndarray | None = None,
    confidence: float = 0.95,
) -> list[SystemMean]:
    """Mean score per system (rating scales) with a Student-t interval.

    Without ``probability``: the sample mean and mean ± t(n-1) s / sqrt(n). With it, the Hájek
    mean sum(x / p) / sum(1 / p) and the linearised variance n / (n - 1) sum(w^2 e^2) / sum(w)^2,
    whose small-sample factor makes it s^2 / n for equal weights; the degrees of freedom are
    Kish's effective size sum(w)^2 / sum(w^2) minus 1. No interval below two scores.
    """
    from scipy.stats import t as student_t

    system_index = np.asarray(system_index, dtype=np.int64).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if system_index.size != scores.size:
        raise ValueError("system_index and scores must have the same length")
    if system_index.size and (system_index.min() < 0 or system_index.max() >= n_systems):
        raise ValueError(f"system indices must lie in range({n_systems})")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    weight = (
        np.ones_like(scores)
        if probability is None
        else 1.0 / _validated_probability(probability, scores.size)
    )
    results = []
    for system in range(n_systems):
        mine = system_index == system
        n = int(mine.sum())
        if n == 0:
            results.append(SystemMean(system, 0, None, None, None))
            continue
        x, w = scores[mine], weight[mine]
        mean = float((w * x).sum() / w.sum())
        if n < 2:
            results.append(SystemMean(system, n, mean, None, None))
            continue
        variance = n / (n - 1) * float((w**2 * (x - mean) ** 2).sum()) / float(w.sum()) ** 2
        degrees = max(float(w.sum()) ** 2 / float((w**2).sum()) - 1.0, 1.0)
        half_width = float(student_t.ppf(0.5 + confidence / 2.0, degrees)) * np.sqrt(variance)
        results.append(SystemMean(system, n, mean, mean - half_width, mean + half_width))
    return results


def competition_ranks(values: np.ndarray) -> list[int | None]:
    """Rank 1 for the highest value; equal values share the best rank ("1224"); None for a
    missing value (None or NaN), which takes no rank."""
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    known = np.isfinite(values)
    ranks: list[int | None] = []
    for value, present in zip(values.tolist(), known.tolist(), strict=True):
        ranks.append(int((values[known] > value).sum()) + 1 if present else None)
    return ranks
