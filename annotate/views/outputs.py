"""Find and inspect: the outputs list (search and filters, paginated) and one page per output.

Any member may look. Annotators grade blind, so for them every human verdict shown or
filtered on is their own (annotate.output_search, annotate.output_queries).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotate.access import project_for
from annotate.evidence import load_chosen_verdicts, load_output_verdicts
from annotate.models import Criterion, Output, Role
from annotate.output_queries import output_record, output_rows
from annotate.output_search import HUMAN_VERDICTS, VALIDATOR_OUTCOMES, outputs_matching
from annotate.views.grading import _context_text
from annotate.views.output_actions import bulk_actions_context

OUTPUTS_PER_PAGE = 50
RESULTS_PARTIAL = "annotate/partials/_output_results.html"


def _blind_viewer(request: HttpRequest, role: str):
    """The person whose grades alone may be read, or None when every grade may be."""
    return request.user if role == Role.ANNOTATOR else None


@login_required
@require_GET
def output_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug)
    viewer = _blind_viewer(request, role)
    outputs, filters, errors = outputs_matching(
        project, request.GET, viewer=viewer, may_compare=viewer is None,
    )
    # get_page reads junk ("abc", "-1", "9" * 40) as the first or the last page.
    page = Paginator(outputs, OUTPUTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = output_rows(project, list(page.object_list), viewer=viewer, chosen=load_chosen_verdicts(project))
    provider = load_output_verdicts()
    context = {
        "project": project, "role": role, "page": page, "rows": rows, "filters": filters,
        "filter_query": filters.as_query().urlencode(), "errors": errors, "blind": viewer is not None,
    }
    if request.htmx and request.htmx.target == "output-results":
        return render(request, RESULTS_PARTIAL, context)
    context.update(bulk_actions_context(project, request.user))
    context.update({
        "systems": Output.objects.filter(project=project).values_list("system", flat=True)
        .distinct().order_by("system"),
        "criteria": Criterion.objects.filter(project=project).order_by("archived", "position", "id"),
        "validators": provider.validators(project) if provider else [],
        "human_verdicts": HUMAN_VERDICTS, "validator_outcomes": VALIDATOR_OUTCOMES,
        "human_selected": {f"{key}:{verdict}" for key, verdict in filters.human},
        "validator_selected": {f"{pk}:{outcome}" for pk, outcome in filters.validator},
    })
    return render(request, "annotate/outputs.html", context)


@login_required
@require_GET
def output_detail(request: HttpRequest, slug: str, output_id: int) -> HttpResponse:
    project, role = project_for(request.user, slug)
    output = get_object_or_404(Output.objects.select_related("sample"), project=project, pk=output_id)
    record = output_record(project, output, viewer=_blind_viewer(request, role))
    return render(request, "annotate/output.html", {
        "project": project, "role": role, "record": record, "output": output, "sample": output.sample,
        "context_text": _context_text(output.sample.context), "metadata_text": _context_text(output.metadata),
    })
