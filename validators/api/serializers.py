"""Parsing and shaping for the validators API; no serializer here writes."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from annotate.api.fields import StorableSlugRelatedField
from annotate.models import Criterion, Project
from validators.models import Provider, Run, RunStatus, Suite, Target, Validator, ValidatorKind
from validators.queries import run_worker_status
from validators.selection import STATUSES


class ProviderSerializer(serializers.ModelSerializer):
    """An OpenAI-compatible endpoint. `api_key_env` is the NAME of the environment variable
    that holds the key; keys are never sent to or stored by Concord."""

    class Meta:
        model = Provider
        fields = [
            "id", "name", "base_url", "model", "api_key_env", "concurrency", "timeout_seconds",
            "temperature",
        ]
        read_only_fields = ["id"]


VERDICT_COUNTS = inline_serializer("VerdictCounts", fields={
    "pass": serializers.IntegerField(),
    "fail": serializers.IntegerField(),
    "error": serializers.IntegerField(),
}, allow_null=True)


class ValidatorSerializer(serializers.ModelSerializer):
    # null: the holistic verdict; a code validator has no provider.
    criterion = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    provider = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    verdicts = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Validator
        fields = [
            "id", "name", "criterion", "kind", "target", "source", "threshold", "provider",
            "answer_patterns", "inconsistent_is_tie", "origin", "parent", "archived",
            "created_at", "verdicts", "warnings",
        ]

    def get_warnings(self, validator: Validator) -> list[str]:
        """Set on creation and import: e.g. the validator answered `error` on every one of
        the project's first five outputs."""
        return list(self.context.get("warnings", {}).get(validator.pk, []))

    @extend_schema_field(VERDICT_COUNTS)
    def get_verdicts(self, validator: Validator) -> dict[str, int] | None:
        """Verdict counts where the queryset was annotated with them (the list)."""
        if not hasattr(validator, "n_pass"):
            return None
        return {"pass": validator.n_pass, "fail": validator.n_fail, "error": validator.n_error}


class ProjectScopedSerializer(serializers.Serializer):
    """Related objects are looked up within the project given in the context."""

    @property
    def project(self) -> Project:
        return self.context["project"]


class ValidatorCreateSerializer(ProjectScopedSerializer):
    criterion = StorableSlugRelatedField(
        slug_field="key", queryset=Criterion.objects.none(), required=False, allow_null=True,
        default=None, help_text="A criterion key; null (or left out) for the holistic verdict.",
        error_messages={"does_not_exist": "No criterion '{value}' in this project."},
    )
    # Every kind, so the schema has one kind enum; `external` is refused by the service, with
    # why (external validators come from importing their verdicts).
    kind = serializers.ChoiceField(
        choices=ValidatorKind.choices,
        help_text="code, llm or rating; external validators come from importing their verdicts.",
    )
    target = serializers.ChoiceField(
        choices=Target.choices, default=Target.OUTPUT,
        help_text="output: judges one output (pass/fail); pair: judges two outputs of one input.",
    )
    name = serializers.CharField(max_length=200)
    source = serializers.CharField(
        trim_whitespace=False,
        help_text=(
            "Python source defining check(output, input, reference, meta) (target pair: "
            "compare(output_a, output_b, input, reference, meta)), or a prompt ({output}; a "
            "pairwise judge's: {output_a} and {output_b})."
        ),
    )
    answer_patterns = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False,
        help_text="Regular expressions, one per line, each with one group capturing the winner "
                  "(a, b, c or tie) or the rating; tried before the defaults.",
    )
    inconsistent = serializers.ChoiceField(
        choices=["tie", "error"], default="tie", write_only=True,
        help_text="A pairwise judge whose two orders disagree: counted as a tie or an error.",
    )
    threshold = serializers.FloatField(
        required=False, allow_null=True, default=None,
        help_text="A numeric return passes when it is at least this.",
    )
    provider = StorableSlugRelatedField(
        slug_field="name", queryset=Provider.objects.none(), required=False, allow_null=True,
        default=None, help_text="Provider name, for llm graders (default: the project's first).",
        error_messages={"does_not_exist": "No provider '{value}' in this project."},
    )

    def validate(self, attrs):
        attrs = dict(attrs)
        attrs["inconsistent_is_tie"] = attrs.pop("inconsistent", "tie") == "tie"
        return attrs

    def get_fields(self):
        fields = super().get_fields()
        project = self.context.get("project")
        if project is not None:
            fields["criterion"].queryset = Criterion.objects.filter(project=project, archived=False)
            fields["provider"].queryset = Provider.objects.filter(project=project)
        return fields


class ValidatorsFileSerializer(serializers.Serializer):
    """Schema only: the validators file of DESIGN §6 (a bare list is accepted too)."""

    validators = serializers.ListField(child=serializers.DictField())


class ValidatorImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(
        help_text="Validators created; identical ones already in the project are skipped."
    )
    validators = ValidatorSerializer(many=True)


# Ids are 64-bit: a larger number would reach the database and fail there.
MAX_ID = 2**63 - 1


@extend_schema_field({
    "oneOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
        {"type": "string", "enum": ["all"]},
    ],
    "description": 'Validator ids, or "all" for every validator not archived.',
})
class ValidatorChoiceField(serializers.Field):
    default_error_messages = {"invalid": 'Give a list of validator ids or "all".'}

    def to_internal_value(self, data):
        if data == "all":
            return "all"
        if not isinstance(data, list) or any(
            isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= MAX_ID for i in data
        ):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class RunStartSerializer(ProjectScopedSerializer):
    validators = ValidatorChoiceField(required=False, default="all")

    def validate_validators(self, value) -> list[Validator] | None:
        if value == "all":
            return None
        found = {
            v.pk: v
            for v in Validator.objects.filter(project=self.project, archived=False, pk__in=value)
        }
        missing = [i for i in value if i not in found]
        if missing:
            raise serializers.ValidationError(
                f"No active validator {', '.join(map(str, missing))} in this project."
            )
        return [found[i] for i in dict.fromkeys(value)]


class RunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices)
    validators = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    worker_alive = serializers.SerializerMethodField(
        help_text="Whether a Celery worker will move a queued or running run forward; null when "
                  "the broker could not be asked. Always true for finished runs.",
    )
    worker_message = serializers.SerializerMethodField(
        help_text="What to do when no worker is alive; empty otherwise.",
    )

    class Meta:
        model = Run
        fields = [
            "id", "project", "status", "total", "done", "failed", "error", "validators",
            "created_at", "started_at", "finished_at", "heartbeat_at", "requeues",
            "worker_alive", "worker_message",
        ]

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_worker_alive(self, run: Run) -> bool | None:
        return run_worker_status(run).alive

    def get_worker_message(self, run: Run) -> str:
        return run_worker_status(run).message


# -- alignment (schema of validators.report_card.ReportCard.to_dict) ------------------------
class IntervalField(serializers.ListField):
    """[low, high] (Wilson 95%), or null when undefined."""

    child = serializers.FloatField()


class AlignmentIntervalsSerializer(serializers.Serializer):
    coverage = IntervalField(allow_null=True, min_length=2, max_length=2)
    ffr = IntervalField(allow_null=True, min_length=2, max_length=2)


class ConfusionSerializer(serializers.Serializer):
    tp = serializers.IntegerField(help_text="Validator fails, human fail.")
    fn = serializers.IntegerField(help_text="Validator passes, human fail.")
    fp = serializers.IntegerField(help_text="Validator fails, human pass.")
    tn = serializers.IntegerField(help_text="Validator passes, human pass.")


class AlignmentCandidateSerializer(serializers.Serializer):
    validator = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ValidatorKind.choices)
    rank = serializers.IntegerField()
    status = serializers.ChoiceField(choices=STATUSES)
    reason = serializers.CharField()
    coverage = serializers.FloatField(allow_null=True)
    ffr = serializers.FloatField(allow_null=True, help_text="False failure rate.")
    alignment = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True)
    mcc = serializers.FloatField(allow_null=True)
    n_pass = serializers.IntegerField()
    n_fail = serializers.IntegerField()
    skip_rate = serializers.FloatField(allow_null=True)
    ci = AlignmentIntervalsSerializer()
    confusion = ConfusionSerializer()
    threshold = serializers.FloatField(
        allow_null=True, help_text="The score a pass needs; null for pass/fail validators.",
    )
    threshold_source = serializers.ChoiceField(
        choices=["fixed", "picked"], allow_null=True,
        help_text="fixed: the validator's own; picked: by the report card's threshold sweep.",
    )


class SettlingSerializer(serializers.Serializer):
    settled = serializers.BooleanField(
        help_text="Further labels change the choice by less than `tolerance` in alignment, with "
        "`confidence`: no candidate that may still qualify can beat it by more.",
    )
    tolerance = serializers.FloatField()
    confidence = serializers.FloatField()
    n_labels = serializers.IntegerField(help_text="Labels the criterion has now.")
    worst_gap = serializers.FloatField(
        allow_null=True,
        help_text="Largest upper bound on a challenger's alignment gain over the choice.",
    )
    why = serializers.CharField()


class AlignmentCriterionSerializer(serializers.Serializer):
    key = serializers.CharField(help_text='"__holistic__" for the overall verdict.')
    name = serializers.CharField()
    ceiling = serializers.FloatField(help_text="Highest false failure rate allowed.")
    min_labels = serializers.IntegerField()
    n_human_pass = serializers.IntegerField()
    n_human_pass_inferred = serializers.IntegerField(
        help_text="Of the passing labels, those inferred from a holistic pass (a project option).",
    )
    n_human_fail = serializers.IntegerField()
    pinned = serializers.IntegerField(allow_null=True)
    excluded = serializers.ListField(child=serializers.IntegerField())
    chosen = serializers.IntegerField(allow_null=True, help_text="The chosen validator's id.")
    reason = serializers.CharField()
    candidates = AlignmentCandidateSerializer(many=True)
    settling = SettlingSerializer(
        allow_null=True, help_text="Null with fewer than two candidates to choose between.",
    )


class AlignmentSuiteSerializer(serializers.Serializer):
    coverage = serializers.FloatField(allow_null=True)
    ffr = serializers.FloatField(allow_null=True)
    ci = AlignmentIntervalsSerializer()
    n_pass = serializers.IntegerField()
    n_fail = serializers.IntegerField()
    validators = serializers.ListField(child=serializers.IntegerField())


class PairwiseCandidateSerializer(serializers.Serializer):
    validator = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ValidatorKind.choices)
    cost = serializers.FloatField(help_text="Mean tokens per pair; 0 for code and imported judges.")
    n_pairs = serializers.IntegerField(help_text="Pairs with a human choice and a verdict.")
    n_decided = serializers.IntegerField(help_text="Of those, pairs people did not call a tie.")
    n_errors = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True, help_text="Ties left out.")
    accuracy_ci = IntervalField(allow_null=True, min_length=2, max_length=2)
    accuracy_ties_half = serializers.FloatField(allow_null=True, help_text="Ties counted as ½.")
    kappa = serializers.FloatField(allow_null=True, help_text="Cohen's κ over a, b, tie.")
    n_both_orders = serializers.IntegerField()
    consistency = serializers.FloatField(
        allow_null=True, help_text="Same winner in both orders; null for judges asked once.",
    )
    consistency_ci = IntervalField(allow_null=True, min_length=2, max_length=2)
    first_position_rate = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)
    why_not = serializers.CharField(allow_null=True, help_text="Null for the chosen judge.")


class PairwiseAlignmentSerializer(serializers.Serializer):
    floor = serializers.FloatField(help_text="Lowest position consistency allowed.")
    min_comparisons = serializers.IntegerField()
    n_comparisons = serializers.IntegerField(help_text="Pairs with a current human choice.")
    pinned = serializers.IntegerField(allow_null=True)
    excluded = serializers.ListField(child=serializers.IntegerField())
    chosen = serializers.IntegerField(allow_null=True, help_text="The chosen judge's id.")
    reason = serializers.CharField()
    candidates = PairwiseCandidateSerializer(many=True)


class AlignmentSerializer(serializers.Serializer):
    criteria = AlignmentCriterionSerializer(many=True)
    suite = AlignmentSuiteSerializer()
    n_grades = serializers.IntegerField()
    pairwise = PairwiseAlignmentSerializer(
        allow_null=True,
        help_text="Pairwise judges against human comparisons; null without either.",
    )


# -- suites ----------------------------------------------------------------------------------
class SuiteCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="",
        help_text="Left out: 'Report card' and the date.",
    )


class SuiteExportLinksSerializer(serializers.Serializer):
    json = serializers.CharField()
    py = serializers.CharField()


class SuiteSerializer(serializers.ModelSerializer):
    ffr = serializers.FloatField(source="false_failure_rate", allow_null=True)
    validators = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    export = serializers.SerializerMethodField()

    class Meta:
        model = Suite
        fields = [
            "id", "name", "coverage", "ffr", "n_grades", "validators", "created_by",
            "created_at", "export",
        ]

    @extend_schema_field(SuiteExportLinksSerializer)
    def get_export(self, suite: Suite) -> dict[str, str]:
        url = reverse("api-suite-export", args=[suite.pk])
        return {"json": f"{url}?format=json", "py": f"{url}?format=py"}


class SandboxStatusSerializer(serializers.Serializer):
    mode = serializers.CharField(help_text="namespaces, weak or unavailable")
    code_validators_enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_blank=True)
    weak_isolation_accepted = serializers.BooleanField()
    active_barriers = serializers.ListField(child=serializers.CharField())
    missing_barriers = serializers.ListField(child=serializers.CharField())
    problems = serializers.ListField(child=serializers.CharField())
    limits = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    timeout_seconds = serializers.FloatField(required=False)
    memory_mb = serializers.IntegerField(required=False)


class ExternalUploadSerializer(serializers.Serializer):
    """Schema only: multipart upload of judge verdicts (the view reads request.FILES)."""

    file = serializers.FileField(help_text="JSON Lines (.jsonl) or CSV (.csv), one verdict a row.")
    create_criteria = serializers.BooleanField(
        required=False, default=False, help_text="Create the criteria the file names that the project lacks.",
    )


class ExternalRecordsSerializer(serializers.Serializer):
    """Schema only: judge verdicts in the body, checked record by record by the service."""

    records = serializers.ListField(
        child=serializers.DictField(),
        help_text=(
            "One verdict each: validator, criterion?, the target (output_id; item_id and system; "
            "output_a_id and output_b_id; item_id with system_a and system_b; or item_id alone) "
            "and outcome, score (threshold?) or winner (score_a?, score_b?), raw?"
        ),
    )
    create_criteria = serializers.BooleanField(required=False, default=False)


class ImportedJudgeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    target = serializers.ChoiceField(choices=Target.choices)
    parent = serializers.IntegerField(
        allow_null=True, help_text="The version this import replaced (now archived), or null."
    )
    n_verdicts = serializers.IntegerField()


class ExternalImportResultSerializer(serializers.Serializer):
    validators = ImportedJudgeSerializer(many=True)
    criteria_created = serializers.ListField(child=serializers.CharField())
    message = serializers.CharField()
