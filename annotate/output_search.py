"""Search and filters over a project's outputs: the outputs page and the outputs API read them.

Every filter is read from untrusted GET parameters. A value that cannot be read is left out and
explained in `errors` (the page shows the messages, the API answers 400 with them); nothing a
client sends reaches the database unchecked, so no input can cause a 500.

Annotators grade blind: when `viewer` is given, the filters and summaries over human verdicts
read only that person's grades.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connection
from django.db.models import Exists, Expression, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
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
    OutputAssignee,
    OutputExclusion,
    Project,
    Sample,
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
# The English dictionary: "refunds" finds "refund". Migration 0012's documents use it too.
SEARCH_CONFIG = "english"
RANK_LIMIT = 2000


# Yes/no filters read from "1"/"yes"/...; excluded and assigned are the bulk actions' marks.
FLAGS = ("disagree", "stale", "skipped", "excluded", "assigned")


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
    excluded: bool = False
    assigned: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.systems or self.labelled is not None or self.human or self.validator
                    or self.disagree or self.stale or self.skipped or self.excluded or self.assigned)

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
        for flag in FLAGS:
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

    for flag in FLAGS:
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


@dataclass(frozen=True)
class SearchTerm:
    text: str
    excluded: bool = False
    phrase: bool = False


def search_terms(q: str) -> list[list[SearchTerm]]:
    """Web-search syntax read the same way on every database: groups that must all match,
    each a list of alternatives (`or` between two terms); "a phrase" in quotes; -word excludes."""
    groups: list[list[SearchTerm]] = []
    alternative = False
    for token in re.findall(r'-?"[^"]*"?|\S+', q)[:MAX_WORDS * 2]:
        if token.lower() == "or" and groups:
            alternative = True
            continue
        excluded = token.startswith("-") and len(token) > 1
        token = token[1:] if excluded else token
        phrase = token.startswith('"')
        text = " ".join(token.strip('"').split())
        if not text.strip("-"):
            continue
        term = SearchTerm(text, excluded, phrase)
        if alternative and not excluded:
            groups[-1].append(term)
        else:
            groups.append([term])
        alternative = False
    return groups[:MAX_WORDS]


class SearchDocument(Expression):
    """The stored tsvector column `search_document` that migration 0012 adds to outputs and
    samples on PostgreSQL (generated by the database, so not a model field), read on the
    table of the query it is compiled in, whatever alias a subquery gives that table."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return f"{table}.search_document", []


def _lexeme_counts(terms: list[SearchTerm]) -> list[int]:
    """How many lexemes each term leaves once the dictionary has read it: 0 for stop words
    ("the", "is"), which websearch_to_tsquery leaves out rather than matching nothing."""
    functions = [
        f"numnode({'phraseto_tsquery' if t.phrase else 'plainto_tsquery'}('{SEARCH_CONFIG}'::regconfig, %s))"
        for t in terms
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(functions)}", [t.text for t in terms])
        return list(cursor.fetchone())


def _postgres_match(term: SearchTerm) -> Q:
    query = SearchQuery(term.text, config=SEARCH_CONFIG, search_type="phrase" if term.phrase else "plain")
    # The output's own stored document, or its sample's through the sample index. Measured on
    # 100,000 outputs: as fast as an output-id subquery for a rare word, twice as fast for a
    # common one (no hash of 100,000 ids to build).
    samples = Sample.objects.alias(document=SearchDocument()).filter(document=query).values("id")
    return Q(document=query) | Q(sample_id__in=samples)


def _substring_match(term: SearchTerm) -> Q:
    word = term.text
    return (
        Q(text__icontains=word) | Q(sample__input_text__icontains=word)
        | Q(sample__reference__icontains=word) | Q(sample__external_id__icontains=word)
        | Q(system__icontains=word)
    )


def text_search(outputs: QuerySet, q: str) -> QuerySet:
    """Outputs matching `q` (search_terms) in their text, input, reference, external id or
    system. PostgreSQL: each term through the English dictionary ("refunds" finds "refund")
    against the stored, GIN-indexed documents, ranked by relevance when few enough match to
    rank; elsewhere each term is a case-insensitive substring."""
    groups = search_terms(q)
    if not groups:
        return outputs
    postgres = connection.vendor == "postgresql"
    if postgres:
        terms = [term for group in groups for term in group]
        known = {term for term, n in zip(terms, _lexeme_counts(terms), strict=True) if n}
        groups = [[t for t in group if t in known] for group in groups]
        groups = [group for group in groups if group]
        if not groups:
            return outputs
        outputs = outputs.alias(document=SearchDocument())
    match = _postgres_match if postgres else _substring_match
    for group in groups:
        condition = Q()
        for term in group:
            condition |= ~match(term) if term.excluded else match(term)
        outputs = outputs.filter(condition)
    if postgres:
        wanted = " ".join(f'"{t.text}"' if t.phrase else t.text for g in groups for t in g if not t.excluded)
        # Ranking reads every match's document; past RANK_LIMIT matches the order is by id.
        if wanted and not outputs.values("pk")[RANK_LIMIT:RANK_LIMIT + 1].exists():
            query = SearchQuery(wanted, config=SEARCH_CONFIG, search_type="websearch")
            outputs = outputs.annotate(rank=SearchRank(SearchDocument(), query)).order_by("-rank", "id")
    return outputs


# Each filter below is an uncorrelated `pk IN (subquery)`: the database computes the set once.
# The correlated EXISTS they replace ran once per output and took over a minute on 100,000.
def _criterion_verdicts(grades: QuerySet) -> QuerySet:
    return GradeCriterion.objects.filter(grade__in=grades.values("id"))


def human_verdict_outputs(grades: QuerySet, key: str, verdict: str) -> QuerySet:
    """Ids of outputs with a current grade giving `verdict` for `key` (or the holistic verdict)."""
    if key == HOLISTIC:
        return grades.filter(verdict=verdict).values("output_id")
    return _criterion_verdicts(grades).filter(criterion__key=key, verdict=verdict).values("grade__output_id")


def stale_outputs(grades: QuerySet) -> QuerySet:
    """Ids of outputs where a current grade gave a criterion verdict under a version that a
    newer one has replaced (the Grade page's and the agenda's "stale")."""
    newer = CriterionVersion.objects.filter(
        criterion_id=OuterRef("criterion_id"), number__gt=OuterRef("criterion_version__number")
    )
    return _criterion_verdicts(grades).filter(Exists(newer)).values("grade__output_id")


def skipped_outputs(project: Project) -> QuerySet:
    return Assignment.objects.filter(project=project, status=AssignmentStatus.SKIPPED).values("output_id")


def disagreeing_output_ids(project: Project) -> set[int]:
    """Outputs whose human majority differs from the report card's chosen validator for the
    holistic verdict or some criterion (the agenda's comparison, adjudicated ones included)."""
    chosen = load_chosen_verdicts(project)
    if chosen is None or not chosen.by_criterion:
        return set()
    differences = human_validator_differences(load_votes(project), chosen, review_targets(project))
    return {output_id for output_id, _, _ in differences}


def _id_list(ids: set[int]) -> RawSQL:
    """Ids computed in Python as a subquery bound to one parameter: a plain `pk__in` list
    takes a bind variable per id, and SQLite refuses more than 32,766 in one statement."""
    ordered = sorted(int(i) for i in ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ordered,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ordered),))


def apply_filters(project: Project, filters: OutputFilters, *, viewer=None) -> QuerySet:
    outputs = Output.objects.filter(project=project).select_related("sample").order_by("id")
    if filters.systems:
        outputs = outputs.filter(system__in=filters.systems)
    if filters.labelled is not None:
        labelled = Q(pk__in=current_grades(project).values("output_id"))
        outputs = outputs.filter(labelled if filters.labelled else ~labelled)
    grades = current_grades(project, viewer)
    for key, verdict in filters.human:
        outputs = outputs.filter(pk__in=human_verdict_outputs(grades, key, verdict))
    provider = load_output_verdicts()
    for validator_id, outcome in filters.validator:
        outputs = outputs.filter(pk__in=provider.outputs_with_verdict(project, validator_id, outcome))
    if filters.stale:
        outputs = outputs.filter(pk__in=stale_outputs(grades))
    if filters.skipped:
        outputs = outputs.filter(pk__in=skipped_outputs(project))
    if filters.excluded:
        outputs = outputs.filter(pk__in=OutputExclusion.objects.filter(
            project=project, restored_at__isnull=True).values("output_id"))
    if filters.assigned:
        outputs = outputs.filter(pk__in=OutputAssignee.objects.filter(
            project=project, cancelled_at__isnull=True).values("output_id"))
    if filters.disagree:
        outputs = outputs.filter(pk__in=_id_list(disagreeing_output_ids(project)))
    return text_search(outputs, filters.q)


def outputs_matching(
    project: Project, params: QueryDict, *, viewer=None, may_compare: bool = True,
) -> tuple[QuerySet, OutputFilters, list[str]]:
    """(matching outputs, the filters understood, messages about what was ignored).
    `viewer`: read only this person's grades (an annotator grading blind)."""
    errors: list[str] = []
    filters = read_filters(project, params, errors, may_compare=may_compare)
    return apply_filters(project, filters, viewer=viewer), filters, errors

