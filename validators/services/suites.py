"""Suites: snapshots of the report card with the chosen validators' sources."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotate.models import Project
from validators.models import Validator
from validators.services.errors import ValidatorError


@transaction.atomic
def suite_save(*, project: Project, name: str, created_by: AbstractBaseUser | None = None):
    """Snapshot today's report card: chosen validators, their metrics and their sources."""
    from validators.models import Suite
    from validators.report_card import report_card

    card = report_card(project)
    if not card.chosen_validator_ids:
        raise ValidatorError("No criterion has a chosen validator yet, so there is nothing to save.")
    chosen = {v.pk: v for v in Validator.objects.filter(pk__in=card.chosen_validator_ids).select_related("criterion", "provider")}
    snapshot = card.to_dict()
    snapshot["validators"] = [
        {
            "id": v.pk, "name": v.name, "criterion": v.criterion.key if v.criterion else None,
            "kind": v.kind, "threshold": v.threshold, "source": v.source,
            "provider": ({"name": v.provider.name, "model": v.provider.model, "base_url": v.provider.base_url,
                          "api_key_env": v.provider.api_key_env} if v.provider else None),
        }
        for v in (chosen[i] for i in card.chosen_validator_ids)
    ]
    suite = Suite.objects.create(
        project=project, name=name.strip() or f"Report card {timezone.now():%Y-%m-%d %H:%M}",
        snapshot=snapshot, coverage=card.suite.coverage,
        false_failure_rate=card.suite.false_failure_rate, n_grades=card.n_grades,
        created_by=created_by,
    )
    suite.validators.set(chosen.values())
    return suite
