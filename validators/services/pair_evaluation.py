"""Evaluation of pairwise judges (DESIGN §4.6): an LLM judge asked in both orders, a rating
judge scoring each output of the pair, a code comparator run in the sandbox in both orders.
Nothing here writes verdicts (runs do)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from annotate.models import Output
from validators import judging, llm, provider_rules
from validators.models import Target, Validator, ValidatorKind, Winner
from validators.pairs import project_pairs
from validators.services.evaluation import DETAIL_LIMIT, ask_provider, evaluate_ratings, output_meta

ORDER_NAMES = ("output_a shown first", "output_b shown first")


@dataclass(frozen=True)
class PairEvaluation:
    """What a pairwise judge said about one pair, in the pair's (canonical) order; the
    fields mirror validators.models.PairVerdict. For a rating judge `first_answer` and
    `second_answer` are its answers about output_a and output_b (each output is asked once)."""

    output_a_id: int
    output_b_id: int
    winner: str
    inconsistent: bool = False
    first_winner: str = ""
    second_winner: str = ""
    first_answer: str = ""
    second_answer: str = ""
    score_a: float | None = None
    score_b: float | None = None
    detail: str = ""
    latency_ms: float | None = None
    tokens: int | None = None


def evaluate_pairs(validator: Validator, pairs: Sequence[tuple[Output, Output]]) -> list[PairEvaluation]:
    """Run one pairwise validator over pairs of outputs of the same input (canonical order,
    samples loaded). Never raises for a bad validator: every problem becomes an `error`
    winner with a message (the sandbox refusing to start is raised, as `evaluate` does)."""
    if not pairs:
        return []
    if validator.kind == ValidatorKind.LLM and validator.target == Target.PAIR:
        return _judge_pairs(validator, pairs)
    if validator.kind == ValidatorKind.RATING:
        return _rate_pairs(validator, pairs)
    if validator.kind == ValidatorKind.CODE and validator.target == Target.PAIR:
        return _compare_pairs(validator, pairs)
    reason = ("external validators are imported, never run" if validator.kind == ValidatorKind.EXTERNAL
              else f"a {validator.get_kind_display()} validator judging one output cannot judge pairs")
    return [PairEvaluation(a.pk, b.pk, Winner.ERROR, detail=reason) for a, b in pairs]


def pair_meta(first: Output, second: Output) -> dict:
    """What {meta[...]} and a comparator's `meta` hold for a pair, seen in one order: the
    input's metadata and the systems of the output shown first (system_a) and second."""
    sample = first.sample
    return {**(sample.metadata or {}), "system_a": first.system, "system_b": second.system,
            "context": sample.context}


def pair_prompts(validator: Validator, output_a: Output, output_b: Output) -> tuple[str, str]:
    """The prompts of a pairwise LLM judge: output_a shown first, then output_b shown first.
    Raises llm.PromptTemplateError."""
    sample = output_a.sample
    return tuple(  # type: ignore[return-value]
        llm.render_pair_prompt(
            validator.source, output_a=first.text, output_b=second.text, input=sample.input_text,
            reference=sample.reference, meta=pair_meta(first, second),
        )
        for first, second in ((output_a, output_b), (output_b, output_a))
    )


def rating_prompt(validator: Validator, output: Output) -> str:
    return llm.render_prompt(
        validator.source, output=output.text, input=output.sample.input_text,
        reference=output.sample.reference, meta=output_meta(output),
    )


def _combine(
    validator: Validator, output_a: Output, output_b: Output, first: str | None,
    second_shown: str | None, *, first_answer: str, second_answer: str, problems: list[str],
    latency_ms: float | None, tokens: int | None, key: str | None = None,
) -> PairEvaluation:
    """One pair verdict from the winners read in both orders; `second_shown` is the winner
    as the judge named it with output_b shown first (not yet mapped back)."""
    second = judging.swap_back(second_shown)
    combined = judging.combine_orders(first, second, inconsistent_as_tie=validator.inconsistent_is_tie)
    inconsistent = first is not None and second is not None and first != second
    if inconsistent:
        problems.append(f"the two orders disagree ({ORDER_NAMES[0]}: {first}; {ORDER_NAMES[1]}: {second})"
                        + ("; counted as a tie" if combined == judging.TIE else ""))
    winner = combined if combined in (judging.A, judging.B, judging.TIE) else Winner.ERROR
    detail = provider_rules.redact("\n".join(problems), [key])[:DETAIL_LIMIT]
    return PairEvaluation(
        output_a.pk, output_b.pk, winner, inconsistent=inconsistent, first_winner=first or "",
        second_winner=second or "", first_answer=provider_rules.redact(first_answer, [key]),
        second_answer=provider_rules.redact(second_answer, [key]), detail=detail,
        latency_ms=latency_ms, tokens=tokens,
    )


def _sum(values: Sequence[float | int | None]) -> float | int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _judge_pairs(validator: Validator, pairs: Sequence[tuple[Output, Output]]) -> list[PairEvaluation]:
    evaluations: dict[int, PairEvaluation] = {}
    prompts: list[str] = []
    asked: list[int] = []
    for index, (a, b) in enumerate(pairs):
        try:
            prompts.extend(pair_prompts(validator, a, b))
            asked.append(index)
        except llm.PromptTemplateError as exc:
            evaluations[index] = PairEvaluation(a.pk, b.pk, Winner.ERROR, detail=str(exc))
    if asked:
        results, key, failure = ask_provider(validator, prompts, read_verdict=False)
        if results is None:
            for index in asked:
                a, b = pairs[index]
                evaluations[index] = PairEvaluation(a.pk, b.pk, Winner.ERROR, detail=failure)
        else:
            for position, index in enumerate(asked):
                a, b = pairs[index]
                shown, swapped = results[2 * position], results[2 * position + 1]
                problems: list[str] = []
                read = []
                for name, result in zip(ORDER_NAMES, (shown, swapped), strict=True):
                    if result.outcome == "error":
                        problems.append(f"{name}: {result.detail}")
                        read.append(None)
                        continue
                    winner = judging.parse_pairwise_answer(result.raw, validator.patterns)
                    if winner is None:
                        problems.append(f"{name}: could not read a winner from the answer")
                    read.append(winner)
                evaluations[index] = _combine(
                    validator, a, b, read[0], read[1], first_answer=shown.raw,
                    second_answer=swapped.raw, problems=problems,
                    latency_ms=_sum([shown.latency_ms, swapped.latency_ms]),
                    tokens=_sum([shown.tokens, swapped.tokens]), key=key,
                )
    return [evaluations[index] for index in range(len(pairs))]


def _rate_pairs(validator: Validator, pairs: Sequence[tuple[Output, Output]]) -> list[PairEvaluation]:
    # Each output is asked once however many pairs it is in (the cache would make repeats
    # free too, but not free of a request to the cache).
    outputs = {o.pk: o for pair in pairs for o in pair}
    ratings = {e.output_id: e for e in evaluate_ratings(validator, list(outputs.values()), threshold=None)}
    evaluations = []
    for a, b in pairs:
        rated_a, rated_b = ratings[a.pk], ratings[b.pk]
        winner = judging.winner_from_scores(rated_a.score, rated_b.score)
        problems = [f"output {o.pk}: {r.detail}" for o, r in ((a, rated_a), (b, rated_b))
                    if r.score is None]
        evaluations.append(PairEvaluation(
            a.pk, b.pk, winner or Winner.ERROR,
            first_answer=rated_a.answer, second_answer=rated_b.answer,
            score_a=rated_a.score, score_b=rated_b.score,
            detail="\n".join(problems)[:DETAIL_LIMIT],
            latency_ms=_sum([rated_a.latency_ms, rated_b.latency_ms]),
            tokens=_sum([rated_a.tokens, rated_b.tokens]),
        ))
    return evaluations


def _compare_pairs(validator: Validator, pairs: Sequence[tuple[Output, Output]]) -> list[PairEvaluation]:
    from validators.sandbox import CompareItem, get_pool

    items = []
    for a, b in pairs:
        sample = a.sample
        items.append(CompareItem(a.text, b.text, sample.input_text, sample.reference, pair_meta(a, b)))
        items.append(CompareItem(b.text, a.text, sample.input_text, sample.reference, pair_meta(b, a)))
    results = get_pool().compare(validator.source, items)
    evaluations = []
    for position, (a, b) in enumerate(pairs):
        orders = results[2 * position], results[2 * position + 1]
        problems = [f"{name}: {r.detail}" for name, r in zip(ORDER_NAMES, orders, strict=True)
                    if r.winner == Winner.ERROR]
        shown, swapped = (None if r.winner == Winner.ERROR else r.winner for r in orders)
        answers = [f"{r.score:g}" if r.score is not None else r.winner for r in orders]
        evaluations.append(_combine(
            validator, a, b, shown, swapped, first_answer=answers[0], second_answer=answers[1],
            problems=problems, latency_ms=_sum([r.latency_ms for r in orders]), tokens=None,
        ))
    return evaluations


@dataclass(frozen=True)
class PairTrial:
    """One pair of a try-out, with the prompts shown in each order (LLM judges only)."""

    output_a: Output
    output_b: Output
    evaluation: PairEvaluation
    first_prompt: str
    second_prompt: str


PAIRS_TRIED = 3


def validator_try_pairs(*, validator: Validator, limit: int = PAIRS_TRIED) -> list[PairTrial]:
    """A pairwise judge's verdicts on a few of the project's pairs before it is saved
    (`validator` may be unsaved), with both orders."""
    all_pairs = project_pairs(validator.project)
    chosen = sorted(random.sample(all_pairs, min(limit, len(all_pairs))))
    outputs = Output.objects.filter(pk__in={i for pair in chosen for i in pair}).select_related("sample")
    by_id = {o.pk: o for o in outputs}
    pairs = [(by_id[a], by_id[b]) for a, b in chosen]
    evaluations = evaluate_pairs(validator, pairs)
    trials = []
    for (a, b), evaluation in zip(pairs, evaluations, strict=True):
        prompts = ("", "")
        try:
            if validator.kind == ValidatorKind.LLM:
                prompts = pair_prompts(validator, a, b)
            elif validator.kind == ValidatorKind.RATING:
                prompts = (rating_prompt(validator, a), rating_prompt(validator, b))
        except llm.PromptTemplateError:
            pass  # the evaluation already says why
        trials.append(PairTrial(a, b, evaluation, *prompts))
    return trials
