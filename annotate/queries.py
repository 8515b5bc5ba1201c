"""Reads used by more than one view or endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from annotate.models import Comparison, Criterion, Grade, Output, Project, Sample


@dataclass(frozen=True)
class ProjectCounts:
    samples: int
    outputs: int
    systems: int
    criteria: int
    grades: int
    graded_outputs: int
    comparisons: int
    target: int

    @property
    def progress_percent(self) -> float:
        return 0.0 if not self.target else min(100.0, 100.0 * self.graded_outputs / self.target)


def current_grades(project: Project):
    return Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)


def project_counts(project: Project) -> ProjectCounts:
    outputs = Output.objects.filter(project=project)
    output_count = outputs.count()
    current = current_grades(project)
    return ProjectCounts(
        samples=Sample.objects.filter(project=project).count(),
        outputs=output_count,
        systems=outputs.values("system").distinct().count(),
        criteria=Criterion.objects.filter(project=project, archived=False).count(),
        grades=current.count(),
        graded_outputs=current.values("output_id").distinct().count(),
        comparisons=Comparison.objects.filter(
            project=project, superseded_by__isnull=True, retracted=False
        ).count(),
        target=output_count,
    )


def annotator_progress(project: Project, user) -> int:
    return current_grades(project).filter(annotator=user).count()


def systems_summary(project: Project) -> list[dict]:
    return list(
        Output.objects.filter(project=project).values("system").annotate(n=Count("id")).order_by("system")
    )
