"""Candidate validators, their verdicts and report cards (DESIGN §3, validators)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models import Criterion, Output, Project


class Provider(models.Model):
    """An OpenAI-compatible endpoint. The API key itself is never stored, only the name of
    the environment variable that holds it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="providers")
    name = models.CharField(max_length=64, default="default")
    base_url = models.URLField(max_length=500)
    model = models.CharField(max_length=200)
    api_key_env = models.CharField(max_length=100, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=8)
    timeout_seconds = models.FloatField(default=30.0)
    temperature = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="provider_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"


class ValidatorKind(models.TextChoices):
    """How a validator reaches its verdict (DESIGN §4.6)."""

    CODE = "code", "Code assertion or comparator"
    LLM = "llm", "LLM grader or pairwise judge"
    RATING = "rating", "LLM rating judge"
    EXTERNAL = "external", "Imported verdicts"


# Kinds that call a provider; the others never do.
PROVIDER_KINDS = (ValidatorKind.LLM, ValidatorKind.RATING)


class Target(models.TextChoices):
    """What a validator judges: one output (pass/fail against the human verdict) or a pair of
    outputs of the same input (a | b | tie against human comparisons)."""

    OUTPUT = "output", "One output"
    PAIR = "pair", "A pair of outputs"


class Origin(models.TextChoices):
    HUMAN = "human", "Written by a person"
    GENERATED = "generated", "Proposed by an LLM"
    IMPORTED = "imported", "Imported from a file"


class Validator(models.Model):
    """Immutable: editing creates a new validator whose `parent` is the old one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="validators")
    criterion = models.ForeignKey(
        Criterion, null=True, blank=True, on_delete=models.CASCADE, related_name="validators",
        help_text="Empty means the holistic verdict.",
    )
    kind = models.CharField(max_length=8, choices=ValidatorKind.choices)
    target = models.CharField(max_length=6, choices=Target.choices, default=Target.OUTPUT)
    name = models.CharField(max_length=200)
    # Empty for `external` validators: their verdicts were imported, they are never run.
    source = models.TextField(blank=True)
    # A numeric verdict passes at >= threshold. A scored validator without one (rating and
    # external judges) stores outcome `score` and the report card picks the threshold.
    threshold = models.FloatField(null=True, blank=True)
    # Regular expressions, one per line, tried before the defaults of validators.judging: for a
    # pairwise judge each captures a, b, c or tie; for a rating judge, the number.
    answer_patterns = models.TextField(blank=True)
    # A pairwise judge whose two orders disagree: a tie (True) or an error verdict (False).
    inconsistent_is_tie = models.BooleanField(default=True)
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="validators"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.HUMAN)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["code", "external"]) | Q(provider__isnull=False) | Q(archived=True),
                name="llm_validator_has_provider",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def patterns(self) -> list[str]:
        return [line for line in self.answer_patterns.splitlines() if line.strip()]


class Outcome(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    ERROR = "error", "Error"
    # A score from a validator without a threshold: pass or fail once the card picks one.
    SCORE = "score", "Scored"


class VerdictRecord(models.Model):
    """What one validator said about one output. Named VerdictRecord in Python to keep it
    apart from annotate.Verdict (the human verdict choices); the table is validators_verdict."""

    validator = models.ForeignKey(Validator, on_delete=models.CASCADE, related_name="verdicts")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="verdicts")
    outcome = models.CharField(max_length=5, choices=Outcome.choices)
    score = models.FloatField(null=True, blank=True)
    detail = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(null=True, blank=True)
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "validators_verdict"
        verbose_name = "verdict"
        constraints = [
            models.UniqueConstraint(fields=["validator", "output"], name="one_verdict_per_output"),
        ]

    def __str__(self) -> str:
        return f"{self.validator_id} on {self.output_id}: {self.outcome}"


class Winner(models.TextChoices):
    A = "a", "A"
    B = "b", "B"
    TIE = "tie", "Tie"
    ERROR = "error", "Error"


class PairVerdict(models.Model):
    """What a pairwise validator said about two outputs of the same input. Stored once per
    unordered pair, in canonical order (output_a has the lower id); `winner` is in that order.
    A judge is asked in both orders (DESIGN §4.6): `first_*` is its answer with output_a shown
    first, `second_*` with output_b shown first, its winner already mapped back to the
    canonical order. Write-once, like verdicts: a retried error is deleted and stored again."""

    validator = models.ForeignKey(Validator, on_delete=models.CASCADE, related_name="pair_verdicts")
    output_a = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    output_b = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    winner = models.CharField(max_length=5, choices=Winner.choices)
    # Both orders read and they named different winners (winner is then tie or error).
    inconsistent = models.BooleanField(default=False)
    first_winner = models.CharField(max_length=5, blank=True, help_text="'' when unread or not asked.")
    second_winner = models.CharField(max_length=5, blank=True, help_text="'' when unread or not asked.")
    first_answer = models.TextField(blank=True)
    second_answer = models.TextField(blank=True)
    score_a = models.FloatField(null=True, blank=True)
    score_b = models.FloatField(null=True, blank=True)
    detail = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(null=True, blank=True)
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["validator", "output_a", "output_b"], name="one_verdict_per_pair"),
            models.CheckConstraint(condition=Q(output_a__lt=models.F("output_b")), name="pair_verdict_canonical_order"),
        ]

    def __str__(self) -> str:
        return f"{self.validator_id} on {self.output_a_id}/{self.output_b_id}: {self.winner}"


class VerdictHistory(models.Model):
    """An `error` verdict that a later run replaced: kept so that a provider outage, and what
    the grader answered during it, stays visible after the retry succeeded. Keyed by validator
    and output rather than by verdict row, because the retry stores a new row (verdict rows are
    write-once, which the in-memory verdict matrix relies on)."""

    validator = models.ForeignKey(Validator, on_delete=models.CASCADE, related_name="verdict_history")
    output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=5, choices=Outcome.choices)
    score = models.FloatField(null=True, blank=True)
    detail = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(null=True, blank=True)
    run = models.ForeignKey("Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stored_at = models.DateTimeField()
    replaced_by = models.ForeignKey(
        "Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-replaced_at", "-id"]
        verbose_name_plural = "verdict history"
        indexes = [models.Index(fields=["validator", "output"], name="verdict_history_cell")]

    def __str__(self) -> str:
        return f"{self.validator_id} on {self.output_id} was {self.outcome}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Run(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    validators = models.ManyToManyField(Validator, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Moved forward when the run is queued and each time it stores verdicts; a queued or running
    # run whose heartbeat is older than CONCORD_STALE_RUN_SECONDS is re-queued by the reaper.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.status})"

    @property
    def pending(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class CriterionSetting(models.Model):
    """An owner's overrides for one criterion's selection: ceiling, pinning, exclusions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    criterion = models.OneToOneField(
        Criterion, null=True, blank=True, on_delete=models.CASCADE, related_name="selection_setting"
    )
    ffr_ceiling = models.FloatField(null=True, blank=True)
    pinned = models.ForeignKey(
        Validator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    excluded = models.ManyToManyField(Validator, blank=True, related_name="+")
    include_stale = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(criterion__isnull=True),
                name="one_holistic_setting_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"selection settings for {self.criterion_id or 'holistic'}"


class PairwiseSetting(models.Model):
    """An owner's overrides for choosing the project's pairwise judge: the position-consistency
    floor (DESIGN §4.6, default 0.6), pinning and exclusions."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="pairwise_setting")
    consistency_floor = models.FloatField(null=True, blank=True)
    pinned = models.ForeignKey(
        Validator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    excluded = models.ManyToManyField(Validator, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"pairwise selection settings for {self.project_id}"


class Suite(models.Model):
    """A report card snapshot: the chosen validator per criterion with its metrics then."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="suites")
    name = models.CharField(max_length=200)
    snapshot = models.JSONField()
    validators = models.ManyToManyField(Validator, related_name="suites")
    coverage = models.FloatField(null=True)
    false_failure_rate = models.FloatField(null=True)
    n_grades = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CachedAnswer(models.Model):
    """An LLM grader's raw answer keyed by sha256(model, rendered prompt, parameters), so the same
    question is never paid for twice."""

    key = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=200)
    raw = models.TextField()
    tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key

