"""One shape for every API error: {"errors": [{"field": ..., "message": ...}]}.

DRF answers validation errors as a tree keyed by field and everything else as {"detail": ...};
clients then need two parsers. Here both become a flat list whose `field` is a dotted path
("criteria.accuracy", "records.3.output") or "" when the error concerns the request as a whole.
Import errors add "line" (they are built by the import views, not here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

_WHOLE_REQUEST = {NON_FIELD_ERRORS, api_settings.NON_FIELD_ERRORS_KEY, "detail"}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else (name or prefix)


def flatten(detail: Any, prefix: str = "") -> Iterator[dict[str, str]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from flatten(value, _join(prefix, "" if key in _WHOLE_REQUEST else str(key)))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                # Errors of a list of objects (many=True) arrive by position; valid ones are {}.
                yield from flatten(item, _join(prefix, str(index)))
            else:
                yield {"field": prefix, "message": str(item)}
    else:
        yield {"field": prefix, "message": str(detail)}


def invalid(message: str, field: str = "") -> ValidationError:
    """A 400 for a service's refusal; `field` is "" when no single field is to blame."""
    return ValidationError({field: [message]} if field else [message])


def exception_handler(exc: Exception, context: dict) -> Any:
    if isinstance(exc, RequestDataTooBig):
        # Django answers this one with an HTML page; an API client needs the usual shape.
        request = context["request"]
        size = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"errors": [{"field": "", "message": (
            f"The request body is {size:,} bytes; the limit is {limit:,} bytes "
            "(DATA_UPLOAD_MAX_MEMORY_SIZE). Send large imports as a file upload."
        )}]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DjangoValidationError):
        # model.full_clean() inside a service: the same refusal as a serializer's.
        exc = ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = drf_exception_handler(exc, context)
    if response is not None:
        errors = list(flatten(response.data))
        if getattr(context.get("view"), "errors_have_lines", False):
            # Import views answer {line, field, message}; a refusal of the whole request
            # (a body that is no JSON, no permission) concerns no line: 0.
            errors = [{"line": 0, **error} for error in errors]
        response.data = {"errors": errors}
    return response


class ErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text='Dotted path of the field at fault; "" for the request.')
    message = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    """Schema only: the body of every 4xx answer."""

    errors = ErrorSerializer(many=True)


class LineErrorSerializer(ErrorSerializer):
    line = serializers.IntegerField(help_text="Line (or record number) of the file; 0: the file.")


class LineErrorsSerializer(serializers.Serializer):
    """Schema only: the body of a refused import."""

    errors = LineErrorSerializer(many=True)
