"""Filters of the outputs list: system, labelled, criterion (DESIGN §6)."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from annotate.models import Grade, GradeCriterion, Output


def _current_grades():
    return Grade.objects.filter(
        output=OuterRef("pk"), superseded_by__isnull=True, retracted=False
    )


class OutputFilter(django_filters.FilterSet):
    system = django_filters.CharFilter(field_name="system", help_text="Exact system name.")
    labelled = django_filters.BooleanFilter(
        method="filter_labelled", help_text="true: has a current grade; false: has none."
    )
    criterion = django_filters.CharFilter(
        method="filter_criterion",
        help_text="Criterion key: outputs whose current grades give a verdict for it.",
    )

    class Meta:
        model = Output
        fields = ["system", "labelled", "criterion"]

    def filter_labelled(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        graded = Exists(_current_grades())
        return queryset.filter(graded if value else ~graded)

    def filter_criterion(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Exists(GradeCriterion.objects.filter(
            grade__output=OuterRef("pk"), grade__superseded_by__isnull=True,
            grade__retracted=False, criterion__key=value,
        )))
