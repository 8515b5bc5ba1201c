from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify

from annotate.models import (
    Criterion,
    CriterionStatusChange,
    CriterionVersion,
    Project,
    ReviewMeeting,
    Role,
    key_validator,
)
from annotate.services.text import unstorable_field


class CriterionError(ValueError):
    """Bad criterion input; `field` names what was wrong, when one field is to blame."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _refuse_unstorable(**texts: str) -> None:
    if bad := unstorable_field(**texts):
        raise CriterionError(bad[1], bad[0])


def may_edit_criteria(*, project: Project, role: str | None) -> bool:
    """Owners always; annotators while grading when the project allows criteria drift."""
    return role == Role.OWNER or (role == Role.ANNOTATOR and project.annotators_may_edit_criteria)


def key_from_name(name: str) -> str:
    return slugify(name).replace("-", "_")[:64]


def _check_key(key: str) -> str:
    key = key.strip()
    try:
        key_validator(key)
    except ValidationError as exc:
        raise CriterionError(f"Criterion key '{key}': {exc.messages[0]}") from exc
    if len(key) > 64:
        raise CriterionError(f"Criterion key '{key[:20]}…' is longer than 64 characters.")
    return key


def criterion_key_check(key: str) -> str:
    """The key stripped, or CriterionError saying what is wrong with it."""
    return _check_key(key)


@transaction.atomic
def criterion_create(
    *, project: Project, key: str = "", name: str = "", definition: str = "", reason: str = "",
    author: AbstractBaseUser | None = None, decided_in: ReviewMeeting | None = None,
) -> Criterion:
    """A new criterion with its first version. Without a key, the key is made from the name."""
    _refuse_unstorable(key=key, name=name, definition=definition, reason=reason)
    if not key.strip() and not name.strip():
        raise CriterionError("Give the criterion a name.")
    key = _check_key(key or key_from_name(name))
    if len(reason.strip()) > 500 or len(name.strip()) > 200:
        raise CriterionError("Keep the name under 200 and the reason under 500 characters.")
    if Criterion.objects.filter(project=project, key=key).exists():
        raise CriterionError(f"The criterion '{key}' already exists.")
    position = (Criterion.objects.filter(project=project).aggregate(m=Max("position"))["m"] or 0) + 1
    try:
        with transaction.atomic():
            criterion = Criterion.objects.create(project=project, key=key, position=position)
    except IntegrityError as exc:
        raise CriterionError(f"The criterion '{key}' already exists.") from exc
    CriterionVersion.objects.create(
        criterion=criterion, number=1, name=name.strip() or key, definition=definition.strip(),
        reason=reason.strip() or "created", author=author, decided_in=decided_in,
    )
    return criterion


def criterion_ensure(*, project: Project, key: str, author: AbstractBaseUser | None = None) -> Criterion:
    """The criterion with this key, created with an empty definition if the project lacks it."""
    _refuse_unstorable(key=key)
    key = _check_key(key)
    existing = Criterion.objects.filter(project=project, key=key).first()
    if existing:
        return existing
    return criterion_create(project=project, key=key, author=author, reason="created by an import")


@transaction.atomic
def criterion_version_publish(
    *, criterion: Criterion, author: AbstractBaseUser | None, definition: str,
    reason: str, name: str = "", decided_in: ReviewMeeting | None = None,
) -> CriterionVersion:
    """A refined definition. Grades given under older versions become stale for this
    criterion (kept, still exportable); nothing is rewritten."""
    _refuse_unstorable(name=name, definition=definition, reason=reason)
    if not reason.strip():
        raise CriterionError("Say in one line why the definition changes.")
    if not definition.strip():
        raise CriterionError("Write the new definition.")
    if len(reason.strip()) > 500:
        raise CriterionError("Keep the reason to one line (500 characters at most).")
    # Lock the criterion row so two refinements at once get numbers n+1 and n+2.
    criterion = Criterion.objects.select_for_update().get(pk=criterion.pk)
    current = criterion.versions.order_by("-number").first()
    name = name.strip()
    if current and current.definition == definition.strip() and (not name or name == current.name):
        raise CriterionError("The definition is unchanged.")
    return CriterionVersion.objects.create(
        criterion=criterion, number=(current.number + 1) if current else 1,
        name=(name or (current.name if current else criterion.key)),
        definition=definition.strip(), reason=reason.strip(), author=author, decided_in=decided_in,
    )


def _status_change(
    *, criterion: Criterion, archived: bool, author: AbstractBaseUser | None, reason: str,
) -> Criterion:
    _refuse_unstorable(reason=reason)
    if len(reason.strip()) > 500:
        raise CriterionError("Keep the reason to one line (500 characters at most).", "reason")
    # Lock the row so a retire and a restore at once leave one state and two records in order.
    criterion = Criterion.objects.select_for_update().get(pk=criterion.pk)
    if criterion.archived == archived:
        state = "retired" if archived else "in use"
        raise CriterionError(f"The criterion '{criterion.key}' is already {state}.")
    criterion.archived = archived
    criterion.save(update_fields=["archived"])
    CriterionStatusChange.objects.create(
        criterion=criterion, archived=archived, author=author,
        reason=reason.strip() or ("retired" if archived else "restored"),
    )
    return criterion


@transaction.atomic
def criterion_retire(
    *, criterion: Criterion, author: AbstractBaseUser | None, reason: str,
) -> Criterion:
    """Take the criterion off the grading page. Its versions and every grade given for it stay
    (exports, history, agreement over old data); `criterion_restore` undoes this."""
    if not reason.strip():
        raise CriterionError("Say in one line why the criterion is retired.", "reason")
    return _status_change(criterion=criterion, archived=True, author=author, reason=reason)


@transaction.atomic
def criterion_restore(
    *, criterion: Criterion, author: AbstractBaseUser | None, reason: str = "",
) -> Criterion:
    """Put a retired criterion back on the grading page, under its latest version."""
    return _status_change(criterion=criterion, archived=False, author=author, reason=reason)


def current_versions(project: Project) -> dict[int, CriterionVersion]:
    """criterion id -> its latest version, in one query."""
    latest: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(criterion__project=project).order_by("number"):
        latest[version.criterion_id] = version
    return latest
