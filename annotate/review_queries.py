"""Reads for criteria-drift review (the review page, meeting mode and the API): agreement
tables, agreement over time, the criterion-version timeline, the agenda and meeting summaries.

Agreement (DESIGN §4.5) uses the labels of `annotate.labels`: each annotator's current grade,
stale criterion verdicts left out. ``unsure`` votes are left out as well (they carry no label,
as in the majority rule), so the coefficients are over pass/fail with two categories. Votes
inferred from a holistic pass (a project option) are left out too: agreement is about what
people said, and inferred votes would agree with each other by construction.

The agenda is built from the data, in this order, at most AGENDA_LIMIT items of each kind:

1. *criterion_changed*: criteria refined outside a meeting (a version newer than 1, not
   decided in a meeting) since the previous meeting started (ever, before the first meeting);
2. *disagreement*: outputs whose current votes hold both pass and fail for the holistic
   verdict or a criterion, not adjudicated for that target and not waiting to be re-graded;
   the closest splits first;
3. *validator*: outputs where the human majority (pass/fail) differs from the chosen
   validator's verdict, not already listed, adjudicated or waiting to be re-graded; most
   annotators first, and labels people gave before labels inferred from a holistic pass
   (marked "inferred" in the title and the detail);
4. *new_criterion*: terms in grade and comparison notes written since the previous meeting
   that name a criterion the project lacks (`proposed_criteria`).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from annotate.agreement import MISSING, agreement_summary, agreement_with_reference
from annotate.evidence import load_chosen_verdicts
from annotate.labels import (
    LABEL_FAIL,
    LABEL_PASS,
    LABEL_UNSURE,
    LabelVotes,
    inferred_outputs,
    load_votes,
    majority,
)
from annotate.models import (
    Adjudication,
    AgendaKind,
    Comparison,
    Criterion,
    CriterionVersion,
    Decision,
    DecisionKind,
    Grade,
    GradeCriterion,
    Output,
    Project,
    RegradeRequest,
    ReviewAgendaItem,
    ReviewMeeting,
)
from annotate.services.criteria import key_from_name

AGENDA_LIMIT = 20
HOLISTIC_NAME = "Holistic verdict"


# -- proposed criteria from notes (pure) ----------------------------------------------------
# A note names a criterion explicitly ("need a privacy criterion", "criterion for tone",
# "criterion: safety"; every note mentioning the term then counts for it), or a term recurs:
# a word of 4+ letters, not a stopword nor common grading vocabulary, in at least
# FREQUENT_MIN_NOTES notes by at least FREQUENT_MIN_AUTHORS annotators (the FREQUENT_LIMIT
# most frequent). Either way it is proposed only when no criterion's key or name matches it
# (`matches_existing`: the term's last word, or a shared stem of 6+ letters, so "grounding"
# matches "grounded" and "pii privacy" matches "privacy").
FREQUENT_MIN_NOTES = 3
FREQUENT_MIN_AUTHORS = 2
FREQUENT_LIMIT = 3
_WORD = r"[a-z][a-z\-]{2,}"
_EXPLICIT = [
    re.compile(rf"\b(?:a|an|the|new|own|separate)\s+({_WORD}(?:\s+{_WORD})?)\s+criteri(?:on|a)\b"),
    re.compile(rf"\bcriteri(?:on|a)\s+(?:for|about|on|called|named|like)\s+[\"'“]?({_WORD})"),
    re.compile(rf"\bcriterion\s*[:=]\s*[\"'“]?({_WORD})"),
]
_FILLER = {
    "new", "own", "separate", "specific", "dedicated", "extra", "additional", "proper",
    "missing", "better", "clear", "clearer", "real", "another", "different",
}
STOPWORDS = frozenset("""
a about above after again against all also although always am an and any are as at be
because been before being below between both but by can cannot could did do does doing done
down during each either else even ever every few for from further get gets got had has have
having he her here hers him his how however i if in into is isn it its itself just least less
like made make makes many may maybe me might more most much must my no nor not now of off often
on once only or other ought our out over own per quite rather really same says seem seems she
should since so some still such than that the their them then there these they thing things
this those though through thus to too under until up upon us very was we were what when where
whether which while who whom why will with within without would yet you your yours
answer answers answered response responses output outputs reply question questions input text
good bad wrong right correct incorrect fine okay ok great poor better worse best worst mostly
slightly somewhat little missing unclear clear sure unsure pass fails fail failed passes
passed grade graded grading criterion criteria note notes item items model system systems
reference says said user users customer customers need needs needed should would could
""".split())


def _normalise(word: str) -> str:
    word = word.lower().strip("-'\"“”")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _criterion_words(keys_and_names: list[str]) -> set[str]:
    words = set()
    for text in keys_and_names:
        for part in re.split(r"[\s_\-/]+", text.lower()):
            if part:
                words.add(_normalise(part))
    return words


def matches_existing(term: str, criterion_words: set[str]) -> bool:
    """A term names an existing criterion when its last word (the head of "data leakage")
    is a word of a criterion's key or name, or shares a 6-letter stem with one."""
    words = [_normalise(w) for w in term.split() if w not in _FILLER]
    if not words:
        return True
    head = words[-1]
    if head in criterion_words:
        return True
    return len(head) >= 6 and any(len(c) >= 6 and c[:6] == head[:6] for c in criterion_words)


@dataclass(frozen=True)
class NoteMention:
    text: str
    author: str
    output_id: int | None


@dataclass
class ProposedCriterion:
    term: str
    rule: str                       # "explicit" or "frequent"
    n_notes: int = 0
    authors: set[str] = field(default_factory=set)
    examples: list[NoteMention] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "term": self.term, "rule": self.rule, "n_notes": self.n_notes,
            "n_annotators": len(self.authors), "annotators": sorted(self.authors),
            "examples": [asdict(e) for e in self.examples],
        }


def _explicit_terms(text: str) -> list[str]:
    found = []
    lowered = text.lower()
    for pattern in _EXPLICIT:
        for match in pattern.finditer(lowered):
            words = [w for w in match.group(1).split() if w not in _FILLER]
            words = [w for w in words if w not in STOPWORDS]
            if words:
                found.append(" ".join(words))
    return found


def proposed_criteria(notes: list[NoteMention], criterion_texts: list[str]) -> list[ProposedCriterion]:
    """Terms in notes that look like criteria the project does not have (rule above)."""
    known = _criterion_words(criterion_texts)
    proposals: dict[str, ProposedCriterion] = {}
    frequent: dict[str, ProposedCriterion] = {}
    for note in notes:
        for term in _explicit_terms(note.text):
            if not matches_existing(term, known):
                proposals.setdefault(term, ProposedCriterion(term, "explicit"))
    # An explicitly named term counts every note that mentions it, named or not.
    for note in notes:
        lowered = note.text.lower()
        for term, entry in proposals.items():
            if re.search(rf"\b{re.escape(term)}", lowered):
                entry.n_notes += 1
                entry.authors.add(note.author)
                if len(entry.examples) < 3:
                    entry.examples.append(note)
        for word in dict.fromkeys(re.findall(r"[a-z]{4,}", note.text.lower())):
            term = _normalise(word)
            if term in STOPWORDS or word in STOPWORDS or matches_existing(term, known):
                continue
            entry = frequent.setdefault(term, ProposedCriterion(term, "frequent"))
            entry.n_notes += 1
            entry.authors.add(note.author)
            if len(entry.examples) < 3:
                entry.examples.append(note)
    explicit_terms = set(proposals)
    explicit_words = {w for t in explicit_terms for w in t.split()}
    recurring = [
        p for p in frequent.values()
        if p.n_notes >= FREQUENT_MIN_NOTES and len(p.authors) >= FREQUENT_MIN_AUTHORS
        and p.term not in explicit_words
    ]
    recurring.sort(key=lambda p: (-p.n_notes, -len(p.authors), p.term))
    ranked = sorted(proposals.values(), key=lambda p: (-p.n_notes, -len(p.authors), p.term))
    return ranked + recurring[:FREQUENT_LIMIT]


# -- targets and rating matrices ------------------------------------------------------------
@dataclass(frozen=True)
class ReviewTarget:
    criterion_id: int | None
    key: str | None
    name: str
    version: int | None
    definition: str = ""

    @property
    def label(self) -> str:
        return self.name if self.key is None else f"{self.name} (v{self.version})"


def review_targets(project: Project) -> list[ReviewTarget]:
    latest: dict[int, CriterionVersion] = {}
    for version in CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).order_by("number"):
        latest[version.criterion_id] = version
    targets = [ReviewTarget(None, None, HOLISTIC_NAME, None)]
    for criterion in Criterion.objects.filter(project=project, archived=False):
        version = latest.get(criterion.pk)
        if version is not None:
            targets.append(
                ReviewTarget(criterion.pk, criterion.key, version.name, version.number, version.definition)
            )
    return targets


def pass_fail_codes(votes: LabelVotes, criterion_id: int | None) -> np.ndarray:
    """Votes people gave as pass/fail codes, MISSING for unsure, stale and inferred."""
    codes = votes.given_codes(criterion_id).astype(np.int64)
    return np.where((codes == LABEL_PASS) | (codes == LABEL_FAIL), codes, MISSING)


def ratings_matrix(votes: LabelVotes, criterion_id: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(output ids, annotator ids, items x annotators matrix of 0 fail / 1 pass / MISSING),
    over outputs with at least one pass/fail vote."""
    codes = pass_fail_codes(votes, criterion_id)
    labelled = codes != MISSING
    output_ids = np.unique(votes.output_ids[labelled])
    annotator_ids = np.unique(votes.annotator_ids[labelled])
    matrix = np.full((output_ids.size, annotator_ids.size), MISSING, dtype=np.int64)
    rows = np.searchsorted(output_ids, votes.output_ids[labelled])
    cols = np.searchsorted(annotator_ids, votes.annotator_ids[labelled])
    matrix[rows, cols] = codes[labelled]
    return output_ids, annotator_ids, matrix


def _chosen_for(chosen, key: str | None, output_ids: np.ndarray) -> tuple[str, np.ndarray]:
    """The chosen validator's name and its pass/fail codes aligned to output_ids (MISSING
    where it has no verdict or an error)."""
    reference = np.full(output_ids.size, MISSING, dtype=np.int64)
    if chosen is None or key not in chosen.by_criterion or chosen.output_ids.size == 0:
        return "", reference
    _, name, codes = chosen.by_criterion[key]
    codes = np.asarray(codes, dtype=np.int64)
    rows = np.clip(np.searchsorted(chosen.output_ids, output_ids), 0, chosen.output_ids.size - 1)
    found = chosen.output_ids[rows] == output_ids
    picked = np.where(found, codes[rows], MISSING)
    reference[:] = np.where((picked == LABEL_PASS) | (picked == LABEL_FAIL), picked, MISSING)
    return name, reference


# -- agreement tables -----------------------------------------------------------------------
@dataclass(frozen=True)
class CriterionAgreement:
    key: str | None
    name: str
    version: int | None
    n_items: int
    n_items_multiply_rated: int
    n_annotators: int
    n_ratings: int
    percent_agreement: float | None
    cohen_kappa: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    gwet_ac1: float | None
    validator: str
    validator_n: int
    validator_percent_agreement: float | None
    validator_kappa: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def agreement_tables(project: Project, *, votes: LabelVotes | None = None, chosen=None) -> list[CriterionAgreement]:
    """Per target (holistic first, then criteria): inter-annotator agreement and annotators
    against the chosen validator. Undefined coefficients are None."""
    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    table = []
    for target in review_targets(project):
        output_ids, _, matrix = ratings_matrix(votes, target.criterion_id)
        summary = agreement_summary(matrix, n_categories=2)
        name, reference = _chosen_for(chosen, target.key, output_ids)
        versus = agreement_with_reference(matrix, reference) if matrix.size else None
        table.append(CriterionAgreement(
            key=target.key, name=target.name, version=target.version, n_items=summary.n_items,
            n_items_multiply_rated=summary.n_items_multiply_rated,
            n_annotators=summary.n_raters, n_ratings=summary.n_ratings,
            percent_agreement=summary.percent_agreement, cohen_kappa=summary.mean_cohen_kappa,
            fleiss_kappa=summary.fleiss_kappa, krippendorff_alpha=summary.krippendorff_alpha,
            gwet_ac1=summary.gwet_ac1, validator=name,
            validator_n=versus.n_pairs if versus else 0,
            validator_percent_agreement=versus.percent_agreement if versus else None,
            validator_kappa=versus.kappa if versus else None,
        ))
    return table


_NICE_BLOCKS = (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)


def block_size(n: int, max_points: int = 20) -> int:
    """The smallest round block that keeps the chart to `max_points` points."""
    for size in _NICE_BLOCKS:
        if size * max_points >= n:
            return size
    return int(math.ceil(n / max_points))


def agreement_over_time(
    project: Project, *, votes: LabelVotes | None = None, chosen=None, block: int | None = None,
) -> dict:
    """Agreement per block of `block` current grades in submission order (by default the smallest
    round block, 5 to 10,000 grades, that keeps the chart to 20 points). For each target:

    * ``annotators``: of the pairs (a grade in the block, another annotator's current vote on
      the same output), the share that agree; None without such pairs;
    * ``validator``: the share of the block's grades equal to the chosen validator's verdict.
    """
    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    # Grades are appended, so id order is submission order (up to transactions committing
    # a few milliseconds apart); only the last grade of each block is read, for its date.
    n = int(votes.grade_ids.size)
    block = block or block_size(n)
    order = np.argsort(votes.grade_ids, kind="stable")
    n_blocks = int(math.ceil(n / block)) if n else 0
    block_of = np.empty(n, dtype=np.int64)
    block_of[order] = np.arange(n) // block
    labels = [f"{i * block + 1}–{min((i + 1) * block, n)}" for i in range(n_blocks)]
    last_ids = [int(votes.grade_ids[order[min((i + 1) * block, n) - 1]]) for i in range(n_blocks)]
    submitted = dict(Grade.objects.filter(pk__in=last_ids).values_list("pk", "submitted_at"))
    dates = [submitted[pk].date().isoformat() for pk in last_ids]
    series = []
    outputs = np.unique(votes.output_ids)
    for target in review_targets(project):
        codes = pass_fail_codes(votes, target.criterion_id)
        rows = np.searchsorted(outputs, votes.output_ids)
        n_pass = np.bincount(rows[codes == LABEL_PASS], minlength=outputs.size)
        n_fail = np.bincount(rows[codes == LABEL_FAIL], minlength=outputs.size)
        labelled = codes != MISSING
        same = np.where(codes == LABEL_PASS, n_pass[rows], n_fail[rows]) - 1
        peers = n_pass[rows] + n_fail[rows] - 1
        agree = np.bincount(block_of[labelled], weights=same[labelled], minlength=n_blocks)
        pairs = np.bincount(block_of[labelled], weights=peers[labelled], minlength=n_blocks)
        name, reference = _chosen_for(chosen, target.key, votes.output_ids)
        compared = labelled & (reference != MISSING)
        hits = np.bincount(block_of[compared], weights=(codes == reference)[compared], minlength=n_blocks)
        totals = np.bincount(block_of[compared], minlength=n_blocks)
        series.append({
            "key": target.key or "", "name": target.label, "validator_name": name,
            "annotators": [None if p == 0 else round(float(a / p), 4) for a, p in zip(agree, pairs, strict=True)],
            "validator": [None if t == 0 else round(float(h / t), 4) for h, t in zip(hits, totals, strict=True)],
        })
    return {"block": block, "labels": labels, "dates": dates, "targets": series}


# -- timeline -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    version: CriterionVersion
    grades: int        # current grades with a verdict given under this version
    stale: int         # of those, the ones a newer version has made stale
    is_current: bool

    def to_dict(self) -> dict:
        v = self.version
        return {
            "criterion": v.criterion.key, "version": v.number, "name": v.name,
            "definition": v.definition, "reason": v.reason,
            "author": v.author.username if v.author else None,
            "created_at": v.created_at.isoformat(),
            "meeting": v.decided_in_id, "meeting_title": v.decided_in.title if v.decided_in else None,
            "grades": self.grades, "stale": self.stale, "is_current": self.is_current,
        }


def criterion_timeline(project: Project) -> list[TimelineEntry]:
    """Every criterion version, newest first, with the grades it carries."""
    versions = list(
        CriterionVersion.objects.filter(criterion__project=project)
        .select_related("criterion", "author", "decided_in")
        .order_by("-created_at", "-id")
    )
    latest: dict[int, int] = {}
    for v in versions:
        latest[v.criterion_id] = max(latest.get(v.criterion_id, 0), v.number)
    carried = dict(
        GradeCriterion.objects.filter(
            criterion__project=project, grade__superseded_by__isnull=True, grade__retracted=False,
        ).values("criterion_version_id").annotate(n=Count("id")).values_list("criterion_version_id", "n")
    )
    entries = []
    for v in versions:
        current = v.number == latest[v.criterion_id]
        n = carried.get(v.pk, 0)
        entries.append(TimelineEntry(v, n, 0 if current else n, current))
    return entries


# -- the agenda -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AgendaEntry:
    kind: str
    title: str
    output_id: int | None = None
    criterion_id: int | None = None
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def open_regrade_requests(project: Project):
    """Re-grading requests not cancelled and not yet answered by `overlap` fresh grades
    (current, not retracted, submitted at or after the request)."""
    fresh = (
        Grade.objects.filter(
            output_id=OuterRef("output_id"), submitted_at__gte=OuterRef("created_at"),
            superseded_by__isnull=True, retracted=False,
        )
        .order_by().values("output_id").annotate(n=Count("id")).values("n")
    )
    return (
        RegradeRequest.objects.filter(project=project, cancelled_at__isnull=True)
        .annotate(fresh=Coalesce(Subquery(fresh, output_field=IntegerField()), Value(0)))
        .filter(fresh__lt=project.overlap)
        .order_by("created_at", "id")
    )


def previous_meeting(project: Project, before: ReviewMeeting | None = None) -> ReviewMeeting | None:
    meetings = ReviewMeeting.objects.filter(project=project)
    if before is not None:
        meetings = meetings.exclude(pk=before.pk).filter(started_at__lte=before.started_at)
    return meetings.order_by("-started_at", "-id").first()


def _adjudicated(project: Project) -> set[tuple[int, int | None]]:
    return set(
        Adjudication.objects.filter(output__project=project).values_list("output_id", "criterion_id")
    )


def _output_names(output_ids) -> dict[int, str]:
    return {
        pk: f"{external_id} · {system}"
        for pk, external_id, system in Output.objects.filter(pk__in=list(output_ids))
        .values_list("pk", "sample__external_id", "system")
    }


def _changed_criteria(project: Project, since: datetime | None) -> list[AgendaEntry]:
    versions = CriterionVersion.objects.filter(
        criterion__project=project, criterion__archived=False
    ).select_related("criterion", "author", "decided_in").order_by("criterion__position", "criterion_id", "number")
    by_criterion: dict[int, list[CriterionVersion]] = defaultdict(list)
    for v in versions:
        by_criterion[v.criterion_id].append(v)
    entries = []
    for criterion_id, history in by_criterion.items():
        changed = [
            v for v in history
            if v.number > 1 and v.decided_in_id is None and (since is None or v.created_at > since)
        ]
        if not changed:
            continue
        before = [v for v in history if v.number < changed[0].number]
        latest = history[-1]
        entries.append(AgendaEntry(
            kind=AgendaKind.CRITERION_CHANGED,
            title=f"“{latest.name}” ({latest.criterion.key}) changed: "
                  f"v{changed[0].number - 1} → v{latest.number}",
            criterion_id=criterion_id,
            detail={
                "key": latest.criterion.key,
                "previous": {"number": before[-1].number, "name": before[-1].name,
                             "definition": before[-1].definition} if before else None,
                "versions": [
                    {"number": v.number, "name": v.name, "definition": v.definition,
                     "reason": v.reason, "author": v.author.username if v.author else "",
                     "created_at": v.created_at.isoformat(),
                     "meeting": v.decided_in.title if v.decided_in else ""}
                    for v in changed
                ],
            },
        ))
    return entries


def _disagreements(
    project: Project, votes: LabelVotes, targets: list[ReviewTarget], adjudicated,
    waiting: set[int], limit: int,
) -> list[AgendaEntry]:
    outputs = np.unique(votes.output_ids)
    splits: dict[int, list[dict]] = defaultdict(list)
    closeness: dict[int, float] = defaultdict(float)
    for target in targets:
        codes = votes.codes(target.criterion_id)
        rows = np.searchsorted(outputs, votes.output_ids)
        n_pass = np.bincount(rows[codes == LABEL_PASS], minlength=outputs.size)
        n_fail = np.bincount(rows[codes == LABEL_FAIL], minlength=outputs.size)
        n_unsure = np.bincount(rows[codes == LABEL_UNSURE], minlength=outputs.size)
        for i in np.flatnonzero((n_pass > 0) & (n_fail > 0)):
            output_id = int(outputs[i])
            if output_id in waiting or (output_id, target.criterion_id) in adjudicated:
                continue
            splits[output_id].append({
                "key": target.key, "name": target.name, "n_pass": int(n_pass[i]),
                "n_fail": int(n_fail[i]), "n_unsure": int(n_unsure[i]),
            })
            balance = min(n_pass[i], n_fail[i]) / (n_pass[i] + n_fail[i])
            closeness[output_id] = max(closeness[output_id], float(balance))
    ranked = sorted(splits, key=lambda o: (-closeness[o], -len(splits[o]), o))[:limit]
    names = _output_names(ranked)
    return [
        AgendaEntry(
            kind=AgendaKind.DISAGREEMENT, output_id=o,
            title=f"{names.get(o, o)}: annotators split on "
                  + ", ".join(t["key"] or "holistic" for t in splits[o]),
            detail={"targets": splits[o]},
        )
        for o in ranked
    ]


def _validator_disagreements(
    project: Project, votes: LabelVotes, chosen, targets: list[ReviewTarget], adjudicated,
    skip: set[int], limit: int,
) -> list[AgendaEntry]:
    if chosen is None:
        return []
    outputs = np.unique(votes.output_ids)
    n_votes = np.bincount(np.searchsorted(outputs, votes.output_ids), minlength=outputs.size)
    found: dict[int, list[dict]] = defaultdict(list)
    for target in targets:
        name, reference = _chosen_for(chosen, target.key, outputs)
        if not name:
            continue
        human = majority(outputs, votes.output_ids, votes.codes(target.criterion_id)).astype(np.int64)
        inferred = inferred_outputs(outputs, votes, target.criterion_id)
        differ = (human >= 0) & (reference != MISSING) & (human != reference)
        for i in np.flatnonzero(differ):
            output_id = int(outputs[i])
            if output_id in skip or (output_id, target.criterion_id) in adjudicated:
                continue
            found[output_id].append({
                "key": target.key, "name": target.name, "validator": name,
                "human": "pass" if human[i] == LABEL_PASS else "fail",
                "label_source": "inferred" if inferred[i] else "given",
                "verdict": "pass" if reference[i] == LABEL_PASS else "fail",
                "n_votes": int(n_votes[i]),
            })
    row_of = {int(o): i for i, o in enumerate(outputs)}

    def given_first(o: int) -> tuple:
        n_given = sum(1 for t in found[o] if t["label_source"] == "given")
        return (-n_given, -len(found[o]), -int(n_votes[row_of[o]]), o)

    ranked = sorted(found, key=given_first)[:limit]
    names = _output_names(ranked)
    return [
        AgendaEntry(
            kind=AgendaKind.VALIDATOR, output_id=o,
            title=f"{names.get(o, o)}: humans say "
                  + ", ".join(
                      f"{t['human']}{' (inferred)' if t['label_source'] == 'inferred' else ''}"
                      f" on {t['key'] or 'holistic'}, {t['validator']} says {t['verdict']}"
                      for t in found[o]
                  ),
            detail={"targets": found[o]},
        )
        for o in ranked
    ]


def _notes_since(project: Project, since: datetime | None) -> list[NoteMention]:
    grades = Grade.objects.filter(project=project, retracted=False).exclude(note="")
    comparisons = Comparison.objects.filter(project=project, retracted=False).exclude(note="")
    if since is not None:
        grades = grades.filter(submitted_at__gt=since)
        comparisons = comparisons.filter(submitted_at__gt=since)
    notes = [
        NoteMention(text, author, output_id)
        for text, author, output_id in grades.order_by("submitted_at", "id").values_list(
            "note", "annotator__username", "output_id"
        )
    ]
    notes += [
        NoteMention(text, author, output_id)
        for text, author, output_id in comparisons.order_by("submitted_at", "id").values_list(
            "note", "annotator__username", "output_a_id"
        )
    ]
    return notes


def criterion_texts(project: Project) -> list[str]:
    texts = list(Criterion.objects.filter(project=project).values_list("key", flat=True))
    texts += list(
        CriterionVersion.objects.filter(criterion__project=project).values_list("name", flat=True)
    )
    return texts


def review_agenda(
    project: Project, *, since: datetime | None = None, limit: int = AGENDA_LIMIT,
    votes: LabelVotes | None = None, chosen=None,
) -> list[AgendaEntry]:
    """The agenda built from the data (module docstring). `since`: when the previous meeting
    started; None means before the first meeting."""
    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    targets = review_targets(project)
    adjudicated = _adjudicated(project)
    waiting = set(open_regrade_requests(project).values_list("output_id", flat=True))
    agenda = _changed_criteria(project, since)
    disagreements = _disagreements(project, votes, targets, adjudicated, waiting, limit)
    agenda += disagreements
    agenda += _validator_disagreements(
        project, votes, chosen, targets, adjudicated,
        waiting | {e.output_id for e in disagreements}, limit,
    )
    for proposal in proposed_criteria(_notes_since(project, since), criterion_texts(project))[:limit]:
        detail = proposal.to_dict()
        agenda.append(AgendaEntry(
            kind=AgendaKind.NEW_CRITERION,
            title=f"Notes mention “{proposal.term}” ({proposal.n_notes} note"
                  f"{'s' if proposal.n_notes != 1 else ''}, {len(proposal.authors)} annotator"
                  f"{'s' if len(proposal.authors) != 1 else ''}): no such criterion",
            detail=detail,
        ))
    return agenda


# -- meetings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgendaStep:
    item: ReviewAgendaItem
    outcomes: tuple[str, ...]

    @property
    def done(self) -> bool:
        return bool(self.outcomes)


def meeting_steps(meeting: ReviewMeeting) -> list[AgendaStep]:
    """The meeting's agenda with what the meeting has done about each item."""
    items = list(meeting.agenda_items.select_related("output__sample", "criterion"))
    adjudicated = Counter(
        Adjudication.objects.filter(meeting=meeting).values_list("output_id", flat=True)
    )
    sent_back = set(
        RegradeRequest.objects.filter(decision__meeting=meeting).values_list("output_id", flat=True)
    )
    versions = defaultdict(list)
    for criterion_id, key, number in CriterionVersion.objects.filter(decided_in=meeting).values_list(
        "criterion_id", "criterion__key", "number"
    ):
        versions[criterion_id].append((key, number))
    created_keys = {key for keys in versions.values() for key, number in keys if number == 1}
    steps = []
    for item in items:
        outcomes = []
        if item.output_id is not None:
            if adjudicated.get(item.output_id):
                outcomes.append("adjudicated")
            if item.output_id in sent_back:
                outcomes.append("sent back")
        if item.criterion_id is not None and versions.get(item.criterion_id):
            outcomes.append(", ".join(f"v{n} published" for _, n in versions[item.criterion_id]))
        if item.kind == AgendaKind.NEW_CRITERION:
            if key_from_name(item.detail.get("term", "")) in created_keys:
                outcomes.append("criterion created")
        steps.append(AgendaStep(item, tuple(outcomes)))
    return steps


@dataclass(frozen=True)
class VoteView:
    annotator: str
    verdict: str
    stale: bool
    version: int | None
    note: str
    # Counted as a pass because the grade passed holistically (a project option).
    inferred: bool = False


@dataclass(frozen=True)
class TargetView:
    target: ReviewTarget
    votes: list[VoteView]
    majority: str
    agreement: float | None
    validator: str
    validator_verdict: str
    adjudication: Adjudication | None

    @property
    def split(self) -> bool:
        verdicts = {v.verdict for v in self.votes if not v.stale}
        return {"pass", "fail"} <= verdicts

    @property
    def inferred(self) -> bool:
        return any(v.inferred for v in self.votes)


def output_review(output: Output, *, chosen=None) -> list[TargetView]:
    """Everything a meeting looks at for one output, per target: each annotator's current
    vote (stale ones shown, not counted; inferred ones marked, by the rules of
    `annotate.labels`), the majority, the chosen validator, the latest adjudication."""
    from annotate.gold import gold_label

    project = output.project
    targets = review_targets(project)
    grades = list(
        Grade.objects.filter(output=output, superseded_by__isnull=True, retracted=False)
        .select_related("annotator").order_by("annotator__username")
    )
    verdicts = defaultdict(dict)
    for gc in GradeCriterion.objects.filter(grade__in=grades).select_related("criterion_version"):
        verdicts[gc.grade_id][gc.criterion_id] = gc
    adjudications = {}
    for adjudication in Adjudication.objects.filter(output=output).select_related(
        "reviewer", "meeting"
    ).order_by("created_at", "id"):
        adjudications[adjudication.criterion_id] = adjudication
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    views = []
    for target in targets:
        votes = []
        for grade in grades:
            if target.criterion_id is None:
                votes.append(VoteView(grade.annotator.username, grade.verdict, False, None, grade.note))
                continue
            given = verdicts[grade.pk].get(target.criterion_id)
            if given is not None:
                number = given.criterion_version.number
                votes.append(VoteView(
                    grade.annotator.username, given.verdict, number != target.version, number,
                    grade.note,
                ))
        if target.criterion_id is not None and project.holistic_pass_implies_criteria and not any(
            not v.stale for v in votes
        ):
            votes += [
                VoteView(grade.annotator.username, "pass", False, None, grade.note, inferred=True)
                for grade in grades
                if grade.verdict == "pass" and target.criterion_id not in verdicts[grade.pk]
            ]
            votes.sort(key=lambda v: v.annotator)
        counted = Counter(v.verdict for v in votes if not v.stale)
        label = gold_label(counted["pass"], counted["fail"], counted["unsure"])
        name, reference = _chosen_for(chosen, target.key, np.array([output.pk], dtype=np.int64))
        verdict = {LABEL_PASS: "pass", LABEL_FAIL: "fail"}.get(int(reference[0]), "")
        views.append(TargetView(
            target, votes, label.majority, label.agreement, name, verdict,
            adjudications.get(target.criterion_id),
        ))
    return views


def meeting_summary_markdown(meeting: ReviewMeeting) -> str:
    """The meeting as Markdown: decisions, new criterion versions, outputs sent back,
    adjudications, the agenda and its outcomes, notes."""
    project = meeting.project
    lines = [f"# {meeting.title}", ""]
    started = meeting.started_at.strftime("%Y-%m-%d %H:%M UTC")
    ended = meeting.ended_at.strftime("%Y-%m-%d %H:%M UTC") if meeting.ended_at else "still open"
    attendees = ", ".join(sorted(u.username for u in meeting.attendees.all())) or "—"
    lines += [
        f"- Project: {project.name} (`{project.slug}`)",
        f"- Started: {started}; ended: {ended}",
        f"- Attendees: {attendees}",
        "",
        "## New criterion versions",
        "",
    ]
    versions = list(
        CriterionVersion.objects.filter(decided_in=meeting)
        .select_related("criterion", "author").order_by("created_at", "id")
    )
    for v in versions:
        lines.append(
            f"- **{v.criterion.key} v{v.number}** “{v.name}”: {v.definition}  \n"
            f"  Reason: {v.reason} (by {v.author.username if v.author else 'unknown'})"
        )
    if not versions:
        lines.append("None.")
    lines += ["", "## Sent back for re-grading", ""]
    requests = list(
        RegradeRequest.objects.filter(decision__meeting=meeting)
        .select_related("output__sample", "criterion").order_by("created_at", "id")
    )
    for r in requests:
        scope = f" ({r.criterion.key})" if r.criterion else ""
        lines.append(
            f"- {r.output.sample.external_id} · {r.output.system} (output {r.output_id}){scope}: {r.reason}"
        )
    if not requests:
        lines.append("None.")
    lines += ["", "## Adjudications", ""]
    adjudications = list(
        Adjudication.objects.filter(meeting=meeting)
        .select_related("output__sample", "criterion", "reviewer").order_by("created_at", "id")
    )
    if adjudications:
        lines += ["| Output | Criterion | Gold | Reason | Reviewer |", "|---|---|---|---|---|"]
        for a in adjudications:
            reason = a.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {a.output.sample.external_id} · {a.output.system} | "
                f"{a.criterion.key if a.criterion else 'holistic'} | {a.verdict} | {reason} | "
                f"{a.reviewer.username} |"
            )
    else:
        lines.append("None.")
    notes = list(
        Decision.objects.filter(meeting=meeting, kind=DecisionKind.NOTE)
        .select_related("author").order_by("created_at", "id")
    )
    lines += ["", "## Other decisions", ""]
    lines += [f"- {d.text} ({d.author.username if d.author else 'unknown'})" for d in notes] or ["None."]
    lines += ["", "## Agenda", ""]
    steps = meeting_steps(meeting)
    for step in steps:
        outcome = f" — **{'; '.join(step.outcomes)}**" if step.outcomes else ""
        lines.append(f"{step.item.position}. [{step.item.get_kind_display()}] {step.item.title}{outcome}")
    if not steps:
        lines.append("The agenda was empty.")
    if meeting.notes.strip():
        lines += ["", "## Notes", "", meeting.notes.strip()]
    return "\n".join(lines) + "\n"
