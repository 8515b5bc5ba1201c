"""Per-project permission checks shared by the pages and the API.

A user who is not a member gets 404 for a project's pages (its existence is not revealed);
a member whose role is not allowed gets 403. Staff see everything.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404

from annotate.models import Membership, Project, Role

GRADING_ROLES = (Role.OWNER, Role.ANNOTATOR)
REVIEW_ROLES = (Role.OWNER, Role.REVIEWER)
ALL_ROLES = tuple(Role.values)


def role_in(project: Project, user: AbstractBaseUser) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return Role.OWNER
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def project_for(user: AbstractBaseUser, slug: str, roles: tuple[str, ...] = ALL_ROLES) -> tuple[Project, str]:
    """The project and the user's role in it, or Http404 / PermissionDenied."""
    projects = Project.objects.filter(slug=slug)
    if user.is_authenticated and not user.is_staff:
        # The role rides along in the project's query: one round trip fewer on every request.
        projects = projects.annotate(member_role=Subquery(
            Membership.objects.filter(project=OuterRef("pk"), user=user).order_by("pk").values("role")[:1]
        ))
    project = projects.first()
    role = None
    if project is not None:
        role = Role.OWNER if user.is_staff else getattr(project, "member_role", None)
    if project is None or role is None:
        raise Http404("No such project.")
    if role not in roles:
        raise PermissionDenied(f"Your role in this project ({role}) does not allow this.")
    return project, role


def visible_projects(user: AbstractBaseUser):
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)
