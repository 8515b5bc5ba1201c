from django.contrib import admin

from annotate import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "scale", "overlap", "default_selector", "default_ffr_ceiling", "created_at"]
    list_filter = ["scale", "default_selector"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(models.Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "short_input", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id", "input_text"]
    list_select_related = ["project"]

    @admin.display(description="input")
    def short_input(self, obj):
        return obj.input_text[:80]


@admin.register(models.Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["id", "sample", "system", "short_text", "project"]
    list_filter = ["project", "system"]
    search_fields = ["sample__external_id", "system", "text"]
    list_select_related = ["sample", "project"]
    raw_id_fields = ["sample"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


class CriterionVersionInline(admin.TabularInline):
    model = models.CriterionVersion
    extra = 0
    fields = ["number", "name", "definition", "reason", "author", "decided_in", "created_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Criterion)
class CriterionAdmin(admin.ModelAdmin):
    list_display = ["key", "project", "position", "archived", "created_at"]
    list_filter = ["project", "archived"]
    search_fields = ["key"]
    inlines = [CriterionVersionInline]


@admin.register(models.CriterionVersion)
class CriterionVersionAdmin(admin.ModelAdmin):
    list_display = ["criterion", "number", "name", "author", "reason", "created_at"]
    list_filter = ["criterion__project"]
    search_fields = ["name", "definition", "reason"]


class AppendOnlyAdmin(admin.ModelAdmin):
    """Grades and comparisons are evidence: admins read them, the app appends them."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


class GradeCriterionInline(admin.TabularInline):
    model = models.GradeCriterion
    extra = 0
    can_delete = False
    readonly_fields = ["criterion", "criterion_version", "verdict", "score"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(models.Grade)
class GradeAdmin(AppendOnlyAdmin):
    list_display = ["id", "output", "annotator", "verdict", "retracted", "score", "selector", "submitted_at", "supersedes"]
    list_filter = ["project", "verdict", "retracted", "selector"]
    search_fields = ["annotator__username", "note", "output__sample__external_id"]
    list_select_related = ["output__sample", "annotator"]
    inlines = [GradeCriterionInline]


@admin.register(models.Comparison)
class ComparisonAdmin(AppendOnlyAdmin):
    list_display = ["id", "sample", "output_a", "output_b", "annotator", "choice", "retracted", "submitted_at"]
    list_filter = ["project", "choice", "retracted"]
    search_fields = ["annotator__username", "sample__external_id"]
    list_select_related = ["sample", "annotator", "output_a__sample", "output_b__sample"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "output", "annotator", "slot", "status", "selector", "claimed_at", "expires_at"]
    list_filter = ["project", "status", "selector"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["output", "output_b"]


class DecisionInline(admin.TabularInline):
    model = models.Decision
    extra = 0
    raw_id_fields = ["criterion_version"]
    filter_horizontal = []
    exclude = ["outputs"]


@admin.register(models.ReviewMeeting)
class ReviewMeetingAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "started_at", "ended_at", "created_by"]
    list_filter = ["project"]
    search_fields = ["title", "notes"]
    inlines = [DecisionInline]


@admin.register(models.Adjudication)
class AdjudicationAdmin(AppendOnlyAdmin):
    list_display = ["output", "criterion", "verdict", "reviewer", "meeting", "created_at"]
    list_filter = ["verdict"]
    search_fields = ["reason", "reviewer__username"]


@admin.register(models.Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "format", "status", "rows", "created_at", "finished_at"]
    list_filter = ["status", "format", "project"]
    readonly_fields = ["status", "rows", "error", "file", "finished_at"]


# Gold-label exports from the project list (annotate.admin_actions).
from annotate.admin_actions import GOLD_EXPORT_ACTIONS  # noqa: E402

ProjectAdmin.actions = [*GOLD_EXPORT_ACTIONS]


# Queue controls: history rows written by annotate.services.output_actions; admins read them.
@admin.register(models.OutputAssignee)
class OutputAssigneeAdmin(AppendOnlyAdmin):
    list_display = ["output", "annotator", "assigned_by", "created_at", "cancelled_at", "cancelled_by"]
    list_filter = ["project"]
    search_fields = ["reason", "annotator__username"]


@admin.register(models.OutputExclusion)
class OutputExclusionAdmin(AppendOnlyAdmin):
    list_display = ["output", "reason", "excluded_by", "created_at", "restored_at", "restored_by"]
    list_filter = ["project"]
    search_fields = ["reason"]
