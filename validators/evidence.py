"""What annotate may learn from validators, through the interface annotate defines
(annotate/evidence.py) and reads from settings — annotate never imports this module."""

from __future__ import annotations

import numpy as np

from annotate.evidence import ChosenVerdicts, EvidenceBlock
from annotate.models import Project
from annotate.statistics import as_outcomes
from validators import matrix as matrix_cache
from validators.models import Validator


def verdict_matrix(project: Project) -> EvidenceBlock:
    """Every non-archived validator's outcomes: 1 pass, 0 fail, NaN for error or missing."""
    matrix = matrix_cache.verdict_matrix(project)
    outcomes = as_outcomes(matrix.codes, np.float32)
    criteria = dict(
        Validator.objects.filter(pk__in=matrix.validator_ids.tolist()).values_list("id", "criterion_id")
    )
    return EvidenceBlock(
        output_ids=matrix.output_ids, outcomes=outcomes,
        column_names=tuple(str(v) for v in matrix.validator_ids),
        column_criteria=np.array([criteria.get(int(v)) or -1 for v in matrix.validator_ids], dtype=np.int64),
        scores=matrix.scores,
    )


def chosen_verdicts(project: Project) -> ChosenVerdicts:
    """Per criterion key (None = holistic), the report card's chosen validator and its verdict
    codes over the project's outputs (1 pass, 0 fail, -1 error, -2 missing)."""
    from validators.report_card import HOLISTIC, report_card

    if not Validator.objects.filter(project=project, archived=False).exists():
        return ChosenVerdicts(output_ids=np.zeros(0, dtype=np.int64), by_criterion={})
    card = report_card(project)
    matrix = matrix_cache.verdict_matrix(project)
    names = dict(Validator.objects.filter(project=project).values_list("id", "name"))
    chosen = {}
    for entry in card.criteria:
        if entry.selection.chosen is None:
            continue
        validator_id = entry.selection.chosen.validator_id
        key = None if entry.key == HOLISTIC else entry.key
        chosen[key] = (validator_id, names.get(validator_id, ""), matrix.codes[:, matrix.column(validator_id)].copy())
    return ChosenVerdicts(output_ids=matrix.output_ids, by_criterion=chosen)


def embed_with_provider(project: Project, texts: list[str]) -> np.ndarray:
    """Embeddings from the project's first OpenAI-compatible provider (its embeddings endpoint)."""
    from validators import llm
    from validators.models import Provider
    from validators.services import provider_config

    provider = Provider.objects.filter(project=project).order_by("id").first()
    if provider is None:
        raise llm.LLMProviderError(
            "CONCORD_EMBEDDINGS_METHOD=provider needs an OpenAI-compatible provider in the project."
        )
    return llm.embed(provider_config(provider), texts)
