"""Criteria proposed from grade and comparison notes (review agenda item 4): pure text mining."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

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
