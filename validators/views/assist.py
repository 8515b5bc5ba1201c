from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotate.access import project_for
from annotate.models import Criterion, Role
from annotate.services.criteria import CriterionError, criterion_create
from annotate.untrusted_text import unstorable_text_problem
from validators.generation import GenerationError, propose_candidates, suggest_criteria

OWNER = (Role.OWNER,)


@login_required
@require_http_methods(["POST"])
def suggest_criteria_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    context = {"project": project, "suggestions": [], "problem": ""}
    try:
        context["suggestions"] = suggest_criteria(project=project)
    except GenerationError as exc:
        context["problem"] = str(exc)
    return render(request, "validators/partials/_suggestions.html", context)


@login_required
@require_http_methods(["POST"])
def accept_criterion_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    try:
        criterion = criterion_create(
            project=project, key=request.POST.get("key", ""), name=request.POST.get("name", ""),
            definition=request.POST.get("definition", ""), author=request.user,
            reason="suggested by the LLM, accepted by an owner",
        )
        messages.success(request, f"Added the criterion '{criterion.key}'.")
    except CriterionError as exc:
        messages.error(request, str(exc))
    return redirect("validator-list", slug=project.slug)


@login_required
@require_http_methods(["POST"])
def propose_candidates_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    key = request.POST.get("criterion", "")
    if unstorable_text_problem(key):
        raise Http404("No such criterion.")  # no key can hold a NUL; PostgreSQL refuses to compare one
    criterion = get_object_or_404(Criterion, project=project, key=key) if key else None
    context = {"project": project, "proposals": [], "problem": ""}
    try:
        context["proposals"] = propose_candidates(project=project, criterion=criterion, created_by=request.user)
    except GenerationError as exc:
        context["problem"] = str(exc)
    return render(request, "validators/partials/_proposals.html", context)
