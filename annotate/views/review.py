"""The criteria-drift review page and meeting mode (owners and reviewers; staff see all).

Meeting actions answer htmx with the page's `meeting` partial (the same agenda item, its new
state and a one-line notice) and a plain POST with a redirect (POST/redirect/GET), so the page
works without JavaScript and a reload never loses the item on screen.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotate.access import REVIEW_ROLES, project_for
from annotate.evidence import load_chosen_verdicts
from annotate.labels import load_votes
from annotate.models import (
    AgendaKind,
    Criterion,
    Output,
    Project,
    ReviewMeeting,
    Verdict,
)
from annotate.review.agenda import previous_meeting, review_agenda
from annotate.review.agreement_tables import (
    AGREEMENT_STATISTICS,
    ANNOTATORS,
    VALIDATOR,
    agreement_over_time,
    agreement_tables,
)
from annotate.review.meetings import meeting_steps, meeting_summary_markdown
from annotate.review.output_review import output_review
from annotate.review.targets import review_targets
from annotate.review.timeline import criterion_timeline
from annotate.services.criteria import key_from_name
from annotate.services.review import (
    ReviewError,
    adjudication_record,
    meeting_create_criterion,
    meeting_end,
    meeting_notes_save,
    meeting_publish_version,
    meeting_record_decision,
    meeting_send_back,
    meeting_start,
)
from annotate.untrusted_text import escape_unstorable_text, unstorable_text_problem

MEETING = "annotate/review_meeting.html"


def _band(value: float | None) -> str:
    """Landis & Koch (1977) bands, coloured on the page so a room can read them at a glance."""
    if value is None:
        return "none"
    if value < 0:
        return "poor"
    for upper, band in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if value < upper:
            return band
    return "high"


def _agreement_rows(table) -> list[dict]:
    """Per row, its cells in the declared order, grouped as the table's column groups."""
    rows = []
    for row in table:
        cells = {ANNOTATORS: [], VALIDATOR: []}
        for stat in AGREEMENT_STATISTICS:
            value = row.statistics[stat.key]
            band = _band(value) if stat.kind == "coefficient" else None
            cells[stat.group].append({"stat": stat, "value": value, "band": band})
        rows.append({"row": row, "annotators": cells[ANNOTATORS], "validator": cells[VALIDATOR]})
    return rows


def _agreement_columns() -> dict:
    return {group: [s for s in AGREEMENT_STATISTICS if s.group == group] for group in (ANNOTATORS, VALIDATOR)}


@login_required
def review_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_for(request.user, slug, roles=REVIEW_ROLES)
    votes = load_votes(project)
    chosen = load_chosen_verdicts(project)
    previous = previous_meeting(project)
    open_meeting = project.meetings.filter(ended_at__isnull=True).first()
    agenda = review_agenda(
        project, since=previous.started_at if previous else None, votes=votes, chosen=chosen
    )
    agreement_rows = _agreement_rows(agreement_tables(project, votes=votes, chosen=chosen))
    return render(request, "annotate/review.html", {
        "project": project, "role": role,
        "agreement": agreement_rows,
        "below_chance": any(
            cell["band"] == "poor" for row in agreement_rows for group in (ANNOTATORS, VALIDATOR)
            for cell in row[group]
        ),
        "agreement_columns": _agreement_columns(),
        "chart": agreement_over_time(project, votes=votes, chosen=chosen),
        "timeline": criterion_timeline(project),
        "agenda": agenda,
        "agenda_counts": {
            label: sum(1 for e in agenda if e.kind == kind) for kind, label in AgendaKind.choices
        },
        "open_meeting": open_meeting,
        "meetings": project.meetings.filter(ended_at__isnull=False).prefetch_related(
            "attendees", "criterion_versions__criterion"
        )[:20],
        "since": previous.started_at if previous else None,
    })


@login_required
@require_http_methods(["POST"])
def meeting_start_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_for(request.user, slug, roles=REVIEW_ROLES)
    try:
        meeting = meeting_start(
            project=project, started_by=request.user, title=request.POST.get("title", "")
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review", slug=project.slug)
    return redirect("review-meeting-item", slug=project.slug, pk=meeting.pk, position=1)


def _meeting(request: HttpRequest, slug: str, pk: int) -> tuple[Project, str, ReviewMeeting]:
    project, role = project_for(request.user, slug, roles=REVIEW_ROLES)
    meeting = get_object_or_404(ReviewMeeting, pk=pk, project=project)
    return project, role, meeting


def _default_target(item) -> str:
    """The target the adjudication form starts on: the first one the item is about."""
    if item is None or not item.detail.get("targets"):
        return ""
    return item.detail["targets"][0].get("key") or ""


def _meeting_context(project: Project, role: str, meeting: ReviewMeeting, position: int) -> dict:
    steps = meeting_steps(meeting)
    if steps and not 1 <= position <= len(steps):
        raise Http404("No such agenda item.")
    step = steps[position - 1] if steps else None
    item = step.item if step else None
    targets = review_targets(project)
    criteria = {c.pk: c for c in Criterion.objects.filter(project=project, archived=False)}
    refine = [
        {"target": t, "criterion": criteria[t.criterion_id],
         "open": item is not None and item.criterion_id == t.criterion_id}
        for t in targets if t.criterion_id in criteria
    ]
    context = {
        "project": project, "role": role, "meeting": meeting, "steps": steps, "step": step,
        "item": item, "position": position, "total": len(steps),
        "done": sum(1 for s in steps if s.done), "refine": refine, "targets": targets,
        "verdicts": Verdict.choices, "is_open": meeting.ended_at is None,
        "output_views": output_review(item.output) if item is not None and item.output_id else None,
        "default_target": _default_target(item),
        "suggested_key": key_from_name(item.detail.get("term", ""))
        if item is not None and item.kind == AgendaKind.NEW_CRITERION else "",
    }

    def url(n: int) -> str:
        return reverse("review-meeting-item", args=[project.slug, meeting.pk, n])

    context["prev_url"] = url(position - 1) if position > 1 else ""
    context["next_url"] = url(position + 1) if position < len(steps) else ""
    context["item_url"] = url(position)
    return context


@login_required
def meeting_page(request: HttpRequest, slug: str, pk: int, position: int = 1) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    context = _meeting_context(project, role, meeting, position)
    template = f"{MEETING}#meeting" if request.htmx else MEETING
    return render(request, template, context)


def _position(request: HttpRequest) -> int:
    try:
        return max(1, int(request.POST.get("position", "1")))
    except ValueError:
        return 1


def _after(
    request: HttpRequest, project: Project, role: str, meeting: ReviewMeeting, *,
    notice: str = "", error: str = "",
) -> HttpResponse:
    """htmx: the meeting partial with a notice, or the error with status 400; plain: the
    whole page with the error (400), or a redirect after a success."""
    position = _position(request)
    meeting.refresh_from_db()
    if request.htmx or error:
        try:
            context = _meeting_context(project, role, meeting, position)
        except Http404:
            context = _meeting_context(project, role, meeting, 1)
        context.update(notice=notice, error=error)
        template = f"{MEETING}#meeting" if request.htmx else MEETING
        return render(request, template, context, status=400 if error else 200)
    if notice:
        messages.success(request, notice)
    return redirect("review-meeting-item", slug=project.slug, pk=meeting.pk, position=position)


def _output(project: Project, value: str | None) -> Output:
    try:
        return Output.objects.select_related("sample").get(pk=int(value or ""), project=project)
    except (ValueError, Output.DoesNotExist) as exc:
        raise ReviewError("Choose an output of this project.") from exc


def _criterion(project: Project, key: str | None, *, required: bool) -> Criterion | None:
    key = (key or "").strip()
    if not key:
        if required:
            raise ReviewError("Choose a criterion.")
        return None
    # A NUL never names a criterion, and PostgreSQL would answer its lookup with an error.
    criterion = None if unstorable_text_problem(key) else (
        Criterion.objects.filter(project=project, key=key).first()
    )
    if criterion is None:
        raise ReviewError(f"There is no criterion '{escape_unstorable_text(key)}'.")
    return criterion


@login_required
@require_http_methods(["POST"])
def adjudicate_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        output = _output(project, request.POST.get("output"))
        criterion = _criterion(project, request.POST.get("target"), required=False)
        adjudication_record(
            output=output, criterion=criterion, verdict=request.POST.get("verdict", ""),
            reason=request.POST.get("reason", ""), reviewer=request.user, meeting=meeting,
        )
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    what = criterion.key if criterion else "the holistic verdict"
    return _after(
        request, project, role, meeting,
        notice=f"Adjudicated {output.sample.external_id} · {output.system} on {what}: "
               f"{request.POST['verdict']}.",
    )


@login_required
@require_http_methods(["POST"])
def publish_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        criterion = _criterion(project, request.POST.get("criterion"), required=True)
        version = meeting_publish_version(
            meeting=meeting, criterion=criterion, definition=request.POST.get("definition", ""),
            reason=request.POST.get("reason", ""), name=request.POST.get("name", ""),
            author=request.user,
        )
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    return _after(
        request, project, role, meeting,
        notice=f"Published {criterion.key} v{version.number}; earlier grades of it are now stale.",
    )


@login_required
@require_http_methods(["POST"])
def create_criterion_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        criterion = meeting_create_criterion(
            meeting=meeting, name=request.POST.get("name", ""), key=request.POST.get("key", ""),
            definition=request.POST.get("definition", ""), reason=request.POST.get("reason", ""),
            author=request.user,
        )
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    return _after(request, project, role, meeting, notice=f"Created the criterion {criterion.key}.")


@login_required
@require_http_methods(["POST"])
def send_back_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        outputs = [_output(project, value) for value in request.POST.getlist("output")]
        criterion = _criterion(project, request.POST.get("target"), required=False)
        meeting_send_back(
            meeting=meeting, outputs=outputs, reason=request.POST.get("reason", ""),
            criterion=criterion, author=request.user,
        )
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    names = ", ".join(f"{o.sample.external_id} · {o.system}" for o in outputs)
    return _after(
        request, project, role, meeting,
        notice=f"Sent {names} back for re-grading; it goes to the front of the queue.",
    )


@login_required
@require_http_methods(["POST"])
def decision_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        meeting_record_decision(meeting=meeting, text=request.POST.get("text", ""), author=request.user)
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    return _after(request, project, role, meeting, notice="Decision recorded.")


@login_required
@require_http_methods(["POST"])
def notes_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Autosave of the running notes: 204, or 400 with the reason as plain text."""
    _, _, meeting = _meeting(request, slug, pk)
    try:
        meeting_notes_save(meeting=meeting, notes=request.POST.get("notes", ""), author=request.user)
    except ReviewError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse(status=204)


@login_required
@require_http_methods(["POST"])
def meeting_end_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    project, role, meeting = _meeting(request, slug, pk)
    try:
        meeting_end(meeting=meeting, ended_by=request.user, notes=request.POST.get("notes"))
    except ReviewError as exc:
        return _after(request, project, role, meeting, error=str(exc))
    messages.success(request, f"“{meeting.title}” has ended. Its summary is ready to download.")
    return redirect(f"{reverse('review', args=[project.slug])}#meeting-{meeting.pk}")


@login_required
def meeting_summary_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    _, _, meeting = _meeting(request, slug, pk)
    response = HttpResponse(meeting_summary_markdown(meeting), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{meeting.project.slug}-meeting-{meeting.pk}.md"'
    )
    return response
