from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from annotate.models import Membership, Project, Role

User = get_user_model()


class ProjectError(ValueError):
    pass


@transaction.atomic
def project_create(
    *, name: str, owner: AbstractBaseUser, slug: str = "", description: str = "",
    guidelines: str = "", **project_settings,
) -> Project:
    slug = slug or slugify(name)[:80]
    if not slug:
        raise ProjectError("The project needs a name or slug made of letters or digits.")
    if Project.objects.filter(slug=slug).exists():
        raise ProjectError(f"A project with the slug '{slug}' already exists.")
    project = Project(
        name=name, slug=slug, description=description, guidelines=guidelines,
        created_by=owner, **project_settings,
    )
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


@transaction.atomic
def project_settings_update(*, project: Project, **changes) -> Project:
    """Plain attribute changes (name, texts, settings) checked by the model and saved."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    for name, value in changes.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(changes))
    return project


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Role.values:
        raise ProjectError(f"Unknown role '{role}'; use one of {', '.join(Role.values)}.")
    owners = Membership.objects.select_for_update().filter(project=project, role=Role.OWNER)
    if role != Role.OWNER and list(owners.values_list("user_id", flat=True)) == [user.pk]:
        raise ProjectError("A project keeps at least one owner: add another owner first.")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def import_annotator(*, project: Project, username: str = "import") -> AbstractBaseUser:
    """The account that owns grades turned from a file's `human` labels."""
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": Role.ANNOTATOR}
    )
    return user
