"""Agreement per review target and agreement over time (DESIGN §4.5), for the review page
and the API.

Agreement (DESIGN §4.5) uses the labels of `annotate.labels`: each annotator's current grade,
stale criterion verdicts left out. ``unsure`` votes are left out as well (they carry no label,
as in the majority rule), so the coefficients are over pass/fail with two categories. Votes
inferred from a holistic pass (a project option) are left out too: agreement is about what
people said, and inferred votes would agree with each other by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from annotate.agreement import MISSING, agreement_summary, agreement_with_reference
from annotate.evidence import load_chosen_verdicts
from annotate.labels import LabelVotes, load_votes
from annotate.models import (
    Grade,
    Project,
)
from annotate.review.targets import chosen_for, pass_fail_codes, ratings_matrix, review_targets
from annotate.statistics import LABEL_PASS, rows_of, vote_counts


# -- agreement tables -----------------------------------------------------------------------
@dataclass(frozen=True)
class AgreementStatistic:
    """One column of the agreement table, declared once: the table, the API, the review page's
    columns and its colour bands all read AGREEMENT_STATISTICS."""

    key: str  # the name on a table row and in the API
    heading: str
    # "annotators": read from annotate.agreement.AgreementSummary; "validator": from its
    # ReferenceAgreement with the chosen validator.
    group: str
    source: str  # the attribute there
    # "percent" is shown as a percentage; "coefficient" as a number in a Landis & Koch band.
    kind: str
    title: str = ""


ANNOTATORS, VALIDATOR = "annotators", "validator"
AGREEMENT_STATISTICS = (
    AgreementStatistic("percent_agreement", "% agree", ANNOTATORS, "percent_agreement", "percent"),
    AgreementStatistic(
        "cohen_kappa", "Cohen κ", ANNOTATORS, "mean_cohen_kappa", "coefficient",
        title="mean over pairs of annotators (Light)",
    ),
    AgreementStatistic("fleiss_kappa", "Fleiss κ", ANNOTATORS, "fleiss_kappa", "coefficient"),
    AgreementStatistic(
        "krippendorff_alpha", "Kripp. α", ANNOTATORS, "krippendorff_alpha", "coefficient"
    ),
    AgreementStatistic("gwet_ac1", "Gwet AC1", ANNOTATORS, "gwet_ac1", "coefficient"),
    AgreementStatistic(
        "validator_percent_agreement", "% agree", VALIDATOR, "percent_agreement", "percent"
    ),
    AgreementStatistic("validator_kappa", "κ", VALIDATOR, "kappa", "coefficient"),
)
STATISTICS_BY_KEY = {stat.key: stat for stat in AGREEMENT_STATISTICS}


@dataclass(frozen=True)
class CriterionAgreement:
    key: str | None
    name: str
    version: int | None
    n_items: int
    n_items_multiply_rated: int
    n_annotators: int
    n_ratings: int
    validator: str
    validator_n: int
    # Keyed by AgreementStatistic.key; None where undefined. Also read as attributes
    # (row.cohen_kappa).
    statistics: dict[str, float | None] = field(default_factory=dict)

    def __getattr__(self, name: str):
        if name in STATISTICS_BY_KEY:
            return self.statistics[name]
        raise AttributeError(name)

    def to_dict(self) -> dict:
        def group(name: str) -> dict:
            return {s.key: self.statistics[s.key] for s in AGREEMENT_STATISTICS if s.group == name}

        return {
            "key": self.key, "name": self.name, "version": self.version, "n_items": self.n_items,
            "n_items_multiply_rated": self.n_items_multiply_rated,
            "n_annotators": self.n_annotators, "n_ratings": self.n_ratings, **group(ANNOTATORS),
            "validator": self.validator, "validator_n": self.validator_n, **group(VALIDATOR),
        }


def agreement_tables(project: Project, *, votes: LabelVotes | None = None, chosen=None) -> list[CriterionAgreement]:
    """Per target (holistic first, then criteria): inter-annotator agreement and annotators
    against the chosen validator. Undefined coefficients are None."""
    votes = votes if votes is not None else load_votes(project)
    chosen = chosen if chosen is not None else load_chosen_verdicts(project)
    table = []
    for target in review_targets(project):
        output_ids, _, matrix = ratings_matrix(votes, target.criterion_id)
        summary = agreement_summary(matrix, n_categories=2)
        name, reference = chosen_for(chosen, target.key, output_ids)
        versus = agreement_with_reference(matrix, reference) if matrix.size else None
        sources = {ANNOTATORS: summary, VALIDATOR: versus}
        table.append(CriterionAgreement(
            key=target.key, name=target.name, version=target.version, n_items=summary.n_items,
            n_items_multiply_rated=summary.n_items_multiply_rated,
            n_annotators=summary.n_raters, n_ratings=summary.n_ratings, validator=name,
            validator_n=versus.n_pairs if versus else 0,
            statistics={
                stat.key: getattr(sources[stat.group], stat.source)
                if sources[stat.group] is not None else None
                for stat in AGREEMENT_STATISTICS
            },
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
        rows, _ = rows_of(outputs, votes.output_ids)
        n_pass, n_fail, _ = vote_counts(rows, codes, outputs.size)
        labelled = codes != MISSING
        same = np.where(codes == LABEL_PASS, n_pass[rows], n_fail[rows]) - 1
        peers = n_pass[rows] + n_fail[rows] - 1
        agree = np.bincount(block_of[labelled], weights=same[labelled], minlength=n_blocks)
        pairs = np.bincount(block_of[labelled], weights=peers[labelled], minlength=n_blocks)
        name, reference = chosen_for(chosen, target.key, votes.output_ids)
        compared = labelled & (reference != MISSING)
        hits = np.bincount(block_of[compared], weights=(codes == reference)[compared], minlength=n_blocks)
        totals = np.bincount(block_of[compared], minlength=n_blocks)
        series.append({
            "key": target.key or "", "name": target.label, "validator_name": name,
            "annotators": [None if p == 0 else round(float(a / p), 4) for a, p in zip(agree, pairs, strict=True)],
            "validator": [None if t == 0 else round(float(h / t), 4) for h, t in zip(hits, totals, strict=True)],
        })
    return {"block": block, "labels": labels, "dates": dates, "targets": series}
