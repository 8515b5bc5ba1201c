"""The evidence interface: what the active selectors may know about outputs besides human grades.

annotate never imports validators (DESIGN §2). Providers named in
settings.ANNOTATE_EVIDENCE_PROVIDERS are dotted paths to callables `provider(project)` that return
an `EvidenceBlock`; the blocks are stacked column-wise over the project's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

from annotate.statistics import rows_of


@dataclass(frozen=True)
class EvidenceBlock:
    output_ids: np.ndarray                 # (N,) int64, ascending
    outcomes: np.ndarray                   # (N, M) float32: 1 pass, 0 fail, NaN missing or error
    column_names: tuple[str, ...] = ()
    column_criteria: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # criterion id, -1 holistic
    scores: np.ndarray | None = None       # (N, M) float32 numeric scores, NaN where none

    @property
    def n_columns(self) -> int:
        return self.outcomes.shape[1]


@dataclass(frozen=True)
class ChosenVerdicts:
    """The report card's chosen validator per criterion key (None = holistic verdict):
    (validator id, name, verdict codes aligned to output_ids: 1 pass, 0 fail, -1 error,
    -2 missing)."""

    output_ids: np.ndarray
    by_criterion: dict[str | None, tuple[int, str, np.ndarray]] = field(default_factory=dict)


def load_chosen_verdicts(project) -> ChosenVerdicts | None:
    """None when no provider is configured (annotate works without validators)."""
    path = getattr(settings, "ANNOTATE_CHOSEN_VERDICTS_PROVIDER", None)
    return import_string(path)(project) if path else None


def empty_block(output_ids: np.ndarray) -> EvidenceBlock:
    return EvidenceBlock(
        output_ids=output_ids, outcomes=np.zeros((output_ids.size, 0), dtype=np.float32)
    )


def load_evidence(project, output_ids: np.ndarray) -> EvidenceBlock:
    """All providers' evidence, aligned to `output_ids` (ascending)."""
    blocks = [import_string(path)(project) for path in settings.ANNOTATE_EVIDENCE_PROVIDERS]
    outcomes, names, criteria, scores = [], [], [], []
    for block in blocks:
        rows, present = rows_of(block.output_ids, output_ids)
        aligned = np.full((output_ids.size, block.n_columns), np.nan, dtype=np.float32)
        aligned_scores = np.full_like(aligned, np.nan)
        if block.n_columns and block.output_ids.size:
            aligned[present] = block.outcomes[rows[present]]
            if block.scores is not None:
                aligned_scores[present] = block.scores[rows[present]]
        outcomes.append(aligned)
        scores.append(aligned_scores)
        names.extend(block.column_names)
        criteria.append(np.asarray(block.column_criteria, dtype=np.int64))
    if not outcomes:
        return empty_block(output_ids)
    return EvidenceBlock(
        output_ids=output_ids, outcomes=np.hstack(outcomes), column_names=tuple(names),
        column_criteria=np.concatenate(criteria) if criteria else np.zeros(0, np.int64),
        scores=np.hstack(scores),
    )


@dataclass(frozen=True)
class PairJudgeVerdicts:
    """The project's active pairwise judges over the pairs they judged (canonical order: the
    lower output id is `a`), for the judge_choice selector; codes as in
    annotate.selectors.base (0 a, 1 b, 2 tie, -1 error, -2 missing)."""

    pairs: np.ndarray                  # (P, 2) int64 output ids
    verdict: np.ndarray                # (J, P) int8 the pair's verdict
    consistency: np.ndarray            # (J,) same winner in both orders over every pair read in
                                       # both; NaN for judges asked once
    names: tuple[str, ...] = ()
    floor: float = 0.6


def load_pair_judges(project) -> PairJudgeVerdicts | None:
    """None when no provider is configured or the project has no pairwise judge with verdicts."""
    path = getattr(settings, "ANNOTATE_PAIR_JUDGES_PROVIDER", None)
    return import_string(path)(project) if path else None


@dataclass(frozen=True)
class ValidatorOption:
    """A validator the outputs list can filter by."""

    id: int
    name: str
    criterion_key: str | None      # None: the holistic verdict


@dataclass(frozen=True)
class OutputVerdict:
    """One validator's verdict on one output, for the output page (`replaced`: earlier error
    verdicts a later run replaced, newest first, as (outcome, detail, stored_at))."""

    validator_id: int
    validator_name: str
    kind: str
    criterion_key: str | None
    revises: int | None
    archived: bool
    outcome: str
    score: float | None
    detail: str
    latency_ms: float | None
    created_at: object
    replaced: tuple = ()


@dataclass(frozen=True)
class OutputPairVerdict:
    """A pairwise judge's verdict on a pair holding the output; `winner` is "this", "other",
    "tie" or "error" from the output's side."""

    validator_id: int
    validator_name: str
    other_output_id: int
    other_system: str
    winner: str
    inconsistent: bool
    detail: str


def load_output_verdicts():
    """The provider of validator verdicts for the outputs list and page (an object with
    `validators(project)`, `outputs_with_verdict(project, validator_id, outcome)`,
    `verdicts_of(output)` and `pair_verdicts_of(output)`), or None without validators."""
    path = getattr(settings, "ANNOTATE_OUTPUT_VERDICTS_PROVIDER", None)
    return import_string(path) if path else None
