"""Suites: snapshots of the report card with the chosen validators' sources."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotate.models import Project
from annotate.untrusted_text import unstorable_text_problem
from validators.models import Validator
from validators.services.errors import ValidatorError


@transaction.atomic
def suite_save(*, project: Project, name: str, created_by: AbstractBaseUser | None = None):
    """Snapshot today's report card: the chosen validator per criterion, the chosen pairwise
    judge, their metrics, the thresholds they were measured at, and their sources."""
    from validators.models import Suite
    from validators.report_card import report_card

    name = name.strip()
    max_length = Suite._meta.get_field("name").max_length
    if len(name) > max_length:
        raise ValidatorError(f"Keep the suite's name to {max_length} characters.")
    problem = unstorable_text_problem(name)
    if problem:
        raise ValidatorError(f"The suite's name {problem}.")
    card = report_card(project)
    pairwise_chosen = card.pairwise.chosen if card.pairwise is not None else None
    chosen_ids = list(card.chosen_validator_ids)
    if pairwise_chosen is not None:
        chosen_ids.append(pairwise_chosen.validator_id)
    if not chosen_ids:
        raise ValidatorError("No criterion has a chosen validator yet, so there is nothing to save.")
    chosen = {v.pk: v for v in Validator.objects.filter(pk__in=chosen_ids).select_related("criterion", "provider")}
    snapshot = card.to_dict()
    snapshot["validators"] = [_snapshot_validator(chosen[i], *card.threshold_of(i)) for i in chosen_ids]
    suite = Suite.objects.create(
        project=project, name=name or f"Report card {timezone.now():%Y-%m-%d %H:%M}",
        snapshot=snapshot, coverage=card.suite.coverage,
        false_failure_rate=card.suite.false_failure_rate, n_grades=card.n_grades,
        created_by=created_by,
    )
    suite.validators.set(chosen.values())
    return suite


def _snapshot_validator(v: Validator, threshold: float | None, threshold_source: str | None) -> dict:
    return {
        "id": v.pk, "name": v.name, "criterion": v.criterion.key if v.criterion else None,
        "kind": v.kind, "target": v.target,
        # A picked threshold is what the card measured the validator at, so the export uses it.
        "threshold": threshold if threshold_source is not None else v.threshold,
        "threshold_source": threshold_source,
        "source": v.source, "patterns": v.patterns, "inconsistent_is_tie": v.inconsistent_is_tie,
        "provider": ({"name": v.provider.name, "model": v.provider.model, "base_url": v.provider.base_url,
                      "api_key_env": v.provider.api_key_env} if v.provider else None),
    }
