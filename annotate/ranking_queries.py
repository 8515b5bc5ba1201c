"""Per-system estimates from the database, for the Rankings page and GET …/ranking/ (DESIGN §4.4).

Single grades. The unit is the output: its label is the majority of its annotators' current
holistic verdicts (pass / fail; ties and `unsure` leave it out, as for the report card,
DESIGN §4.1), and its selection is that of its earliest current grade, the draw that put it
in the labelled sample (a later grade by another annotator only adds a vote). Counting outputs,
not grades, keeps a project with overlap 3 from looking three times as certain.

Estimators of a system's pass rate:
- ``naive``: every labelled output. Biased as soon as a selector chose items on purpose.
- ``random_stream``: only outputs drawn by the chooser's ε-random branch (selector "random").
- ``ipw``: Hájek weights 1 / selection probability. An output without a probability (imported
  labels, grades sent through the API without a claim, which nobody drew) counts as drawn with
  probability 1: it stands for itself only. With no probability anywhere this is ``naive``.
- ``control_variate``: ``ipw`` plus the chosen holistic validator's verdicts as a control
  variate, E[s] taken over all the system's outputs it judged; labelled outputs it did not
  judge (error, missing) get the system's E[s], so they carry no adjustment.
The default is ``ipw`` when any labelled output carries a probability, else ``naive``.

Pairwise: current, non-retracted comparisons; output_a is the left one shown, so choice "a"
means output_a's system won. Bradley–Terry with bootstrap intervals, Elo (K = 4) in submission
order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from annotate import rankings
from annotate.evidence import load_chosen_verdicts
from annotate.labels import mean_per_output
from annotate.models import Choice, Comparison, Grade, Output, Project, Scale
from annotate.sampling_weights import importance_ratios, lure_weights
from annotate.statistics import (
    LABEL_PASS,
    NO_LABEL,
    VERDICT_CODES,
    as_outcomes,
    majority,
    rows_of,
)

ESTIMATORS = {
    "naive": "All labels (naive)",
    "random_stream": "ε-random stream only",
    "ipw": "Inverse-probability weighted (Hájek)",
    "control_variate": "Inverse-probability weighted, validator as control variate",
}
RANDOM_SELECTOR = "random"
BOOTSTRAP_RESAMPLES = 200
ELO_K = 4.0


class EstimatorError(ValueError):
    pass


@dataclass(frozen=True)
class MeanScore:
    n: int
    estimate: float | None
    ci: tuple[float, float] | None
    rank: int | None


@dataclass(frozen=True)
class SystemPassRate:
    system: str
    n: int
    estimate: float | None
    ci: tuple[float, float] | None
    rank: int | None
    mean_score: MeanScore | None


@dataclass(frozen=True)
class ControlValidator:
    id: int
    name: str


@dataclass(frozen=True)
class SingleRanking:
    estimator: str
    default_estimator: str
    estimators: tuple[str, ...]          # the ones usable on this project's data
    scale: str
    n_labelled: int                      # outputs with a majority label
    n_with_probability: int              # ... whose draw carries a selection probability
    n_random: int                        # ... drawn by the ε-random stream
    control_validator: ControlValidator | None
    systems: tuple[SystemPassRate, ...]  # by rank, then name; unranked (n = 0) last
    notice: str = ""                     # why a requested estimator was not used (pages only)

    @property
    def estimator_label(self) -> str:
        return ESTIMATORS[self.estimator]

    @property
    def estimator_options(self) -> list[tuple[str, str, bool]]:
        """(name, label, usable here) of every estimator, for a picker."""
        return [(name, label, name in self.estimators) for name, label in ESTIMATORS.items()]

    def to_dict(self) -> dict:
        body = asdict(self)
        body.pop("notice")
        body["estimators"] = list(self.estimators)
        for system in body["systems"]:
            system["ci"] = _interval(system["ci"])
            if system["mean_score"] is not None:
                system["mean_score"]["ci"] = _interval(system["mean_score"]["ci"])
        return body


@dataclass(frozen=True)
class SystemStrength:
    system: str
    score: float
    ci: tuple[float, float] | None
    win_probability: float
    wins: int
    losses: int
    ties: int
    n: int
    rank: int


@dataclass(frozen=True)
class SystemElo:
    system: str
    rating: float


@dataclass(frozen=True)
class PairwiseRanking:
    n_comparisons: int
    n_bootstrap: int
    bradley_terry: tuple[SystemStrength, ...]  # strongest first
    elo: tuple[SystemElo, ...]                 # highest first

    def to_dict(self) -> dict:
        body = asdict(self)
        for system in body["bradley_terry"]:
            system["ci"] = _interval(system["ci"])
        body["bradley_terry"] = list(body["bradley_terry"])
        body["elo"] = list(body["elo"])
        return body


@dataclass(frozen=True)
class ProjectRanking:
    single: SingleRanking | None
    pairwise: PairwiseRanking | None

    def to_dict(self) -> dict:
        return {
            "single": self.single.to_dict() if self.single else None,
            "pairwise": self.pairwise.to_dict() if self.pairwise else None,
        }


def _interval(value) -> list[float] | None:
    return None if value is None else [float(value[0]), float(value[1])]


def _pair(low: float | None, high: float | None) -> tuple[float, float] | None:
    return None if low is None or high is None else (low, high)


# -- single grades ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _LabelledOutputs:
    """Per graded output (ascending id): its system, majority label, mean score and how it
    was drawn; `all_*` cover every output of the project."""

    systems: list[str]                   # every system of the project, sorted
    all_output_ids: np.ndarray           # every output of the project, ascending
    all_system_index: np.ndarray
    output_ids: np.ndarray
    system_index: np.ndarray
    label: np.ndarray                    # int8: 1 pass, 0 fail, NO_LABEL (tie, unsure only)
    selector: np.ndarray                 # str (object)
    probability: np.ndarray              # float, NaN when none was recorded
    pool_size: np.ndarray                # float, NaN when none was recorded
    scored: np.ndarray                   # bool: some current grade gave a score
    score: np.ndarray                    # mean of the current grades' scores, NaN if none


def _load_labelled_outputs(project: Project) -> _LabelledOutputs:
    outputs = list(Output.objects.filter(project=project).order_by("id").values_list("id", "system"))
    systems = sorted({system for _, system in outputs})
    position = {system: i for i, system in enumerate(systems)}
    all_output_ids = np.array([o for o, _ in outputs], dtype=np.int64)
    all_system_index = np.array([position[s] for _, s in outputs], dtype=np.int64)

    # Earliest first, so the first row of an output is the draw that put it in the sample.
    grades = list(
        Grade.objects.filter(project=project, retracted=False, superseded_by__isnull=True)
        .order_by("submitted_at", "id")
        .values_list(
            "output_id", "verdict", "score", "selector", "selector_probability", "selector_pool_size"
        )
    )
    vote_outputs = np.array([g[0] for g in grades], dtype=np.int64)
    codes = np.array([VERDICT_CODES[g[1]] for g in grades], dtype=np.int8)
    graded, first = np.unique(vote_outputs, return_index=True)
    labels = majority(graded, vote_outputs, codes)

    score_values = np.array([np.nan if g[2] is None else g[2] for g in grades], dtype=float)
    has_score = np.isfinite(score_values)
    score = mean_per_output(graded, vote_outputs[has_score], score_values[has_score])

    selector = np.array([grades[i][3] for i in first], dtype=object)
    probability = np.array(
        [np.nan if grades[i][4] is None else grades[i][4] for i in first], dtype=float
    )
    pool_size = np.array(
        [np.nan if grades[i][5] is None else grades[i][5] for i in first], dtype=float
    )
    system_index = all_system_index[np.searchsorted(all_output_ids, graded)]
    return _LabelledOutputs(
        systems=systems, all_output_ids=all_output_ids, all_system_index=all_system_index,
        output_ids=graded, system_index=system_index, label=labels,
        selector=selector, probability=probability, pool_size=pool_size,
        scored=np.isfinite(score), score=score,
    )


def _control_verdicts(project: Project, data: _LabelledOutputs):
    """The chosen holistic validator and its verdicts on every project output (1 pass, 0 fail,
    NaN when it has none), or None when no holistic validator is chosen."""
    chosen = load_chosen_verdicts(project)
    if chosen is None or None not in chosen.by_criterion:
        return None
    validator_id, name, codes = chosen.by_criterion[None]
    verdicts = np.full(data.all_output_ids.size, np.nan)
    rows, found = rows_of(chosen.output_ids, data.all_output_ids)
    verdicts[found] = as_outcomes(codes[rows[found]])
    return ControlValidator(int(validator_id), str(name)), verdicts


def _selection_probability(data: _LabelledOutputs, keep: np.ndarray) -> np.ndarray:
    """Each kept output's effective chance for the Hájek weights: 1 / its LURE weight
    (`annotate.sampling_weights.lure_weights`), so uniformly drawn grades weigh alike however
    large the pool was, and once every output is graded every weight is 1. Grades from before
    pool sizes were recorded use their probability alone."""
    probability = data.probability[keep]
    pool_size = data.pool_size[keep]
    # No recorded probability, or one outside (0, 1]: nobody drew it, it stands for itself.
    usable = np.isfinite(probability) & (probability > 0.0) & (probability <= 1.0)
    ratio = importance_ratios(probability, pool_size)
    with_pool = usable & np.isfinite(ratio)
    ratio[~with_pool] = 1.0
    weights = lure_weights(
        ratio, np.where(with_pool, pool_size, np.nan), data.all_output_ids.size, data.output_ids.size
    )
    legacy = usable & ~with_pool
    return np.where(legacy, probability, 1.0 / weights)


def _pass_rates(data: _LabelledOutputs, estimator: str, labelled: np.ndarray, control):
    n_systems = len(data.systems)
    keep = labelled & (data.selector == RANDOM_SELECTOR) if estimator == "random_stream" else labelled
    index, passed = data.system_index[keep], data.label[keep] == LABEL_PASS
    if estimator in ("naive", "random_stream"):
        return rankings.pass_rates(index, passed, n_systems)
    probability = _selection_probability(data, keep)
    if estimator == "ipw":
        return rankings.pass_rates_ipw(index, passed, probability, n_systems)
    verdicts = control[1]
    judged = np.isfinite(verdicts)
    judged_count = np.bincount(data.all_system_index[judged], minlength=n_systems)
    judged_pass = np.bincount(
        data.all_system_index[judged], weights=verdicts[judged], minlength=n_systems
    )
    expected = np.full(n_systems, np.nan)
    np.divide(judged_pass, judged_count, out=expected, where=judged_count > 0)
    on_labelled = verdicts[np.searchsorted(data.all_output_ids, data.output_ids[keep])]
    on_labelled = np.where(np.isfinite(on_labelled), on_labelled, expected[index])
    # A system the validator never judged has no E[s]: its estimate stays the Hájek mean.
    on_labelled = np.where(np.isfinite(on_labelled), on_labelled, 0.0)
    return rankings.pass_rates_control_variate(
        index, passed, on_labelled, expected, probability=probability
    )


def _mean_scores(data: _LabelledOutputs, estimator: str) -> list[rankings.SystemMean]:
    """Rating scales: the same selection of outputs and the same weights as the pass rate;
    the control variate adjusts pass rates only, so its scores are the IPW ones."""
    keep = data.scored.copy()
    if estimator == "random_stream":
        keep &= data.selector == RANDOM_SELECTOR
    probability = (
        _selection_probability(data, keep) if estimator in ("ipw", "control_variate") else None
    )
    return rankings.mean_scores(
        data.system_index[keep], data.score[keep], len(data.systems), probability=probability
    )


def _unknown(name: str) -> str:
    return f"Unknown estimator '{name}'; choose one of {', '.join(ESTIMATORS)}."


def _resolve(requested: str | None, default: str, usable: tuple[str, ...]) -> str:
    if requested is None or requested == "":
        return default
    if requested not in ESTIMATORS:
        raise EstimatorError(_unknown(requested))
    if requested not in usable:
        raise EstimatorError(
            "The control variate needs a chosen holistic validator; none is chosen yet."
        )
    return requested


def single_ranking(
    project: Project, *, estimator: str | None = None, fallback: bool = False
) -> SingleRanking | None:
    """Pass rate per system (and mean score on rating scales); None without labelled outputs.

    An unknown or unusable ``estimator`` raises EstimatorError, or with ``fallback`` gives the
    default estimator and says why in ``notice``.
    """
    data = _load_labelled_outputs(project)
    labelled = data.label != NO_LABEL
    if not labelled.any() and not data.scored.any():
        if estimator and estimator not in ESTIMATORS and not fallback:
            raise EstimatorError(_unknown(estimator))
        return None
    control = _control_verdicts(project, data)
    usable = tuple(name for name in ESTIMATORS if name != "control_variate" or control)
    with_probability = labelled & np.isfinite(data.probability)
    default = "ipw" if with_probability.any() else "naive"
    notice = ""
    try:
        chosen = _resolve(estimator, default, usable)
    except EstimatorError as exc:
        if not fallback:
            raise
        chosen, notice = default, f"{exc} Showing the default estimator instead."

    estimates = _pass_rates(data, chosen, labelled, control)
    ranks = rankings.competition_ranks([e.pass_rate for e in estimates])
    means = _mean_scores(data, chosen) if project.scale == Scale.RATING else None
    mean_ranks = rankings.competition_ranks([m.mean for m in means]) if means else None
    systems = [
        SystemPassRate(
            system=data.systems[e.system], n=e.n, estimate=e.pass_rate,
            ci=_pair(e.ci_low, e.ci_high), rank=ranks[e.system],
            mean_score=None if means is None else MeanScore(
                n=means[e.system].n, estimate=means[e.system].mean,
                ci=_pair(means[e.system].ci_low, means[e.system].ci_high),
                rank=mean_ranks[e.system],
            ),
        )
        for e in estimates
    ]
    systems.sort(key=lambda s: (s.rank is None, s.rank or 0, s.system))
    return SingleRanking(
        estimator=chosen, default_estimator=default, estimators=usable, scale=project.scale,
        n_labelled=int(labelled.sum()), n_with_probability=int(with_probability.sum()),
        n_random=int((labelled & (data.selector == RANDOM_SELECTOR)).sum()),
        control_validator=control[0] if control else None, systems=tuple(systems),
        notice=notice,
    )


# -- pairwise --------------------------------------------------------------------------------
def pairwise_ranking(
    project: Project, *, n_bootstrap: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> PairwiseRanking | None:
    """Bradley–Terry and Elo over the current comparisons; None when there are none. Only
    systems that took part in a comparison are listed."""
    comparisons = [
        row for row in Comparison.objects.filter(
            project=project, retracted=False, superseded_by__isnull=True
        ).order_by("submitted_at", "id").values_list("output_a__system", "output_b__system", "choice")
        if row[0] != row[1]
    ]
    if not comparisons:
        return None
    systems = sorted({name for left, right, _ in comparisons for name in (left, right)})
    position = {name: i for i, name in enumerate(systems)}
    left = np.array([position[a] for a, _, _ in comparisons], dtype=np.int64)
    right = np.array([position[b] for _, b, _ in comparisons], dtype=np.int64)
    choice = np.array([c for _, _, c in comparisons], dtype=object)
    ties = choice == Choice.TIE
    right_won = choice == Choice.B
    winners, losers = np.where(right_won, right, left), np.where(right_won, left, right)

    n_systems = len(systems)
    decided = ~ties
    wins = np.bincount(winners[decided], minlength=n_systems)
    losses = np.bincount(losers[decided], minlength=n_systems)
    tied = np.bincount(winners[ties], minlength=n_systems) + np.bincount(
        losers[ties], minlength=n_systems
    )
    fit = rankings.bradley_terry(
        winners, losers, ties, n_systems, n_bootstrap=n_bootstrap, seed=seed
    )
    ranks = rankings.competition_ranks(fit.scores)
    strengths = sorted(
        (
            SystemStrength(
                system=systems[s.system], score=s.score, ci=_pair(s.ci_low, s.ci_high),
                win_probability=s.win_probability, wins=int(wins[s.system]),
                losses=int(losses[s.system]), ties=int(tied[s.system]),
                n=s.n_comparisons, rank=ranks[s.system],
            )
            for s in fit.systems
        ),
        key=lambda s: (s.rank, s.system),
    )
    ratings = rankings.elo(winners, losers, ties, n_systems, k=ELO_K)
    elo = sorted(
        (SystemElo(system=systems[i], rating=float(r)) for i, r in enumerate(ratings)),
        key=lambda s: (-s.rating, s.system),
    )
    return PairwiseRanking(
        n_comparisons=len(comparisons), n_bootstrap=n_bootstrap,
        bradley_terry=tuple(strengths), elo=tuple(elo),
    )


def project_ranking(project: Project, *, estimator: str | None = None) -> ProjectRanking:
    """Both sections; raises EstimatorError for an unknown or unusable estimator."""
    return ProjectRanking(
        single=single_ranking(project, estimator=estimator),
        pairwise=pairwise_ranking(project),
    )
