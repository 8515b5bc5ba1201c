"""The report card: per criterion, the validator that agrees best with the human labels.

Reads the cached verdict matrix and the current human labels, then hands arrays to the pure
alignment and selection modules. Nothing here writes; `services.suite_save` snapshots it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotate.labels import inferred_outputs, load_votes, output_weights
from annotate.models import Criterion, Project
from annotate.statistics import LABEL_FAIL, LABEL_PASS, majority
from validators.alignment import alignment_table
from validators.matrix import verdict_matrix
from validators.models import CriterionSetting, Validator
from validators.selection import (
    Candidate,
    CriterionSelection,
    SuiteMetrics,
    select_validator,
    suite_metrics,
)

HOLISTIC = "__holistic__"


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
                }
                for r in self.selection.ranked
            ],
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
        }


def report_card(project: Project) -> ReportCard:
    matrix = verdict_matrix(project)
    settings_by_criterion = {
        s.criterion_id: s
        for s in CriterionSetting.objects.filter(project=project).prefetch_related("excluded")
    }
    include_stale = {cid for cid, s in settings_by_criterion.items() if cid and s.include_stale}
    votes = load_votes(project, include_stale=include_stale)
    validators = {
        v.pk: v for v in Validator.objects.filter(project=project, archived=False)
    }
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
        metrics = alignment_table(
            labels[labelled], matrix.codes[np.ix_(labelled, columns)],
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
        cards.append(CriterionCard(
            key=key, name=name, criterion_id=criterion_id, ceiling=ceiling,
            min_labels=min_labels,
            n_human_pass=int(np.count_nonzero(labels == LABEL_PASS)),
            n_human_fail=int(np.count_nonzero(labels == LABEL_FAIL)),
            n_human_pass_inferred=int(np.count_nonzero(
                (labels == LABEL_PASS) & inferred_outputs(matrix.output_ids, votes, criterion_id)
            )),
            pinned=pinned, excluded=excluded, selection=selection,
        ))
    chosen = [c.selection.chosen.validator_id for c in cards if c.selection.chosen is not None]
    chosen_columns = [matrix.column(v) for v in chosen]
    labelled = np.flatnonzero(holistic_labels >= 0)
    suite = suite_metrics(
        holistic_labels[labelled],
        matrix.codes[np.ix_(labelled, chosen_columns)] if chosen_columns else np.zeros((labelled.size, 0), np.int8),
        weights=weights[labelled] if weighted else None,
    )
    return ReportCard(
        criteria=cards, suite=suite, chosen_validator_ids=chosen, n_grades=int(votes.grade_ids.size),
        weighted=weighted, effective_grades=effective,
    )
