"""How many human comparisons it takes to keep the right pairwise judge: the pure in-memory
engine behind `manage.py simulate --validators JUDGES` on a pairwise file (DESIGN §4.6, §7).
Numpy, no Django.

The judges' winners are known on every pair up front (recorded LLM judges in LLMBar's format,
or imported external verdicts); only the human comparisons cost labels. Per selector and seed
an oracle reveals the file's `human_preference` for each pair the selector draws; at every
budget the report card's rule (`select_pairwise_judge`, consistency floor 0.6) picks a judge
from the labelled pairs, and its regret is the full-data accuracy of the full-data choice
minus the full-data accuracy of the judge held now (nothing held counts as accuracy 0).
Labels needed, quantiles and parity follow `simulator.metrics`.

Selectors:
- `random`: uniform draws without replacement.
- `judge_disagreement`: half uniform, half in proportion to how much the current leading judges
  disagree on a pair (Gini impurity of their winners), the active-model-selection idea (Model
  Selector, CODA) of labelling where candidates differ. Since the draw is not uniform, accuracy
  and consistency are LURE-weighted (annotate.sampling_weights), and the uniform half bounds
  every weight by 2.
- `judge_choice`: the product's pairwise selector (annotate.selectors.judge_choice): LUCB-style
  ε-good identification with confidence bounds on the accuracy difference between the judge
  held and each challenger; pairs where the leader and the most ambiguous open challenger
  disagree get the mass, a uniform share the rest, and the draw turns uniform once the choice
  is settled. LURE-weighted like `judge_disagreement`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from annotate.sampling_weights import importance_ratios, lure_weights
from annotate.selectors.judge_choice import (
    card_leader,
    judge_accuracies,
    judge_choice_probabilities,
    judge_race,
)
from simulator import metrics
from validators.judging import combine_orders, parse_rating, winner_from_scores
from validators.pairwise_alignment import (
    DEFAULT_CONSISTENCY_FLOOR,
    WIN_A,
    WIN_B,
    WIN_ERROR,
    WIN_MISSING,
    WINNER_CODES,
    PairwiseCandidate,
    PairwiseSelection,
    pairwise_metrics,
    select_pairwise_judge,
    weighted_accuracy,
    weighted_consistency,
    winner_codes,
)

JUDGE_SELECTORS = ("random", "judge_disagreement", "judge_choice")
# Judges whose disagreement steers `judge_disagreement`: the choice is between the few best.
LEADERS = 4
UNIFORM_SHARE = 0.5
DEFAULT_SEEDS = 30
BUDGET_STEP = 5

RECORDED_JUDGES, EXTERNAL_VERDICTS, VALIDATOR_DEFINITIONS = "recorded_judges", "external", "validators"


def validators_file_kind(path: str | Path) -> str:
    """'recorded_judges' (LLMBar rows with `judge` and `runs`), 'external' (rows with
    `validator`, `item_id` and `winner`) or 'validators' (the DESIGN §6 definitions file)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "validators" in whole:
        return VALIDATOR_DEFINITIONS
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        row = json.loads(first)
    except ValueError:
        return VALIDATOR_DEFINITIONS
    if isinstance(row, dict) and {"judge", "item_id"} <= row.keys() and ("runs" in row or "scores" in row):
        return RECORDED_JUDGES
    if isinstance(row, dict) and {"validator", "item_id", "winner"} <= row.keys():
        return EXTERNAL_VERDICTS
    return VALIDATOR_DEFINITIONS


@dataclass(frozen=True)
class JudgePanel:
    """Every judge's winner on every pair (codes of validators.pairwise_alignment, canonical
    order = the file's a and b), and the human choices."""

    item_ids: list[str]
    human: np.ndarray    # (P,)
    names: list[str]
    kinds: list[str]
    verdict: np.ndarray  # (J, P) the pair's verdict: both orders combined, or the one answer
    first: np.ndarray    # (J, P) winner with a shown first; WIN_MISSING for judges asked once
    second: np.ndarray   # (J, P) winner with b shown first, in the original order

    @property
    def asked_twice(self) -> np.ndarray:
        return np.any(self.first != WIN_MISSING, axis=1)


def _code(winner: str | None) -> int:
    return WINNER_CODES["error"] if winner is None else WINNER_CODES.get(winner, WIN_ERROR)


def _panel(pairs: Sequence[dict], by_judge: dict[str, dict[str, tuple]], kinds: dict[str, str]) -> JudgePanel:
    item_ids = [str(p["item_id"]) for p in pairs]
    names = sorted(by_judge)
    shape = (len(names), len(item_ids))
    verdict, first, second = (np.full(shape, WIN_MISSING, np.int8) for _ in range(3))
    for j, name in enumerate(names):
        answers = by_judge[name]
        for p, item_id in enumerate(item_ids):
            if item_id in answers:
                verdict[j, p], first[j, p], second[j, p] = answers[item_id]
    human = winner_codes([p.get("human_preference") for p in pairs])
    return JudgePanel(item_ids, human, names, [kinds[n] for n in names], verdict, first, second)


def judge_panel_from_recorded(pairs: Sequence[dict], judge_rows: Sequence[dict]) -> JudgePanel:
    """LLMBar's recorded judges: a comparison judge's verdict combines its two runs (the
    recorded winners, both in the original order; disagreeing orders are a tie, an unread one
    an error); a rating judge's compares its two parsed scores and is asked once."""
    by_judge: dict[str, dict[str, tuple]] = {}
    kinds: dict[str, str] = {}
    for row in judge_rows:
        name = str(row["judge"])
        if row.get("mode") == "rating":
            scores = row.get("scores") or {}
            winner = winner_from_scores(parse_rating(scores.get("a") or ""),
                                        parse_rating(scores.get("b") or ""))
            answer = (_code(winner), WIN_MISSING, WIN_MISSING)
            kinds[name] = "rating"
        else:
            runs = {bool(r.get("swap")): r.get("winner") for r in row.get("runs") or ()}
            shown, swapped = runs.get(False), runs.get(True)
            answer = (_code(combine_orders(shown, swapped)), _code(shown), _code(swapped))
            kinds[name] = "pairwise"
        by_judge.setdefault(name, {})[str(row["item_id"])] = answer
    return _panel(pairs, by_judge, kinds)


def judge_panel_from_external(pairs: Sequence[dict], rows: Sequence[dict]) -> JudgePanel:
    """Imported verdicts {"validator", "item_id", "winner"}: one answer per pair."""
    by_judge: dict[str, dict[str, tuple]] = {}
    for row in rows:
        by_judge.setdefault(str(row["validator"]), {})[str(row["item_id"])] = (
            _code(row.get("winner")), WIN_MISSING, WIN_MISSING)
    return _panel(pairs, by_judge, dict.fromkeys(by_judge, "external"))


def choose_judge(panel: JudgePanel, labelled: np.ndarray, weights: np.ndarray | None = None, *,
                 floor: float = DEFAULT_CONSISTENCY_FLOOR) -> PairwiseSelection:
    """The report card's choice from the labelled pairs (indices into the panel), accuracy and
    consistency weighted by `weights` (one per labelled pair; None = 1 each)."""
    labelled = np.asarray(labelled, dtype=np.int64)
    weights = np.ones(labelled.size) if weights is None else np.asarray(weights, np.float64)
    human = panel.human[labelled]
    twice = panel.asked_twice
    candidates = []
    for j, name in enumerate(panel.names):
        judge = panel.verdict[j, labelled]
        first = panel.first[j, labelled] if twice[j] else None
        second = panel.second[j, labelled] if twice[j] else None
        m = pairwise_metrics(human, judge, first, second)
        answered = (human >= 0) & (judge != WIN_MISSING)
        m = replace(
            m, accuracy=weighted_accuracy(human, judge, weights),
            consistency=None if first is None else weighted_consistency(
                first[answered], second[answered], weights[answered]),
        )
        candidates.append(PairwiseCandidate(j, name, panel.kinds[j], m))
    return select_pairwise_judge(candidates, floor=floor)


@dataclass(frozen=True)
class FullData:
    chosen: int
    accuracy: np.ndarray     # (J,) full-data accuracy, 0 where undefined
    consistency: np.ndarray  # (J,) NaN for judges asked once
    reason: str


def full_data(panel: JudgePanel, *, floor: float = DEFAULT_CONSISTENCY_FLOOR) -> FullData:
    answered = np.flatnonzero(panel.human >= 0)
    selection = choose_judge(panel, answered, floor=floor)
    if selection.chosen is None:
        raise ValueError(f"no judge can be chosen on the full data: {selection.reason}")
    accuracy = np.array([weighted_accuracy(panel.human, panel.verdict[j], np.ones(panel.human.size)) or 0.0
                         for j in range(len(panel.names))])
    consistency = np.array([
        weighted_consistency(panel.first[j], panel.second[j], np.ones(panel.human.size))
        if panel.asked_twice[j] else None for j in range(len(panel.names))], dtype=np.float64)
    return FullData(selection.chosen.validator_id, accuracy, consistency, selection.reason)


def disagreement_probabilities(leader_verdicts: np.ndarray, pool: np.ndarray, *,
                               uniform_share: float = UNIFORM_SHARE) -> np.ndarray:
    """Draw probabilities over the pairs: q(p) = u/|pool| + (1 − u)·d(p)/Σ_pool d, where d(p) is
    the chance that two different leaders picked at random give different winners on p
    (1 − Σ_c n_c(n_c − 1) / (K(K − 1)), an error being its own answer); 0 outside the pool;
    uniform when the leaders agree everywhere."""
    leader_verdicts = np.atleast_2d(np.asarray(leader_verdicts, np.int8))
    pool = np.asarray(pool, dtype=bool)
    k = leader_verdicts.shape[0]
    q = np.zeros(pool.size)
    size = int(pool.sum())
    if size == 0:
        return q
    disagreement = np.zeros(pool.size)
    if k >= 2:
        agreeing = np.zeros(pool.size)
        for code in np.unique(leader_verdicts):
            n = np.count_nonzero(leader_verdicts == code, axis=0).astype(np.float64)
            agreeing += n * (n - 1)
        disagreement = 1.0 - agreeing / (k * (k - 1))
    disagreement[~pool] = 0.0
    total = disagreement.sum()
    if total <= 0:
        q[pool] = 1.0 / size
        return q
    q[pool] = uniform_share / size
    q += (1.0 - uniform_share) * disagreement / total
    return q


def leading_judges(panel: JudgePanel, labelled: np.ndarray, weights: np.ndarray,
                   consistency: np.ndarray, *, floor: float = DEFAULT_CONSISTENCY_FLOOR,
                   k: int = LEADERS) -> np.ndarray:
    """The k judges the report card would rank first now: qualifying ones (consistency, known
    on every pair without a label, meets the floor; judges asked once are exempt) by weighted
    accuracy on the labelled pairs, then consistency; the others after them."""
    human = panel.human[labelled]
    decided = (human == WIN_A) | (human == WIN_B)
    correct = (panel.verdict[:, labelled] == human) & decided
    mass = float(weights[decided].sum())
    accuracy = correct @ weights / mass if mass > 0 else np.zeros(len(panel.names))
    qualifies = ~(consistency < floor)  # NaN (asked once) qualifies
    ranked = np.lexsort((-np.nan_to_num(consistency, nan=-1.0), -accuracy, ~qualifies))
    return ranked[:k]


@dataclass
class SeedTrace:
    regret: list[float]
    hit: list[int]
    chosen: list[str | None]
    order: list[int]             # pairs in the order they were labelled
    probabilities: list[float]   # the chance each had when it was drawn
    pool_sizes: list[int]        # how many pairs it was drawn from


def replay_seed(panel: JudgePanel, full: FullData, selector: str, seed: int,
                budgets: Sequence[int], *, floor: float = DEFAULT_CONSISTENCY_FLOOR) -> SeedTrace:
    """One labelling run: draw pairs one by one, reveal their human choice, and at each budget
    record the judge the report card holds and its regret."""
    if selector not in JUDGE_SELECTORS:
        raise ValueError(f"unknown judge selector {selector!r}; known: {', '.join(JUDGE_SELECTORS)}")
    rng = np.random.default_rng(seed)
    population = np.flatnonzero(panel.human >= 0)
    pool = np.zeros(panel.human.size, dtype=bool)
    pool[population] = True
    n_population = population.size
    best = full.accuracy[full.chosen]
    order: list[int] = []
    probabilities: list[float] = []
    pool_sizes: list[int] = []
    trace = SeedTrace([], [], [], order, probabilities, pool_sizes)
    consistency = full.consistency
    checkpoints = set(budgets)
    for step in range(max(budgets)):
        weights = _weights(probabilities, pool_sizes, n_population)
        if selector == "random":
            q = pool / pool.sum()
        elif selector == "judge_choice":
            human_now = np.full(panel.human.size, WIN_MISSING, np.int8)
            pair_weights = np.zeros(panel.human.size)
            human_now[order] = panel.human[order]
            pair_weights[order] = weights
            race = judge_race(panel.verdict[:, population], human_now[population],
                              pair_weights[population], consistency, floor=floor)
            q = np.zeros(panel.human.size)
            q[population] = judge_choice_probabilities(panel.verdict[:, population], race, pool[population])
        else:
            leaders = leading_judges(panel, np.array(order, np.int64), weights, consistency, floor=floor)
            q = disagreement_probabilities(panel.verdict[leaders], pool)
        drawn = int(rng.choice(q.size, p=q))
        order.append(drawn)
        probabilities.append(float(q[drawn]))
        pool_sizes.append(int(pool.sum()))
        pool[drawn] = False
        if step + 1 in checkpoints:
            weights = _weights(probabilities, pool_sizes, n_population)
            held = card_choice(panel, np.array(order), weights, floor=floor)
            trace.chosen.append(None if held is None else panel.names[held])
            trace.hit.append(int(held == full.chosen))
            trace.regret.append(float(best - (0.0 if held is None else full.accuracy[held])))
    return trace


def card_choice(panel: JudgePanel, labelled: np.ndarray, weights: np.ndarray, *,
                floor: float = DEFAULT_CONSISTENCY_FLOOR) -> int | None:
    """`choose_judge(...).chosen.validator_id` computed for every judge at once (the report
    card's rule with one comparison needed and no costs): the simulator asks it at every
    budget of every seed."""
    labelled = np.asarray(labelled, dtype=np.int64)
    weights = np.asarray(weights, np.float64)
    human = panel.human[labelled]
    verdict = panel.verdict[:, labelled]
    accuracy = judge_accuracies(verdict, human, weights)
    first, second = panel.first[:, labelled], panel.second[:, labelled]
    counted = (human >= 0) & (verdict != WIN_MISSING) & (first >= 0) & (second >= 0)
    mass = counted @ weights
    same = (counted & (first == second)) @ weights
    consistency = np.divide(same, mass, out=np.full(mass.size, np.nan), where=mass > 0)
    consistency[~panel.asked_twice] = np.nan
    return card_leader(accuracy, consistency, floor=floor)


def _weights(probabilities: list[float], pool_sizes: list[int], n_population: int) -> np.ndarray:
    if not probabilities:
        return np.zeros(0)
    ratios = importance_ratios(np.array(probabilities), np.array(pool_sizes, np.float64))
    return lure_weights(ratios, np.array(pool_sizes, np.float64), n_population, len(probabilities))


def default_budgets(n_pairs: int, step: int = BUDGET_STEP) -> list[int]:
    return sorted(set(range(step, n_pairs + 1, step)) | {n_pairs})


def simulate_judge_choice(
    panel: JudgePanel, *, selectors: Sequence[str], seeds: int, budgets: Sequence[int],
    floor: float = DEFAULT_CONSISTENCY_FLOOR, progress: Callable[[str], None] = lambda m: None,
) -> dict:
    """DESIGN §7's JSON adapted to judge choice: per selector, regret and hit per seed and
    budget, labels needed per seed (regret ≤ 0.02 from then on), its p10/p50/p90 and the
    parity of the p50 against random's."""
    if "random" not in selectors:
        raise ValueError("parity is measured against random: include it in the selectors")
    unknown = [s for s in selectors if s not in JUDGE_SELECTORS]
    if unknown:
        raise ValueError(f"unknown judge selector(s) {', '.join(unknown)}; known: {', '.join(JUDGE_SELECTORS)}")
    full = full_data(panel, floor=floor)
    budgets = list(budgets)
    result_selectors: dict[str, dict] = {}
    for selector in selectors:
        traces = [replay_seed(panel, full, selector, seed, budgets, floor=floor) for seed in range(seeds)]
        regret = [t.regret for t in traces]
        needed = [metrics.labels_needed_per_seed(r, budgets, metrics.REGRET_TARGET, at_least=False)
                  for r in regret]
        entry = {
            "judge_regret": regret,
            "judge_hit": [t.hit for t in traces],
            "judge_chosen": [t.chosen for t in traces],
            "labels_to_regret_0_02": needed,
        }
        for q in (10, 50, 90):
            entry[f"labels_to_regret_0_02_p{q}"] = metrics.labels_quantile(needed, q / 100)
        result_selectors[selector] = entry
        progress(f"{selector:<20} labels to regret ≤ 0.02: p50 {entry['labels_to_regret_0_02_p50']}")
    random_p50 = result_selectors["random"]["labels_to_regret_0_02_p50"]
    for name, entry in result_selectors.items():
        entry["parity_judge"] = 1.0 if name == "random" else metrics.parity(
            entry["labels_to_regret_0_02_p50"], random_p50)
    return {
        "mode": "judge_choice",
        "pairs": int(np.count_nonzero(panel.human >= 0)),
        "judges": len(panel.names),
        "seeds": seeds,
        "budgets": budgets,
        "floor": floor,
        "selectors": result_selectors,
        "full_data": {
            "chosen": panel.names[full.chosen],
            "reason": full.reason,
            "accuracy": dict(zip(panel.names, map(float, full.accuracy), strict=True)),
            "consistency": {n: (None if np.isnan(c) else float(c))
                            for n, c in zip(panel.names, full.consistency, strict=True)},
        },
    }
