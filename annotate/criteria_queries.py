"""Reads for the criteria page: every criterion (retired ones too) with its versions, the
current grades each version carries, and the retire/restore record."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count

from annotate.models import (
    Criterion,
    CriterionStatusChange,
    CriterionVersion,
    GradeCriterion,
    Project,
)


@dataclass
class VersionRow:
    version: CriterionVersion
    grades: int  # current grades with a verdict for the criterion given under this version
    current: bool


@dataclass
class CriterionRow:
    criterion: Criterion
    versions: list[VersionRow] = field(default_factory=list)  # newest first
    status_changes: list[CriterionStatusChange] = field(default_factory=list)

    @property
    def current(self) -> VersionRow | None:
        return self.versions[0] if self.versions else None

    @property
    def current_grades(self) -> int:
        return self.current.grades if self.current else 0

    @property
    def stale_grades(self) -> int:
        """Current grades whose verdict for this criterion was given under an older version."""
        return sum(row.grades for row in self.versions[1:])


def criteria_overview(project: Project) -> list[CriterionRow]:
    """In use first (in their grading order), then retired; four queries whatever the size."""
    per_version = dict(
        GradeCriterion.objects.filter(
            criterion__project=project, grade__superseded_by__isnull=True, grade__retracted=False,
        ).values("criterion_version_id").annotate(n=Count("id")).values_list("criterion_version_id", "n")
    )
    rows = {
        criterion.pk: CriterionRow(criterion)
        for criterion in Criterion.objects.filter(project=project).order_by("archived", "position", "id")
    }
    versions = (
        CriterionVersion.objects.filter(criterion__project=project)
        .select_related("author", "decided_in").order_by("criterion_id", "-number")
    )
    for version in versions:
        row = rows[version.criterion_id]
        row.versions.append(
            VersionRow(version, per_version.get(version.pk, 0), current=not row.versions)
        )
    for change in CriterionStatusChange.objects.filter(
        criterion__project=project
    ).select_related("author").order_by("created_at", "id"):
        rows[change.criterion_id].status_changes.append(change)
    return list(rows.values())
