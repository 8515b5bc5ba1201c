"""Error pages that know about the API: a path under /api/ that matches no route (a negative
or non-numeric id, a typo) is answered in the API's one error shape, not Django's HTML page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"errors": [{"field": "", "message": "Not found."}]}, status=404)
    return defaults.page_not_found(request, exception)
