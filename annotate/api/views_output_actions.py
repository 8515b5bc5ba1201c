"""POST /api/projects/{slug}/outputs/bulk/: the bulk actions of the outputs list for API
clients (owners and reviewers), through the same service as the browser."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import REVIEW_ROLES
from annotate.api import permissions
from annotate.api.errors import ErrorsSerializer, invalid
from annotate.services.output_actions import (
    BULK_ACTIONS,
    MAX_ID,
    MAX_OUTPUTS_PER_ACTION,
    MAX_REASON,
    OutputActionError,
    outputs_bulk_apply,
)


class OutputBulkActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[(name, label) for name, label, _ in BULK_ACTIONS])
    outputs = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), allow_empty=False,
        max_length=MAX_OUTPUTS_PER_ACTION, help_text="Output ids, all of this project.",
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_REASON, trim_whitespace=True,
        help_text="Required to re-grade or exclude; kept with an assignment.",
    )
    annotators = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, default=list,
        help_text="User ids: whom to assign to (required for assign), or whose assignments to "
                  "cancel (unassign; all when left out).",
    )


class OutputBulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    changed = serializers.IntegerField(help_text="Outputs changed (assignments made, for assign).")
    unchanged = serializers.IntegerField(help_text="Outputs left as they were.")
    message = serializers.CharField()


@extend_schema(tags=["outputs"])
class OutputBulkActionView(APIView):
    @extend_schema(
        summary="Act on many outputs at once (owners, reviewers)",
        description=(
            "regrade: send back for re-grading (reason required); assign: to annotators, each "
            "output to as many of them as its overlap has slots left; unassign: cancel "
            "assignments; exclude: leave out of sampling (reason required); include: restore. "
            "All or nothing: one id of another project refuses the request."
        ),
        request=OutputBulkActionSerializer,
        responses={200: OutputBulkResultSerializer, 400: ErrorsSerializer, 401: ErrorsSerializer,
                   403: ErrorsSerializer, 404: ErrorsSerializer},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = permissions.member_project(request.user, slug, REVIEW_ROLES)
        serializer = OutputBulkActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = outputs_bulk_apply(
                project=project, action=data["action"], output_ids=data["outputs"],
                annotator_ids=data["annotators"], reason=data["reason"], by=request.user,
            )
        except OutputActionError as exc:
            # The form's field names are singular; the API's lists are plural.
            field = {"output": "outputs", "annotator": "annotators"}.get(exc.field, exc.field)
            raise invalid(str(exc), field) from exc
        return Response(OutputBulkResultSerializer({
            "action": data["action"], "changed": result.changed, "unchanged": result.unchanged,
            "message": result.message,
        }).data)
