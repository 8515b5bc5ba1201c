"""Search and filters over a project's outputs: the outputs page and the outputs API read them.

Every filter is read from untrusted GET parameters. A value that cannot be read is left out and
explained in `errors` (the page shows the messages, the API answers 400 with them); nothing a
client sends reaches the database unchecked, so no input can cause a 500.

Annotators grade blind: when `viewer` is given, the filters and summaries over human verdicts
read only that person's grades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict

from annotate.evidence import load_chosen_verdicts, load_output_verdicts
from annotate.labels import load_votes
from annotate.models import (
    Assignment,
    AssignmentStatus,
    Criterion,
    CriterionVersion,
    Grade,
    GradeCriterion,
    Output,
    Project,
)
from annotate.review.agenda import human_validator_differences
from annotate.review.targets import review_targets

HOLISTIC = "holistic"
HUMAN_VERDICTS = ("pass", "fail", "unsure")
VALIDATOR_OUTCOMES = ("pass", "fail", "error")
TRUTH = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
# Long enough for any real search; what is longer is a paste accident or an attack.
MAX_QUERY_CHARS = 300
MAX_WORDS = 12
MAX_VALUES = 20
MAX_VALUE_CHARS = 200
# websearch_to_tsquery with the English dictionary: "refunds" finds "refund", quotes keep a
# phrase, "-word" excludes, "or" alternates (the syntax of web search boxes).
SEARCH_CONFIG = "english"


@dataclass
class OutputFilters:
    """The filters as read: only values that were understood."""

    q: str = ""
    systems: list[str] = field(default_factory=list)
    labelled: bool | None = None
    human: list[tuple[str, str]] = field(default_factory=list)       # (criterion key or "holistic", verdict)
    validator: list[tuple[int, str]] = field(default_factory=list)   # (validator id, outcome)
    disagree: bool = False
    stale: bool = False
    skipped: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.systems or self.labelled is not None or self.human or self.validator
                    or self.disagree or self.stale or self.skipped)

    def as_query(self) -> QueryDict:
        """The filters as GET parameters, for page links that keep them."""
        query = QueryDict(mutable=True)
        if self.q:
            query["q"] = self.q
        query.setlist("system", self.systems)
        if self.labelled is not None:
            query["labelled"] = "yes" if self.labelled else "no"
        query.setlist("human", [f"{key}:{verdict}" for key, verdict in self.human])
        query.setlist("validator", [f"{pk}:{outcome}" for pk, outcome in self.validator])
        for flag in ("disagree", "stale", "skipped"):
            if getattr(self, flag):
                query[flag] = "1"
        return query


def _clean_text(value: str) -> str:
    # PostgreSQL refuses NUL in text; a NUL is never part of a real search.
    return value.replace("\x00", "").strip()


def _values(params: QueryDict, name: str, errors: list[str]) -> list[str]:
    values = [_clean_text(v) for v in params.getlist(name)]
    values = [v for v in values if v]
    if len(values) > MAX_VALUES:
        errors.append(f"Only the first {MAX_VALUES} '{name}' values are used.")
        values = values[:MAX_VALUES]
    kept = [v for v in values if len(v) <= MAX_VALUE_CHARS]
    if len(kept) < len(values):
        errors.append(f"A '{name}' value longer than {MAX_VALUE_CHARS} characters was ignored.")
    return list(dict.fromkeys(kept))


def _flag(params: QueryDict, name: str, errors: list[str]) -> bool | None:
    raw = _clean_text(params.get(name, ""))
    if not raw:
        return None
    value = TRUTH.get(raw.lower())
    if value is None:
        errors.append(f"'{name}' must be yes or no (1 / 0, true / false), not '{raw[:40]}'; ignored.")
    return value


def _pair(value: str) -> tuple[str, str]:
    key, _, verdict = value.rpartition(":")
    return key.strip(), verdict.strip().lower()


def read_filters(project: Project, params: QueryDict, errors: list[str], *, may_compare: bool) -> OutputFilters:
    filters = OutputFilters()
    q = _clean_text(params.get("q", ""))
    if len(q) > MAX_QUERY_CHARS:
        errors.append(f"The search was cut to its first {MAX_QUERY_CHARS} characters.")
        q = q[:MAX_QUERY_CHARS]
    filters.q = q
    filters.systems = _values(params, "system", errors)
    filters.labelled = _flag(params, "labelled", errors)

    keys = set(Criterion.objects.filter(project=project).values_list("key", flat=True))
    for value in _values(params, "human", errors):
        key, verdict = _pair(value)
        if verdict not in HUMAN_VERDICTS:
            errors.append(f"Human verdict '{value[:60]}' ignored: write criterion:pass, :fail or :unsure.")
        elif key != HOLISTIC and key not in keys:
            errors.append(f"Human verdict '{value[:60]}' ignored: no criterion '{key[:40]}' in this project.")
        else:
            filters.human.append((key, verdict))

    provider = load_output_verdicts()
    validator_ids = {v.id for v in provider.validators(project)} if provider else set()
    for value in _values(params, "validator", errors):
        raw_id, outcome = _pair(value)
        if not (raw_id.isascii() and raw_id.isdigit() and int(raw_id) in validator_ids):
            errors.append(f"Validator verdict '{value[:60]}' ignored: no validator #{raw_id[:20]} in this project.")
        elif outcome not in VALIDATOR_OUTCOMES:
            errors.append(f"Validator verdict '{value[:60]}' ignored: write id:pass, :fail or :error.")
        else:
            filters.validator.append((int(raw_id), outcome))

    for flag in ("disagree", "stale", "skipped"):
        setattr(filters, flag, bool(_flag(params, flag, errors)))
    if filters.disagree and not may_compare:
        errors.append("Only owners and reviewers can compare people's grades with the validators; "
                      "'disagree' was ignored.")
        filters.disagree = False
    return filters


def current_grades(project: Project, viewer=None) -> QuerySet:
    """Current, not retracted grades; only the viewer's when the viewer grades blind."""
    grades = Grade.objects.filter(project=project, superseded_by__isnull=True, retracted=False)
    return grades if viewer is None else grades.filter(annotator=viewer)


def text_search(outputs: QuerySet, q: str) -> QuerySet:
    """Outputs whose text, input, reference, external id or system match `q`: ranked full text
    on PostgreSQL, every word as a case-insensitive substring elsewhere."""
    if not q:
        return outputs
    if connection.vendor == "postgresql":
        vector = (
            SearchVector("text", weight="A", config=SEARCH_CONFIG)
            + SearchVector("sample__input_text", "sample__reference", weight="B", config=SEARCH_CONFIG)
            + SearchVector("sample__external_id", "system", weight="C", config=SEARCH_CONFIG)
        )
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        return (
            outputs.annotate(search=vector, rank=SearchRank(vector, query))
            .filter(search=query).order_by("-rank", "id")
        )
    for word in q.split()[:MAX_WORDS]:
        word = word.strip("\"'")
        excluded = word.startswith("-") and len(word) > 1
        word = word.lstrip("-") if excluded else word
        if not word:
            continue
        match = (
            Q(text__icontains=word) | Q(sample__input_text__icontains=word)
            | Q(sample__reference__icontains=word) | Q(sample__external_id__icontains=word)
            | Q(system__icontains=word)
        )
        outputs = outputs.exclude(match) if excluded else outputs.filter(match)
    return outputs


def _human_verdict(grades: QuerySet, key: str, verdict: str) -> Exists:
    if key == HOLISTIC:
        return Exists(grades.filter(output=OuterRef("pk"), verdict=verdict))
    return Exists(GradeCriterion.objects.filter(
        grade__in=grades.filter(output=OuterRef(OuterRef("pk"))), criterion__key=key, verdict=verdict,
    ))


def stale_condition(grades: QuerySet) -> Exists:
    """Some current grade of the output gave a criterion verdict under a version that a newer
    one has replaced (the Grade page's and the agenda's "stale")."""
    newer = CriterionVersion.objects.filter(
        criterion_id=OuterRef("criterion_id"), number__gt=OuterRef("criterion_version__number")
    )
    return Exists(GradeCriterion.objects.filter(
        grade__in=grades.filter(output=OuterRef(OuterRef("pk"))),
    ).filter(Exists(newer)))


def skipped_condition() -> Exists:
    return Exists(Assignment.objects.filter(output=OuterRef("pk"), status=AssignmentStatus.SKIPPED))


def disagreeing_output_ids(project: Project) -> set[int]:
    """Outputs whose human majority differs from the report card's chosen validator for the
    holistic verdict or some criterion (the agenda's comparison, adjudicated ones included)."""
    chosen = load_chosen_verdicts(project)
    if chosen is None or not chosen.by_criterion:
        return set()
    differences = human_validator_differences(load_votes(project), chosen, review_targets(project))
    return {output_id for output_id, _, _ in differences}


def apply_filters(project: Project, filters: OutputFilters, *, viewer=None) -> QuerySet:
    outputs = Output.objects.filter(project=project).select_related("sample").order_by("id")
    if filters.systems:
        outputs = outputs.filter(system__in=filters.systems)
    if filters.labelled is not None:
        labelled = Exists(current_grades(project).filter(output=OuterRef("pk")))
        outputs = outputs.filter(labelled if filters.labelled else ~labelled)
    grades = current_grades(project, viewer)
    for key, verdict in filters.human:
        outputs = outputs.filter(_human_verdict(grades, key, verdict))
    provider = load_output_verdicts()
    for validator_id, outcome in filters.validator:
        outputs = outputs.filter(pk__in=provider.outputs_with_verdict(project, validator_id, outcome))
    if filters.stale:
        outputs = outputs.filter(stale_condition(grades))
    if filters.skipped:
        outputs = outputs.filter(skipped_condition())
    if filters.disagree:
        outputs = outputs.filter(pk__in=sorted(disagreeing_output_ids(project)))
    return text_search(outputs, filters.q)


def outputs_matching(
    project: Project, params: QueryDict, *, viewer=None, may_compare: bool = True,
) -> tuple[QuerySet, OutputFilters, list[str]]:
    """(matching outputs, the filters understood, messages about what was ignored).
    `viewer`: read only this person's grades (an annotator grading blind)."""
    errors: list[str] = []
    filters = read_filters(project, params, errors, may_compare=may_compare)
    return apply_filters(project, filters, viewer=viewer), filters, errors

