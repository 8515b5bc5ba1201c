"""The /api/ URLconf (DESIGN §6): token auth, the OpenAPI schema and docs, and each app's API."""

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken

from annotate.api.errors import ErrorsSerializer


class TokenView(ObtainAuthToken):
    @extend_schema(
        summary="A token for username and password", tags=["auth"],
        request=AuthTokenSerializer,
        responses={200: AuthTokenSerializer, 400: ErrorsSerializer},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("annotate.api.urls")),
    path("", include("validators.api.urls")),
]
