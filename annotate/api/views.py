"""Thin API views (DESIGN §6): check the role, parse with a serializer, call one service, shape
the answer. Refusals: 401 anonymous, 404 non-member, 403 wrong role, 400 {"errors": [...]}."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate import queries, ranking_queries
from annotate.access import visible_projects
from annotate.api import permissions
from annotate.api.errors import ErrorsSerializer, LineErrorsSerializer, invalid
from annotate.api.filters import OutputFilter
from annotate.api.parsers import BoundedJSONParser
from annotate.api.serializers import (
    RANKING_ESTIMATORS,
    ComparisonSerializer,
    ComparisonSubmitSerializer,
    CriterionCreateSerializer,
    CriterionSerializer,
    CriterionVersionCreateSerializer,
    CriterionVersionSerializer,
    GradeSerializer,
    GradeSubmitSerializer,
    ImportRecordsSerializer,
    ImportResultSerializer,
    ImportUploadSerializer,
    MemberSerializer,
    OutputSerializer,
    ProjectCreateSerializer,
    ProjectDetailSerializer,
    ProjectSummarySerializer,
    ProjectUpdateSerializer,
    QueueItemSerializer,
    QueueNextSerializer,
    RankingSerializer,
)
from annotate.importing import ImportProblem
from annotate.models import Assignment, Criterion, Membership, Output, Project
from annotate.services.assignments import AssignmentError, assignment_claim_next
from annotate.services.criteria import (
    CriterionError,
    criterion_create,
    criterion_version_publish,
)
from annotate.services.grades import GradeError, comparison_submit, grade_submit
from annotate.services.imports import outputs_import
from annotate.services.projects import ProjectError, membership_set, project_create

REFUSED = {
    400: ErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer, 404: ErrorsSerializer,
}
READ_REFUSED = {401: ErrorsSerializer, 404: ErrorsSerializer}
TRUE_WORDS = {"1", "true", "yes", "on"}


@transaction.atomic
def project_settings_update(*, project: Project, **changes) -> Project:
    """Plain attribute changes (name, texts, settings) checked by the model and saved."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    for name, value in changes.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(changes))
    return project


def _detail(request: Request, project: Project, role: str) -> dict:
    return ProjectDetailSerializer(project, context={
        "roles": {project.pk: role}, "counts": queries.project_counts(project),
        "request": request,
    }).data


# -- projects --------------------------------------------------------------------------------
@extend_schema(tags=["projects"])
class ProjectListView(generics.GenericAPIView):
    serializer_class = ProjectSummarySerializer
    filter_backends: list = []

    def get_queryset(self):
        return visible_projects(self.request.user).order_by("name", "id")

    @extend_schema(summary="Projects I am a member of (staff: all)", responses={
        200: ProjectSummarySerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        # Staff act as owners everywhere (annotate.access.role_in), whatever their membership.
        roles = {} if request.user.is_staff else dict(
            Membership.objects.filter(user=request.user, project__in=page)
            .values_list("project_id", "role")
        )
        return self.get_paginated_response(
            ProjectSummarySerializer(page, many=True, context={"roles": roles}).data
        )

    @extend_schema(
        summary="Create a project; its creator becomes its owner",
        request=ProjectCreateSerializer,
        responses={201: ProjectDetailSerializer, 400: ErrorsSerializer, 401: ErrorsSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = ProjectCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project_settings = data.pop("settings", {})
        try:
            project = project_create(owner=request.user, **data, **project_settings)
        except ProjectError as exc:
            raise invalid(str(exc), "slug") from exc
        return Response(_detail(request, project, "owner"), status=status.HTTP_201_CREATED)


@extend_schema(tags=["projects"])
class ProjectDetailView(APIView):
    @extend_schema(summary="A project with its settings and counts", responses={
        200: ProjectDetailSerializer, **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project, role = permissions.member_project_and_role(request.user, slug)
        return Response(_detail(request, project, role))

    @extend_schema(
        summary="Change the name, texts or settings (owners)", request=ProjectUpdateSerializer,
        responses={200: ProjectDetailSerializer, **REFUSED},
    )
    def patch(self, request: Request, slug: str) -> Response:
        project, role = permissions.member_project_and_role(request.user, slug, permissions.OWNERS)
        serializer = ProjectUpdateSerializer(project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        changes.update(changes.pop("settings", {}))
        if changes:
            project = project_settings_update(project=project, **changes)
        return Response(_detail(request, project, role))


@extend_schema(tags=["projects"])
class MemberView(generics.GenericAPIView):
    serializer_class = MemberSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Membership.objects.none()

    @extend_schema(summary="The project's members", responses={
        200: MemberSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        members = (
            Membership.objects.filter(project=project).select_related("user")
            .order_by("user__username")
        )
        page = self.paginate_queryset(members)
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a member or change a member's role (owners)", request=MemberSerializer,
        responses={201: MemberSerializer, 200: MemberSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["username"]
        existed = Membership.objects.filter(project=project, user=user).exists()
        try:
            membership = membership_set(
                project=project, user=user, role=serializer.validated_data["role"]
            )
        except ProjectError as exc:
            raise invalid(str(exc), "role") from exc
        return Response(
            MemberSerializer(membership).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


# -- import ----------------------------------------------------------------------------------
def _import_refused(problems: list[ImportProblem]) -> Response:
    return Response(
        {"errors": [p.to_dict() for p in problems]}, status=status.HTTP_400_BAD_REQUEST
    )


@extend_schema(tags=["import"])
class ImportView(APIView):
    # Refusals before the file is read (a body that is no JSON) carry line 0, like the rest.
    errors_have_lines = True
    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    @extend_schema(
        summary="Import samples and outputs from a file or a list of records (owners)",
        description=(
            "Send a multipart upload (field `file`: .jsonl, .csv or .parquet) or a JSON body "
            '{"records": [...]}, in the per-output or pairwise format of the data README. '
            "All or nothing: on any problem the answer is 400 with every problem's line and "
            "field, and nothing is written. Re-importing the same outputs changes nothing "
            "(200, with a message saying so). With `?with_labels=1` each record's `human` "
            "field becomes grades (or comparisons) by the user `import`."
        ),
        parameters=[OpenApiParameter(
            "with_labels", bool, description="Also import the records' human labels.",
        )],
        request={
            "multipart/form-data": ImportUploadSerializer,
            "application/json": ImportRecordsSerializer,
        },
        responses={
            201: ImportResultSerializer,
            200: OpenApiResponse(ImportResultSerializer, description="Nothing new."),
            400: LineErrorsSerializer, 401: ErrorsSerializer, 403: ErrorsSerializer,
            404: ErrorsSerializer,
            413: OpenApiResponse(ErrorsSerializer, description="A JSON body over "
                                 "DATA_UPLOAD_MAX_MEMORY_SIZE; send a file instead."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.OWNERS)
        with_labels = request.query_params.get("with_labels", "").lower() in TRUE_WORDS
        upload = request.FILES.get("file")
        if upload is not None:
            result = outputs_import(
                project=project, stream=upload.file, filename=upload.name, with_labels=with_labels,
            )
        elif isinstance(request.data, dict) and "records" in request.data:
            result = outputs_import(
                project=project, records=request.data["records"], with_labels=with_labels,
            )
        else:
            return _import_refused([ImportProblem(
                0, "file", 'send a file (multipart field "file") or a JSON body {"records": [...]}',
            )])
        if not result.ok:
            return _import_refused(result.problems)
        body = result.to_dict()
        body.pop("errors")
        return Response(
            body, status=status.HTTP_200_OK if result.nothing_new else status.HTTP_201_CREATED
        )


# -- outputs ---------------------------------------------------------------------------------
@extend_schema(tags=["outputs"])
class OutputListView(generics.ListAPIView):
    serializer_class = OutputSerializer
    filterset_class = OutputFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Output.objects.none()
        project = permissions.member_project(self.request.user, self.kwargs["slug"])
        return (
            Output.objects.filter(project=project).select_related("sample").order_by("id")
        )

    @extend_schema(summary="The project's outputs with their inputs", responses={
        # 400: a filter value that is no value (a NUL, an unknown choice).
        200: OutputSerializer(many=True), 400: ErrorsSerializer, **READ_REFUSED,
    })
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


# -- criteria --------------------------------------------------------------------------------
@extend_schema(tags=["criteria"])
class CriterionListView(generics.GenericAPIView):
    serializer_class = CriterionSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Criterion.objects.none()

    @extend_schema(summary="Criteria with every version", responses={
        200: CriterionSerializer(many=True), **READ_REFUSED,
    })
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        criteria = Criterion.objects.filter(project=project).prefetch_related("versions__author")
        page = self.paginate_queryset(criteria)
        return self.get_paginated_response(CriterionSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a criterion (owners; annotators when the project allows)",
        request=CriterionCreateSerializer, responses={201: CriterionSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.criteria_editor_project(request.user, slug)
        serializer = CriterionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            criterion = criterion_create(
                project=project, author=request.user, **serializer.validated_data
            )
        except CriterionError as exc:
            # Name and lengths are checked above; what the service still refuses is the key.
            raise invalid(str(exc), "key") from exc
        criterion = Criterion.objects.prefetch_related("versions__author").get(pk=criterion.pk)
        return Response(CriterionSerializer(criterion).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["criteria"])
class CriterionVersionView(APIView):
    @extend_schema(
        summary="Publish a new version of a criterion's definition",
        description="Grades given under older versions become stale for this criterion.",
        request=CriterionVersionCreateSerializer,
        responses={201: CriterionVersionSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str, key: str) -> Response:
        project = permissions.criteria_editor_project(request.user, slug)
        criterion = get_object_or_404(Criterion, project=project, key=key, archived=False)
        serializer = CriterionVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = criterion_version_publish(
                criterion=criterion, author=request.user, **serializer.validated_data
            )
        except CriterionError as exc:
            # Reason and definition are checked above; what is left is "unchanged".
            raise invalid(str(exc), "definition") from exc
        return Response(CriterionVersionSerializer(version).data, status=status.HTTP_201_CREATED)


# -- the queue, grades and comparisons -------------------------------------------------------
@extend_schema(tags=["grading"])
class QueueNextView(APIView):
    @extend_schema(
        summary="Claim the next output (or pair) to grade",
        description=(
            "Answers the caller's current claim if there is one, else claims the item the "
            "selector ranks first. 204 when nothing is left to grade."
        ),
        request=QueueNextSerializer,
        responses={
            200: QueueItemSerializer, 204: OpenApiResponse(description="Nothing is left."),
            **REFUSED,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.GRADERS)
        serializer = QueueNextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            assignment = assignment_claim_next(
                project=project, annotator=request.user,
                selector=serializer.validated_data["selector"] or None,
                mode=serializer.validated_data["mode"],
            )
        except AssignmentError as exc:
            raise invalid(str(exc), "mode") from exc
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(QueueItemSerializer(assignment).data)


def _project_output(project: Project, output_id: int) -> Output:
    return get_object_or_404(Output.objects.select_related("project"), pk=output_id, project=project)


def _own_assignment(project: Project, user, assignment_id: int | None) -> Assignment | None:
    if assignment_id is None:
        return None
    assignment = Assignment.objects.filter(pk=assignment_id, project=project, annotator=user).first()
    if assignment is None:
        raise invalid(f"You hold no assignment {assignment_id} in this project.", "assignment")
    return assignment


@extend_schema(tags=["grading"])
class GradeCreateView(APIView):
    @extend_schema(
        summary="Grade an output (owners, annotators)",
        description=(
            "Appends the caller's grade; an earlier grade of the same output by the caller is "
            "superseded, never changed. Resending a grade under the same assignment answers "
            "the first one."
        ),
        request=GradeSubmitSerializer, responses={201: GradeSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.GRADERS)
        serializer = GradeSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        output = _project_output(project, data["output"])
        try:
            grade = grade_submit(
                output=output, annotator=request.user, verdict=data["verdict"],
                criteria=data["criteria"], note=data["note"], score=data["score"],
                started_at=data["started_at"],
                assignment=_own_assignment(project, request.user, data["assignment"]),
            )
        except GradeError as exc:
            raise invalid(str(exc), exc.field) from exc
        return Response(GradeSerializer(grade).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["grading"])
class ComparisonCreateView(APIView):
    @extend_schema(
        summary="Choose between two outputs of one input (owners, annotators)",
        request=ComparisonSubmitSerializer, responses={201: ComparisonSerializer, **REFUSED},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, permissions.GRADERS)
        serializer = ComparisonSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        output_a = _project_output(project, data["output_a"])
        output_b = _project_output(project, data["output_b"])
        try:
            comparison = comparison_submit(
                output_a=output_a, output_b=output_b, annotator=request.user,
                choice=data["choice"], note=data["note"], started_at=data["started_at"],
                assignment=_own_assignment(project, request.user, data["assignment"]),
            )
        except GradeError as exc:
            raise invalid(str(exc), exc.field) from exc
        return Response(ComparisonSerializer(comparison).data, status=status.HTTP_201_CREATED)


# -- rankings --------------------------------------------------------------------------------
@extend_schema(tags=["rankings"])
class RankingView(APIView):
    @extend_schema(
        summary="Per-system estimates with 95% intervals, from grades and from comparisons",
        description=(
            "`single`: pass rate per system from the majority label of each graded output, "
            "with the chosen estimator (default: `ipw` when labels carry selection "
            "probabilities, else `naive`), and on rating scales the mean score. `pairwise`: "
            "Bradley–Terry strengths with bootstrap intervals and Elo (K = 4) over the current "
            "comparisons. A section is null when it has no data."
        ),
        parameters=[OpenApiParameter(
            "estimator", str, enum=RANKING_ESTIMATORS,
            description=(
                "naive: all labels; random_stream: only items drawn at random; ipw: "
                "inverse-probability (Hájek) weights; control_variate: ipw with the chosen "
                "holistic validator as a control variate (needs one)."
            ),
        )],
        responses={200: RankingSerializer, 400: ErrorsSerializer, **READ_REFUSED},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug)
        try:
            ranking = ranking_queries.project_ranking(
                project, estimator=request.query_params.get("estimator") or None
            )
        except ranking_queries.EstimatorError as exc:
            raise invalid(str(exc), "estimator") from exc
        return Response(ranking.to_dict())
