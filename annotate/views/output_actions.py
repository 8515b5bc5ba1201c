"""Bulk actions on outputs chosen in a list (owners and reviewers): send back for re-grading,
assign to annotators or cancel that, exclude from sampling or restore.

The controls (templates/annotate/partials/output_bulk_actions.html) sit inside the list's
`<form id="output-bulk-form">`, whose checkboxes are named `output`; a list view passes
`bulk_actions_context(project, user)` to its template. With htmx the answer is a result
partial and an `outputs-changed` event; without, a redirect back to `next`.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotate.access import GRADING_ROLES, REVIEW_ROLES, project_for, role_in
from annotate.models import Project
from annotate.services.output_actions import (
    BULK_ACTIONS,
    MAX_ID,
    OutputActionError,
    outputs_bulk_apply,
)

RESULT = "annotate/partials/output_bulk_result.html"
REFUSED_PAGE = "annotate/output_bulk_refused.html"


def bulk_actions_context(project: Project, user) -> dict:
    """What the controls partial needs; `allowed` is False (and the partial renders nothing)
    for anyone but owners and reviewers."""
    if role_in(project, user) not in REVIEW_ROLES:
        return {"bulk_actions": {"allowed": False}}
    members = list(
        get_user_model().objects.filter(
            memberships__project=project, memberships__role__in=GRADING_ROLES, is_active=True
        ).order_by("username").values("pk", "username")
    )
    return {"bulk_actions": {"allowed": True, "members": members, "actions": BULK_ACTIONS}}


def _ids(request: HttpRequest, field: str) -> list[int]:
    ids = []
    for value in request.POST.getlist(field):
        value = value.strip()
        if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
            shown = value[:20].encode("unicode_escape").decode("ascii")
            raise OutputActionError(f"The {field} field takes ids (whole numbers); '{shown}' is not one.", field)
        ids.append(int(value))
    return ids


def _next_url(request: HttpRequest, project: Project) -> str:
    """`next` when it is a path on this site (and no control character in it), else the
    project's page."""
    target = request.POST.get("next", "")
    if target.startswith("/") and target.isprintable() and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("project-dashboard", args=[project.slug])


@login_required
@require_POST
def outputs_bulk_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=REVIEW_ROLES)
    action = request.POST.get("action", "")
    try:
        result = outputs_bulk_apply(
            project=project, action=action, output_ids=_ids(request, "output"),
            annotator_ids=_ids(request, "annotator"), reason=request.POST.get("reason", ""),
            by=request.user,
        )
    except OutputActionError as exc:
        context = {"project": project, "error": str(exc), "field": exc.field,
                   "back": _next_url(request, project)}
        return render(request, RESULT if request.htmx else REFUSED_PAGE, context, status=400)
    if request.htmx:
        response = render(request, RESULT, {"project": project, "message": result.message})
        response["HX-Trigger"] = json.dumps(
            {"outputs-changed": {"action": action, "changed": result.changed}}
        )
        return response
    messages.success(request, result.message)
    return redirect(_next_url(request, project))

