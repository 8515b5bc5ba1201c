"""Admin actions on projects: queue a gold-label export per selected project. The files are
listed, with download links, on each project's exports page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from annotate.services.exports import export_start


def _export_gold(modeladmin, request, queryset, fmt: str) -> None:
    projects = list(queryset.order_by("name"))
    for project in projects:
        export_start(project=project, fmt=fmt, options={}, requested_by=request.user)
    links = format_html_join(
        ", ", '<a href="{}">{}</a>',
        ((reverse("exports", args=[p.slug]), p.name) for p in projects),
    )
    modeladmin.message_user(
        request,
        format_html(
            "Queued a gold-label export ({}) of {} project{}: {}", fmt.upper(), len(projects),
            "" if len(projects) == 1 else "s", links,
        ),
        messages.SUCCESS,
    )


@admin.action(description="Export gold labels (CSV)")
def export_gold_csv(modeladmin, request, queryset):
    _export_gold(modeladmin, request, queryset, "csv")


@admin.action(description="Export gold labels (JSON Lines, re-importable)")
def export_gold_jsonl(modeladmin, request, queryset):
    _export_gold(modeladmin, request, queryset, "jsonl")


@admin.action(description="Export gold labels (Parquet)")
def export_gold_parquet(modeladmin, request, queryset):
    _export_gold(modeladmin, request, queryset, "parquet")


GOLD_EXPORT_ACTIONS = [export_gold_csv, export_gold_jsonl, export_gold_parquet]
