from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotate import queries
from annotate.access import project_for, visible_projects
from annotate.forms import ImportForm, MemberForm, ProjectCreateForm, ProjectSettingsForm
from annotate.import_samples import SAMPLES, sample_jsonl
from annotate.models import Membership, Role
from annotate.services.criteria import current_versions, may_edit_criteria
from annotate.services.imports import outputs_import
from annotate.services.projects import (
    ProjectError,
    membership_set,
    project_create,
    project_settings_update,
)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = visible_projects(request.user).order_by("name")
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = [{"project": p, "role": roles.get(p.pk, "staff"), "counts": queries.project_counts(p)} for p in projects]
    return render(request, "annotate/project_list.html", {"rows": rows, "form": ProjectCreateForm()})


@login_required
@require_http_methods(["POST"])
def project_create_view(request: HttpRequest) -> HttpResponse:
    form = ProjectCreateForm(request.POST)
    if form.is_valid():
        try:
            project = project_create(owner=request.user, **form.cleaned_data)
        except ProjectError as exc:
            form.add_error("slug", str(exc))
        else:
            return redirect("project-dashboard", slug=project.slug)
    projects = visible_projects(request.user)
    rows = [{"project": p, "role": "", "counts": queries.project_counts(p)} for p in projects]
    return render(request, "annotate/project_list.html", {"rows": rows, "form": form}, status=400)


def _current_criteria(project) -> list:
    versions = current_versions(project)
    return [
        (criterion, versions.get(criterion.pk))
        for criterion in project.criteria.filter(archived=False)
    ]


@login_required
def project_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug)
    return render(request, "annotate/dashboard.html", {
        "project": project, "role": role, "counts": queries.project_counts(project),
        "systems": queries.systems_summary(project),
        "criteria": _current_criteria(project),
        "my_grades": queries.annotator_progress(project, request.user),
        "may_edit_criteria": may_edit_criteria(project=project, role=role),
    })


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=(Role.OWNER,))
    form = ProjectSettingsForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_settings_update(
                project=project, **{name: form.cleaned_data[name] for name in form.fields}
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", slug=project.slug)
    members = Membership.objects.filter(project=project).select_related("user").order_by("role", "user__username")
    return render(request, "annotate/settings.html", {
        "project": project, "role": role, "form": form, "members": members,
        "member_form": MemberForm(),
    }, status=400 if form.errors else 200)


@login_required
def selector_guide(request: HttpRequest) -> HttpResponse:
    from annotate.selectors import SELECTORS

    return render(request, "annotate/selector_guide.html", {"selectors": SELECTORS.values()})


@login_required
def project_import_sample(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    project_for(request.user, slug, roles=(Role.OWNER,))
    if kind not in SAMPLES:
        raise Http404("There are sample files for 'outputs' and 'pairs' only.")
    response = HttpResponse(sample_jsonl(kind), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="concord-sample-{kind}.jsonl"'
    return response


@login_required
@require_http_methods(["POST"])
def project_member_add(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=(Role.OWNER,))
    form = MemberForm(request.POST)
    if form.is_valid():
        user: User = form.cleaned_data["username"]
        try:
            membership_set(project=project, user=user, role=form.cleaned_data["role"])
            messages.success(request, f"{user.username} is now {form.cleaned_data['role']}.")
        except ProjectError as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("project-settings", slug=project.slug)


@login_required
@require_http_methods(["GET", "POST"])
def project_import(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=(Role.OWNER,))
    result = None
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        result = outputs_import(
            project=project, stream=upload.file, filename=upload.name,
            with_labels=form.cleaned_data["with_labels"],
        )
        if result.ok:
            messages.success(request, result.summary())
            return redirect("project-import", slug=project.slug)
    return render(request, "annotate/import.html", {
        "project": project, "role": role, "form": form, "result": result,
    }, status=400 if result is not None and not result.ok else 200)
