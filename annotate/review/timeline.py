"""The criterion-version timeline of the review page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from annotate.models import (
    CriterionVersion,
    GradeCriterion,
    Project,
)


# -- timeline -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    version: CriterionVersion
    grades: int        # current grades with a verdict given under this version
    stale: int         # of those, the ones a newer version has made stale
    is_current: bool

    def to_dict(self) -> dict:
        v = self.version
        return {
            "criterion": v.criterion.key, "version": v.number, "name": v.name,
            "definition": v.definition, "reason": v.reason,
            "author": v.author.username if v.author else None,
            "created_at": v.created_at.isoformat(),
            "meeting": v.decided_in_id, "meeting_title": v.decided_in.title if v.decided_in else None,
            "grades": self.grades, "stale": self.stale, "is_current": self.is_current,
        }


def criterion_timeline(project: Project) -> list[TimelineEntry]:
    """Every criterion version, newest first, with the grades it carries."""
    versions = list(
        CriterionVersion.objects.filter(criterion__project=project)
        .select_related("criterion", "author", "decided_in")
        .order_by("-created_at", "-id")
    )
    latest: dict[int, int] = {}
    for v in versions:
        latest[v.criterion_id] = max(latest.get(v.criterion_id, 0), v.number)
    carried = dict(
        GradeCriterion.objects.filter(
            criterion__project=project, grade__superseded_by__isnull=True, grade__retracted=False,
        ).values("criterion_version_id").annotate(n=Count("id")).values_list("criterion_version_id", "n")
    )
    entries = []
    for v in versions:
        current = v.number == latest[v.criterion_id]
        n = carried.get(v.pk, 0)
        entries.append(TimelineEntry(v, n, 0 if current else n, current))
    return entries
