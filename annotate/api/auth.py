"""The token endpoint (rate-limited) and who may read the OpenAPI schema and its docs page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import BasePermission, IsAuthenticated

from annotate.api.errors import ErrorsSerializer
from annotate.throttles import LOGIN_THROTTLES


class TokenView(ObtainAuthToken):
    throttle_classes = LOGIN_THROTTLES

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="Wrong username or password."),
            429: OpenApiResponse(
                ErrorsSerializer,
                description="Too many attempts from this address or for this username "
                            "(CONCORD_LOGIN_RATE); the Retry-After header says when to try again.",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class SchemaReaders(BasePermission):
    """Logged-in users, or everyone when CONCORD_PUBLIC_API_SCHEMA is on. The schema maps every
    endpoint and parameter: no reason to hand that to anonymous scanners by default."""

    def has_permission(self, request, view) -> bool:
        return settings.CONCORD_PUBLIC_API_SCHEMA or IsAuthenticated().has_permission(request, view)


class SchemaView(SpectacularAPIView):
    permission_classes = [SchemaReaders]


class DocsView(SpectacularSwaggerView):
    permission_classes = [SchemaReaders]

    def permission_denied(self, request, message=None, code=None):
        # A person opening the docs in a browser is sent to the login form, then back.
        if not request.user.is_authenticated:
            raise _LoginFirst(request.get_full_path())
        super().permission_denied(request, message=message, code=code)

    def handle_exception(self, exc):
        if isinstance(exc, _LoginFirst):
            return redirect_to_login(exc.next_path)
        return super().handle_exception(exc)


class _LoginFirst(Exception):
    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path
