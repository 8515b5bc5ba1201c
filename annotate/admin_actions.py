"""Admin actions on projects: queue a gold-label export per selected project. The files are
listed, with download links, on each project's exports page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from annotate.export_formats import EXPORT_FORMATS, ExportFormat
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


def _export_gold_action(fmt: ExportFormat):
    def action(modeladmin, request, queryset):
        _export_gold(modeladmin, request, queryset, fmt.key)

    # The action's name is what the admin form posts: export_gold_csv, export_gold_jsonl, ...
    action.__name__ = f"export_gold_{fmt.key}"
    return admin.action(description=fmt.admin_action)(action)


GOLD_EXPORT_ACTIONS = [_export_gold_action(fmt) for fmt in EXPORT_FORMATS.values()]
