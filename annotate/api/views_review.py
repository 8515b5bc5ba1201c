"""Gold-label exports and agreement tables over the API (DESIGN §6)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api import permissions
from annotate.api.errors import ErrorsSerializer, invalid
from annotate.export_formats import EXPORT_FORMATS
from annotate.gold import OPTIONS
from annotate.models import Export, ExportStatus, Role
from annotate.review.agreement_tables import agreement_tables
from annotate.services.exports import (
    ExportError,
    export_file_name,
    export_start,
    export_worker_status,
)

REFUSED = {400: ErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer, 404: ErrorsSerializer}


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(EXPORT_FORMATS))
    all_grades = serializers.BooleanField(default=False)
    include_stale = serializers.BooleanField(default=False)
    labelled_only = serializers.BooleanField(
        default=False, help_text="Leave out outputs without any vote."
    )


class ExportSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    worker_alive = serializers.SerializerMethodField(
        help_text="Whether a Celery worker will write a queued or running export; null when the "
                  "broker could not be asked. Always true for finished exports.",
    )
    worker_message = serializers.SerializerMethodField(
        help_text="What to do when no worker is alive; empty otherwise.",
    )

    class Meta:
        model = Export
        fields = ["id", "kind", "format", "options", "status", "rows", "error", "created_at",
                  "finished_at", "file_url", "heartbeat_at", "requeues", "worker_alive",
                  "worker_message"]

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_worker_alive(self, export: Export) -> bool | None:
        return export_worker_status(export).alive

    def get_worker_message(self, export: Export) -> str:
        return export_worker_status(export).message

    def get_file_url(self, export: Export) -> str | None:
        if export.status != ExportStatus.DONE or not export.file:
            return None
        return f"/api/exports/{export.pk}/file/"


def _owned_export(user, pk: int) -> Export:
    export = get_object_or_404(Export.objects.select_related("project"), pk=pk)
    role = permissions.require_member(user, export.project)
    if role != Role.OWNER:
        raise PermissionDenied("Only owners may read exports.")
    return export


@extend_schema(tags=["exports"])
class ExportCreateView(APIView):
    @extend_schema(request=ExportRequestSerializer, responses={201: ExportSerializer, **REFUSED},
                   summary="Queue a gold-label export (a Celery job)")
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, roles=permissions.OWNERS)
        data = ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = {name: data.validated_data[name] for name in OPTIONS}
        try:
            export = export_start(
                project=project, fmt=data.validated_data["format"], options=options,
                requested_by=request.user,
            )
        except ExportError as exc:
            raise invalid(str(exc), "format") from exc
        return Response(ExportSerializer(export).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["exports"])
class ExportDetailView(APIView):
    @extend_schema(responses={200: ExportSerializer, **REFUSED}, summary="An export's status")
    def get(self, request: Request, pk: int) -> Response:
        return Response(ExportSerializer(_owned_export(request.user, pk)).data)


@extend_schema(tags=["exports"])
class ExportFileView(APIView):
    @extend_schema(
        responses={
            **{(200, fmt.media_type): OpenApiTypes.BINARY for fmt in EXPORT_FORMATS.values()},
            **REFUSED,
        },
        summary="Download a finished export's file",
    )
    def get(self, request: Request, pk: int):
        export = _owned_export(request.user, pk)
        if export.status != ExportStatus.DONE or not export.file:
            raise Http404("This export has no file (yet).")
        return FileResponse(
            export.file.open("rb"), as_attachment=True, filename=export_file_name(export),
            content_type=EXPORT_FORMATS[export.format].media_type,
        )


@extend_schema(tags=["review"])
class AgreementView(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=(
            "Per target (holistic first, then criteria): percent agreement, Cohen's, Fleiss' "
            "κ, Krippendorff's α, Gwet's AC1 between annotators, and annotators against the "
            "chosen validator; undefined values are null.")), **REFUSED},
        summary="Agreement tables",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        return Response({"criteria": [row.to_dict() for row in agreement_tables(project)]})
