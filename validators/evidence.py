"""What annotate may learn from validators, through the interface annotate defines
(annotate/evidence.py) and reads from settings — annotate never imports this module."""

from __future__ import annotations

import numpy as np

from annotate.evidence import (
    ChosenVerdicts,
    EvidenceBlock,
    OutputPairVerdict,
    OutputVerdict,
    PairJudgeVerdicts,
    ValidatorOption,
)
from annotate.models import Output, Project
from annotate.statistics import as_outcomes
from validators import matrix as matrix_cache
from validators.models import (
    PairVerdict,
    PairwiseSetting,
    Target,
    Validator,
    VerdictHistory,
    VerdictRecord,
)


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


def pair_judges(project: Project) -> PairJudgeVerdicts | None:
    """The project's active pairwise judges that the card may choose (not archived, not
    excluded by an owner) over the pairs any of them judged, or None when there is none."""
    from validators.pairs import pair_verdict_codes
    from validators.pairwise_alignment import DEFAULT_CONSISTENCY_FLOOR

    setting = PairwiseSetting.objects.filter(project=project).prefetch_related("excluded").first()
    excluded = {v.pk for v in setting.excluded.all()} if setting else set()
    judges = [(pk, name) for pk, name in Validator.objects.filter(
        project=project, target=Target.PAIR, archived=False).order_by("id").values_list("id", "name")
        if pk not in excluded]
    if not judges:
        return None
    ids = [pk for pk, _ in judges]
    pairs = sorted(set(PairVerdict.objects.filter(validator_id__in=ids).values_list("output_a_id", "output_b_id")))
    if not pairs:
        return None
    winner, first, second = pair_verdict_codes(ids, pairs)
    read = (first >= 0) & (second >= 0)
    n_read = read.sum(axis=0)
    same = (read & (first == second)).sum(axis=0)
    consistency = np.divide(same, n_read, out=np.full(len(ids), np.nan), where=n_read > 0)
    floor = setting.consistency_floor if setting and setting.consistency_floor is not None else DEFAULT_CONSISTENCY_FLOOR
    return PairJudgeVerdicts(
        pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2), verdict=np.ascontiguousarray(winner.T),
        consistency=consistency, names=tuple(name for _, name in judges), floor=float(floor),
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
    from validators.services.providers import provider_config

    provider = Provider.objects.filter(project=project).order_by("id").first()
    if provider is None:
        raise llm.LLMProviderError(
            "CONCORD_EMBEDDINGS_METHOD=provider needs an OpenAI-compatible provider in the project."
        )
    return llm.embed(provider_config(provider), texts)


class OutputVerdicts:
    """Validator verdicts per output for annotate's outputs list and output page
    (settings.ANNOTATE_OUTPUT_VERDICTS_PROVIDER)."""

    def validators(self, project: Project) -> list[ValidatorOption]:
        """The project's single-output validators, archived ones included (their verdicts stay)."""
        return [
            ValidatorOption(id=pk, name=name, criterion_key=key)
            for pk, name, key in Validator.objects.filter(project=project, target=Target.OUTPUT)
            .order_by("id").values_list("id", "name", "criterion__key")
        ]

    def outputs_with_verdict(self, project: Project, validator_id: int, outcome: str):
        """Ids of the outputs the validator gave `outcome` (a subquery, never evaluated here)."""
        return VerdictRecord.objects.filter(
            validator_id=validator_id, validator__project=project, outcome=outcome
        ).values("output_id")

    def verdicts_of(self, output: Output) -> list[OutputVerdict]:
        records = list(
            VerdictRecord.objects.filter(output=output)
            .select_related("validator__criterion").order_by("validator_id")
        )
        replaced: dict[int, list] = {}
        for h in VerdictHistory.objects.filter(output=output).order_by("-replaced_at", "-id"):
            replaced.setdefault(h.validator_id, []).append((h.outcome, h.detail, h.stored_at))
        return [
            OutputVerdict(
                validator_id=r.validator_id, validator_name=r.validator.name, kind=r.validator.kind,
                criterion_key=r.validator.criterion.key if r.validator.criterion else None,
                revises=r.validator.parent_id, archived=r.validator.archived, outcome=r.outcome,
                score=r.score, detail=r.detail, latency_ms=r.latency_ms, created_at=r.created_at,
                replaced=tuple(replaced.get(r.validator_id, ())),
            )
            for r in records
        ]

    def pair_verdicts_of(self, output: Output) -> list[OutputPairVerdict]:
        verdicts = (
            PairVerdict.objects.filter(output_a=output) | PairVerdict.objects.filter(output_b=output)
        ).select_related("validator", "output_a", "output_b").order_by("validator_id", "id")
        rows = []
        for v in verdicts:
            is_a = v.output_a_id == output.pk
            other = v.output_b if is_a else v.output_a
            if v.winner in ("a", "b"):
                winner = "this" if (v.winner == "a") == is_a else "other"
            else:
                winner = v.winner
            rows.append(OutputPairVerdict(
                validator_id=v.validator_id, validator_name=v.validator.name, other_output_id=other.pk,
                other_system=other.system, winner=winner, inconsistent=v.inconsistent, detail=v.detail,
            ))
        return rows


output_verdicts = OutputVerdicts()
