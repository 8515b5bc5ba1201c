"""The /api/ URLconf (DESIGN §6): token auth, the OpenAPI schema and docs, and each app's API."""

from django.urls import include, path

from annotate.api.auth import DocsView, SchemaView, TokenView

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("annotate.api.urls")),
    path("", include("validators.api.urls")),
]
