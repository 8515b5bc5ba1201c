"""The annotate domain (DESIGN §3): projects, members, samples, outputs, criteria, grades.

Grades and comparisons are append-only: an edit or an undo is a new row that supersedes the
previous one. The current grade of (output, annotator) is the row nobody supersedes.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from annotate.export_formats import EXPORT_FORMATS, export_format_choices
from annotate.selectors import selector_choices


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    UNSURE = "unsure", "Unsure"

    @classmethod
    def for_score(cls, score: float, pass_threshold: float) -> "Verdict":
        """A rating project's one rule: a score at or above the pass threshold passes."""
        return cls.PASS if score >= pass_threshold else cls.FAIL


class Scale(models.TextChoices):
    BINARY = "binary", "Pass / fail"
    RATING = "rating", "Rating scale"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    # Random, not both_goals: measured on the three dev files (30 seeds), both_goals needs more
    # labels than random to settle SummEval's validator choice (bench/LABEL_EFFICIENCY.md).
    default_selector = models.CharField(max_length=32, choices=selector_choices, default="random")
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many annotators grade each output.",
    )
    default_ffr_ceiling = models.FloatField(
        default=0.25, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    min_labels_per_class = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text="Human grades of each class (pass and fail) a validator needs before it can "
                  "be chosen.",
    )
    random_mix = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Probability ε that the next item is drawn uniformly at random.",
    )
    goal_balance = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="For the “Ranking and validator choice” selector: 1 spends grades only on the "
                  "system ranking, 0 only on choosing validators; in between, each grade goes to "
                  "the goal that gains more from it, the ranking’s gain weighted by this value "
                  "and the validators’ by one minus it (0.7 did best on held-out data).",
    )
    scale = models.CharField(max_length=8, choices=Scale.choices, default=Scale.BINARY)
    scale_min = models.FloatField(null=True, blank=True)
    scale_max = models.FloatField(null=True, blank=True)
    pass_threshold = models.FloatField(
        null=True, blank=True, help_text="On a rating scale, scores at or above pass."
    )
    annotators_may_edit_criteria = models.BooleanField(default=True)
    # Off by default: it changes who grades what, and a project may want wide single coverage
    # before any agreement (annotate.services.assignments.pool_output_ids).
    overlap_first = models.BooleanField(
        default=False, verbose_name="Complete overlap first",
        help_text="Outputs someone has already graded come before new ones until they have "
                  "as many annotators as the overlap asks, so agreement has something to measure.",
    )
    # EvalGen grades holistically and takes a pass to mean every criterion passed. Off by
    # default: then a criterion's labels are only the verdicts people gave for it (DESIGN §4.1).
    holistic_pass_implies_criteria = models.BooleanField(
        default=False, verbose_name="A holistic pass means every criterion passed",
        help_text=(
            "Where nobody gave a verdict for a criterion, count a holistic pass as a pass for it. "
            "Such labels are inferred: counted apart, and marked in exports. A holistic fail "
            "implies nothing."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scale="binary") | Q(pass_threshold__isnull=False),
                name="rating_scale_has_pass_threshold",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The one home of the settings rules: forms, the API's serializers and the services all
        # reach it through full_clean(). The check constraint above is the database's own guard.
        if self.scale == Scale.RATING and self.pass_threshold is None:
            raise ValidationError({"pass_threshold": "A rating scale needs a pass threshold."})


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} · {self.project}"


class Sample(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
    external_id = models.CharField(max_length=255)
    input_text = models.TextField()
    context = models.JSONField(null=True, blank=True)
    # None means the input has no reference at all, which differs from an empty one.
    reference = models.TextField(null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="sample_external_id_unique_in_project"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Output(models.Model):
    # project is denormalised from sample so that per-project scans never join samples.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="outputs")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="outputs")
    system = models.CharField(max_length=200)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sample", "system"], name="one_output_per_system"),
        ]
        indexes = [models.Index(fields=["project", "system"])]

    def __str__(self) -> str:
        return f"{self.sample.external_id} · {self.system}"


# Keys keep the case datasets use (FRANK's "RelE", "EntE"), so imported labels map back.
key_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", "Use letters, digits, '_' and '-' (no spaces)."
)


class Criterion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="criteria")
    key = models.CharField(max_length=64, validators=[key_validator])
    position = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="criterion_key_unique"),
        ]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return self.key


class CriterionVersion(models.Model):
    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    definition = models.TextField()
    reason = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_in = models.ForeignKey(
        "ReviewMeeting", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="criterion_versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["criterion_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["criterion", "number"], name="version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.criterion.key} v{self.number}"


class Grade(models.Model):
    """One human judgement of one output. Never updated; see module docstring."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="grades")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="grades")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grades"
    )
    # A retraction (undo) carries no verdict: the output is ungraded again for this annotator.
    retracted = models.BooleanField(default=False)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    score = models.FloatField(null=True, blank=True)
    note = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    selector = models.CharField(max_length=32, blank=True)
    selector_why = models.CharField(max_length=300, blank=True)
    selector_probability = models.FloatField(null=True, blank=True)
    # The pool the item was drawn from: 1 / (pool × probability) is its importance weight.
    selector_pool_size = models.PositiveIntegerField(null=True, blank=True)
    assignment = models.ForeignKey(
        "Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="grades"
    )
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            # The chain of versions for (output, annotator) has exactly one start.
            models.UniqueConstraint(
                fields=["output", "annotator"], condition=Q(supersedes__isnull=True),
                name="one_first_grade_per_output_annotator",
            ),
            models.CheckConstraint(
                condition=Q(retracted=True, verdict="") | Q(retracted=False) & ~Q(verdict=""),
                name="grade_has_verdict_unless_retracted",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "annotator", "submitted_at"]),
            models.Index(fields=["project", "output"]),
        ]

    def __str__(self) -> str:
        return f"{self.output_id} by {self.annotator_id}: {self.verdict or 'retracted'}"


class GradeCriterion(models.Model):
    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="criterion_verdicts")
    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="+")
    criterion_version = models.ForeignKey(
        CriterionVersion, on_delete=models.PROTECT, related_name="grade_verdicts"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    score = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["grade", "criterion"], name="one_verdict_per_criterion"),
        ]

    def __str__(self) -> str:
        return f"{self.criterion_id}: {self.verdict}"


class Choice(models.TextChoices):
    A = "a", "A (left)"
    B = "b", "B (right)"
    TIE = "tie", "Tie"


class Comparison(models.Model):
    """A three-alternative forced choice. output_a is what was shown on the left."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="comparisons")
    output_a = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    output_b = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    # True when the left/right order shown differs from the order the pair was proposed in.
    swapped = models.BooleanField(default=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comparisons"
    )
    retracted = models.BooleanField(default=False)
    choice = models.CharField(max_length=4, choices=Choice.choices, blank=True)
    note = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    selector = models.CharField(max_length=32, blank=True)
    selector_why = models.CharField(max_length=300, blank=True)
    selector_probability = models.FloatField(null=True, blank=True)
    # The pool the item was drawn from: 1 / (pool × probability) is its importance weight.
    selector_pool_size = models.PositiveIntegerField(null=True, blank=True)
    assignment = models.ForeignKey(
        "Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="comparisons"
    )
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(output_a=models.F("output_b")), name="comparison_of_two_outputs"
            ),
            models.CheckConstraint(
                condition=Q(retracted=True, choice="") | Q(retracted=False) & ~Q(choice=""),
                name="comparison_has_choice_unless_retracted",
            ),
        ]
        indexes = [models.Index(fields=["project", "annotator", "submitted_at"])]

    def __str__(self) -> str:
        return f"{self.output_a_id} vs {self.output_b_id}: {self.choice or 'retracted'}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Claimed"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released"


class Assignment(models.Model):
    """A claim of an output (or a pair of outputs) by one annotator, with an expiry.

    `slot` numbers the claims of one output from 0 to overlap-1; the partial unique constraint
    over live and submitted claims is what makes claiming race-free on every database.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="assignments")
    output_b = models.ForeignKey(
        Output, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    slot = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    selector = models.CharField(max_length=32)
    why = models.CharField(max_length=300, blank=True)
    probability = models.FloatField(null=True, blank=True)
    pool_size = models.PositiveIntegerField(null=True, blank=True)
    # Items sent back for re-grading by a review decision jump the queue.
    priority = models.SmallIntegerField(default=0)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["output", "slot"],
                condition=Q(status__in=["active", "submitted"], output_b__isnull=True),
                name="one_live_claim_per_output_slot",
            ),
            models.UniqueConstraint(
                fields=["output", "annotator"],
                condition=Q(status__in=["active", "submitted"], output_b__isnull=True),
                name="one_live_claim_per_output_annotator",
            ),
            models.UniqueConstraint(
                fields=["annotator", "project"],
                condition=Q(status="active"),
                name="one_active_claim_per_annotator",
            ),
        ]
        indexes = [models.Index(fields=["project", "status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.output_id} → {self.annotator_id} ({self.status})"


class ReviewMeeting(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="meetings")
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    attendees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.title


class DecisionKind(models.TextChoices):
    NEW_VERSION = "new_version", "Publish a criterion version"
    REGRADE = "regrade", "Send outputs back for re-grading"
    NOTE = "note", "Record a decision"


class Decision(models.Model):
    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=16, choices=DecisionKind.choices)
    text = models.TextField()
    criterion_version = models.ForeignKey(
        CriterionVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outputs = models.ManyToManyField(Output, blank=True, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class Adjudication(models.Model):
    """A reviewer's decision on an output's gold label, its own record beside the grades."""

    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="adjudications")
    criterion = models.ForeignKey(
        Criterion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    meeting = models.ForeignKey(
        ReviewMeeting, null=True, blank=True, on_delete=models.SET_NULL, related_name="adjudications"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.output_id}: {self.verdict}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Export(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=32, default="gold_labels")
    format = models.CharField(max_length=8, choices=export_format_choices)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=8, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    file = models.FileField(upload_to="exports/", blank=True)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved forward when the export is queued and while it writes; the reaper re-queues a
    # queued or running export whose heartbeat is older than CONCORD_STALE_RUN_SECONDS.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}.{self.format} #{self.pk}"

    @property
    def unit(self) -> str:
        """What `rows` counts: rows, or lines for JSON Lines."""
        return EXPORT_FORMATS[self.format].unit

    @property
    def pending(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)



class OutputEmbeddings(models.Model):
    """The project's output embeddings as one float32 matrix (rows follow `output_ids`),
    computed by a Celery task for the diversity and MAD-systems selectors."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="embeddings")
    method = models.CharField(max_length=64, default="tfidf-svd")
    dimensions = models.PositiveSmallIntegerField()
    output_ids = models.BinaryField()
    vectors = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "method"], name="one_embedding_set_per_method"),
        ]

    def __str__(self) -> str:
        return f"{self.method} embeddings of {self.project_id}"


# -- Review meetings: the agenda a meeting steps through, and outputs sent back ---------------
class AgendaKind(models.TextChoices):
    CRITERION_CHANGED = "criterion_changed", "Definition changed since the last meeting"
    DISAGREEMENT = "disagreement", "Annotators disagree"
    VALIDATOR = "validator", "Humans and the chosen validator disagree"
    NEW_CRITERION = "new_criterion", "Notes mention a criterion that does not exist"


class ReviewAgendaItem(models.Model):
    """One step of a meeting's agenda. The agenda is built from the data when the meeting
    starts and frozen, so that stepping through it stays stable while the meeting's own
    decisions (adjudications, new versions) change the data underneath."""

    meeting = models.ForeignKey(
        ReviewMeeting, on_delete=models.CASCADE, related_name="agenda_items"
    )
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=AgendaKind.choices)
    output = models.ForeignKey(
        Output, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    criterion = models.ForeignKey(
        Criterion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["meeting_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "position"], name="agenda_position_unique_in_meeting"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meeting_id}#{self.position}: {self.title}"


class RegradeRequest(models.Model):
    """An output sent back for re-grading by a review decision. Open until `overlap`
    annotators have graded the output after the request was made, or until cancelled; while
    open, the output's earlier graders get it before any other item
    (annotate.services.review.regrade_candidates)."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="regrade_requests"
    )
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="regrade_requests")
    criterion = models.ForeignKey(
        Criterion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    decision = models.ForeignKey(
        Decision, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="regrade_requests",
    )
    reason = models.CharField(max_length=500)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["project", "cancelled_at", "created_at"])]

    def __str__(self) -> str:
        return f"re-grade {self.output_id}: {self.reason[:40]}"


class CriterionStatusChange(models.Model):
    """Append-only record of retiring a criterion and restoring it: who, when and why, as a
    CriterionVersion records it for a refinement. `Criterion.archived` is the current state."""

    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="status_changes")
    archived = models.BooleanField()
    reason = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["criterion_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.criterion_id} {'retired' if self.archived else 'restored'}"


class OutputAssignee(models.Model):
    """An output assigned by hand to one annotator (annotate.services.output_actions). While
    not cancelled it comes first in that annotator's queue, after re-grades, and holds a slot of
    the project's overlap for them: others get the output only while the slots left over by its
    graders, live claims and waiting assignees allow. Cancelling keeps the row (who and when)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="output_assignees")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="assignees")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="output_assignments"
    )
    reason = models.CharField(max_length=500, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["output", "annotator"], condition=Q(cancelled_at__isnull=True),
                name="one_open_assignee_per_output_annotator",
            ),
        ]
        indexes = [models.Index(fields=["project", "cancelled_at"])]

    def __str__(self) -> str:
        return f"{self.output_id} assigned to {self.annotator_id}"


class OutputExclusion(models.Model):
    """An output left out of sampling: no queue serves it (single or pair) until it is
    restored. It stays in the data, the exports and the matrix. Restoring sets `restored_at`;
    excluding again is a new row, so the history of who did what and why is kept."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="output_exclusions")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="exclusions")
    reason = models.CharField(max_length=500)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["output"], condition=Q(restored_at__isnull=True),
                name="one_open_exclusion_per_output",
            ),
        ]
        indexes = [models.Index(fields=["project", "restored_at"])]

    def __str__(self) -> str:
        return f"{self.output_id} excluded: {self.reason[:40]}"
