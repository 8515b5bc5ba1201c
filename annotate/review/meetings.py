"""Meeting mode: the agenda steps with their outcomes, and the meeting summary in Markdown."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from annotate.models import (
    Adjudication,
    AgendaKind,
    CriterionVersion,
    Decision,
    DecisionKind,
    RegradeRequest,
    ReviewAgendaItem,
    ReviewMeeting,
)
from annotate.services.criteria import key_from_name


# -- meetings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgendaStep:
    item: ReviewAgendaItem
    outcomes: tuple[str, ...]

    @property
    def done(self) -> bool:
        return bool(self.outcomes)


def meeting_steps(meeting: ReviewMeeting) -> list[AgendaStep]:
    """The meeting's agenda with what the meeting has done about each item."""
    items = list(meeting.agenda_items.select_related("output__sample", "criterion"))
    adjudicated = Counter(
        Adjudication.objects.filter(meeting=meeting).values_list("output_id", flat=True)
    )
    sent_back = set(
        RegradeRequest.objects.filter(decision__meeting=meeting).values_list("output_id", flat=True)
    )
    versions = defaultdict(list)
    for criterion_id, key, number in CriterionVersion.objects.filter(decided_in=meeting).values_list(
        "criterion_id", "criterion__key", "number"
    ):
        versions[criterion_id].append((key, number))
    created_keys = {key for keys in versions.values() for key, number in keys if number == 1}
    steps = []
    for item in items:
        outcomes = []
        if item.output_id is not None:
            if adjudicated.get(item.output_id):
                outcomes.append("adjudicated")
            if item.output_id in sent_back:
                outcomes.append("sent back")
        if item.criterion_id is not None and versions.get(item.criterion_id):
            outcomes.append(", ".join(f"v{n} published" for _, n in versions[item.criterion_id]))
        if item.kind == AgendaKind.NEW_CRITERION:
            if key_from_name(item.detail.get("term", "")) in created_keys:
                outcomes.append("criterion created")
        steps.append(AgendaStep(item, tuple(outcomes)))
    return steps

def meeting_summary_markdown(meeting: ReviewMeeting) -> str:
    """The meeting as Markdown: decisions, new criterion versions, outputs sent back,
    adjudications, the agenda and its outcomes, notes."""
    project = meeting.project
    lines = [f"# {meeting.title}", ""]
    started = meeting.started_at.strftime("%Y-%m-%d %H:%M UTC")
    ended = meeting.ended_at.strftime("%Y-%m-%d %H:%M UTC") if meeting.ended_at else "still open"
    attendees = ", ".join(sorted(u.username for u in meeting.attendees.all())) or "—"
    lines += [
        f"- Project: {project.name} (`{project.slug}`)",
        f"- Started: {started}; ended: {ended}",
        f"- Attendees: {attendees}",
        "",
        "## New criterion versions",
        "",
    ]
    versions = list(
        CriterionVersion.objects.filter(decided_in=meeting)
        .select_related("criterion", "author").order_by("created_at", "id")
    )
    for v in versions:
        lines.append(
            f"- **{v.criterion.key} v{v.number}** “{v.name}”: {v.definition}  \n"
            f"  Reason: {v.reason} (by {v.author.username if v.author else 'unknown'})"
        )
    if not versions:
        lines.append("None.")
    lines += ["", "## Sent back for re-grading", ""]
    requests = list(
        RegradeRequest.objects.filter(decision__meeting=meeting)
        .select_related("output__sample", "criterion").order_by("created_at", "id")
    )
    for r in requests:
        scope = f" ({r.criterion.key})" if r.criterion else ""
        lines.append(
            f"- {r.output.sample.external_id} · {r.output.system} (output {r.output_id}){scope}: {r.reason}"
        )
    if not requests:
        lines.append("None.")
    lines += ["", "## Adjudications", ""]
    adjudications = list(
        Adjudication.objects.filter(meeting=meeting)
        .select_related("output__sample", "criterion", "reviewer").order_by("created_at", "id")
    )
    if adjudications:
        lines += ["| Output | Criterion | Gold | Reason | Reviewer |", "|---|---|---|---|---|"]
        for a in adjudications:
            reason = a.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {a.output.sample.external_id} · {a.output.system} | "
                f"{a.criterion.key if a.criterion else 'holistic'} | {a.verdict} | {reason} | "
                f"{a.reviewer.username} |"
            )
    else:
        lines.append("None.")
    notes = list(
        Decision.objects.filter(meeting=meeting, kind=DecisionKind.NOTE)
        .select_related("author").order_by("created_at", "id")
    )
    lines += ["", "## Other decisions", ""]
    lines += [f"- {d.text} ({d.author.username if d.author else 'unknown'})" for d in notes] or ["None."]
    lines += ["", "## Agenda", ""]
    steps = meeting_steps(meeting)
    for step in steps:
        outcome = f" — **{'; '.join(step.outcomes)}**" if step.outcomes else ""
        lines.append(f"{step.item.position}. [{step.item.get_kind_display()}] {step.item.title}{outcome}")
    if not steps:
        lines.append("The agenda was empty.")
    if meeting.notes.strip():
        lines += ["", "## Notes", "", meeting.notes.strip()]
    return "\n".join(lines) + "\n"
