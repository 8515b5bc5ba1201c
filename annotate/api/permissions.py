"""Who may do what through the API; the rules themselves live in annotate.access.

Everything under /api/projects/{slug}/ answers 404 to a non-member (the project's existence is
not revealed) and 403 to a member whose role does not allow the action. Anonymous requests
are refused with 401 by DRF's IsAuthenticated before any of this runs.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.access import ALL_ROLES, GRADING_ROLES, project_for, role_in
from annotate.models import Project, Role
from annotate.services.criteria import may_edit_criteria

READERS = ALL_ROLES
OWNERS = (Role.OWNER,)
GRADERS = GRADING_ROLES


def member_project(user: AbstractBaseUser, slug: str, roles: tuple[str, ...] = READERS) -> Project:
    project, _ = project_for(user, slug, roles=roles)
    return project


def member_project_and_role(
    user: AbstractBaseUser, slug: str, roles: tuple[str, ...] = READERS
) -> tuple[Project, str]:
    return project_for(user, slug, roles=roles)


def criteria_editor_project(user: AbstractBaseUser, slug: str) -> Project:
    """Owners always; annotators while the project lets them refine criteria."""
    project, role = project_for(user, slug)
    if not may_edit_criteria(project=project, role=role):
        raise PermissionDenied(f"Your role in this project ({role}) may not change its criteria.")
    return project


def require_member(user: AbstractBaseUser, project: Project) -> str:
    """For objects addressed by id outside /projects/{slug}/ (runs, suites): 404 unless the
    user is a member of the object's project."""
    role = role_in(project, user)
    if role is None:
        raise Http404("Not found.")
    return role
