from django.urls import path

from validators.api import views

PROJECT = "projects/<slug:slug>/"

urlpatterns = [
    path(f"{PROJECT}providers/", views.ProviderListView.as_view(), name="api-providers"),
    path(f"{PROJECT}validators/", views.ValidatorListView.as_view(), name="api-validators"),
    path(
        f"{PROJECT}validators/import/", views.ValidatorImportView.as_view(),
        name="api-validators-import",
    ),
    path(
        f"{PROJECT}validators/external/", views.ExternalVerdictsImportView.as_view(),
        name="api-validators-external",
    ),
    path(
        f"{PROJECT}validators/export/", views.ValidatorExportView.as_view(),
        name="api-validators-export",
    ),
    path(f"{PROJECT}runs/", views.RunListView.as_view(), name="api-runs"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="api-run-detail"),
    path("sandbox/", views.SandboxStatusView.as_view(), name="api-sandbox"),
    path(f"{PROJECT}alignment/", views.AlignmentView.as_view(), name="api-alignment"),
    path(f"{PROJECT}suites/", views.SuiteListView.as_view(), name="api-suites"),
    path("suites/<int:pk>/export/", views.SuiteExportView.as_view(), name="api-suite-export"),
]
