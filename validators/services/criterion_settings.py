"""Per-criterion report-card settings: false-failure ceiling, pinned and excluded validators."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from annotate.models import Criterion, Project
from validators.models import Validator
from validators.services.errors import ValidatorError


@transaction.atomic
def criterion_setting_save(
    *, project: Project, criterion: Criterion | None, ffr_ceiling: float | None = None,
    pinned: Validator | None = None, excluded: Iterable[Validator] = (), include_stale: bool = False,
):
    from validators.models import CriterionSetting

    if ffr_ceiling is not None and not 0.0 <= ffr_ceiling <= 1.0:
        raise ValidatorError("The false-failure ceiling must lie between 0 and 1.", "ffr_ceiling")
    excluded = list(excluded)
    for validator in [pinned, *excluded]:
        if validator is not None and (validator.project_id != project.pk or validator.criterion_id != (criterion.pk if criterion else None)):
            raise ValidatorError(f"'{validator.name}' is not a candidate for this criterion.", "pinned")
    if pinned is not None and pinned in excluded:
        raise ValidatorError("A validator cannot be pinned and excluded at once.", "pinned")
    setting, _ = CriterionSetting.objects.update_or_create(
        project=project, criterion=criterion,
        defaults={"ffr_ceiling": ffr_ceiling, "pinned": pinned, "include_stale": include_stale},
    )
    setting.excluded.set(excluded)
    return setting
