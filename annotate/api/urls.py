from django.urls import path

from annotate.api import views, views_review

PROJECT = "projects/<slug:slug>/"

urlpatterns = [
    path("projects/", views.ProjectListView.as_view(), name="api-project-list"),
    path(PROJECT, views.ProjectDetailView.as_view(), name="api-project-detail"),
    path(f"{PROJECT}members/", views.MemberView.as_view(), name="api-members"),
    path(f"{PROJECT}import/", views.ImportView.as_view(), name="api-import"),
    path(f"{PROJECT}outputs/", views.OutputListView.as_view(), name="api-outputs"),
    path(f"{PROJECT}criteria/", views.CriterionListView.as_view(), name="api-criteria"),
    path(
        f"{PROJECT}criteria/<slug:key>/versions/", views.CriterionVersionView.as_view(),
        name="api-criterion-versions",
    ),
    path(f"{PROJECT}queue/next/", views.QueueNextView.as_view(), name="api-queue-next"),
    path(f"{PROJECT}grades/", views.GradeCreateView.as_view(), name="api-grades"),
    path(f"{PROJECT}comparisons/", views.ComparisonCreateView.as_view(), name="api-comparisons"),
]

urlpatterns += [
    path(f"{PROJECT}ranking/", views.RankingView.as_view(), name="api-ranking"),
]

urlpatterns += [
    path(f"{PROJECT}agreement/", views_review.AgreementView.as_view(), name="api-agreement"),
    path(f"{PROJECT}exports/", views_review.ExportCreateView.as_view(), name="api-exports"),
    path("exports/<int:pk>/", views_review.ExportDetailView.as_view(), name="api-export-detail"),
    path("exports/<int:pk>/file/", views_review.ExportFileView.as_view(), name="api-export-file"),
]

from annotate.api import views_output_actions  # noqa: E402

urlpatterns += [
    path(
        f"{PROJECT}outputs/bulk/", views_output_actions.OutputBulkActionView.as_view(),
        name="api-outputs-bulk",
    ),
]
