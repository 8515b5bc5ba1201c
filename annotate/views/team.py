"""The team page (owners and reviewers): per-annotator progress, time per item, agreement."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate.access import REVIEW_ROLES, project_for
from annotate.team_queries import team_report


@login_required
@require_GET
def team_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=REVIEW_ROLES)
    report = team_report(project)
    return render(request, "annotate/team.html", {
        "project": project, "role": role, "report": report, "chart": report.chart,
    })
