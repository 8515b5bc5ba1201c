"""Thin API views over validators.services (DESIGN §6); the roles are checked as in annotate.api."""

from __future__ import annotations

import json

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api import permissions
from annotate.api.errors import ErrorsSerializer, LineErrorsSerializer, invalid
from annotate.api.parsers import BoundedJSONParser
from annotate.services.criteria import CriterionError
from validators import queries
from validators.api.serializers import (
    AlignmentSerializer,
    ExternalImportResultSerializer,
    ExternalRecordsSerializer,
    ExternalUploadSerializer,
    ProviderSerializer,
    RunSerializer,
    RunStartSerializer,
    SandboxStatusSerializer,
    SuiteCreateSerializer,
    SuiteSerializer,
    ValidatorCreateSerializer,
    ValidatorImportResultSerializer,
    ValidatorSerializer,
    ValidatorsFileSerializer,
)
from validators.models import Provider, Run, Suite, Validator
from validators.report_card import report_card
from validators.services.authoring import validator_create
from validators.services.errors import ValidatorError
from validators.services.evaluation import validator_first_outputs_problem
from validators.services.external import external_verdicts_import
from validators.services.providers import provider_save
from validators.services.runs import run_start
from validators.services.suites import suite_save
from validators.services.validator_files import (
    ValidatorImportError,
    validators_export,
    validators_import,
)
from validators.suite_export import suite_as_json, suite_as_module

REFUSED = {
    400: ErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer, 404: ErrorsSerializer,
}
READ_REFUSED = {401: ErrorsSerializer, 404: ErrorsSerializer}
_BOOLEAN_WORDS = {
    "1": True, "true": True, "yes": True, "on": True,
    "0": False, "false": False, "no": False, "off": False, "": False,
}


class ProjectListMixin:
    """GET of a project's objects, paginated; the queryset is built per request."""

    filter_backends: list = []

    def get_queryset(self):
        return self.serializer_class.Meta.model.objects.none()

    def page_of(self, queryset, **context) -> Response:
        page = self.paginate_queryset(queryset)
        serializer = self.serializer_class(page, many=True, context=context)
        return self.get_paginated_response(serializer.data)


# -- providers -------------------------------------------------------------------------------
@extend_schema(tags=["validators"])
class ProviderListView(ProjectListMixin, generics.GenericAPIView):
    serializer_class = ProviderSerializer

    @extend_schema(summary="LLM providers of the project", responses={
        200: ProviderSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        return self.page_of(Provider.objects.filter(project=project).order_by("name"))

    @extend_schema(
        summary="Add or update (by name) an OpenAI-compatible provider (owners)",
        request=ProviderSerializer, responses={201: ProviderSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        serializer = ProviderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            provider = provider_save(project=project, **serializer.validated_data)
        except ValidatorError as exc:
            raise invalid(str(exc), exc.field) from exc
        return Response(ProviderSerializer(provider).data, status=status.HTTP_201_CREATED)


# -- validators ------------------------------------------------------------------------------
@extend_schema(tags=["validators"])
class ValidatorListView(ProjectListMixin, generics.GenericAPIView):
    serializer_class = ValidatorSerializer

    @extend_schema(summary="Validators not archived, with their verdict counts", responses={
        200: ValidatorSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        return self.page_of(queries.validators_with_counts(project))

    @extend_schema(
        summary="Add a validator: a code assertion or comparator, an LLM grader or judge (owners)",
        description=(
            "The source is checked before it is saved: code must define "
            "check(output, input, reference, meta) and import only allowed modules; a prompt "
            "may use {output}, {input}, {reference} and {meta[...]}. With target pair, code "
            "defines compare(output_a, output_b, input, reference, meta) and an llm prompt uses "
            "{output_a} and {output_b} (it is asked in both orders); a rating judge's prompt "
            "uses {output} either way."
        ),
        request=ValidatorCreateSerializer, responses={201: ValidatorSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        serializer = ValidatorCreateSerializer(data=request.data, context={"project": project})
        serializer.is_valid(raise_exception=True)
        try:
            validator = validator_create(
                project=project, created_by=request.user, **serializer.validated_data
            )
        except ValidatorError as exc:
            raise invalid(str(exc), exc.field) from exc
        return Response(
            ValidatorSerializer(validator, context={"warnings": _warnings([validator])}).data,
            status=status.HTTP_201_CREATED,
        )


def _warnings(validators: list[Validator]) -> dict[int, list[str]]:
    found = {v.pk: validator_first_outputs_problem(validator=v) for v in validators}
    return {pk: [problem] for pk, problem in found.items() if problem}


@extend_schema(tags=["validators"])
class ValidatorImportView(APIView):
    # Refusals before the file is read (a body that is no JSON) carry line 0, like the rest.
    errors_have_lines = True
    @extend_schema(
        summary="Import a validators file (owners)",
        description=(
            'Takes {"validators": [...]} as written by the export, or a bare list. All or '
            "nothing; a validator identical to one in the project is skipped. A criterion the "
            "project lacks is refused (400, naming it) unless `?create_criteria=true`, which "
            "creates it. Problems name the validator's position in the list as `entry` (1-based; "
            "`line` repeats it for older clients)."
        ),
        parameters=[OpenApiParameter(
            "create_criteria", bool,
            description="Create the criteria the file names that the project lacks.",
        )],
        request=ValidatorsFileSerializer,
        responses={
            201: ValidatorImportResultSerializer,
            200: OpenApiResponse(ValidatorImportResultSerializer, description="Nothing new."),
            400: LineErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer,
            404: ErrorsSerializer,
            413: OpenApiResponse(ErrorsSerializer, description="A JSON body over "
                                 "DATA_UPLOAD_MAX_MEMORY_SIZE; send a file instead."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        create_criteria = request.query_params.get("create_criteria", "false").lower()
        if create_criteria not in _BOOLEAN_WORDS:
            return Response(
                {"errors": [
                    {"line": 0, "field": "create_criteria", "message": "must be true or false"},
                ]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            created = validators_import(
                project=project, data=request.data, created_by=request.user,
                create_criteria=_BOOLEAN_WORDS[create_criteria],
            )
        except ValidatorImportError as exc:
            return Response(
                {"errors": [p.to_dict() for p in exc.problems]}, status=status.HTTP_400_BAD_REQUEST
            )
        except CriterionError as exc:
            # A criterion key the import would create is malformed; the service does not say
            # which entry, so no line.
            return Response(
                {"errors": [{"line": 0, "field": "criterion", "message": str(exc)}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            {"created": len(created), "validators": ValidatorSerializer(
                created, many=True, context={"warnings": _warnings(created)}).data},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=["validators"])
class ExternalVerdictsImportView(APIView):
    # Refusals before the file is read (a body that is no JSON) carry line 0, like the rest.
    errors_have_lines = True
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    @extend_schema(
        summary="Import judge verdicts, scores or winners computed elsewhere (owners)",
        description=(
            "External judges (promptfoo, DeepEval, LangSmith, a team's own scripts): a "
            "multipart upload (field `file`: .jsonl or .csv) or a JSON body "
            '{"records": [...]}. Each judge name becomes a validator of kind `external` that '
            "is never run; importing a name again makes a new version (its `parent`) and "
            "archives the old one, verdicts kept. All or nothing: on any problem the answer is "
            "400 with every problem's line (record number for a body) and field."
        ),
        request={
            "multipart/form-data": ExternalUploadSerializer,
            "application/json": ExternalRecordsSerializer,
        },
        responses={
            201: ExternalImportResultSerializer,
            400: LineErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer,
            404: ErrorsSerializer,
            413: OpenApiResponse(ErrorsSerializer, description="A JSON body over "
                                 "DATA_UPLOAD_MAX_MEMORY_SIZE; send a file instead."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        data = request.data if isinstance(request.data, dict) else {}
        flag = data.get("create_criteria") or False
        create_criteria = flag if isinstance(flag, bool) else _BOOLEAN_WORDS.get(str(flag).lower())
        if create_criteria is None:
            return _line_errors([(0, "create_criteria", "must be true or false")])
        upload = request.FILES.get("file")
        if upload is not None:
            source, filename = upload.file, upload.name
        elif "records" in data:
            source, filename = data["records"], ""
            if not isinstance(source, list):
                return _line_errors([(0, "records", "must be a list of objects")])
        else:
            return _line_errors([(
                0, "file", 'send a file (multipart field "file") or a JSON body {"records": [...]}',
            )])
        result = external_verdicts_import(
            project=project, stream_or_records=source, filename=filename,
            created_by=request.user, create_criteria=create_criteria,
        )
        if not result.ok:
            return Response(
                {"errors": [p.to_dict() for p in result.problems]}, status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(result.to_dict(), status=status.HTTP_201_CREATED)


def _line_errors(problems: list[tuple[int, str, str]]) -> Response:
    return Response(
        {"errors": [{"line": line, "field": name, "message": message} for line, name, message in problems]},
        status=status.HTTP_400_BAD_REQUEST,
    )


@extend_schema(tags=["validators"])
class ValidatorExportView(APIView):
    @extend_schema(
        summary="The validators file: every validator not archived",
        responses={200: ValidatorsFileSerializer, **READ_REFUSED},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        return Response(validators_export(project))


# -- runs ------------------------------------------------------------------------------------
@extend_schema(tags=["runs"])
class RunListView(ProjectListMixin, generics.GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(summary="Runs of the project, newest first", responses={
        200: RunSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        runs = (
            Run.objects.filter(project=project).select_related("project")
            .prefetch_related("validators").order_by("-created_at", "-id")
        )
        return self.page_of(runs)

    @extend_schema(
        summary="Run validators over every output of the project (owners)",
        description=(
            "The run happens in the background; poll GET /api/runs/{id}/ until its status is "
            "done, failed or cancelled. Verdicts already stored are not computed again."
        ),
        request=RunStartSerializer, responses={201: RunSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        serializer = RunStartSerializer(data=request.data, context={"project": project})
        serializer.is_valid(raise_exception=True)
        try:
            run = run_start(
                project=project, validators=serializer.validated_data["validators"],
                requested_by=request.user,
            )
        except ValidatorError as exc:
            raise invalid(str(exc), exc.field) from exc
        # Read back: with an eager or fast worker the run may already have moved on.
        run = Run.objects.select_related("project").get(pk=run.pk)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["runs"])
class RunDetailView(APIView):
    @extend_schema(summary="A run's progress", responses={200: RunSerializer, **READ_REFUSED})
    def get(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(Run.objects.select_related("project"), pk=pk)
        permissions.require_member(request.user, run.project)
        return Response(RunSerializer(run).data)


@extend_schema(tags=["validators"])
class SandboxStatusView(APIView):
    @extend_schema(
        summary="What the code sandbox guarantees on this server",
        description=(
            "Whether code validators run here, which barriers are active (namespaces, minimal "
            "read-only root, uid nobody, no_new_privs, seccomp, limits, a fresh process per "
            "batch) and which are missing. Where the platform refuses namespaces, code "
            "validators are off unless an admin set CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION=1."
        ),
        responses={200: SandboxStatusSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(SandboxStatusSerializer(queries.sandbox_summary()).data)


# -- alignment and suites --------------------------------------------------------------------
@extend_schema(tags=["report card"])
class AlignmentView(APIView):
    @extend_schema(
        summary="The report card: per criterion, the validator that agrees best with people",
        description=(
            "Coverage: share of human fails the validator fails. FFR: share of human passes it "
            "fails. Undefined values are null, never 0 or 1."
        ),
        responses={200: AlignmentSerializer, **READ_REFUSED},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        return Response(report_card(project).to_dict())


@extend_schema(tags=["report card"])
class SuiteListView(ProjectListMixin, generics.GenericAPIView):
    serializer_class = SuiteSerializer

    @extend_schema(summary="Saved report cards, newest first", responses={
        200: SuiteSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        suites = (
            Suite.objects.filter(project=project).select_related("created_by")
            .prefetch_related("validators").order_by("-created_at", "-id")
        )
        return self.page_of(suites)

    @extend_schema(
        summary="Save today's report card as a suite (owners)",
        request=SuiteCreateSerializer, responses={201: SuiteSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        serializer = SuiteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            suite = suite_save(
                project=project, name=serializer.validated_data["name"], created_by=request.user
            )
        except ValidatorError as exc:
            raise invalid(str(exc), exc.field) from exc
        return Response(SuiteSerializer(suite).data, status=status.HTTP_201_CREATED)


class PythonModuleRenderer(BaseRenderer):
    """?format=py: the suite as a runnable Python module."""

    media_type = "text/x-python"
    format = "py"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, str):
            return data.encode(self.charset)
        return json.dumps(data).encode(self.charset)


@extend_schema(tags=["report card"])
class SuiteExportView(APIView):
    # DRF reads ?format= to choose the renderer, so json and py are two renderers.
    renderer_classes = [JSONRenderer, PythonModuleRenderer]

    @extend_schema(
        summary="Export a saved suite as JSON or as a runnable Python module",
        parameters=[OpenApiParameter(
            "format", str, enum=["json", "py"], description="json (default) or py.",
        )],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/x-python"): OpenApiTypes.STR,
            **READ_REFUSED,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        suite = get_object_or_404(Suite.objects.select_related("project"), pk=pk)
        permissions.require_member(request.user, suite.project)
        if request.accepted_renderer.format == PythonModuleRenderer.format:
            body, filename = suite_as_module(suite), f"{suite.project.slug}_suite.py"
        else:
            body, filename = suite_as_json(suite), f"{suite.project.slug}_suite.json"
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):
            # Errors stay JSON even when the module was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
