"""The report card: per criterion, the validator that agrees best with the human labels.

Reads the cached verdict matrix and the current human labels, then hands arrays to the pure
alignment and selection modules. Nothing here writes; `services.suites.suite_save` snapshots it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from django.db.models import Avg

from annotate.labels import inferred_outputs, load_votes, output_weights, pair_choices
from annotate.models import Criterion, Project
from annotate.selectors.settling import Settling, criterion_settling
from annotate.statistics import LABEL_FAIL, LABEL_PASS, VERDICT_MISSING, majority
from validators.alignment import alignment_table
from validators.matrix import verdict_matrix
from validators.models import CriterionSetting, PairVerdict, PairwiseSetting, Target, Validator
from validators.pairs import pair_verdict_codes
from validators.pairwise_alignment import (
    DEFAULT_CONSISTENCY_FLOOR,
    WIN_MISSING,
    PairwiseCandidate,
    PairwiseSelection,
    pairwise_metrics,
    select_pairwise_judge,
    weighted_accuracy,
    weighted_consistency,
    winner_codes,
)
from validators.selection import (
    Candidate,
    CriterionSelection,
    SuiteMetrics,
    select_validator,
    suite_metrics,
)
from validators.thresholds import ThresholdSweep, threshold_sweep, verdicts_at

HOLISTIC = "__holistic__"
# Kinds whose numeric answer may be stored without a threshold (outcome `score`).
SCORED_KINDS = ("rating", "external")
THRESHOLD_FIXED, THRESHOLD_PICKED = "fixed", "picked"
# Judges whose tokens are paid for; code comparators and imported verdicts cost nothing.
PAID_KINDS = ("llm", "rating")


@dataclass(frozen=True)
class CriterionCard:
    key: str
    name: str
    criterion_id: int | None
    ceiling: float
    min_labels: int
    n_human_pass: int
    n_human_fail: int
    pinned: int | None
    excluded: tuple[int, ...]
    selection: CriterionSelection
    # Of the passing labels, those inferred from a holistic pass (a project option); failing
    # labels are never inferred.
    n_human_pass_inferred: int = 0
    # validator id → the threshold sweep of a scored validator stored without a threshold
    sweeps: dict[int, ThresholdSweep] = field(default_factory=dict)
    # validator id → its own threshold, for validators that have one
    fixed_thresholds: dict[int, float] = field(default_factory=dict)
    # Whether further labels can still change the choice by more than the tolerance (DESIGN
    # §4.3, annotate.selectors.settling); None where there is nothing to choose between.
    settling: Settling | None = None

    def threshold_of(self, validator_id: int) -> tuple[float | None, str | None]:
        """(threshold, "fixed" | "picked") the candidate's verdicts were read at, or
        (None, None) for a validator whose verdicts are pass/fail as stored."""
        if validator_id in self.sweeps:
            return self.sweeps[validator_id].threshold, THRESHOLD_PICKED
        if validator_id in self.fixed_thresholds:
            return self.fixed_thresholds[validator_id], THRESHOLD_FIXED
        return None, None

    def to_dict(self) -> dict:
        chosen = self.selection.chosen
        return {
            "key": self.key, "name": self.name, "ceiling": self.ceiling,
            "min_labels": self.min_labels, "n_human_pass": self.n_human_pass,
            "n_human_pass_inferred": self.n_human_pass_inferred,
            "n_human_fail": self.n_human_fail, "pinned": self.pinned,
            "excluded": list(self.excluded),
            "chosen": None if chosen is None else chosen.validator_id,
            "reason": self.selection.reason,
            "candidates": [
                {
                    "validator": r.candidate.validator_id, "name": r.candidate.name,
                    "kind": r.candidate.kind, "rank": r.rank, "status": r.status,
                    "reason": r.reason, **_api_metrics(r.candidate.metrics.to_dict()),
                    **dict(zip(("threshold", "threshold_source"), self.threshold_of(r.candidate.validator_id),
                               strict=True)),
                }
                for r in self.selection.ranked
            ],
            "settling": None if self.settling is None else {
                "settled": self.settling.settled, "tolerance": self.settling.tolerance,
                "confidence": self.settling.confidence, "n_labels": self.settling.n_labels,
                "worst_gap": self.settling.worst_gap, "why": self.settling.why,
            },
        }


def _api_metrics(metrics: dict) -> dict:
    return {
        "coverage": metrics["coverage"], "ffr": metrics["false_failure_rate"],
        "alignment": metrics["alignment"], "accuracy": metrics["accuracy"],
        "kappa": metrics["kappa"], "mcc": metrics["mcc"], "n_pass": metrics["n_pass"],
        "n_fail": metrics["n_fail"], "skip_rate": metrics["skip_rate"],
        "ci": {"coverage": metrics["coverage_ci"], "ffr": metrics["ffr_ci"]},
        "confusion": {"tp": metrics["tp"], "fn": metrics["fn"], "fp": metrics["fp"], "tn": metrics["tn"]},
    }


@dataclass(frozen=True)
class PairwiseCard:
    """The pairwise judges measured against the human comparisons, and the one chosen."""

    floor: float
    min_comparisons: int
    n_comparisons: int              # pairs with a current human choice
    pinned: int | None
    excluded: tuple[int, ...]
    candidates: list[PairwiseCandidate]
    selection: PairwiseSelection
    # Comparisons drawn with unequal chances are LURE-weighted (accuracy and consistency).
    weighted: bool = False

    @property
    def chosen(self) -> PairwiseCandidate | None:
        return self.selection.chosen

    @property
    def rows(self) -> list[tuple[PairwiseCandidate, bool, str]]:
        """(candidate, chosen?, why) per judge, the chosen one first."""
        chosen_id = None if self.chosen is None else self.chosen.validator_id
        ordered = sorted(self.candidates, key=lambda c: c.validator_id != chosen_id)
        return [
            (c, c.validator_id == chosen_id,
             self.selection.reason if c.validator_id == chosen_id else self.selection.why_not.get(c.validator_id, ""))
            for c in ordered
        ]

    def to_dict(self) -> dict:
        chosen = self.selection.chosen
        return {
            "floor": self.floor, "min_comparisons": self.min_comparisons,
            "n_comparisons": self.n_comparisons, "pinned": self.pinned, "excluded": list(self.excluded),
            "weighted": self.weighted,
            "chosen": None if chosen is None else chosen.validator_id,
            "reason": self.selection.reason,
            "candidates": [
                {
                    "validator": c.validator_id, "name": c.name, "kind": c.kind, "cost": c.cost,
                    **c.metrics.as_dict(), "why_not": self.selection.why_not.get(c.validator_id),
                }
                for c in self.candidates
            ],
        }


@dataclass(frozen=True)
class ReportCard:
    criteria: list[CriterionCard]
    suite: SuiteMetrics
    chosen_validator_ids: list[int]
    n_grades: int
    # Grades drawn with unequal chances (an active selector) are reweighted by
    # 1 / (pool × probability), so coverage and FFR estimate the whole project, not the sample;
    # `effective_grades` is Kish's (Σw)² / Σw² over the graded outputs.
    weighted: bool = False
    effective_grades: float | None = None
    # None when the project has no pairwise judge and no human comparison.
    pairwise: PairwiseCard | None = None

    def threshold_of(self, validator_id: int) -> tuple[float | None, str | None]:
        for card in self.criteria:
            threshold, source = card.threshold_of(validator_id)
            if source is not None:
                return threshold, source
        return None, None

    def to_dict(self) -> dict:
        suite = self.suite.to_dict()
        return {
            "criteria": [c.to_dict() for c in self.criteria],
            "suite": {
                "coverage": suite["coverage"], "ffr": suite["false_failure_rate"],
                "ci": {"coverage": suite["coverage_ci"], "ffr": suite["ffr_ci"]},
                "n_pass": suite["n_pass"], "n_fail": suite["n_fail"],
                "validators": self.chosen_validator_ids,
            },
            "n_grades": self.n_grades,
            "weighted": self.weighted,
            "effective_grades": self.effective_grades,
            "pairwise": None if self.pairwise is None else self.pairwise.to_dict(),
        }


def report_card(project: Project) -> ReportCard:
    matrix = verdict_matrix(project)
    settings_by_criterion = {
        s.criterion_id: s
        for s in CriterionSetting.objects.filter(project=project).prefetch_related("excluded")
    }
    include_stale = {cid for cid, s in settings_by_criterion.items() if cid and s.include_stale}
    votes = load_votes(project, include_stale=include_stale)
    all_validators = list(Validator.objects.filter(project=project, archived=False))
    validators = {v.pk: v for v in all_validators if v.target == Target.OUTPUT}
    criteria = list(Criterion.objects.filter(project=project, archived=False).prefetch_related("versions"))
    targets: list[tuple[str, str, int | None]] = [(HOLISTIC, "Holistic verdict", None)] + [
        (c.key, (list(c.versions.all())[-1].name if c.versions.all() else c.key), c.pk) for c in criteria
    ]
    weights = output_weights(matrix.output_ids, votes)
    graded = np.isin(matrix.output_ids, votes.output_ids)
    weighted = bool(np.any(np.abs(weights[graded] - 1.0) > 1e-9))
    effective = None
    if weighted:
        effective = float(weights[graded].sum() ** 2 / np.square(weights[graded]).sum())
    # Settings refuse 0 now and a migration clamped stored zeros; a row written by other means
    # still must not break every report card of the project (select_validator refuses 0).
    min_labels = max(1, project.min_labels_per_class)
    cards: list[CriterionCard] = []
    holistic_labels = None
    # The cached matrix is shared; scored columns are read at their picked thresholds in a copy.
    codes = matrix.codes.copy()
    for key, name, criterion_id in targets:
        labels = majority(matrix.output_ids, votes.output_ids, votes.codes(criterion_id))
        if criterion_id is None:
            holistic_labels = labels
        setting = settings_by_criterion.get(criterion_id)
        ceiling = setting.ffr_ceiling if setting and setting.ffr_ceiling is not None else project.default_ffr_ceiling
        columns = [
            i for i, vid in enumerate(matrix.validator_ids)
            if validators.get(int(vid)) is not None and validators[int(vid)].criterion_id == criterion_id
        ]
        labelled = np.flatnonzero(labels >= 0)
        sweeps, fixed = _read_scores(
            codes, matrix.scores, columns, [validators[int(matrix.validator_ids[c])] for c in columns],
            labels=labels, weights=weights if weighted else None, ceiling=ceiling, min_labels=min_labels,
        )
        metrics = alignment_table(
            labels[labelled], codes[np.ix_(labelled, columns)],
            weights=weights[labelled] if weighted else None,
        ) if columns else []
        candidates = [
            Candidate(
                validator_id=int(matrix.validator_ids[col]),
                kind=validators[int(matrix.validator_ids[col])].kind,
                name=validators[int(matrix.validator_ids[col])].name, metrics=m,
            )
            for col, m in zip(columns, metrics, strict=True)
        ]
        excluded = tuple(v.pk for v in setting.excluded.all()) if setting else ()
        pinned = setting.pinned_id if setting else None
        selection = select_validator(
            candidates, ffr_ceiling=ceiling, min_labels=min_labels,
            pinned=pinned if pinned in validators else None, excluded=excluded,
        )
        chosen_column = None if selection.chosen is None else next(
            i for i, c in enumerate(candidates) if c.validator_id == selection.chosen.validator_id
        )
        settling = _settling(
            labels[labelled], codes[np.ix_(labelled, columns)],
            weights[labelled] if weighted else None, held=chosen_column, ceiling=ceiling,
            min_labels=min_labels, population=labels.size,
        ) if len(columns) >= 2 else None
        cards.append(CriterionCard(
            key=key, name=name, criterion_id=criterion_id, ceiling=ceiling,
            min_labels=min_labels,
            n_human_pass=int(np.count_nonzero(labels == LABEL_PASS)),
            n_human_fail=int(np.count_nonzero(labels == LABEL_FAIL)),
            n_human_pass_inferred=int(np.count_nonzero(
                (labels == LABEL_PASS) & inferred_outputs(matrix.output_ids, votes, criterion_id)
            )),
            pinned=pinned, excluded=excluded, selection=selection, sweeps=sweeps,
            fixed_thresholds=fixed, settling=settling,
        ))
    chosen = [c.selection.chosen.validator_id for c in cards if c.selection.chosen is not None]
    chosen_columns = [matrix.column(v) for v in chosen]
    labelled = np.flatnonzero(holistic_labels >= 0)
    suite = suite_metrics(
        holistic_labels[labelled],
        codes[np.ix_(labelled, chosen_columns)] if chosen_columns else np.zeros((labelled.size, 0), np.int8),
        weights=weights[labelled] if weighted else None,
    )
    return ReportCard(
        criteria=cards, suite=suite, chosen_validator_ids=chosen, n_grades=int(votes.grade_ids.size),
        weighted=weighted, effective_grades=effective,
        pairwise=pairwise_card(project, [v for v in all_validators if v.target == Target.PAIR]),
    )


def _settling(
    labels: np.ndarray, codes: np.ndarray, weights: np.ndarray | None, *, held: int | None,
    ceiling: float, min_labels: int, population: int,
) -> Settling:
    """The chosen column's settling on the criterion's labelled outputs (errors and missing
    verdicts left out, as alignment leaves them out)."""
    verdicts = np.where(codes >= 0, codes, np.nan).astype(np.float64)
    return criterion_settling(
        labels == LABEL_PASS, verdicts, weights, ffr_ceiling=ceiling, min_labels=min_labels,
        population=population, held=held,
    ) if held is not None else Settling(False, None, (), None, int(labels.size))


def _read_scores(
    codes: np.ndarray, scores: np.ndarray, columns: list[int], column_validators: list[Validator], *,
    labels: np.ndarray, weights: np.ndarray | None, ceiling: float, min_labels: int,
) -> tuple[dict[int, ThresholdSweep], dict[int, float]]:
    """Sweep the thresholds of scored validators stored without one and write their verdicts at
    the picked threshold into `codes` (in place); validators with a threshold keep it."""
    sweeps: dict[int, ThresholdSweep] = {}
    fixed: dict[int, float] = {}
    labelled = np.flatnonzero(labels >= 0)
    for column, validator in zip(columns, column_validators, strict=True):
        score_only = np.isfinite(scores[:, column]) & (codes[:, column] == VERDICT_MISSING)
        if validator.threshold is not None:
            fixed[validator.pk] = validator.threshold
            if score_only.any():
                # Compared in the matrix's float32, so a score stored equal to the threshold passes.
                codes[:, column] = verdicts_at(
                    codes[:, column], scores[:, column], np.array([validator.threshold], dtype=scores.dtype)
                )[:, 0]
            continue
        if validator.kind not in SCORED_KINDS or not score_only.any():
            continue
        sweep = threshold_sweep(
            labels[labelled], codes[labelled, column], scores[labelled, column],
            ffr_ceiling=ceiling, min_labels=min_labels,
            weights=weights[labelled] if weights is not None else None,
        )
        sweeps[validator.pk] = sweep
        if sweep.threshold is not None:
            # The threshold in the scores' own dtype, so a score equal to it passes.
            codes[:, column] = verdicts_at(codes[:, column], scores[:, column], sweep.thresholds[[sweep.chosen]])[:, 0]
    return sweeps, fixed


def pairwise_card(project: Project, pair_validators: list[Validator]) -> PairwiseCard | None:
    """Every pairwise judge against the current human comparisons (DESIGN §4.6). Comparisons
    an active selector drew with unequal chances (judge_choice) are LURE-weighted, so accuracy
    and consistency estimate every pair the judges judged, not the drawn ones."""
    ids = [v.pk for v in pair_validators]
    judged = PairVerdict.objects.filter(validator_id__in=ids).values_list("output_a_id", "output_b_id").distinct()
    choices = pair_choices(project, n_population=judged.count() or None)
    human = dict(zip(choices.pairs, choices.choices, strict=True))
    if not pair_validators and not human:
        return None
    setting = PairwiseSetting.objects.filter(project=project).prefetch_related("excluded").first()
    floor = (setting.consistency_floor if setting and setting.consistency_floor is not None
             else DEFAULT_CONSISTENCY_FLOOR)
    pairs = choices.pairs
    weights = choices.weights
    weighted = bool(np.any(np.abs(weights - 1.0) > 1e-9))
    human_codes = winner_codes([human[p] for p in pairs])
    winner, first, second = pair_verdict_codes(ids, pairs)
    tokens = dict(
        PairVerdict.objects.filter(validator_id__in=ids).values("validator_id")
        .annotate(mean=Avg("tokens")).values_list("validator_id", "mean")
    )
    candidates = []
    for j, validator in enumerate(pair_validators):
        # Only a judge asked in both orders has a position consistency; a comparator or an
        # imported winner would otherwise look perfectly consistent, or all first-position.
        both_orders = bool(np.any((first[:, j] >= 0) & (second[:, j] >= 0)))
        metrics = pairwise_metrics(
            human_codes, winner[:, j], first[:, j] if both_orders else None,
            second[:, j] if both_orders else None,
        )
        if weighted:
            answered = (human_codes >= 0) & (winner[:, j] != WIN_MISSING)
            metrics = replace(
                metrics, accuracy=weighted_accuracy(human_codes, winner[:, j], weights),
                consistency=weighted_consistency(first[answered, j], second[answered, j], weights[answered])
                if both_orders else None,
            )
        cost = float(tokens.get(validator.pk) or 0.0) if validator.kind in PAID_KINDS else 0.0
        candidates.append(PairwiseCandidate(validator.pk, validator.name, validator.kind, metrics, cost))
    min_comparisons = max(1, project.min_labels_per_class)
    excluded = tuple(v.pk for v in setting.excluded.all()) if setting else ()
    pinned = setting.pinned_id if setting and setting.pinned_id in ids else None
    selection = select_pairwise_judge(
        candidates, floor=floor, min_comparisons=min_comparisons, pinned=pinned, excluded=excluded,
    )
    return PairwiseCard(
        floor=floor, min_comparisons=min_comparisons, n_comparisons=len(pairs), pinned=pinned,
        excluded=excluded, candidates=candidates, selection=selection, weighted=weighted,
    )
