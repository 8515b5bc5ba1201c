"""The grading pages: single outputs (pass / fail / unsure with per-criterion verdicts),
pairwise three-alternative forced choice, the annotator's own history, and criteria drift
while grading.

Every action answers htmx with the page's `workspace` partial (the next item) and a plain
form post with a redirect to the page, which shows the annotator's current claim: a reload
at any moment shows the same item and never loses a submitted grade.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotate import queries
from annotate.access import GRADING_ROLES, project_for
from annotate.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Criterion,
    Output,
    Project,
    Verdict,
)
from annotate.selectors import SELECTORS
from annotate.services.assignments import (
    REOPENED,
    active_assignment,
    assignment_claim_next,
    assignment_skip,
)
from annotate.services.criteria import (
    CriterionError,
    criterion_create,
    criterion_version_publish,
    may_edit_criteria,
)
from annotate.services.grades import (
    GradeError,
    comparison_submit,
    comparison_undo_last,
    grade_reopen,
    grade_submit,
    grade_undo_last,
    last_undoable_comparison,
    last_undoable_grade,
)

WORKSPACE = {"single": "annotate/grade.html#workspace", "pair": "annotate/pairwise.html#workspace"}
PAGE = {"single": "grade-page", "pair": "pairwise-page"}


def _selector(data) -> str:
    name = data.get("selector", "")
    return name if name in SELECTORS else ""


def _page_url(mode: str, project: Project, selector: str) -> str:
    url = reverse(PAGE[mode], args=[project.slug])
    return f"{url}?selector={selector}" if selector else url


def _shown_at(data) -> datetime | None:
    try:
        shown = datetime.fromisoformat(data.get("shown_at", ""))
    except ValueError:
        return None
    return shown if timezone.is_aware(shown) else None


def _context_text(value) -> str:
    if value in (None, "", {}, []):
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _row_id(value: str) -> int | None:
    """A database id from a form field, or None: ids are positive 64-bit integers, and
    anything else ("abc", "1.5", 10**30) would reach the database as a 500."""
    if value.isascii() and value.isdigit() and 0 < int(value) < 2**63:
        return int(value)
    return None


def _shown_versions(data, criteria: list[queries.CriterionRow]) -> dict:
    """criterion key -> the version the annotator saw: the row's own object when it is still
    the latest (no query needed to store it), else the id from the form."""
    shown = {}
    for row in criteria:
        version_id = _row_id(data.get(f"v_{row.key}", ""))
        if version_id is not None:
            shown[row.key] = row.version if version_id == row.version.pk else version_id
    return shown


def _grade_state(data, criteria: list[queries.CriterionRow]) -> dict:
    """What the annotator had entered, to show again after an error or an inline edit."""
    return {
        "verdict": data.get("verdict", ""),
        "criteria": {row.key: data.get(f"c_{row.key}", "") for row in criteria},
        "note": data.get("note", ""),
        "choice": data.get("choice", ""),
        "score": data.get("score", "").strip(),
    }


def _score(state: dict) -> float | None:
    if not state["score"]:
        return None
    try:
        score = float(state["score"])
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise GradeError("The score must be a number.", "score")
    return score


def _workspace(
    request: HttpRequest, project: Project, role: str, *, mode: str,
    assignment: Assignment | None, state: dict | None = None, notice: str = "",
    error: str = "", status: int = 200, criteria: list[queries.CriterionRow] | None = None,
    can_undo: bool | None = None,
) -> HttpResponse:
    selector = _selector(request.GET) or _selector(request.POST)
    context = {
        "project": project, "role": role, "assignment": assignment, "selector": selector,
        "state": state or {}, "notice": notice, "error": error,
        "shown_at": timezone.now().isoformat(),
    }
    if assignment is not None:
        sample = assignment.output.sample
        context.update({"sample": sample, "context_text": _context_text(sample.context)})
    if mode == "single":
        if criteria is None:
            criteria = queries.criteria_for_grading(project)
        previous, marks = (None, [])
        if assignment is not None and assignment.selector == REOPENED:
            # Only a reopened item can carry the annotator's own earlier grade: the pool
            # never offers an output they have graded.
            previous, marks = queries.own_current_grade(assignment.output, request.user)
        state = state or {}
        if previous is not None and not state:
            # A reopened item starts from what the annotator said last time.
            state = {
                "verdict": previous.verdict, "note": previous.note,
                "criteria": {m.key: m.verdict for m in marks},
                "score": "" if previous.score is None else f"{previous.score:g}",
            }
        context.update({
            "criteria": [
                {"row": row, "value": state.get("criteria", {}).get(row.key, "")}
                for row in criteria
            ],
            "state": state,
            "previous": previous, "previous_marks": marks,
            "stale_marks": [m for m in marks if m.stale],
            "progress": queries.grading_progress(project, request.user),
            "can_undo": can_undo if can_undo is not None
            else last_undoable_grade(project=project, annotator=request.user) is not None,
            "may_edit_criteria": may_edit_criteria(project=project, role=role),
            "verdicts": Verdict.choices,
        })
    else:
        context.update({
            "progress": queries.pairwise_progress(project, request.user),
            "can_undo": last_undoable_comparison(project=project, annotator=request.user)
            is not None,
            "choices": Choice.choices,
        })
    template = WORKSPACE[mode] if request.htmx else WORKSPACE[mode].split("#")[0]
    return render(request, template, context, status=status)


def _next(
    request: HttpRequest, project: Project, role: str, *, mode: str, notice: str = "",
    criteria: list[queries.CriterionRow] | None = None, can_undo: bool | None = None,
):
    assignment = assignment_claim_next(
        project=project, annotator=request.user,
        selector=_selector(request.GET) or _selector(request.POST) or None, mode=mode,
    )
    return _workspace(
        request, project, role, mode=mode, assignment=assignment, notice=notice,
        criteria=criteria, can_undo=can_undo,
    )


def _done(
    request: HttpRequest, project: Project, role: str, *, mode: str, notice: str,
    criteria: list[queries.CriterionRow] | None = None, can_undo: bool | None = None,
):
    """After a write: htmx gets the next item; a plain post is redirected (POST/redirect/GET)."""
    if request.htmx:
        return _next(
            request, project, role, mode=mode, notice=notice, criteria=criteria,
            can_undo=can_undo,
        )
    if notice:
        messages.info(request, notice)
    return redirect(_page_url(mode, project, _selector(request.POST)))


def _own_assignment(request: HttpRequest, project: Project, *, pair: bool) -> Assignment:
    """The annotator's claim named by the form; GradeError when the field is no claim id."""
    raw = request.POST.get("assignment", "")
    assignment_id = _row_id(raw)
    if assignment_id is None:
        raise GradeError(
            f"The assignment field must be the id of your current item, not {raw[:20]!r}. "
            "Reload the page.", "assignment",
        )
    assignment = get_object_or_404(
        Assignment.objects.select_related("output", "output_b"),
        pk=assignment_id, project=project, annotator=request.user, output_b__isnull=not pair,
    )
    assignment.output.project = project
    return assignment


def _no_such_assignment(
    request: HttpRequest, project: Project, role: str, *, mode: str, error: GradeError,
) -> HttpResponse:
    """400 with the annotator's current item, so the page stays usable."""
    return _workspace(
        request, project, role, mode=mode,
        assignment=active_assignment(project=project, annotator=request.user), error=str(error),
        status=400, state=_grade_state(request.POST, []) if mode == "pair" else None,
    )


# -- single outputs --------------------------------------------------------------------------
@login_required
@require_GET
def grade_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    return _next(request, project, role, mode="single")


@login_required
@require_POST
def grade_submit_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    try:
        assignment = _own_assignment(request, project, pair=False)
    except GradeError as exc:
        return _no_such_assignment(request, project, role, mode="single", error=exc)
    criteria = queries.criteria_for_grading(project)
    state = _grade_state(request.POST, criteria)
    try:
        grade = grade_submit(
            output=assignment.output, annotator=request.user, verdict=state["verdict"],
            criteria=state["criteria"], note=state["note"], score=_score(state),
            started_at=_shown_at(request.POST), assignment=assignment,
            criterion_versions=_shown_versions(request.POST, criteria),
        )
    except GradeError as exc:
        if assignment.status != AssignmentStatus.ACTIVE:
            assignment = active_assignment(project=project, annotator=request.user) or assignment
        return _workspace(
            request, project, role, mode="single", assignment=assignment, state=state,
            error=str(exc), status=400, criteria=criteria,
        )
    return _done(
        request, project, role, mode="single", notice=f"Saved: {grade.verdict}.",
        criteria=criteria, can_undo=True,
    )


@login_required
@require_POST
def grade_skip_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _skip(request, slug, mode="single")


def _skip(request: HttpRequest, slug: str, *, mode: str) -> HttpResponse:
    """Skip the item the person holds (an output, or a pair when mode is "pair")."""
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    try:
        assignment = _own_assignment(request, project, pair=mode == "pair")
    except GradeError as exc:
        return _no_such_assignment(request, project, role, mode=mode, error=exc)
    skipped = assignment_skip(assignment=assignment, annotator=request.user)
    return _done(request, project, role, mode=mode, notice="Skipped." if skipped else "")


@login_required
@require_POST
def grade_undo_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    undone = grade_undo_last(project=project, annotator=request.user)
    notice = (
        f"Undone: your {undone[0].verdict} grade is withdrawn. Grade this output again or skip it."
        if undone else "Nothing to undo."
    )
    return _done(request, project, role, mode="single", notice=notice)


@login_required
@require_POST
def grade_reopen_view(request: HttpRequest, slug: str, output_id: int) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    output = get_object_or_404(Output, pk=output_id, project=project)
    try:
        grade_reopen(project=project, annotator=request.user, output=output)
    except GradeError as exc:
        messages.error(request, str(exc))
        return redirect("grade-history", slug=project.slug)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("grade-page", args=[project.slug]))
    return redirect("grade-page", slug=project.slug)


@login_required
@require_GET
def grade_history(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    return render(request, "annotate/history.html", {
        "project": project, "role": role,
        "rows": queries.annotator_history(project, request.user),
    })


# -- criteria drift while grading ------------------------------------------------------------
def _criteria_response(request, project, role, *, notice: str = "", error: str = ""):
    """htmx: the workspace; plain: a redirect after a success, the page with the error (400)."""
    if not request.htmx and not error:
        messages.success(request, notice)
        return redirect(_page_url("single", project, _selector(request.POST)))
    assignment = active_assignment(project=project, annotator=request.user)
    return _workspace(
        request, project, role, mode="single", assignment=assignment,
        state=_grade_state(request.POST, queries.criteria_for_grading(project)),
        notice=notice, error=error, status=400 if error else 200,
    )


@login_required
@require_POST
def criterion_add_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    if not may_edit_criteria(project=project, role=role):
        raise PermissionDenied("Only owners may change the criteria of this project.")
    reason = request.POST.get("new_reason", "")
    try:
        if not reason.strip():
            raise CriterionError("Say in one line why the criterion is needed.")
        criterion = criterion_create(
            project=project, name=request.POST.get("new_name", ""),
            definition=request.POST.get("new_definition", ""), reason=reason,
            author=request.user,
        )
    except CriterionError as exc:
        return _criteria_response(request, project, role, error=str(exc))
    return _criteria_response(request, project, role, notice=f"Criterion '{criterion.key}' added.")


@login_required
@require_POST
def criterion_refine_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    if not may_edit_criteria(project=project, role=role):
        raise PermissionDenied("Only owners may change the criteria of this project.")
    criterion = get_object_or_404(Criterion, project=project, key=key, archived=False)
    try:
        version = criterion_version_publish(
            criterion=criterion, author=request.user,
            definition=request.POST.get("definition", ""), reason=request.POST.get("reason", ""),
        )
    except CriterionError as exc:
        return _criteria_response(request, project, role, error=str(exc))
    return _criteria_response(
        request, project, role,
        notice=f"'{version.name}' is now v{version.number}; grades under older versions are stale.",
    )


# -- pairwise --------------------------------------------------------------------------------
@login_required
@require_GET
def pairwise_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    return _next(request, project, role, mode="pair")


@login_required
@require_POST
def pairwise_submit_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    try:
        assignment = _own_assignment(request, project, pair=True)
    except GradeError as exc:
        return _no_such_assignment(request, project, role, mode="pair", error=exc)
    state = _grade_state(request.POST, [])
    try:
        comparison_submit(
            output_a=assignment.output, output_b=assignment.output_b, annotator=request.user,
            choice=state["choice"], note=state["note"], started_at=_shown_at(request.POST),
            assignment=assignment,
        )
    except GradeError as exc:
        return _workspace(
            request, project, role, mode="pair", assignment=assignment, state=state,
            error=str(exc), status=400,
        )
    label = dict(Choice.choices)[state["choice"]]
    return _done(request, project, role, mode="pair", notice=f"Saved: {label}.")


@login_required
@require_POST
def pairwise_skip_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _skip(request, slug, mode="pair")


@login_required
@require_POST
def pairwise_undo_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=GRADING_ROLES)
    undone = comparison_undo_last(project=project, annotator=request.user)
    notice = "Undone: choose again or skip this pair." if undone else "Nothing to undo."
    return _done(request, project, role, mode="pair", notice=notice)
