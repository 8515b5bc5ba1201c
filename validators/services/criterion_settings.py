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


@transaction.atomic
def pairwise_setting_save(
    *, project: Project, consistency_floor: float | None = None, pinned: Validator | None = None,
    excluded: Iterable[Validator] = (),
):
    """An owner's choice of the position-consistency floor (None: the default 0.6) and of
    pinned or excluded pairwise judges."""
    from validators.models import PairwiseSetting, Target

    if consistency_floor is not None and not 0.0 <= consistency_floor <= 1.0:
        raise ValidatorError("The consistency floor must lie between 0 and 1.", "consistency_floor")
    excluded = list(excluded)
    for validator in [pinned, *excluded]:
        if validator is not None and (validator.project_id != project.pk or validator.target != Target.PAIR):
            raise ValidatorError(f"'{validator.name}' is not a pairwise judge of this project.", "pinned")
    if pinned is not None and pinned in excluded:
        raise ValidatorError("A judge cannot be pinned and excluded at once.", "pinned")
    setting, _ = PairwiseSetting.objects.update_or_create(
        project=project, defaults={"consistency_floor": consistency_floor, "pinned": pinned},
    )
    setting.excluded.set(excluded)
    return setting
