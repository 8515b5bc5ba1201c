"""Providers: OpenAI-compatible endpoints saved per project, checked again before each use."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from annotate.models import Project
from annotate.services.text import unstorable_field
from validators import llm, provider_rules
from validators.models import Provider
from validators.services.errors import ValidatorError


@transaction.atomic
def provider_save(
    *, project: Project, name: str = "default", base_url: str, model: str, api_key_env: str = "",
    concurrency: int = 8, timeout_seconds: float = 30.0, temperature: float = 0.0,
) -> Provider:
    if bad := unstorable_field(name=name, base_url=base_url, model=model, api_key_env=api_key_env):
        raise ValidatorError(bad[1], bad[0])
    problem = provider_rules.base_url_problem(
        base_url, allow_link_local=settings.CONCORD_LLM_ALLOW_LINK_LOCAL
    )
    if problem:
        raise ValidatorError(problem, "base_url")
    problem = provider_rules.api_key_env_problem(api_key_env, provider_key_policy())
    if problem:
        raise ValidatorError(problem, "api_key_env")
    provider, _ = Provider.objects.update_or_create(
        project=project, name=name,
        defaults={
            "base_url": base_url.rstrip("/"), "model": model, "api_key_env": api_key_env,
            "concurrency": max(1, min(concurrency, 256)), "timeout_seconds": timeout_seconds,
            "temperature": temperature,
        },
    )
    return provider


def provider_key_policy() -> provider_rules.KeyPolicy:
    return provider_rules.KeyPolicy(
        names=tuple(settings.CONCORD_LLM_KEY_ENV_NAMES), prefix=settings.CONCORD_LLM_KEY_ENV_PREFIX
    )


def provider_config(provider: Provider) -> llm.ProviderConfig:
    """The provider as the LLM client needs it. The key and address rules are checked again
    here, not only at save: a provider saved before an admin narrowed them must not run."""
    problem = provider_rules.api_key_env_problem(provider.api_key_env, provider_key_policy())
    problem = problem or provider_rules.base_url_problem(
        provider.base_url, allow_link_local=settings.CONCORD_LLM_ALLOW_LINK_LOCAL
    )
    if problem:
        raise llm.LLMProviderError(f"provider '{provider.name}' cannot be used: {problem}")
    return llm.ProviderConfig(
        base_url=provider.base_url, model=provider.model,
        api_key=llm.resolve_api_key(provider.api_key_env or None),
        concurrency=provider.concurrency, timeout_seconds=provider.timeout_seconds,
        temperature=provider.temperature,
    )
