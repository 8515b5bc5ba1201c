"""The Rankings page: per-system estimates from single grades and from comparisons (DESIGN §4.4).

Switching the estimator is a plain GET form (`?estimator=…`); htmx swaps only the single-grade
section, so the bootstrap of the pairwise section is not redone.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate import ranking_queries
from annotate.access import project_for

SINGLE_PARTIAL = "annotate/rankings.html#single"


@login_required
@require_GET
def rankings_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug)
    single = ranking_queries.single_ranking(
        project, estimator=request.GET.get("estimator") or None, fallback=True
    )
    context = {
        "project": project, "role": role, "single": single,
        "single_data": single.to_dict() if single else None,
        "estimator_labels": ranking_queries.ESTIMATORS,
    }
    if request.htmx:
        return render(request, SINGLE_PARTIAL, context)
    pairwise = ranking_queries.pairwise_ranking(project)
    context.update(pairwise=pairwise, pairwise_data=pairwise.to_dict() if pairwise else None)
    return render(request, "annotate/rankings.html", context)
