"""The label-efficiency simulator behind `manage.py simulate` (DESIGN §7).

Per-output files run by default in the in-memory engine (simulator.engine, no database;
`simulate_in_memory` below); `--through-services` keeps the path this module describes, which
gives the same figures for the same seeds. Pairwise files always take this path.

Through the services, an oracle annotator replays a labelled file: every label is an
`assignment_claim_next` (the selector under test chooses the item) followed by `grade_submit`
(or `comparison_submit` for pairwise files). At each budget the simulator records how close the
system ranking and the report card's validator choices are to what the full data says; the
metric definitions live in `simulator.metrics`.

Projects. A *reference* project holds the file WITH its labels (imported by the ordinary
import service) and the validators' verdicts (run synchronously with `run_execute`); its report
card is the full-data choice. Each (selector, seed) run then gets a fresh *run* project: the
file imported WITHOUT labels, the same validators, and the reference project's verdicts copied
row by row (running every code assertion again would cost far more and give the same verdicts).
A fresh project per run is what makes runs independent: the report card and the selectors
read every current grade of a project, and the app never deletes a grade. All these projects
are throw-away: deleted at the end unless `keep` is set, grades first (grades protect the
criterion versions they were given under).

subset2evaluate's static orderings (Zouhar, Cui & Sachan 2025, "How to Select Datapoints for
Efficient Human Evaluation of NLG Models?") are replayed through the same oracle as the
selectors `s2e_metric_var`, `s2e_metric_avg` and `s2e_diversity`: an ordering of inputs, each
input's outputs graded in turn (what their method hands to human raters), through
`grade_submit` without a claim because no claim path knows a fixed order (the orderings
themselves are computed in `simulator.static_orderings`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotate.labels import forget_votes
from annotate.models import (
    Comparison,
    Criterion,
    Grade,
    GradeCriterion,
    Output,
    OutputEmbeddings,
    Project,
    Role,
    Scale,
    Verdict,
)
from annotate.rankings import bradley_terry
from annotate.selection import forget_contexts
from annotate.selectors import EMBEDDING_SELECTORS, PAIRWISE_SELECTORS, SELECTORS
from annotate.services.assignments import assignment_claim_next, assignment_skip
from annotate.services.criteria import criterion_ensure
from annotate.services.grades import comparison_submit, grade_submit
from annotate.services.imports import outputs_import
from annotate.services.projects import membership_set, project_create
from simulator import engine, metrics, pairwise_judges
from simulator.static_orderings import (
    S2E_METHODS,
    S2E_PREFIX,
    s2e_items,
    s2e_utilities,
    static_order,
)
from simulator.traces import FullData, RunTrace, build_result
from validators import matrix as matrix_cache
from validators.models import Run, RunStatus, Validator, VerdictRecord
from validators.report_card import HOLISTIC, report_card
from validators.services.runs import run_execute
from validators.services.validator_files import validators_import

# A pairwise file is answered by the pairwise selectors, and by random pairs as the baseline.
PAIR_SELECTORS = ("random", *(name for name in SELECTORS if name in PAIRWISE_SELECTORS))
# A pairwise oracle can only answer pairs the file compared; it skips the others. This many
# skips in a row means the selector offers nothing the file can answer any more.
MAX_SKIPS_IN_A_ROW = 500

Progress = Callable[[str], None]


class SimulationError(ValueError):
    pass


@dataclass(frozen=True)
class SimulationSettings:
    data: Path
    selectors: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: int
    validators: Path | None = None
    scale: str = Scale.BINARY
    pass_threshold: float | None = None
    scale_min: float | None = None
    scale_max: float | None = None
    # The project's random mix ε; None keeps the app's default.
    epsilon: float | None = None
    keep: bool = False
    # Drive the real claim and grade services instead of the in-memory engine.
    through_services: bool = False
    # In-memory engine only: processes for the seeds, and the re-scoring granularity.
    jobs: int = 1
    batch: int = 1
    exact_until: int = 0

    def project_fields(self) -> dict:
        fields: dict = {"scale": self.scale}
        if self.scale == Scale.RATING:
            fields.update(
                pass_threshold=self.pass_threshold, scale_min=self.scale_min,
                scale_max=self.scale_max,
            )
        if self.epsilon is not None:
            fields["random_mix"] = self.epsilon
        return fields


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def is_pairwise(records: Sequence[dict]) -> bool:
    return bool(records) and "output_a" in records[0]


def check_settings(settings: SimulationSettings, n_items: int, pairwise: bool) -> None:
    if settings.seeds < 1:
        raise SimulationError("--seeds must be at least 1")
    if not settings.budgets or list(settings.budgets) != sorted(set(settings.budgets)):
        raise SimulationError("--budgets must be increasing positive numbers")
    if settings.budgets[0] < 1:
        raise SimulationError("--budgets must be positive")
    if settings.budgets[-1] > n_items:
        unit = "pairs" if pairwise else "outputs"
        raise SimulationError(
            f"the largest budget {settings.budgets[-1]} exceeds the file's {n_items} {unit}"
        )
    if "random" not in settings.selectors:
        raise SimulationError("parity is measured against random: include it in --selectors")
    known = PAIR_SELECTORS if pairwise else (
        *(s for s in SELECTORS if not SELECTORS[s].pairwise),
        *(S2E_PREFIX + m for m in S2E_METHODS),
    )
    unknown = [s for s in settings.selectors if s not in known]
    if unknown:
        raise SimulationError(
            f"unknown selector(s) for a {'pairwise' if pairwise else 'per-output'} file: "
            f"{', '.join(unknown)}; known: {', '.join(known)}"
        )
    if settings.scale == Scale.RATING and settings.pass_threshold is None:
        raise SimulationError("a rating scale needs --pass-threshold")


# -- the oracle's answers ------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    verdict: str
    score: float | None
    criteria: dict[str, str]
    # What the system ranking averages: 1/0 on a binary project, the score on a rating one.
    value: float


def _verdict(label, score, settings: SimulationSettings) -> str | None:
    """The import service's rule (annotate.services.imports): on a rating project a score
    decides, else the binary label."""
    if settings.scale == Scale.RATING and score is not None:
        return Verdict.for_score(score, settings.pass_threshold)
    if label is not None:
        return Verdict.PASS if label == 1 else Verdict.FAIL
    return None


def oracle_answer(record: dict, settings: SimulationSettings) -> Answer:
    human = record.get("human") or {}
    criteria_labels = human.get("criteria") or {}
    criteria_scores = human.get("criteria_scores") or {}
    names = set(criteria_labels) | (set(criteria_scores) if settings.scale == Scale.RATING else set())
    criteria = {}
    for name in sorted(names):
        verdict = _verdict(criteria_labels.get(name), criteria_scores.get(name), settings)
        if verdict is not None:
            criteria[name] = verdict
    score = human.get("score")
    if settings.scale == Scale.RATING:
        if score is None:
            raise SimulationError(f"item {record.get('item_id')!r} has no human.score to rate with")
        return Answer(_verdict(None, score, settings), float(score), criteria, float(score))
    verdict = _verdict(human.get("label"), None, settings)
    if verdict is None:
        if not criteria:
            raise SimulationError(f"item {record.get('item_id')!r} has no human label")
        # As the import does: no overall label, so the output passes only if every criterion does.
        verdict = Verdict.FAIL if Verdict.FAIL in criteria.values() else Verdict.PASS
    return Answer(verdict, None, criteria, 1.0 if verdict == Verdict.PASS else 0.0)


# -- projects ------------------------------------------------------------------------------------
def _user(prefix: str):
    user = get_user_model().objects.create(username=f"{prefix}-{uuid.uuid4().hex[:10]}")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def _new_project(settings: SimulationSettings, owner, label: str) -> Project:
    slug = f"simulate-{uuid.uuid4().hex[:12]}"
    return project_create(
        name=f"Simulation {label}"[:200], slug=slug, owner=owner,
        description=f"Throw-away project of `manage.py simulate` on {settings.data.name}.",
        **settings.project_fields(),
    )


def project_discard(project: Project) -> None:
    """Delete a throw-away simulation project. The app itself never deletes grades; this does,
    for projects `simulate` created, grades first because they protect criterion versions."""
    with transaction.atomic():
        GradeCriterion.objects.filter(grade__project=project).delete()
        Grade.objects.filter(project=project).delete()
        Comparison.objects.filter(project=project).delete()
        project.delete()


def validator_labels(project: Project) -> dict[int, tuple[str, str]]:
    """validator id -> (criterion key or HOLISTIC, a name unique within that criterion), the
    same for equal validators in the reference and the run projects."""
    rows = list(
        Validator.objects.filter(project=project, archived=False)
        .values_list("id", "name", "threshold", "criterion__key").order_by("id")
    )
    counts = Counter((key, name) for _, name, _, key in rows)
    labels = {}
    for pk, name, threshold, key in rows:
        unique = counts[(key, name)] == 1
        label = name if unique or threshold is None else f"{name}@{threshold:g}"
        labels[pk] = (key or HOLISTIC, label)
    return labels


def _run_synchronously(project: Project, validators: list[Validator], owner) -> Run:
    """What run_start records, executed here instead of dispatched to a worker: the command
    must finish its runs before it grades anything."""
    run = Run.objects.create(
        project=project, total=Output.objects.filter(project=project).count() * len(validators),
        requested_by=owner,
    )
    run.validators.set(validators)
    run = run_execute(run_id=run.pk)
    if run.status != RunStatus.DONE:
        raise SimulationError(f"the validator run ended {run.status}: {run.error}")
    return run


def _card_choices(project: Project, labels: dict[int, tuple[str, str]]) -> dict[str, str | None]:
    card = report_card(project)
    return {
        entry.key: None if entry.selection.chosen is None
        else labels[entry.selection.chosen.validator_id][1]
        for entry in card.criteria
    }


def _full_card(project: Project, labels: dict[int, tuple[str, str]]) -> tuple[dict, dict]:
    card = report_card(project)
    chosen, alignments = {}, {}
    for entry in card.criteria:
        if not entry.selection.ranked:
            continue
        chosen[entry.key] = (
            None if entry.selection.chosen is None
            else labels[entry.selection.chosen.validator_id][1]
        )
        alignments[entry.key] = {
            labels[r.candidate.validator_id][1]: float(r.candidate.metrics.alignment or 0.0)
            for r in entry.selection.ranked
        }
    return chosen, alignments


@dataclass
class Reference:
    project: Project
    import_user: object
    records: list[dict]
    keys: list[tuple[str, str]]           # (item_id, system) per record
    criteria_keys: list[str]
    validators_data: dict | None
    # (validator key, output key, outcome, score) of every verdict, keys as below.
    verdicts: list[tuple[tuple, tuple[str, str], str, float | None]]
    embeddings: tuple[list[tuple[str, str]], np.ndarray] | None


def _validator_key(name, threshold, criterion_key, source) -> tuple:
    return (name, threshold, criterion_key, source)


def _output_keys(project: Project) -> dict[int, tuple[str, str]]:
    return {
        pk: (external_id, system)
        for pk, external_id, system in Output.objects.filter(project=project)
        .values_list("id", "sample__external_id", "system")
    }


def _validator_keys(project: Project) -> dict[int, tuple]:
    return {
        pk: _validator_key(name, threshold, key, source)
        for pk, name, threshold, key, source in Validator.objects.filter(project=project)
        .values_list("id", "name", "threshold", "criterion__key", "source")
    }


def build_reference(
    settings: SimulationSettings, records: list[dict], owner, *, with_embeddings: bool,
    progress: Progress,
) -> Reference:
    started = time.perf_counter()
    project = _new_project(settings, owner, f"{settings.data.name} (full data)")
    import_name = f"simulate-import-{uuid.uuid4().hex[:10]}"
    result = outputs_import(
        project=project, records=records, with_labels=True, annotator_name=import_name
    )
    if not result.ok:
        raise SimulationError(f"the file was refused: {result.summary()} {result.to_dict()['errors'][:3]}")
    import_user = get_user_model().objects.get(username=import_name)
    validators_data = None
    if settings.validators is not None:
        validators_data = json.loads(Path(settings.validators).read_text(encoding="utf-8"))
        created = validators_import(
            project=project, data=validators_data, created_by=owner, create_criteria=True,
        )
        if created:
            _run_synchronously(project, created, owner)
    output_keys = _output_keys(project)
    validator_keys = _validator_keys(project)
    verdicts = [
        (validator_keys[v], output_keys[o], outcome, score)
        for v, o, outcome, score in VerdictRecord.objects.filter(validator__project=project)
        .values_list("validator_id", "output_id", "outcome", "score")
    ]
    embeddings = None
    if with_embeddings:
        from annotate.embeddings import embeddings_compute

        stored = embeddings_compute(project=project)
        ids = np.frombuffer(bytes(stored.output_ids), dtype=np.int64)
        vectors = np.frombuffer(bytes(stored.vectors), dtype=np.float32).reshape(ids.size, -1)
        embeddings = ([output_keys[int(i)] for i in ids], vectors)
    progress(
        f"reference project: {result.outputs_created} outputs, {len(verdicts)} verdicts "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return Reference(
        project=project, import_user=import_user, records=records,
        keys=[(r["item_id"], r["system"]) for r in records] if not is_pairwise(records) else [],
        criteria_keys=list(
            Criterion.objects.filter(project=project).order_by("position", "id").values_list("key", flat=True)
        ),
        validators_data=validators_data, verdicts=verdicts, embeddings=embeddings,
    )


def _strip_labels(records: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in ("human", "human_preference", "human_votes")}
        for r in records
    ]


def copy_for_run(reference: Reference, settings: SimulationSettings, owner, label: str) -> Project:
    """A run project: the file without labels, the reference's criteria, validators and
    verdicts (backdated past the verdict matrix's settling window: they are committed)."""
    project = _new_project(settings, owner, label)
    result = outputs_import(project=project, records=_strip_labels(reference.records))
    if not result.ok:
        raise SimulationError(result.summary())
    for key in reference.criteria_keys:
        criterion_ensure(project=project, key=key, author=owner)
    if reference.validators_data is not None:
        validators_import(
            project=project, data=reference.validators_data, created_by=owner, create_criteria=True,
        )
    output_ids = {key: pk for pk, key in _output_keys(project).items()}
    if reference.verdicts:
        validator_ids = {key: pk for pk, key in _validator_keys(project).items()}
        VerdictRecord.objects.bulk_create(
            [
                VerdictRecord(
                    validator_id=validator_ids[v], output_id=output_ids[o], outcome=outcome,
                    score=score,
                )
                for v, o, outcome, score in reference.verdicts
            ],
            batch_size=5000,
        )
        VerdictRecord.objects.filter(validator__project=project).update(
            created_at=timezone.now() - timedelta(minutes=5)
        )
    if reference.embeddings is not None:
        keys, vectors = reference.embeddings
        ids = np.array([output_ids[k] for k in keys], dtype=np.int64)
        order = np.argsort(ids)
        OutputEmbeddings.objects.create(
            project=project, dimensions=vectors.shape[1], output_ids=ids[order].tobytes(),
            vectors=np.ascontiguousarray(vectors[order]).tobytes(),
        )
    return project


# -- one run -------------------------------------------------------------------------------------
@dataclass
class Oracle:
    """The file's answers, aligned with the run project's outputs."""

    answers: list[Answer]
    system_codes: np.ndarray  # per record
    n_systems: int
    full: FullData
    settings: SimulationSettings

    def measure(self, trace: RunTrace, project: Project, rows: list[int],
                probabilities: list[float | None], labels: dict[int, tuple[str, str]]) -> None:
        index = np.asarray(rows, dtype=np.int64)
        codes = self.system_codes[index]
        values = np.array([self.answers[r].value for r in rows])
        estimate = metrics.system_means(codes, values, self.n_systems)
        trace.tau.append(metrics.ranking_tau(estimate, self.full.system_values))
        weights = np.array([1.0 / p if p else 1.0 for p in probabilities])
        weighted = metrics.system_means(codes, values, self.n_systems, weights=weights)
        trace.tau_ipw.append(metrics.ranking_tau(weighted, self.full.system_values))
        if not self.full.chosen:
            return
        now = _card_choices(project, labels)
        for key, best in self.full.chosen.items():
            if best is None:
                continue
            chosen = now.get(key)
            trace.chosen.setdefault(key, []).append(chosen)
            trace.hit.setdefault(key, []).append(1.0 if chosen == best else 0.0)
            trace.regret.setdefault(key, []).append(
                metrics.regret(self.full.alignments[key], best, chosen)
            )


def _row_lookup(project: Project, keys: list[tuple[str, str]]) -> dict[int, int]:
    row_of_key = {key: row for row, key in enumerate(keys)}
    return {pk: row_of_key[key] for pk, key in _output_keys(project).items()}


def run_selector(
    project: Project, oracle: Oracle, selector: str, seed: int, budgets: Sequence[int],
    keys: list[tuple[str, str]], order: list[int] | None = None,
) -> RunTrace:
    """One oracle run to the largest budget: claims chosen by `selector`, or, with `order`, the
    rows of a static ordering graded in turn."""
    started = time.perf_counter()
    annotator = _user("simulate-oracle")
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    row_of = _row_lookup(project, keys)
    labels = validator_labels(project)
    outputs = None
    if order is not None:
        by_row = {row: pk for pk, row in row_of.items()}
        fetched = Output.objects.select_related("project").in_bulk([by_row[r] for r in order[: budgets[-1]]])
        outputs = [fetched[by_row[r]] for r in order[: budgets[-1]]]
    rng = np.random.default_rng(seed)
    trace = RunTrace()
    rows: list[int] = []
    probabilities: list[float | None] = []
    wanted = set(budgets)
    for step in range(1, budgets[-1] + 1):
        if outputs is None:
            assignment = assignment_claim_next(
                project=project, annotator=annotator, selector=selector, rng=rng
            )
            if assignment is None:
                raise SimulationError(f"{selector} ran out of outputs after {step - 1} labels")
            output, probability = assignment.output, assignment.probability
        else:
            assignment, output, probability = None, outputs[step - 1], None
        row = row_of[output.pk]
        answer = oracle.answers[row]
        grade_submit(
            output=output, annotator=annotator, verdict=answer.verdict, score=answer.score,
            criteria=answer.criteria, assignment=assignment,
        )
        rows.append(row)
        probabilities.append(probability)
        if step in wanted:
            oracle.measure(trace, project, rows, probabilities, labels)
    trace.labels = len(rows)
    trace.seconds = time.perf_counter() - started
    return trace


# -- per-output files ----------------------------------------------------------------------------
def _clear_caches() -> None:
    """Per-process caches hold arrays per project; the throw-away projects need none of them
    once their run is over."""
    forget_votes()
    forget_contexts()
    matrix_cache.forget()


def simulate_outputs(settings: SimulationSettings, records: list[dict], progress: Progress) -> dict:
    owner = _user("simulate-owner")
    answers = [oracle_answer(r, settings) for r in records]
    systems = sorted({r["system"] for r in records})
    code = {name: i for i, name in enumerate(systems)}
    system_codes = np.array([code[r["system"]] for r in records], dtype=np.int64)
    full_values = metrics.system_means(
        system_codes, np.array([a.value for a in answers]), len(systems)
    )
    embedding_selectors = EMBEDDING_SELECTORS & set(settings.selectors)
    reference = build_reference(
        settings, records, owner, with_embeddings=bool(embedding_selectors), progress=progress
    )
    created: list[Project] = [reference.project]
    users = [owner, reference.import_user]
    try:
        labels = validator_labels(reference.project)
        chosen, alignments = _full_card(reference.project, labels)
        full = FullData(full_values, chosen, alignments)
        oracle = Oracle(answers, system_codes, len(systems), full, settings)
        keys = [(r["item_id"], r["system"]) for r in records]
        s2e_sources: dict[str, str] = {}
        s2e_inputs = None
        traces: dict[str, list[RunTrace]] = {}
        for selector in settings.selectors:
            traces[selector] = []
            static = None
            if selector.startswith(S2E_PREFIX):
                if s2e_inputs is None:
                    s2e_inputs = s2e_items(records)
                items, item_ids, metric_name = s2e_inputs
                utilities, source = s2e_utilities(items, selector[len(S2E_PREFIX):])
                s2e_sources[selector] = f"{source}; metric {metric_name}"
                static = (items, item_ids, utilities)
            for seed in range(settings.seeds):
                project = copy_for_run(reference, settings, owner, f"{selector} seed {seed}")
                created.append(project)
                order = None if static is None else static_order(records, *static, seed=seed)
                trace = run_selector(project, oracle, selector, seed, settings.budgets, keys, order)
                traces[selector].append(trace)
                progress(
                    f"{selector:<22} seed {seed}: tau {' '.join(f'{t:.2f}' for t in trace.tau)} "
                    f"({trace.seconds:.1f} s, {trace.seconds / max(trace.labels, 1) * 1000:.0f} ms/label)"
                )
                if not settings.keep:
                    _discard(project)
                    created.remove(project)
                _clear_caches()
        result = _result(settings, records, systems, traces, full)
        result["s2e_orderings"] = s2e_sources
        return result
    finally:
        if not settings.keep:
            for project in created:
                _discard(project)
            for user in users:
                if not Grade.objects.filter(annotator=user).exists():
                    user.delete()
            _clear_caches()


def _discard(project: Project) -> None:
    oracles = list(
        get_user_model().objects.filter(
            memberships__project=project, username__startswith="simulate-oracle-"
        )
    )
    project_discard(project)
    for user in oracles:
        user.delete()


def _result(
    settings: SimulationSettings, records: list[dict], systems: list[str],
    traces: dict[str, list[RunTrace]], full: FullData,
) -> dict:
    return build_result(
        data_name=settings.data.name, n_outputs=len(records), systems=systems,
        seeds=settings.seeds, budgets=list(settings.budgets), traces=traces, full=full,
        scale=settings.scale, pass_threshold=settings.pass_threshold,
    )


# -- pairwise files ------------------------------------------------------------------------------
def simulate_pairs(settings: SimulationSettings, records: list[dict], progress: Progress) -> dict:
    if any(not r.get("system_a") or not r.get("system_b") for r in records):
        raise SimulationError(
            "the pairwise file does not name the systems, so there is no system ranking to simulate"
        )
    records, dropped = consistent_pairs(records)
    if dropped:
        progress(f"left out {dropped} pair(s) whose output text differs from the same system's "
                 "output for the same input in an earlier pair (the import refuses those)")
    systems = sorted({r["system_a"] for r in records} | {r["system_b"] for r in records})
    code = {name: i for i, name in enumerate(systems)}
    preference: dict[tuple[str, str, str], str] = {}
    winners, losers, ties = [], [], []
    for r in records:
        choice = r.get("human_preference")
        if choice is None:
            continue
        sample = str(r["input_id"]) if r.get("input_id") is not None else r["item_id"]
        preference.setdefault((sample, r["system_a"], r["system_b"]), choice)
        a, b = code[r["system_a"]], code[r["system_b"]]
        winners.append(b if choice == "b" else a)
        losers.append(a if choice == "b" else b)
        ties.append(choice == "tie")
    full_scores = bradley_terry(
        np.array(winners), np.array(losers), np.array(ties), len(systems), n_bootstrap=0
    ).scores
    owner = _user("simulate-owner")
    traces: dict[str, list[RunTrace]] = {}
    try:
        for selector in settings.selectors:
            traces[selector] = []
            for seed in range(settings.seeds):
                project = _new_project(settings, owner, f"{selector} seed {seed}")
                try:
                    imported = outputs_import(project=project, records=_strip_labels(records))
                    if not imported.ok:
                        raise SimulationError(f"the file was refused: {imported.to_dict()['errors'][:3]}")
                    trace = _run_pairs(
                        project, selector, seed, settings.budgets, preference, code, full_scores
                    )
                finally:
                    if not settings.keep:
                        _discard(project)
                    _clear_caches()
                traces[selector].append(trace)
                progress(
                    f"{selector:<22} seed {seed}: tau {' '.join(f'{t:.2f}' for t in trace.tau)} "
                    f"({trace.seconds:.1f} s)"
                )
    finally:
        if not settings.keep:
            owner.delete()
    result = _result(settings, records, systems, traces, FullData(full_scores))
    result["pairs_left_out"] = dropped
    result["estimator"] = "Bradley–Terry log-strengths of the comparisons so far"
    result["full_data"] = {"system_values": dict(zip(systems, map(float, full_scores), strict=True))}
    return result


def consistent_pairs(records: list[dict]) -> tuple[list[dict], int]:
    """The pairs whose two outputs agree with the text first seen for the same system and
    input: one system has one output per input in Concord (PandaLM's file repeats a few
    systems with a different text)."""
    seen: dict[tuple[str, str], str] = {}
    kept = []
    for r in records:
        sample = str(r["input_id"]) if r.get("input_id") is not None else r["item_id"]
        sides = ((r["system_a"], r["output_a"]), (r["system_b"], r["output_b"]))
        if all(seen.get((sample, system), text) == text for system, text in sides):
            for system, text in sides:
                seen.setdefault((sample, system), text)
            kept.append(r)
    return kept, len(records) - len(kept)


def _run_pairs(project, selector, seed, budgets, preference, code, full_scores) -> RunTrace:
    started = time.perf_counter()
    annotator = _user("simulate-oracle")
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    rng = np.random.default_rng(seed)
    trace = RunTrace()
    winners, losers, ties = [], [], []
    skips = 0
    while len(winners) < budgets[-1]:
        assignment = assignment_claim_next(
            project=project, annotator=annotator, selector=selector, mode="pair", rng=rng
        )
        if assignment is None or skips >= MAX_SKIPS_IN_A_ROW:
            raise SimulationError(
                f"{selector} offered no pair the file compared after {len(winners)} comparisons"
            )
        left, right = assignment.output, assignment.output_b
        sample = left.sample.external_id
        answer = preference.get((sample, left.system, right.system))
        if answer is None:
            flipped = preference.get((sample, right.system, left.system))
            answer = None if flipped is None else {"a": "b", "b": "a"}.get(flipped, flipped)
        if answer is None:
            assignment_skip(assignment=assignment, annotator=annotator)
            skips += 1
            continue
        skips = 0
        comparison_submit(
            output_a=left, output_b=right, annotator=annotator, choice=answer, assignment=assignment
        )
        a, b = code[left.system], code[right.system]
        winners.append(b if answer == "b" else a)
        losers.append(a if answer == "b" else b)
        ties.append(answer == "tie")
        if len(winners) in budgets:
            scores = bradley_terry(
                np.array(winners), np.array(losers), np.array(ties), len(code), n_bootstrap=0
            ).scores
            trace.tau.append(metrics.ranking_tau(scores, full_scores))
            trace.tau_ipw.append(trace.tau[-1])
    trace.labels = len(winners)
    trace.seconds = time.perf_counter() - started
    return trace


# -- judge choice (recorded or imported pairwise judges) -----------------------------------------
def is_judge_choice(data: Path, validators: Path | None) -> bool:
    """A pairwise file with recorded or external judges: the in-memory judge-choice engine."""
    if validators is None:
        return False
    with open(data, encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "")
    return (bool(first) and "output_a" in json.loads(first)
            and pairwise_judges.validators_file_kind(validators) != pairwise_judges.VALIDATOR_DEFINITIONS)


def simulate_judges(settings: SimulationSettings, records: list[dict], progress: Progress) -> dict:
    """Which judge the report card holds after each budget of human comparisons, per selector
    and seed, in the pure engine of simulator.pairwise_judges (no database, no system ranking:
    the file need not name its systems)."""
    assert settings.validators is not None
    rows = read_records(settings.validators)
    if pairwise_judges.validators_file_kind(settings.validators) == pairwise_judges.RECORDED_JUDGES:
        panel = pairwise_judges.judge_panel_from_recorded(records, rows)
    else:
        panel = pairwise_judges.judge_panel_from_external(records, rows)
    n_pairs = int(np.count_nonzero(panel.human >= 0))
    budgets = list(settings.budgets) or pairwise_judges.default_budgets(n_pairs)
    if budgets != sorted(set(budgets)) or budgets[0] < 1:
        raise SimulationError("--budgets must be increasing positive numbers")
    if budgets[-1] > n_pairs:
        raise SimulationError(
            f"the largest budget {budgets[-1]} exceeds the file's {n_pairs} pairs with a human choice")
    if settings.seeds < 1:
        raise SimulationError("--seeds must be at least 1")
    try:
        result = pairwise_judges.simulate_judge_choice(
            panel, selectors=settings.selectors, seeds=settings.seeds, budgets=budgets,
            progress=progress,
        )
    except ValueError as exc:
        raise SimulationError(str(exc)) from exc
    result["data"] = settings.data.name
    result["validators"] = settings.validators.name
    return result


def simulate(
    settings: SimulationSettings, progress: Progress = lambda message: None,
    progress_bar: engine.ProgressBar | None = None,
) -> dict:
    records = read_records(settings.data)
    pairwise = is_pairwise(records)
    if pairwise and is_judge_choice(settings.data, settings.validators):
        return simulate_judges(settings, records, progress)
    check_settings(settings, len(records), pairwise)
    if pairwise:
        return simulate_pairs(settings, records, progress)
    if settings.through_services:
        return simulate_outputs(settings, records, progress)
    return simulate_in_memory(settings, records, progress_bar)


def simulate_in_memory(
    settings: SimulationSettings, records: list[dict], progress_bar: engine.ProgressBar | None = None,
) -> dict:
    """The per-output replay in simulator.engine: no database, seeds in `settings.jobs`
    processes, the same figures as `simulate_outputs` for the same seeds."""
    entries: list[dict] = []
    if settings.validators is not None:
        entries = engine.file_validators(json.loads(Path(settings.validators).read_text(encoding="utf-8")))
    try:
        replay = engine.build_replay(
            records, data_name=settings.data.name, validator_entries=entries, scale=settings.scale,
            pass_threshold=settings.pass_threshold, scale_min=settings.scale_min,
            scale_max=settings.scale_max, epsilon=settings.epsilon,
            with_embeddings=bool(EMBEDDING_SELECTORS & set(settings.selectors)),
        )
        static_orders, s2e_sources = {}, {}
        s2e = [s for s in settings.selectors if s.startswith(S2E_PREFIX)]
        if s2e:
            items, item_ids, metric_name = s2e_items(records)
            for selector in s2e:
                utilities, source = s2e_utilities(items, selector[len(S2E_PREFIX):])
                s2e_sources[selector] = f"{source}; metric {metric_name}"
                for seed in range(settings.seeds):
                    static_orders[(selector, seed)] = static_order(records, items, item_ids, utilities, seed=seed)
        result = engine.simulate_replay(
            replay, settings.selectors, settings.seeds, settings.budgets, jobs=settings.jobs,
            batching=engine.Batching(size=settings.batch, exact_until=settings.exact_until),
            static_orders=static_orders, progress_bar=progress_bar,
        )
    except engine.EngineError as exc:
        raise SimulationError(str(exc)) from exc
    result["s2e_orderings"] = s2e_sources
    return result
