import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from annotate.access import ALL_ROLES, project_for
from annotate.importing import ImportProblem
from annotate.models import Output, OutputExclusion, Role
from annotate.untrusted_text import unstorable_text_problem
from validators import queries
from validators.forms import PROMPT_EXAMPLE, ProviderForm, ValidatorForm, ValidatorImportForm
from validators.models import (
    PROVIDER_KINDS,
    PairVerdict,
    Provider,
    Run,
    Target,
    Validator,
    ValidatorKind,
    VerdictRecord,
)
from validators.services.authoring import (
    answer_pattern_problems,
    source_problems,
    validator_archive,
    validator_create,
    validator_revise,
)
from validators.services.errors import ValidatorError
from validators.services.evaluation import validator_first_outputs_problem, validator_try
from validators.services.external import (
    SAMPLE_JSONL,
    ExternalImportResult,
    external_verdicts_import,
)
from validators.services.pair_evaluation import PAIRS_TRIED, validator_try_pairs
from validators.services.providers import provider_save
from validators.services.runs import run_start
from validators.services.validator_files import (
    ValidatorImportError,
    validators_export,
    validators_import,
)

OWNER = (Role.OWNER,)


def _page_context(project, role, **extra):
    return {
        "project": project, "role": role,
        "validators": queries.validators_with_counts(project),
        "providers": Provider.objects.filter(project=project),
        "runs": Run.objects.filter(project=project).prefetch_related("validators")[:5],
        "prompt_example": PROMPT_EXAMPLE,
        "sandbox": queries.sandbox_summary(),
        **extra,
    }


@login_required
def validator_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    return render(request, "validators/list.html", _page_context(
        project, role, form=ValidatorForm(project=project),
        provider_form=ProviderForm.for_provider(project, request.GET.get("provider")),
        import_form=ValidatorImportForm(),
    ))


@login_required
@require_http_methods(["POST"])
def validator_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=OWNER)
    form = ValidatorForm(request.POST, project=project)
    if form.is_valid():
        data = form.cleaned_data
        try:
            validator = validator_create(
                project=project, kind=data["kind"], name=data["name"], source=data["source"],
                criterion=data["criterion"], threshold=data["threshold"], provider=data["provider"],
                created_by=request.user, target=data["target"],
                answer_patterns=data["answer_patterns"], inconsistent_is_tie=data["inconsistent"] == "tie",
            )
        except ValidatorError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Saved '{validator.name}'. Run it to see its verdicts.")
            problem = validator_first_outputs_problem(validator=validator)
            if problem:
                messages.warning(request, problem)
            return redirect("validator-list", slug=project.slug)
    return render(request, "validators/list.html", _page_context(
        project, role, form=form, provider_form=ProviderForm.for_provider(project), import_form=ValidatorImportForm(),
    ), status=400)


@login_required
@require_http_methods(["POST"])
def validator_try_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    form = ValidatorForm(request.POST, project=project)
    context = {"project": project, "problems": [], "results": [], "pairs_tried": PAIRS_TRIED}
    template = "validators/partials/_try_results.html"
    if not form.is_valid():
        context["problems"] = [f"{k}: {' '.join(v)}" for k, v in form.errors.items()]
    else:
        data = form.cleaned_data
        problems = source_problems(kind=data["kind"], source=data["source"], target=data["target"])
        problems += answer_pattern_problems(data["answer_patterns"])
        provider = data["provider"] or Provider.objects.filter(project=project).first()
        if data["kind"] in PROVIDER_KINDS and provider is None:
            problems.append("LLM graders need a provider: add one below first.")
        if problems:
            context["problems"] = problems
        else:
            unsaved = Validator(
                project=project, kind=data["kind"], name=data["name"], source=data["source"],
                threshold=data["threshold"], provider=provider, target=data["target"],
                answer_patterns=data["answer_patterns"],
                inconsistent_is_tie=data["inconsistent"] == "tie",
            )
            if unsaved.target == Target.PAIR:
                template = "validators/partials/_try_pair_results.html"
                context["trials"] = validator_try_pairs(validator=unsaved)
            else:
                context["results"] = validator_try(validator=unsaved)
    return render(request, template, context)


@login_required
@require_http_methods(["POST"])
def provider_save_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=OWNER)
    form = ProviderForm(request.POST)
    if form.is_valid():
        try:
            provider_save(project=project, **form.cleaned_data)
            messages.success(request, f"Provider '{form.cleaned_data['name']}' saved.")
            return redirect("validator-list", slug=project.slug)
        except ValidatorError as exc:
            form.add_error(exc.field or None, str(exc))
    return render(request, "validators/list.html", _page_context(
        project, role, form=ValidatorForm(project=project), provider_form=form,
        import_form=ValidatorImportForm(),
    ), status=400)


@login_required
@require_http_methods(["POST"])
def validator_archive_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    validator = get_object_or_404(Validator, project=project, pk=pk)
    validator_archive(validator=validator)
    messages.success(request, f"Archived '{validator.name}'.")
    return redirect("validator-list", slug=project.slug)


@login_required
def validator_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    validator = get_object_or_404(Validator.objects.select_related("criterion", "provider", "parent"), project=project, pk=pk)
    form = None
    if role == Role.OWNER:
        form = ValidatorForm(project=project, initial={
            "kind": validator.kind, "name": validator.name, "source": validator.source,
            "threshold": validator.threshold, "criterion": validator.criterion_id,
            "provider": validator.provider_id, "target": validator.target,
            "answer_patterns": validator.answer_patterns,
            "inconsistent": "tie" if validator.inconsistent_is_tie else "error",
        })
    pair_verdicts = None
    if validator.target == Target.PAIR:
        pair_verdicts = Paginator(
            PairVerdict.objects.filter(validator=validator)
            .select_related("output_a__sample", "output_b").order_by("output_a_id", "output_b_id"),
            50,
        ).get_page(request.GET.get("page"))
    return render(request, "validators/detail.html", {
        "project": project, "role": role, "validator": validator, "form": form,
        "counts": queries.outcome_counts(validator), "errors": queries.grouped_errors(validator),
        "history": queries.verdict_history(validator), "pair_verdicts": pair_verdicts,
        "pair_counts": queries.pair_winner_counts(validator) if pair_verdicts is not None else None,
    })


@login_required
@require_http_methods(["POST"])
def validator_revise_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    validator = get_object_or_404(Validator, project=project, pk=pk, archived=False)
    try:
        revised = validator_revise(
            validator=validator, source=request.POST.get("source", ""), name=request.POST.get("name", ""),
            threshold=float(request.POST["threshold"]) if request.POST.get("threshold") else None,
            created_by=request.user,
        )
    except (ValidatorError, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("validator-detail", slug=project.slug, pk=validator.pk)
    messages.success(request, f"Saved a new version of '{revised.name}'; the old one is archived.")
    return redirect("validator-detail", slug=project.slug, pk=revised.pk)


@login_required
def validators_export_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=ALL_ROLES)
    response = JsonResponse(validators_export(project), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-validators.json"'
    return response


@login_required
@require_http_methods(["POST"])
def validators_import_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    form = ValidatorImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a validators JSON file.")
        return redirect("validator-list", slug=project.slug)
    try:
        data = json.load(form.cleaned_data["file"])
        created = validators_import(
            project=project, data=data, created_by=request.user,
            create_criteria=form.cleaned_data["create_criteria"],
        )
    except json.JSONDecodeError as exc:
        messages.error(request, f"Not valid JSON: {exc.msg} (line {exc.lineno}).")
    except ValidatorImportError as exc:
        if exc.unknown_criteria:
            others = "; ".join(
                f"{p.where}, {p.field}: {p.message}" for p in exc.other_problems
            )
            messages.error(request, (
                "Nothing was imported: the file names criteria this project lacks: "
                f"{', '.join(exc.unknown_criteria)}. Fix the names, or tick “Create missing "
                "criteria” to create them." + (f" Other problems: {others}" if others else "")
            ))
        else:
            messages.error(request, f"Nothing was imported: {exc}")
    except RecursionError:
        messages.error(request, "Not valid JSON: nested too deeply.")
    except ValueError as exc:
        # Not UTF-8, or a number of more than 4,300 digits.
        messages.error(request, f"Not a readable validators file: {exc}.")
    else:
        messages.success(request, f"Imported {len(created)} validator(s).")
        for validator in created:
            problem = validator_first_outputs_problem(validator=validator)
            if problem:
                messages.warning(request, problem)
    return redirect("validator-list", slug=project.slug)


@login_required
@require_http_methods(["POST"])
def external_verdicts_import_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=OWNER)
    upload = request.FILES.get("file")
    create_criteria = bool(request.POST.get("create_criteria"))
    if upload is None:
        result = ExternalImportResult(
            problems=[ImportProblem(0, "file", "choose a JSON Lines or CSV file of verdicts")],
            problem_count=1,
        )
    else:
        result = external_verdicts_import(
            project=project, stream_or_records=upload.file, filename=upload.name,
            created_by=request.user, create_criteria=create_criteria,
        )
    if result.ok:
        messages.success(request, result.summary())
        if request.htmx:
            return HttpResponseClientRedirect(reverse("validator-list", args=[project.slug]))
        return redirect("validator-list", slug=project.slug)
    errors = {"external_result": result, "external_create_criteria": create_criteria}
    if request.htmx:
        return render(request, "validators/partials/_external_import.html", {
            "project": project, **errors,
        }, status=400)
    return render(request, "validators/list.html", _page_context(
        project, role, form=ValidatorForm(project=project), provider_form=ProviderForm.for_provider(project),
        import_form=ValidatorImportForm(), **errors,
    ), status=400)


@login_required
def external_verdicts_sample_view(request: HttpRequest, slug: str) -> HttpResponse:
    project_for(request.user, slug, roles=ALL_ROLES)
    response = HttpResponse(SAMPLE_JSONL, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="judge-verdicts-sample.jsonl"'
    return response


@login_required
@require_http_methods(["POST"])
def run_start_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=OWNER)
    ids = request.POST.getlist("validators")
    # Imported verdicts are never run: there is nothing to run them with.
    validators = Validator.objects.filter(project=project, archived=False).exclude(
        kind=ValidatorKind.EXTERNAL
    )
    if ids:
        # Ids beyond 64 bits would overflow in the database rather than match nothing.
        validators = validators.filter(
            pk__in=[int(i) for i in ids if i.isascii() and i.isdigit() and len(i) < 19]
        )
    try:
        run = run_start(project=project, validators=validators, requested_by=request.user)
    except ValidatorError as exc:
        messages.error(request, str(exc))
        return redirect("validator-list", slug=project.slug)
    return redirect("run-detail", slug=project.slug, pk=run.pk)


@login_required
def run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    run = get_object_or_404(Run, project=project, pk=pk)
    context = {"project": project, "role": role, "run": run, **queries.run_summary(run)}
    if request.htmx:
        return render(request, "validators/partials/_run_progress.html", context)
    return render(request, "validators/run.html", context)


@login_required
def verdict_matrix_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=ALL_ROLES)
    everything = list(Validator.objects.filter(project=project, archived=False).select_related("criterion").order_by("id"))
    judges = [v for v in everything if v.target == Target.PAIR]
    validators = [v for v in everything if v.target != Target.PAIR]
    if judges and request.GET.get("view") == "pairs":
        page, pair_rows = queries.pair_matrix_page(project, judges, request.GET.get("page"))
        return render(request, "validators/matrix.html", {
            "project": project, "role": role, "judges": judges, "pair_rows": pair_rows, "page": page,
            "view": "pairs", "filters": {"view": "pairs"},
        })
    outputs = Output.objects.filter(project=project).select_related("sample").order_by("sample__external_id", "system")
    system = request.GET.get("system", "")
    if system:
        # A name storage cannot hold (a NUL, a lone surrogate) is no system's: nothing matches.
        outputs = outputs.filter(system=system) if unstorable_text_problem(system) is None else outputs.none()
    outputs = queries.matrix_outputs_filtered(
        outputs, validators, outcome=request.GET.get("outcome", ""),
        validator=request.GET.get("validator", ""), disagree=bool(request.GET.get("disagree")),
    )
    page = Paginator(outputs, 50).get_page(request.GET.get("page"))
    cells = {
        (v.output_id, v.validator_id): v
        for v in VerdictRecord.objects.filter(output__in=list(page.object_list), validator__in=validators)
    }
    replaced = queries.history_by_cell([o.pk for o in page.object_list], [v.pk for v in validators])
    for key, cell in cells.items():
        cell.replaced = replaced.get(key, [])
    rows = [(o, [cells.get((o.pk, v.pk)) for v in validators]) for o in page.object_list]
    # Outputs left out of sampling keep their verdicts; the row says so.
    excluded = set(OutputExclusion.objects.filter(
        output__in=list(page.object_list), restored_at__isnull=True
    ).values_list("output_id", flat=True))
    systems = Output.objects.filter(project=project).values_list("system", flat=True).distinct().order_by("system")
    return render(request, "validators/matrix.html", {
        "project": project, "role": role, "validators": validators, "rows": rows, "page": page,
        "systems": systems, "filters": request.GET, "judges": judges, "view": "outputs",
        "excluded": excluded,
    })
