"""Evaluation: one validator over outputs, code through the sandbox and LLM graders through
their provider. Nothing here writes verdicts (runs do)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annotate.models import Output
from annotate.untrusted_text import escape_unstorable_text
from validators import judging, llm, provider_rules
from validators.models import Outcome, Target, Validator, ValidatorKind
from validators.services.answer_cache import DatabaseAnswerCache
from validators.services.providers import provider_config

DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class Evaluation:
    output_id: int
    outcome: str
    score: float | None
    detail: str
    latency_ms: float | None
    tokens: int | None = None
    # The judge's raw answer, for judges that read their own (rating judges).
    answer: str = ""


def output_meta(output: Output) -> dict:
    return {**(output.sample.metadata or {}), **(output.metadata or {}), "system": output.system,
            "context": output.sample.context}


def evaluate(validator: Validator, outputs: Sequence[Output]) -> list[Evaluation]:
    """Run one validator over outputs (with their samples loaded). Never raises for a bad
    validator: every problem becomes an `error` verdict with a message."""
    if not outputs:
        return []
    if validator.kind == ValidatorKind.EXTERNAL or validator.target == Target.PAIR:
        reason = ("external validators are imported, never run" if validator.kind == ValidatorKind.EXTERNAL
                  else "a pairwise judge judges pairs of outputs, not one output")
        return [Evaluation(o.pk, Outcome.ERROR, None, reason, None) for o in outputs]
    if validator.kind == ValidatorKind.RATING:
        return evaluate_ratings(validator, outputs, threshold=validator.threshold)
    if validator.kind == ValidatorKind.CODE:
        from validators.sandbox import CheckItem, get_pool

        items = [
            CheckItem(output=o.text, input=o.sample.input_text, reference=o.sample.reference, meta=output_meta(o))
            for o in outputs
        ]
        results = get_pool().run(validator.source, items, threshold=validator.threshold)
        return [
            Evaluation(o.pk, r.outcome, r.score, r.detail[:DETAIL_LIMIT], r.latency_ms)
            for o, r in zip(outputs, results, strict=True)
        ]
    return _evaluate_llm(validator, outputs)


def evaluate_ratings(validator: Validator, outputs: Sequence[Output], *,
                     threshold: float | None) -> list[Evaluation]:
    """A rating judge's score per output: pass or fail against `threshold`, or outcome
    `score` without one (the report card picks it); an answer without a number is an
    `error` with the answer kept."""
    pattern = validator.patterns[0] if validator.patterns else None
    evaluations = []
    for answered in _evaluate_llm(validator, outputs, read_verdict=False):
        if answered.outcome == Outcome.ERROR:
            evaluations.append(answered)
            continue
        score = judging.parse_rating(answered.answer, pattern)
        if score is None:
            detail = f"could not read a rating from the answer\n{answered.answer}"[:DETAIL_LIMIT]
            evaluations.append(Evaluation(answered.output_id, Outcome.ERROR, None, detail,
                                          answered.latency_ms, answered.tokens, answered.answer))
            continue
        outcome = (Outcome.SCORE if threshold is None
                   else Outcome.PASS if score >= threshold else Outcome.FAIL)
        evaluations.append(Evaluation(answered.output_id, outcome, score, answered.answer[:DETAIL_LIMIT],
                                      answered.latency_ms, answered.tokens, answered.answer))
    return evaluations


def ask_provider(
    validator: Validator, prompts: list[str], *, read_verdict: bool,
) -> tuple[list[llm.LLMResult] | None, str | None, str]:
    """The validator's provider's answers to `prompts` (cached per model), the key to redact
    from whatever is kept, and, when the provider could not be asked at all, why (redacted)."""
    key = None
    try:
        config = provider_config(validator.provider)
        key = config.api_key
        results = llm.grade_prompts(config, prompts, cache=DatabaseAnswerCache(config.model),
                                    read_verdict=read_verdict)
    except llm.LLMProviderError as exc:
        return None, key, provider_rules.redact(str(exc), [key])[:DETAIL_LIMIT]
    return results, key, ""


def _evaluate_llm(validator: Validator, outputs: Sequence[Output], *,
                  read_verdict: bool = True) -> list[Evaluation]:
    evaluations: dict[int, Evaluation] = {}
    prompts, prompt_outputs = [], []
    for o in outputs:
        try:
            prompts.append(llm.render_prompt(
                validator.source, output=o.text, input=o.sample.input_text,
                reference=o.sample.reference, meta=output_meta(o),
            ))
            prompt_outputs.append(o)
        except llm.PromptTemplateError as exc:
            evaluations[o.pk] = Evaluation(o.pk, "error", None, str(exc), None)
    if prompts:
        results, key, failure = ask_provider(validator, prompts, read_verdict=read_verdict)
        if results is None:
            for o in prompt_outputs:
                evaluations[o.pk] = Evaluation(o.pk, "error", None, failure, None)
        else:
            for o, r in zip(prompt_outputs, results, strict=True):
                detail = r.raw if r.outcome != "error" else f"{r.detail}\n{r.raw}".strip()
                detail = provider_rules.redact(detail, [key])
                evaluations[o.pk] = Evaluation(
                    o.pk, r.outcome, None, detail[:DETAIL_LIMIT], r.latency_ms, r.tokens,
                    provider_rules.redact(r.raw, [key]),
                )
    return [evaluations[o.pk] for o in outputs]


FIRST_OUTPUTS_CHECKED = 5


def validator_first_outputs_problem(*, validator: Validator) -> str:
    """'' unless a code validator answers `error` on every one of the project's first five
    outputs (by id), which means it is broken for this data (a missing key in `meta`, a name
    typo) even though it compiled; then why, with the first error. Told at creation and
    import so nobody learns it from a whole run of errors. LLM graders are not tried here:
    that would call the provider on every save."""
    if validator.kind != ValidatorKind.CODE:
        return ""
    if validator.target == Target.PAIR:
        return _first_pairs_problem(validator)
    outputs = list(Output.objects.filter(project=validator.project)
                   .select_related("sample").order_by("id")[:FIRST_OUTPUTS_CHECKED])
    if not outputs:
        return ""
    try:
        evaluations = evaluate(validator, outputs)
    except Exception as exc:  # noqa: BLE001 - the sandbox being off is reported, not raised
        return f"'{validator.name}' could not be tried: {exc}"
    if any(e.outcome != "error" for e in evaluations):
        return ""
    return (f"'{validator.name}' answered error on every one of the project's first "
            f"{len(outputs)} outputs; the first said: {escape_unstorable_text(evaluations[0].detail)}")


def _first_pairs_problem(validator: Validator) -> str:
    """validator_first_outputs_problem for a code comparator, over the first five pairs."""
    from validators.pairs import project_pairs
    from validators.services.pair_evaluation import evaluate_pairs

    pairs = project_pairs(validator.project)[:FIRST_OUTPUTS_CHECKED]
    if not pairs:
        return ""
    by_id = Output.objects.select_related("sample").in_bulk({i for pair in pairs for i in pair})
    try:
        evaluations = evaluate_pairs(validator, [(by_id[a], by_id[b]) for a, b in pairs])
    except Exception as exc:  # noqa: BLE001 - the sandbox being off is reported, not raised
        return f"'{validator.name}' could not be tried: {exc}"
    if any(e.winner != Outcome.ERROR for e in evaluations):
        return ""
    return (f"'{validator.name}' answered error on every one of the project's first "
            f"{len(pairs)} pairs; the first said: {escape_unstorable_text(evaluations[0].detail)}")


def validator_try(*, validator: Validator, limit: int = 5) -> list[tuple[Output, Evaluation]]:
    """Verdicts on a few outputs before the validator is saved (`validator` may be unsaved)."""
    outputs = list(
        Output.objects.filter(project=validator.project).select_related("sample").order_by("?")[:limit]
    )
    return list(zip(outputs, evaluate(validator, outputs), strict=True))
