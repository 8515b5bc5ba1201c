"""Gold-label exports of a project: a form, the list of exports with their status, downloads.
Owners and staff only (annotators and reviewers 403, non-members 404)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotate.access import project_for
from annotate.export_formats import EXPORT_FORMATS
from annotate.gold import OPTIONS
from annotate.models import Export, ExportStatus, Role
from annotate.services.exports import (
    ExportError,
    export_file_name,
    export_start,
    export_worker_status,
)
from config.workers import ALIVE

PAGE = "annotate/exports.html"
OPTION_LABELS = {
    "labelled_only": "Only outputs with at least one vote",
    "include_stale": "Count grades given under older criterion versions",
    "all_grades": "Add every individual grade (a JSON list per row)",
}


def _context(project, role, **extra) -> dict:
    exports = list(Export.objects.filter(project=project).select_related("requested_by")[:50])
    pending = [e for e in exports if e.pending]
    return {
        "project": project, "role": role, "exports": exports, "formats": EXPORT_FORMATS.values(),
        "options": [(name, OPTION_LABELS[name]) for name in OPTIONS],
        "pending": bool(pending),
        # The oldest pending export decides: if even it is moving, a worker is there.
        "worker": export_worker_status(pending[-1]) if pending else ALIVE,
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=(Role.OWNER,))
    if request.method == "POST":
        fmt = request.POST.get("format", "")
        options = {name: True for name in OPTIONS if request.POST.get(name)}
        try:
            export = export_start(project=project, fmt=fmt, options=options, requested_by=request.user)
        except ExportError as exc:
            return render(request, PAGE, _context(project, role, error=str(exc)), status=400)
        messages.success(request, f"Export #{export.pk} ({fmt}) is on its way.")
        return redirect("exports", slug=project.slug)
    template = f"{PAGE}#export-list" if request.htmx else PAGE
    return render(request, template, _context(project, role))


@login_required
def export_download(request: HttpRequest, slug: str, pk: int) -> FileResponse:
    project, _ = project_for(request.user, slug, roles=(Role.OWNER,))
    export = get_object_or_404(Export, pk=pk, project=project)
    if export.status != ExportStatus.DONE or not export.file:
        raise Http404("This export has no file (yet).")
    return FileResponse(
        export.file.open("rb"), as_attachment=True, filename=export_file_name(export)
    )
