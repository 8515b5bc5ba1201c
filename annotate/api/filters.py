"""Filters of the outputs list: system, labelled, criterion and the search `q` (DESIGN §6)."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, QuerySet
from rest_framework.exceptions import ValidationError

from annotate.models import Grade, GradeCriterion, Output
from annotate.output_search import MAX_QUERY_CHARS, text_search

_TRUTH = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _current_grades():
    return Grade.objects.filter(
        output=OuterRef("pk"), superseded_by__isnull=True, retracted=False
    )


class OutputFilter(django_filters.FilterSet):
    system = django_filters.CharFilter(field_name="system", help_text="Exact system name.")
    # A CharFilter read strictly: django-filter's BooleanFilter silently ignores "1" or "yes",
    # which returned every output to a client asking for the labelled ones.
    labelled = django_filters.CharFilter(
        method="filter_labelled",
        help_text="true / 1 / yes: has a current grade; false / 0 / no: has none.",
    )
    criterion = django_filters.CharFilter(
        method="filter_criterion",
        help_text="Criterion key: outputs whose current grades give a verdict for it.",
    )

    q = django_filters.CharFilter(
        method="filter_search", max_length=MAX_QUERY_CHARS,
        help_text="Search the output text, input, reference, external id and system: full text "
                  "(web search syntax: \"a phrase\", -exclude, or) on PostgreSQL, every word as a "
                  "substring elsewhere.",
    )

    class Meta:
        model = Output
        fields = ["system", "labelled", "criterion", "q"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return text_search(queryset, value.strip())

    def filter_labelled(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        wanted = _TRUTH.get(value.strip().lower())
        if wanted is None:
            raise ValidationError({"labelled": [f"must be true or false (or 1 / 0, yes / no), not '{value[:40]}'"]})
        graded = Exists(_current_grades())
        return queryset.filter(graded if wanted else ~graded)

    def filter_criterion(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Exists(GradeCriterion.objects.filter(
            grade__output=OuterRef("pk"), grade__superseded_by__isnull=True,
            grade__retracted=False, criterion__key=value,
        )))
