from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotate.access import ALL_ROLES, project_for
from annotate.models import Criterion, Role
from validators.models import CriterionSetting, PairwiseSetting, Suite, Target, Validator
from validators.report_card import HOLISTIC, report_card
from validators.services.criterion_settings import criterion_setting_save, pairwise_setting_save
from validators.services.errors import ValidatorError
from validators.services.suites import suite_save
from validators.suite_export import suite_as_json, suite_as_module


def _card_context(project, role):
    card = report_card(project)
    validators = {v.pk: v for v in Validator.objects.filter(project=project).select_related("criterion")}
    settings_by_key = {
        (s.criterion.key if s.criterion else HOLISTIC): s
        for s in CriterionSetting.objects.filter(project=project).select_related("criterion")
    }
    return {
        "project": project, "role": role, "card": card, "validators": validators,
        "settings_by_key": settings_by_key, "holistic_key": HOLISTIC,
        "pairwise_setting": PairwiseSetting.objects.filter(project=project).first(),
        "threshold_curves": {
            str(vid): {"name": validators[vid].name, **sweep.curve()}
            for entry in card.criteria for vid, sweep in entry.sweeps.items() if vid in validators
        },
    }


@login_required
def report_card_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    context = _card_context(project, role)
    if request.htmx:
        return render(request, "validators/report_card.html#card", context)
    context["suites"] = Suite.objects.filter(project=project)[:10]
    return render(request, "validators/report_card.html", context)


@login_required
@require_http_methods(["POST"])
def criterion_setting_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=(Role.OWNER,))
    criterion = None if key == HOLISTIC else get_object_or_404(Criterion, project=project, key=key)
    candidates = Validator.objects.filter(project=project, criterion=criterion)
    try:
        ceiling = request.POST.get("ffr_ceiling", "").strip()
        pinned_id = request.POST.get("pinned", "")
        criterion_setting_save(
            project=project, criterion=criterion,
            ffr_ceiling=float(ceiling) if ceiling else None,
            pinned=candidates.get(pk=int(pinned_id)) if pinned_id.isdigit() else None,
            excluded=candidates.filter(pk__in=[int(i) for i in request.POST.getlist("excluded") if i.isdigit()]),
            include_stale=request.POST.get("include_stale") == "on",
        )
        messages.success(request, f"Selection settings for '{key if criterion else 'holistic'}' saved.")
    except (ValidatorError, ValueError, Validator.DoesNotExist) as exc:
        messages.error(request, str(exc) or "Invalid settings.")
    return redirect("report-card", slug=project.slug)


@login_required
@require_http_methods(["POST"])
def pairwise_setting_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=(Role.OWNER,))
    judges = Validator.objects.filter(project=project, target=Target.PAIR)
    try:
        floor = request.POST.get("consistency_floor", "").strip()
        pinned_id = request.POST.get("pinned", "")
        pairwise_setting_save(
            project=project, consistency_floor=float(floor) if floor else None,
            pinned=judges.get(pk=int(pinned_id)) if pinned_id.isdigit() else None,
            excluded=judges.filter(pk__in=[int(i) for i in request.POST.getlist("excluded") if i.isdigit()]),
        )
        messages.success(request, "Pairwise judge settings saved.")
    except (ValidatorError, ValueError, OverflowError, Validator.DoesNotExist) as exc:
        messages.error(request, str(exc) if isinstance(exc, ValidatorError) else "Invalid settings.")
    return redirect("report-card", slug=project.slug)


@login_required
@require_http_methods(["POST"])
def suite_save_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=(Role.OWNER,))
    try:
        suite = suite_save(project=project, name=request.POST.get("name", ""), created_by=request.user)
    except ValidatorError as exc:
        messages.error(request, str(exc))
        return redirect("report-card", slug=project.slug)
    messages.success(request, f"Saved '{suite.name}'.")
    return redirect("suite-detail", slug=project.slug, pk=suite.pk)


@login_required
def suite_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    suite = get_object_or_404(Suite, project=project, pk=pk)
    card_today = report_card(project)
    today = {c.key: c for c in card_today.criteria}
    rows = []
    for saved in suite.snapshot.get("criteria", []):
        now = today.get(saved["key"])
        saved_chosen = next((c for c in saved["candidates"] if c["validator"] == saved["chosen"]), None)
        now_metrics = None
        if now is not None and saved["chosen"] is not None:
            match = next((r for r in now.selection.ranked if r.candidate.validator_id == saved["chosen"]), None)
            now_metrics = match.candidate.metrics if match else None
        rows.append({"saved": saved, "saved_chosen": saved_chosen, "now": now, "now_metrics": now_metrics})
    return render(request, "validators/suite.html", {
        "project": project, "role": role, "suite": suite, "rows": rows,
        "card_today": card_today, "pairwise_row": _pairwise_then_and_now(suite.snapshot.get("pairwise"), card_today),
    })


def _pairwise_then_and_now(saved: dict | None, card_today) -> dict | None:
    """The saved pairwise judge with its metrics then and today (None when the snapshot has
    no pairwise section, as suites saved before pairwise judges existed)."""
    if not saved:
        return None
    saved_chosen = next((c for c in saved["candidates"] if c["validator"] == saved["chosen"]), None)
    today = card_today.pairwise
    now = None
    if today is not None and saved["chosen"] is not None:
        now = next((c.metrics for c in today.candidates if c.validator_id == saved["chosen"]), None)
    return {"saved": saved, "saved_chosen": saved_chosen, "now_metrics": now,
            "now_chosen": today.chosen if today is not None else None}


@login_required
def suite_export(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=ALL_ROLES)
    suite = get_object_or_404(Suite, project=project, pk=pk)
    if request.GET.get("format") == "py":
        response = HttpResponse(suite_as_module(suite), content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{project.slug}_suite.py"'
        return response
    response = JsonResponse(suite_as_json(suite), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{project.slug}_suite.json"'
    return response
