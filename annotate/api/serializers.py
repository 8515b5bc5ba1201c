"""Parsing and shaping only: no serializer here writes (the views call annotate.services)."""

from __future__ import annotations

import copy

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.models import (
    Assignment,
    Choice,
    Comparison,
    Criterion,
    CriterionVersion,
    Grade,
    Output,
    Project,
    Role,
    Sample,
    Scale,
    Verdict,
    key_validator,
)
from annotate.selectors import SELECTORS

# Names only (no labels): the schema then names this enum apart from the settings' one.
SELECTOR_NAMES = list(SELECTORS)
SETTINGS_FIELDS = [
    "default_selector", "overlap", "default_ffr_ceiling", "min_labels_per_class", "random_mix",
    "goal_balance", "scale", "scale_min", "scale_max", "pass_threshold", "annotators_may_edit_criteria",
    "holistic_pass_implies_criteria", "overlap_first",
]


# -- projects --------------------------------------------------------------------------------
class ProjectSettingsSerializer(serializers.ModelSerializer):
    """The project's grading and selection settings (DESIGN §3); limits come from the model."""

    class Meta:
        model = Project
        fields = SETTINGS_FIELDS

    def validate(self, attrs: dict) -> dict:
        # A ModelSerializer does not run the model's clean(), where the rules between settings
        # live; run it here so the answer names the field under "settings". On PATCH the other
        # half of a pair may be the stored value.
        current = self.parent.instance if self.parent is not None else None
        probe = copy.copy(current) if current is not None else Project()
        for name, value in attrs.items():
            setattr(probe, name, value)
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(
        max_length=80, required=False, allow_blank=True, default="",
        help_text="Derived from the name when left out.",
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    settings = ProjectSettingsSerializer(required=False)


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    settings = ProjectSettingsSerializer(required=False, partial=True)


class ProjectCountsSerializer(serializers.Serializer):
    samples = serializers.IntegerField()
    outputs = serializers.IntegerField()
    systems = serializers.IntegerField()
    criteria = serializers.IntegerField()
    grades = serializers.IntegerField()
    graded_outputs = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    target = serializers.IntegerField()
    progress_percent = serializers.FloatField()


class ProjectSummarySerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "role", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices))
    def get_role(self, project: Project) -> str:
        # Staff see every project and act as its owner (annotate.access.role_in).
        return self.context.get("roles", {}).get(project.pk, Role.OWNER)


class ProjectDetailSerializer(ProjectSummarySerializer):
    settings = ProjectSettingsSerializer(source="*", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta(ProjectSummarySerializer.Meta):
        fields = [*ProjectSummarySerializer.Meta.fields, "guidelines", "settings", "counts"]

    @extend_schema_field(ProjectCountsSerializer)
    def get_counts(self, project: Project) -> dict:
        counts = self.context["counts"]
        return {**ProjectCountsSerializer(counts).data}


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_username(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise serializers.ValidationError(f"No user named '{username}'.")
        return user

    def to_representation(self, membership) -> dict:
        return {"username": membership.user.get_username(), "role": membership.role}


# -- import ----------------------------------------------------------------------------------
class ImportUploadSerializer(serializers.Serializer):
    """Schema only: multipart upload (the view reads request.FILES)."""

    file = serializers.FileField(help_text="JSON Lines (.jsonl), CSV (.csv) or Parquet (.parquet).")


class ImportRecordsSerializer(serializers.Serializer):
    """Schema only: records in the body, validated line by line by the import service."""

    records = serializers.ListField(
        child=serializers.DictField(), help_text="Per-output or pairwise records (data README)."
    )


class ImportResultSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="per_output or pairwise")
    records = serializers.IntegerField()
    samples = serializers.IntegerField()
    outputs = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Outputs already imported, left alone.")
    grades = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    criteria_created = serializers.ListField(child=serializers.CharField())
    message = serializers.CharField()


# -- outputs ---------------------------------------------------------------------------------
class SampleSerializer(serializers.ModelSerializer):
    input = serializers.CharField(source="input_text")

    class Meta:
        model = Sample
        fields = ["id", "external_id", "input", "reference", "context", "metadata"]


class OutputSerializer(serializers.ModelSerializer):
    sample = SampleSerializer()

    class Meta:
        model = Output
        fields = ["id", "system", "text", "metadata", "sample", "created_at"]


class BlindOutputSerializer(serializers.ModelSerializer):
    """An output as shown to a grader: without its system name, as on the grading page."""

    sample = SampleSerializer()

    class Meta:
        model = Output
        fields = ["id", "text", "metadata", "sample"]


# -- criteria --------------------------------------------------------------------------------
class CriterionVersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CriterionVersion
        fields = ["number", "name", "definition", "reason", "author", "decided_in", "created_at"]


class CriterionSerializer(serializers.ModelSerializer):
    versions = CriterionVersionSerializer(many=True, read_only=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = Criterion
        fields = ["key", "position", "archived", "current", "versions", "created_at"]

    @extend_schema_field(CriterionVersionSerializer(allow_null=True))
    def get_current(self, criterion: Criterion) -> dict | None:
        versions = list(criterion.versions.all())
        return CriterionVersionSerializer(versions[-1]).data if versions else None


class CriterionCreateSerializer(serializers.Serializer):
    key = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", validators=[key_validator],
        help_text="Lower-case letters, digits, '_' and '-'; derived from the name when left out.",
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    definition = serializers.CharField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        if not attrs["key"] and not attrs["name"].strip():
            raise serializers.ValidationError({"name": "Give the criterion a name or a key."})
        return attrs


class CriterionVersionCreateSerializer(serializers.Serializer):
    definition = serializers.CharField()
    reason = serializers.CharField(max_length=500, help_text="One line: why the definition changes.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


# -- the queue -------------------------------------------------------------------------------
class QueueNextSerializer(serializers.Serializer):
    selector = serializers.ChoiceField(
        choices=SELECTOR_NAMES, required=False, allow_blank=True, default="",
        help_text="Left out: the project's default selector.",
    )
    mode = serializers.ChoiceField(choices=[("single", "single"), ("pair", "pair")], default="single")


class QueueItemSerializer(serializers.ModelSerializer):
    """A claim: `output` is set in single mode, `outputs` ([left, right]) in pair mode; the
    other one is null."""

    assignment = serializers.IntegerField(source="pk")
    mode = serializers.SerializerMethodField()
    output = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = [
            "assignment", "mode", "selector", "why", "probability", "claimed_at", "expires_at",
            "output", "outputs",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["single", "pair"]))
    def get_mode(self, assignment: Assignment) -> str:
        return "single" if assignment.output_b_id is None else "pair"

    @extend_schema_field(BlindOutputSerializer(allow_null=True))
    def get_output(self, assignment: Assignment) -> dict | None:
        if assignment.output_b_id is not None:
            return None
        return BlindOutputSerializer(assignment.output).data

    @extend_schema_field(BlindOutputSerializer(many=True, allow_null=True))
    def get_outputs(self, assignment: Assignment) -> list[dict] | None:
        if assignment.output_b_id is None:
            return None
        return BlindOutputSerializer([assignment.output, assignment.output_b], many=True).data


# -- grades and comparisons ------------------------------------------------------------------
class GradeSubmitSerializer(serializers.Serializer):
    output = serializers.IntegerField(help_text="An output of this project.")
    verdict = serializers.ChoiceField(
        choices=Verdict.choices, required=False, allow_blank=True, default="",
        help_text="May be left out on a rating-scale project when a score is given.",
    )
    criteria = serializers.DictField(
        child=serializers.ChoiceField(choices=Verdict.choices, allow_blank=True, allow_null=True),
        required=False, default=dict, help_text="Criterion key -> pass, fail or unsure.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")
    score = serializers.FloatField(required=False, allow_null=True, default=None)
    assignment = serializers.IntegerField(required=False, allow_null=True, default=None)
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class GradeSerializer(serializers.ModelSerializer):
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    criteria = serializers.SerializerMethodField()

    class Meta:
        model = Grade
        fields = [
            "id", "output", "annotator", "verdict", "score", "criteria", "note", "selector",
            "selector_why", "assignment", "supersedes", "started_at", "submitted_at",
        ]

    @extend_schema_field(serializers.DictField(child=serializers.ChoiceField(Verdict.choices)))
    def get_criteria(self, grade: Grade) -> dict[str, str]:
        return {
            v.criterion.key: v.verdict
            for v in grade.criterion_verdicts.select_related("criterion").order_by("criterion_id")
        }


class ComparisonSubmitSerializer(serializers.Serializer):
    output_a = serializers.IntegerField(help_text="The output shown on the left.")
    output_b = serializers.IntegerField(help_text="The output shown on the right.")
    choice = serializers.ChoiceField(choices=Choice.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    assignment = serializers.IntegerField(required=False, allow_null=True, default=None)
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ComparisonSerializer(serializers.ModelSerializer):
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Comparison
        fields = [
            "id", "output_a", "output_b", "annotator", "choice", "note", "swapped", "selector",
            "selector_why", "assignment", "supersedes", "started_at", "submitted_at",
        ]



# -- rankings (schema of annotate.ranking_queries.ProjectRanking.to_dict) ---------------------
RANKING_ESTIMATORS = ["naive", "random_stream", "ipw", "control_variate"]


# One named enum for the three fields that carry an estimator (else the schema names the same
# choice set three times and `spectacular --fail-on-warn` refuses it).
@extend_schema_field({"type": "string", "enum": RANKING_ESTIMATORS}, component_name="Estimator")
class EstimatorField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=RANKING_ESTIMATORS, **kwargs)


class RankingIntervalField(serializers.ListField):
    """[low, high] (95%), or null when undefined."""

    child = serializers.FloatField()


class RankingMeanScoreSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Outputs with a score.")
    estimate = serializers.FloatField(allow_null=True)
    ci = RankingIntervalField(allow_null=True, min_length=2, max_length=2,
                              help_text="Student-t 95% interval.")
    rank = serializers.IntegerField(allow_null=True)


class RankingSystemSerializer(serializers.Serializer):
    system = serializers.CharField()
    n = serializers.IntegerField(help_text="Labelled outputs the estimator used.")
    estimate = serializers.FloatField(allow_null=True, help_text="Pass rate.")
    ci = RankingIntervalField(allow_null=True, min_length=2, max_length=2,
                              help_text="Wilson 95% interval (at the effective sample size).")
    rank = serializers.IntegerField(allow_null=True, help_text="1 = highest; ties share a rank.")
    mean_score = RankingMeanScoreSerializer(
        allow_null=True, help_text="Rating-scale projects only; null on pass / fail projects."
    )


class RankingValidatorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SingleRankingSerializer(serializers.Serializer):
    estimator = EstimatorField()
    default_estimator = EstimatorField()
    estimators = serializers.ListField(
        child=EstimatorField(),
        help_text="The estimators usable on this project's data.",
    )
    scale = serializers.ChoiceField(choices=Scale.choices)
    n_labelled = serializers.IntegerField(help_text="Outputs with a majority pass / fail label.")
    n_with_probability = serializers.IntegerField(
        help_text="Labelled outputs whose draw recorded a selection probability."
    )
    n_random = serializers.IntegerField(help_text="Labelled outputs drawn by the ε-random stream.")
    control_validator = RankingValidatorSerializer(
        allow_null=True, help_text="The chosen holistic validator, when there is one."
    )
    systems = RankingSystemSerializer(many=True)


class BradleyTerrySystemSerializer(serializers.Serializer):
    system = serializers.CharField()
    score = serializers.FloatField(help_text="Log-strength; the mean over systems is 0.")
    ci = RankingIntervalField(allow_null=True, min_length=2, max_length=2,
                              help_text="Bootstrap 2.5 and 97.5 percentiles.")
    win_probability = serializers.FloatField(
        help_text="Modelled chance of beating a system of average strength."
    )
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    n = serializers.IntegerField(help_text="Comparisons the system took part in.")
    rank = serializers.IntegerField()


class EloRatingSerializer(serializers.Serializer):
    system = serializers.CharField()
    rating = serializers.FloatField()


class PairwiseRankingSerializer(serializers.Serializer):
    n_comparisons = serializers.IntegerField()
    n_bootstrap = serializers.IntegerField()
    bradley_terry = BradleyTerrySystemSerializer(many=True)
    elo = EloRatingSerializer(many=True, help_text="K = 4, in submission order; highest first.")


class RankingSerializer(serializers.Serializer):
    single = SingleRankingSerializer(
        allow_null=True, help_text="Null when no output has a label yet."
    )
    pairwise = PairwiseRankingSerializer(allow_null=True, help_text="Null without comparisons.")
