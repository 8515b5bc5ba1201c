"""LLM-assisted criteria and candidate validators, as in EvalGen (Shankar et al., UIST 2024).

The LLM proposes; nothing it proposes is trusted: suggested criteria are shown for an owner to
accept, and proposed validators go through the same checks and sandbox as hand-written ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from annotate.models import Criterion, Grade, Output, Project
from validators import llm
from validators.models import Origin, Provider, Validator, ValidatorKind
from validators.services.authoring import validator_create
from validators.services.errors import ValidatorError
from validators.services.providers import provider_config

SAMPLE_OUTPUTS = 8
MAX_TEXT = 600


class GenerationError(ValueError):
    pass


@dataclass(frozen=True)
class SuggestedCriterion:
    key: str
    name: str
    definition: str


@dataclass(frozen=True)
class Proposal:
    name: str
    kind: str
    validator: Validator | None
    problem: str


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _context(project: Project) -> str:
    outputs = list(Output.objects.filter(project=project).select_related("sample").order_by("?")[:SAMPLE_OUTPUTS])
    graded = (
        Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
        .select_related("output__sample").order_by("-submitted_at")[:SAMPLE_OUTPUTS]
    )
    lines = [f"Project: {project.name}", f"Description: {project.description}",
             f"Guidelines: {_clip(project.guidelines)}", "", "Sample outputs:"]
    for o in outputs:
        lines.append(f"- INPUT: {_clip(o.sample.input_text)}\n  OUTPUT: {_clip(o.text)}")
    if graded:
        lines.append("\nHuman grades so far:")
        for g in graded:
            note = f" (note: {_clip(g.note)})" if g.note else ""
            lines.append(f"- {g.verdict.upper()}{note}: {_clip(g.output.text)}")
    existing = list(Criterion.objects.filter(project=project).values_list("key", flat=True))
    lines.append(f"\nExisting criteria: {', '.join(existing) or 'none'}")
    return "\n".join(lines)


def _json_from(answer: str) -> object:
    # Models often wrap JSON in a code fence or a sentence; take the outermost object or list.
    match = re.search(r"(\{.*\}|\[.*\])", answer, re.S)
    if not match:
        raise GenerationError(f"The model did not answer with JSON: {answer[:200]!r}")
    try:
        return json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        raise GenerationError(f"The model's JSON is malformed ({exc.msg}): {answer[:200]!r}") from exc


def _provider(project: Project, provider: Provider | None) -> Provider:
    provider = provider or Provider.objects.filter(project=project).order_by("id").first()
    if provider is None:
        raise GenerationError(
            "LLM assistance needs a provider: add an OpenAI-compatible endpoint on the Validators page."
        )
    return provider


def suggest_criteria(*, project: Project, provider: Provider | None = None) -> list[SuggestedCriterion]:
    prompt = (
        _context(project)
        + "\n\nSuggest evaluation criteria for these outputs that are not covered yet. Answer with "
        'JSON only: {"criteria": [{"key": "snake_case_key", "name": "Short name", '
        '"definition": "One sentence a grader can apply"}]}'
    )
    try:
        answer = llm.chat(provider_config(_provider(project, provider)), [{"role": "user", "content": prompt}],
                          response_format_json=True)
    except llm.LLMProviderError as exc:
        raise GenerationError(str(exc)) from exc
    data = _json_from(answer)
    items = data.get("criteria", []) if isinstance(data, dict) else data
    existing = set(Criterion.objects.filter(project=project).values_list("key", flat=True))
    suggestions = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        key = re.sub(r"[^A-Za-z0-9_-]+", "_", str(item.get("key") or item.get("name") or "")).strip("_").lower()
        if key and key not in existing and key not in {s.key for s in suggestions}:
            suggestions.append(SuggestedCriterion(
                key=key[:64], name=str(item.get("name") or key)[:200],
                definition=str(item.get("definition") or "")[:1000],
            ))
    return suggestions


def propose_candidates(
    *, project: Project, criterion: Criterion | None, provider: Provider | None = None,
    n_code: int = 3, n_llm: int = 3, created_by: AbstractBaseUser | None = None,
) -> list[Proposal]:
    """Several code assertions and grader prompts in varied wordings; each is saved only if it
    passes the same checks as a hand-written validator."""
    provider = _provider(project, provider)
    if criterion is None:
        target = "the overall (holistic) verdict: would you ship this output?"
    else:
        version = criterion.versions.order_by("-number").first()
        target = f"the criterion '{criterion.key}': {version.definition if version else ''}"
    prompt = (
        _context(project)
        + f"\n\nWrite candidate checks for {target}\n"
        f"Give {n_code} Python code assertions, each defining `def check(output, input, reference, meta)` "
        "returning True (pass) or False (fail), using only the modules re, json, math, string, "
        "difflib, unicodedata, statistics, collections, itertools, datetime; and "
        f"{n_llm} grader prompts in varied wordings using {{output}}, {{input}}, {{reference}} that ask "
        "for a YES or NO answer. Answer with JSON only: "
        '{"assertions": [{"name": "...", "source": "..."}], "prompts": [{"name": "...", "template": "..."}]}'
    )
    try:
        answer = llm.chat(provider_config(provider), [{"role": "user", "content": prompt}], response_format_json=True)
    except llm.LLMProviderError as exc:
        raise GenerationError(str(exc)) from exc
    data = _json_from(answer)
    if not isinstance(data, dict):
        raise GenerationError("The model's answer has no 'assertions' or 'prompts'.")
    wanted = [(ValidatorKind.CODE, a.get("name"), a.get("source")) for a in data.get("assertions", [])[:n_code] if isinstance(a, dict)]
    wanted += [(ValidatorKind.LLM, p.get("name"), p.get("template")) for p in data.get("prompts", [])[:n_llm] if isinstance(p, dict)]
    proposals = []
    for kind, name, source in wanted:
        name = str(name or f"generated {kind}")[:180]
        try:
            validator = validator_create(
                project=project, kind=kind, name=name, source=str(source or ""), criterion=criterion,
                provider=provider if kind == ValidatorKind.LLM else None, origin=Origin.GENERATED,
                created_by=created_by,
            )
            proposals.append(Proposal(name, kind, validator, ""))
        except ValidatorError as exc:
            proposals.append(Proposal(name, kind, None, str(exc)))
    return proposals
