"""The criteria page: every criterion with its versions, and add / refine / retire / restore.

Everyone in the project reads it; who may change criteria is the Grade page's rule
(`may_edit_criteria`: owners always, annotators when the project allows it). Forms post
plainly (redirect after success, the page with the error and 400 otherwise); with htmx the
answer is the page's `criteria` partial, swapped in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.access import project_for
from annotate.criteria_queries import criteria_overview
from annotate.models import Criterion
from annotate.services.criteria import (
    CriterionError,
    criterion_create,
    criterion_restore,
    criterion_retire,
    criterion_version_publish,
    may_edit_criteria,
)

PAGE = "annotate/criteria.html"


def _render(request, project, role, *, status: int = 200, notice: str = "", error: str = "",
            error_key: str = "") -> HttpResponse:
    context = {
        "project": project, "role": role, "rows": criteria_overview(project),
        "may_edit": may_edit_criteria(project=project, role=role),
        "notice": notice, "error": error, "error_key": error_key,
        "form": request.POST if error else {},
    }
    template = f"{PAGE}#criteria" if request.htmx else PAGE
    return render(request, template, context, status=status)


def _done(request, project, role, notice: str) -> HttpResponse:
    if request.htmx:
        return _render(request, project, role, notice=notice)
    messages.success(request, notice)
    return redirect("criteria", slug=project.slug)


def _editor(request, slug: str):
    project, role = project_for(request.user, slug)
    if not may_edit_criteria(project=project, role=role):
        raise PermissionDenied("Your role in this project does not allow changing its criteria.")
    return project, role


@login_required
@require_GET
def criteria_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug)
    return _render(request, project, role)


@login_required
@require_POST
def criterion_add_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _editor(request, slug)
    try:
        criterion = criterion_create(
            project=project, name=request.POST.get("name", ""),
            definition=request.POST.get("definition", ""),
            reason=request.POST.get("reason", ""), author=request.user,
        )
    except CriterionError as exc:
        return _render(request, project, role, status=400, error=str(exc), error_key="+new")
    return _done(request, project, role, f"Criterion '{criterion.key}' added.")


@login_required
@require_POST
def criterion_refine_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project, role = _editor(request, slug)
    criterion = get_object_or_404(Criterion, project=project, key=key, archived=False)
    try:
        version = criterion_version_publish(
            criterion=criterion, author=request.user, name=request.POST.get("name", ""),
            definition=request.POST.get("definition", ""), reason=request.POST.get("reason", ""),
        )
    except CriterionError as exc:
        return _render(request, project, role, status=400, error=str(exc), error_key=key)
    return _done(
        request, project, role,
        f"'{version.name}' is now v{version.number}; grades under older versions are stale.",
    )


@login_required
@require_POST
def criterion_retire_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project, role = _editor(request, slug)
    criterion = get_object_or_404(Criterion, project=project, key=key)
    try:
        criterion_retire(criterion=criterion, author=request.user, reason=request.POST.get("reason", ""))
    except CriterionError as exc:
        return _render(request, project, role, status=400, error=str(exc), error_key=key)
    return _done(
        request, project, role,
        f"Criterion '{key}' retired: it is off the grading page; its grades and history stay.",
    )


@login_required
@require_POST
def criterion_restore_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project, role = _editor(request, slug)
    criterion = get_object_or_404(Criterion, project=project, key=key)
    try:
        criterion_restore(criterion=criterion, author=request.user, reason=request.POST.get("reason", ""))
    except CriterionError as exc:
        return _render(request, project, role, status=400, error=str(exc), error_key=key)
    return _done(request, project, role, f"Criterion '{key}' is back on the grading page.")
