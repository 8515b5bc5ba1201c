"""The review agenda: what a criteria-drift meeting should look at, built from the data.

The agenda is built from the data, in this order, at most AGENDA_LIMIT items of each kind:

1. *criterion_changed*: criteria refined outside a meeting (a version newer than 1, not
   decided in a meeting) since the previous meeting started (ever, before the first meeting);
2. *disagreement*: outputs whose current votes hold both pass and fail for the holistic
   verdict or a criterion, not adjudicated for that target and not waiting to be re-graded;
   the closest splits first;
3. *validator*: outputs where the human majority (pass/fail) differs from the chosen
   validator's verdict, not already listed, adjudicated or waiting to be re-graded; most
   annotators first, and labels people gave before labels inferred from a holistic pass
   (marked "inferred" in the title and the detail);
4. *new_criterion*: terms in grade and comparison notes written since the previous meeting
   that name a criterion the project lacks (`proposed_criteria`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from annotate.agreement import MISSING
from annotate.evidence import load_chosen_verdicts
from annotate.labels import LabelVotes, inferred_outputs, load_votes
from annotate.models import (
    Adjudication,
    AgendaKind,
    Comparison,
    Criterion,
    CriterionVersion,
    Grade,
    Output,
    Project,
    RegradeRequest,
    ReviewMeeting,
)
from annotate.review.notes import NoteMention, proposed_criteria
from annotate.review.targets import ReviewTarget, chosen_for, review_targets
from annotate.statistics import LABEL_PASS, majority, rows_of, vote_counts

AGENDA_LIMIT = 20


@dataclass(frozen=True)
class AgendaEntry:
    kind: str
    title: str
    output_id: int | None = None
    criterion_id: int | None = None
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def open_regrade_requests(project: Project):
    """Re-grading requests not cancelled and not yet answered by `overlap` fresh grades
    (current, not retracted, submitted at or after the request)."""
    fresh = (
        Grade.objects.filter(
            output_id=OuterRef("output_id"), submitted_at__gte=OuterRef("created_at"),
            superseded_by__isnull=True, retracted=False,
        )
        .order_by().values("output_id").annotate(n=Count("id")).values("n")
    )
    return (
        RegradeRequest.objects.filter(project=project, cancelled_at__isnull=True)
        .annotate(fresh=Coalesce(Subquery(fresh, output_field=IntegerField()), Value(0)))
        .filter(fresh__lt=project.overlap)
        .order_by("created_at", "id")
    )


def previous_meeting(project: Project, before: ReviewMeeting | None = None) -> ReviewMeeting | None:
    meetings = ReviewMeeting.objects.filter(project=project)
    if before is not None:
        meetings = meetings.exclude(pk=before.pk).filter(started_at__lte=before.started_at)
    return meetings.order_by("-started_at", "-id").first()


def _adjudicated(project: Project) -> set[tuple[int, int | None]]:
    return set(
        Adjudication.objects.filter(output__project=project).values_list("output_id", "criterion_id")
    )


def _output_names(output_ids) -> dict[int, str]:
    return {
        pk: f"{external_id} · {system}"
        for pk, external_id, system in Output.objects.filter(pk__in=list(output_ids))
        .values_list("pk", "sample__external_id", "system")
    }


def _changed_criteria(project: Project, since: datetime | None) -> list[AgendaEntry]:
    versions = CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).select_related("criterion", "author", "decided_in").order_by("criterion__position", "criterion_id", "number")
    by_criterion: dict[int, list[CriterionVersion]] = defaultdict(list)
    for v in versions:
        by_criterion[v.criterion_id].append(v)
    entries = []
    for criterion_id, history in by_criterion.items():
        changed = [
            v for v in history
            if v.number > 1 and v.decided_in_id is None and (since is None or v.created_at > since)
        ]
        if not changed:
            continue
        before = [v for v in history if v.number < changed[0].number]
        latest = history[-1]
        entries.append(AgendaEntry(
            kind=AgendaKind.CRITERION_CHANGED,
            title=f"“{latest.name}” ({latest.criterion.key}) changed: "
                  f"v{changed[0].number - 1} → v{latest.number}",
            criterion_id=criterion_id,
            detail={
                "key": latest.criterion.key,
                "previous": {"number": before[-1].number, "name": before[-1].name,
                             "definition": before[-1].definition} if before else None,
                "versions": [
                    {"number": v.number, "name": v.name, "definition": v.definition,
                     "reason": v.reason, "author": v.author.username if v.author else "",
                     "created_at": v.created_at.isoformat(),
                     "meeting": v.decided_in.title if v.decided_in else ""}
                    for v in changed
                ],
            },
        ))
    return entries


def _disagreements(
    project: Project, votes: LabelVotes, targets: list[ReviewTarget], adjudicated,
    waiting: set[int], limit: int,
) -> list[AgendaEntry]:
    outputs = np.unique(votes.output_ids)
    splits: dict[int, list[dict]] = defaultdict(list)
    closeness: dict[int, float] = defaultdict(float)
    for target in targets:
        codes = votes.codes(target.criterion_id)
        rows, _ = rows_of(outputs, votes.output_ids)
        n_pass, n_fail, n_unsure = vote_counts(rows, codes, outputs.size)
        for i in np.flatnonzero((n_pass > 0) & (n_fail > 0)):
            output_id = int(outputs[i])
            if output_id in waiting or (output_id, target.criterion_id) in adjudicated:
                continue
            splits[output_id].append({
                "key": target.key, "name": target.name, "n_pass": int(n_pass[i]),
                "n_fail": int(n_fail[i]), "n_unsure": int(n_unsure[i]),
            })
            balance = min(n_pass[i], n_fail[i]) / (n_pass[i] + n_fail[i])
            closeness[output_id] = max(closeness[output_id], float(balance))
    ranked = sorted(splits, key=lambda o: (-closeness[o], -len(splits[o]), o))[:limit]
    names = _output_names(ranked)
    return [
        AgendaEntry(
            kind=AgendaKind.DISAGREEMENT, output_id=o,
            title=f"{names.get(o, o)}: annotators split on "
                  + ", ".join(t["key"] or "holistic" for t in splits[o]),
            detail={"targets": splits[o]},
        )
        for o in ranked
    ]


def human_validator_differences(votes: LabelVotes, chosen, targets: list[ReviewTarget]):
    """(output id, criterion id, difference) for every output and target where the human majority
    (pass/fail) differs from the report card's chosen validator; also what the outputs list's
    `disagree` filter reads."""
    if chosen is None:
        return
    outputs = np.unique(votes.output_ids)
    n_votes = np.bincount(rows_of(outputs, votes.output_ids)[0], minlength=outputs.size)
    for target in targets:
        name, reference = chosen_for(chosen, target.key, outputs)
        if not name:
            continue
        human = majority(outputs, votes.output_ids, votes.codes(target.criterion_id)).astype(np.int64)
        inferred = inferred_outputs(outputs, votes, target.criterion_id)
        differ = (human >= 0) & (reference != MISSING) & (human != reference)
        for i in np.flatnonzero(differ):
            yield int(outputs[i]), target.criterion_id, {
                "key": target.key, "name": target.name, "validator": name,
                "human": "pass" if human[i] == LABEL_PASS else "fail",
                "label_source": "inferred" if inferred[i] else "given",
                "verdict": "pass" if reference[i] == LABEL_PASS else "fail",
                "n_votes": int(n_votes[i]),
            }


def _validator_disagreements(
    project: Project, votes: LabelVotes, chosen, targets: list[ReviewTarget], adjudicated,
    skip: set[int], limit: int,
) -> list[AgendaEntry]:
    if chosen is None:
        return []
    outputs = np.unique(votes.output_ids)
    n_votes = np.bincount(rows_of(outputs, votes.output_ids)[0], minlength=outputs.size)
    found: dict[int, list[dict]] = defaultdict(list)
    for output_id, criterion_id, difference in human_validator_differences(votes, chosen, targets):
        if output_id in skip or (output_id, criterion_id) in adjudicated:
            continue
        found[output_id].append(difference)
    row_of = {int(o): i for i, o in enumerate(outputs)}

    def given_first(o: int) -> tuple:
        n_given = sum(1 for t in found[o] if t["label_source"] == "given")
        return (-n_given, -len(found[o]), -int(n_votes[row_of[o]]), o)

    ranked = sorted(found, key=given_first)[:limit]
    names = _output_names(ranked)
    return [
        AgendaEntry(
            kind=AgendaKind.VALIDATOR, output_id=o,
            title=f"{names.get(o, o)}: humans say "
                  + ", ".join(
                      f"{t['human']}{' (inferred)' if t['label_source'] == 'inferred' else ''}"
                      f" on {t['key'] or 'holistic'}, {t['validator']} says {t['verdict']}"
                      for t in found[o]
                  ),
            detail={"targets": found[o]},
        )
        for o in ranked
    ]


def _notes_since(project: Project, since: datetime | None) -> list[NoteMention]:
    grades = Grade.objects.filter(project=project, retracted=False).exclude(note="")
    comparisons = Comparison.objects.filter(project=project, retracted=False).exclude(note="")
    if since is not None:
        grades = grades.filter(submitted_at__gt=since)
        comparisons = comparisons.filter(submitted_at__gt=since)
    notes = [
        NoteMention(text, author, output_id)
        for text, author, output_id in grades.order_by("submitted_at", "id").values_list(
            "note", "annotator__username", "output_id"
        )
    ]
    notes += [
        NoteMention(text, author, output_id)
        for text, author, output_id in comparisons.order_by("submitted_at", "id").values_list(
            "note", "annotator__username", "output_a_id"
        )
    ]
    return notes


def criterion_texts(project: Project) -> list[str]:
    texts = list(Criterion.objects.filter(project=project).values_list("key", flat=True))
    texts += list(
        CriterionVersion.objects.filter(criterion__project=project).values_list("name", flat=True)
    )
    return texts


def review_agenda(
    project: Project, *, since: datetime | None = None, limit: int = AGENDA_LIMIT,
    votes: LabelVotes | None = None, chosen=None,
) -> list[AgendaEntry]:
    """The agenda built from the data (module docstring). `since`: when the previous meeting
    started; None means before the first meeting."""
    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    targets = review_targets(project)
    adjudicated = _adjudicated(project)
    waiting = set(open_regrade_requests(project).values_list("output_id", flat=True))
    agenda = _changed_criteria(project, since)
    disagreements = _disagreements(project, votes, targets, adjudicated, waiting, limit)
    agenda += disagreements
    agenda += _validator_disagreements(
        project, votes, chosen, targets, adjudicated,
        waiting | {e.output_id for e in disagreements}, limit,
    )
    for proposal in proposed_criteria(_notes_since(project, since), criterion_texts(project))[:limit]:
        detail = proposal.to_dict()
        agenda.append(AgendaEntry(
            kind=AgendaKind.NEW_CRITERION,
            title=f"Notes mention “{proposal.term}” ({proposal.n_notes} note"
                  f"{'s' if proposal.n_notes != 1 else ''}, {len(proposal.authors)} annotator"
                  f"{'s' if len(proposal.authors) != 1 else ''}): no such criterion",
            detail=detail,
        ))
    return agenda
