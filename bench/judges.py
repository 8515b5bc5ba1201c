"""Real LLM judges, offline: LLMBar's recorded judges on its Natural pairs (issue 13).

    .venv/bin/python bench/judges.py [--judges FILE] [--pairs FILE] [--prompts DIR]
                                     [--throughput-judges GPT-4/CoT,GPT-4/Vanilla,ChatGPT/CoT]
                                     [--seeds 30]

(a) parse rate: how many recorded comparison completions `parse_pairwise_answer` (defaults)
    reads, and how often it agrees with the winner LLMBar recorded, with the others per judge
    and why (unread by both, unread by us, read by us only, different);
(b) throughput: the replay server behind the real client path (validators.llm.grade_prompts,
    a fresh InMemoryAnswerCache each run so every prompt reaches the server) over every
    recorded comparison prompt of a few judges, rendered from LLMBar's templates; verdicts/s at
    concurrency 32 against concurrency 1 measured in the same run, and how many answers parse
    to LLMBar's recorded winner;
(c) the judge the report card picks on all pairs, and the top 5;
(d) labels needed to hold that judge (regret ≤ 0.02 from then on), random against
    judge_disagreement and judge_choice, p10/p50/p90 over the seeds, and parity; budgets every
    pair (--budget-step), since at every 5 a median of 7 rounds up to 10;
(f) the same on PandaLM's pairs (3-annotator majority, no recorded judges): imported judges
    made at bench time by small comparators over the texts (length, overlap with the input,
    repetition, position), to check judge_choice is no worse than random where the judges are
    weak and several are near-duplicates.
Reads ../shared/data, never copies it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CONCORD_SHARED_DATA", ROOT.parent / "shared" / "data"))

from concord_testing.judge_replay import JudgeReplayServer, read_jsonl  # noqa: E402
from simulator.pairwise_judges import (  # noqa: E402
    JUDGE_SELECTORS,
    default_budgets,
    full_data,
    judge_panel_from_external,
    judge_panel_from_recorded,
    simulate_judge_choice,
)
from validators.judging import parse_pairwise_answer  # noqa: E402
from validators.llm import InMemoryAnswerCache, ProviderConfig, grade_prompts  # noqa: E402


def parse_rates(judge_rows: list[dict]) -> dict[str, Counter]:
    """Per comparison judge: completions read the same as LLMBar, and the others by reason."""
    per_judge: dict[str, Counter] = defaultdict(Counter)
    for row in judge_rows:
        if row["mode"] != "comparison":
            continue
        for run in row["runs"]:
            if run["completion"] is None:
                continue
            ours = parse_pairwise_answer(run["completion"])
            # LLMBar's winner is in the original order; the completion speaks of the order shown.
            theirs = run["winner"]
            if theirs is not None and run["swap"]:
                theirs = {"a": "b", "b": "a"}[theirs]
            if ours == theirs and ours is not None:
                reason = "same"
            elif ours is None and theirs is None:
                reason = "unread by both"
            elif ours is None:
                reason = "unread by us"
            elif theirs is None:
                reason = f"read by us only ({ours})"
            else:
                reason = f"different (ours {ours}, LLMBar {theirs})"
            per_judge[row["judge"]][reason] += 1
    return per_judge


def comparison_template(prompts: Path, strategy: str) -> str:
    """LLMBar's comparison template for a strategy, as chat text (its <|im_start|> markers
    dropped: a chat API gets the user part)."""
    text = (prompts / "comparison" / f"{strategy}.txt").read_text(encoding="utf-8")
    user = text.split("<|im_start|>user", 1)[-1]
    return user.replace("<|im_end|>", "").strip()


def render(template: str, pair: dict, swap: bool, aux: list) -> str:
    first, second = (pair["output_b"], pair["output_a"]) if swap else (pair["output_a"], pair["output_b"])
    prompt = template.replace("{input}", pair["input"])
    for i, text in enumerate(aux):
        prompt = prompt.replace(f"{{auxiliary_input_{i}}}", str(text))
    return prompt.replace("{output_1}", first).replace("{output_2}", second)


def throughput(judges_path: Path, pairs_path: Path, prompts: Path, judge_rows: list[dict],
               pairs: list[dict], judges: list[str], latency_s: float) -> list[tuple]:
    by_key = {(r["judge"], r["item_id"]): r for r in judge_rows}
    rows = []
    # A model takes time to answer; with none, concurrency has nothing to overlap.
    with JudgeReplayServer(judges_path, pairs_path, latency_s=latency_s) as replay:
        for judge in judges:
            strategy = judge.split("/", 1)[1]
            template = comparison_template(prompts, strategy)
            prompt_list, expected = [], []
            for pair in pairs:
                row = by_key.get((judge, pair["item_id"]))
                if row is None:
                    continue
                for run in row["runs"]:
                    if run["completion"] is None:
                        continue
                    prompt_list.append(render(template, pair, run["swap"], row["aux"]))
                    # LLMBar's winner in the order shown, to compare with what we read.
                    winner = run["winner"]
                    expected.append({"a": "b", "b": "a"}[winner] if winner and run["swap"] else winner)
            # Warm-up: the first call pays for imports and connection set-up.
            grade_prompts(ProviderConfig(base_url=replay.base_url, model=judge, api_key=None),
                          prompt_list[:4], cache=InMemoryAnswerCache())
            for concurrency in (1, 32):
                provider = ProviderConfig(base_url=replay.base_url, model=judge, api_key=None,
                                          concurrency=concurrency, max_retries=0)
                started = time.perf_counter()
                results = grade_prompts(provider, prompt_list, cache=InMemoryAnswerCache())
                seconds = time.perf_counter() - started
                errors = sum(r.outcome == "error" and not r.raw for r in results)
                same = sum(parse_pairwise_answer(r.raw) == e for r, e in zip(results, expected, strict=True)
                           if r.raw and e is not None)
                rows.append((judge, concurrency, len(prompt_list), seconds, len(prompt_list) / seconds,
                             errors, same, sum(e is not None for e in expected)))
    return rows


# Strategies whose comparison prompt embeds nothing but the pair: the product renders those
# from the pair alone (the others embed per-pair LLM-generated metrics or references).
PAIR_ONLY_STRATEGIES = ("CoT", "Vanilla", "Vanilla_1shot", "Vanilla_2shot", "Vanilla_NoRules")


def product_path(judges_path: Path, pairs_path: Path, prompts: Path, judge_rows: list[dict],
                 pairs: list[dict], latency_s: float) -> dict:
    """The whole product on the recorded judges: a pairwise project importing the pairs with
    their gold, one provider per judge (the model name selects the recording) and one pairwise
    LLM validator per judge with LLMBar's template, a run through run_start (eager Celery, the
    real client, answer cache, parsing, both orders, PairVerdict rows), then the report card."""
    sys.path.insert(0, str(ROOT / "bench"))
    from _setup import fresh_database

    database = fresh_database("judges")
    from django.contrib.auth import get_user_model

    from annotate.services.imports import outputs_import
    from annotate.services.projects import project_create
    from validators.models import PairVerdict, Provider, Run
    from validators.report_card import report_card
    from validators.services.authoring import validator_create
    from validators.services.runs import run_start

    judges = sorted({r["judge"] for r in judge_rows if r["mode"] == "comparison"
                     and r["strategy"] in PAIR_ONLY_STRATEGIES})
    owner = get_user_model().objects.create(username="bench")

    def judged_project(slug: str, names: list[str], concurrency: int):
        project = project_create(name=f"LLMBar Natural ({slug})", slug=slug, owner=owner)
        imported = outputs_import(project=project, records=[dict(p) for p in pairs], with_labels=True)
        assert imported.ok, imported.problems[:3]
        validators = []
        for judge in names:
            template = comparison_template(prompts, judge.split("/", 1)[1])
            template = template.replace("{output_1}", "{output_a}").replace("{output_2}", "{output_b}")
            provider = Provider.objects.create(project=project, name=judge[:64], base_url=replay.base_url,
                                               model=judge, concurrency=concurrency)
            validators.append(validator_create(project=project, kind="llm", target="pair", name=judge,
                                               source=template, provider=provider, created_by=owner))
        before = replay.request_count
        started = time.perf_counter()
        run = run_start(project=project, validators=validators, requested_by=owner)
        seconds = time.perf_counter() - started
        verdicts = PairVerdict.objects.filter(validator__project=project)
        return {"project": project, "run": Run.objects.get(pk=run.pk), "seconds": seconds,
                "requests": replay.request_count - before, "verdicts": verdicts.count(),
                "errors": verdicts.filter(winner="error").count(), "judges": len(names)}

    with JudgeReplayServer(judges_path, pairs_path, latency_s=latency_s) as replay:
        baseline = judged_project("baseline", ["GPT-4/CoT", "ChatGPT/Vanilla"], concurrency=1)
        everything = judged_project("all", judges, concurrency=32)
    return {"database": database, "pairs": len(pairs), "baseline": baseline, "all": everything,
            "card": report_card(everything["project"])}


def print_product_path(options, judge_rows: list[dict], pairs: list[dict]) -> None:
    result = product_path(options.judges, options.pairs, options.prompts, judge_rows, pairs, options.latency)
    print(f"(e) the product path ({result['database']}): pairwise LLM judges × {result['pairs']} pairs × "
          f"2 orders through run_start (eager), replay server {options.latency * 1000:g} ms per answer")
    print(f"  {'run':<34} {'status':>6} {'pair verdicts':>13} {'errors':>6} {'requests':>8} {'s':>6} "
          f"{'verdicts/s':>10} {'requests/s':>10} {'ratio':>6}")
    base_rate = result["baseline"]["verdicts"] / result["baseline"]["seconds"]
    for label, entry in (("2 judges, provider concurrency 1", result["baseline"]),
                         (f"{result['all']['judges']} judges, provider concurrency 32", result["all"])):
        rate = entry["verdicts"] / entry["seconds"]
        print(f"  {label:<34} {entry['run'].status:>6} {entry['verdicts']:>13} {entry['errors']:>6} "
              f"{entry['requests']:>8} {entry['seconds']:>6.1f} {rate:>10.0f} "
              f"{entry['requests'] / entry['seconds']:>10.0f} {rate / base_rate:>5.1f}x")
    pairwise = result["card"].pairwise
    chosen = pairwise.chosen
    print(f"  report card over {pairwise.n_comparisons} comparisons, consistency floor {pairwise.floor:g}: "
          f"chosen {chosen.name if chosen else 'none'} — {pairwise.selection.reason}")
    ranked = sorted(pairwise.candidates, key=lambda c: (-(c.metrics.accuracy or 0), -(c.metrics.consistency or 0)))
    print(f"  {'judge':<28} {'accuracy':>8} {'ties ½':>7} {'κ':>6} {'consistency':>11} {'1st pos':>7} "
          f"{'errors':>6} {'tokens/pair':>11}  why not chosen")
    for c in ranked[:8]:
        m = c.metrics
        print(f"  {c.name:<28} {m.accuracy:>8.3f} {m.accuracy_ties_half:>7.3f} {m.kappa:>6.3f} "
              f"{m.consistency:>11.2f} {m.first_position_rate:>7.2f} {m.n_errors:>6} {c.cost:>11.0f}  "
              f"{pairwise.selection.why_not.get(c.validator_id, '(chosen)')}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judges", type=Path, default=DATA / "llmbar_natural_judges_dev.jsonl")
    parser.add_argument("--pairs", type=Path, default=DATA / "llmbar_natural_dev_pairs.jsonl")
    parser.add_argument("--prompts", type=Path, default=DATA / "llmbar_judge_prompts" / "prompts")
    parser.add_argument("--throughput-judges", default="GPT-4/CoT,GPT-4/Vanilla,ChatGPT/Metrics_Reference")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget-step", type=int, default=1, help="(d), (f): a budget every N pairs")
    parser.add_argument("--pandalm", type=Path, default=DATA / "pandalm_dev_pairs.jsonl")
    parser.add_argument("--latency", type=float, default=0.05,
                        help="seconds the replay server waits per answer, as a model would")
    parser.add_argument("--parts", default="abcdef", help="which parts to run, e.g. 'e' or 'df'")
    options = parser.parse_args()
    judge_rows, pairs = read_jsonl(options.judges), read_jsonl(options.pairs)
    if "e" in options.parts:
        print_product_path(options, judge_rows, pairs)

    if "a" in options.parts:
        print("(a) parse_pairwise_answer (defaults) on the recorded comparison completions")
        rates = parse_rates(judge_rows)
        total = sum(sum(c.values()) for c in rates.values())
        same = sum(c["same"] for c in rates.values())
        read = sum(v for c in rates.values() for k, v in c.items() if k == "same" or k.startswith(("read", "diff")))
        recorded = total - sum(v for c in rates.values() for k, v in c.items()
                               if k == "unread by both" or k.startswith("read by us only"))
        print(f"  {total} completions, {len(rates)} judges: read {read} ({read / total:.1%}), "
              f"same winner as LLMBar {same} ({same / total:.1%}; {same / recorded:.1%} of the "
              f"{recorded} LLMBar read)")
        print(f"  {'judge':<32} {'n':>4} {'same':>6}  others")
        for judge, counts in sorted(rates.items(), key=lambda kv: kv[1]["same"] / sum(kv[1].values())):
            n = sum(counts.values())
            others = ", ".join(f"{k}: {v}" for k, v in counts.most_common() if k != "same")
            if others:
                print(f"  {judge:<32} {n:>4} {counts['same'] / n:>6.1%}  {others}")
        print(f"  ({sum(1 for c in rates.values() if c['same'] == sum(c.values()))} judges agree on every completion)")

    if "b" in options.parts:
        print(f"\n(b) replay server ({options.latency * 1000:g} ms per answer) + "
              "validators.llm.grade_prompts, fresh cache per run")
        rows = throughput(options.judges, options.pairs, options.prompts, judge_rows, pairs,
                          [j for j in options.throughput_judges.split(",") if j], options.latency)
        print(f"  {'judge':<28} {'conc':>4} {'prompts':>7} {'s':>6} {'verdicts/s':>10} {'ratio':>6} "
              f"{'errors':>6} {'same winner':>12}")
        baseline = {judge: rate for judge, conc, _, _, rate, *_ in rows if conc == 1}
        for judge, conc, n, seconds, rate, errors, same_winner, comparable in rows:
            print(f"  {judge:<28} {conc:>4} {n:>7} {seconds:>6.2f} {rate:>10.0f} "
                  f"{rate / baseline[judge]:>5.1f}x {errors:>6} {same_winner:>5}/{comparable}")

    panel = judge_panel_from_recorded(pairs, judge_rows)
    full = full_data(panel)
    if "c" in options.parts:
        print("\n(c) the report card's choice on all pairs (accuracy, ties and inconsistent orders wrong)")
        order = np.lexsort((-np.nan_to_num(full.consistency, nan=-1.0), -full.accuracy,
                            full.consistency < 0.6))
        print(f"  chosen: {panel.names[full.chosen]} — {full.reason}")
        for j in order[:5]:
            consistency = "asked once" if np.isnan(full.consistency[j]) else f"{full.consistency[j]:.2f}"
            print(f"  {panel.names[j]:<32} accuracy {full.accuracy[j]:.3f}  consistency {consistency}")

    if "d" in options.parts:
        print(f"\n(d) labels to hold the full-data judge (regret ≤ 0.02), {options.seeds} seeds, "
              f"budgets every {options.budget_step}")
        print_judge_choice(panel, options.seeds, options.budget_step)
    if "f" in options.parts:
        pandalm = read_jsonl(options.pandalm)
        panel = judge_panel_from_external(pandalm, comparator_verdicts(pandalm))
        full = full_data(panel)
        print(f"\n(f) PandaLM, {len(pandalm)} pairs, {len(panel.names)} comparator judges made here; "
              f"full data keeps {panel.names[full.chosen]} ({full.accuracy[full.chosen]:.3f}):")
        print("  " + ", ".join(f"{n} {a:.3f}" for n, a in sorted(
            zip(panel.names, full.accuracy, strict=True), key=lambda na: -na[1])))
        print_judge_choice(panel, options.seeds, options.budget_step)


def print_judge_choice(panel, seeds: int, step: int) -> None:
    started = time.perf_counter()
    n_pairs = int(np.count_nonzero(panel.human >= 0))
    result = simulate_judge_choice(panel, selectors=list(JUDGE_SELECTORS), seeds=seeds,
                                   budgets=default_budgets(n_pairs, step))
    seconds = time.perf_counter() - started
    print(f"  {'selector':<20} {'p10':>6} {'p50':>6} {'p90':>6} {'parity':>7}")
    for name, entry in result["selectors"].items():
        cells = [entry[f"labels_to_regret_0_02_p{q}"] for q in (10, 50, 90)]
        parity = entry["parity_judge"]
        print(f"  {name:<20} " + " ".join("     —" if c is None else f"{c:>6g}" for c in cells)
              + ("      —" if parity is None else f" {parity:>7.2f}"))
    print(f"  ({seconds:.1f} s for {seeds} seeds × {len(JUDGE_SELECTORS)} selectors)")


def _words(text: str | None) -> list[str]:
    return re.findall(r"\w+", (text or "").lower())


def _input_overlap(output: str, pair: dict) -> float:
    words = set(_words(output))
    return len(words & set(_words(pair["input"]))) / max(len(words), 1)


def _distinct_share(output: str, pair: dict) -> float:
    words = _words(output)
    return len(set(words)) / len(words) if words else -1.0


# Cheap heuristics a team might try as judges before paying for an LLM; each prefers the
# output with the higher key, equal keys a tie.
COMPARATORS = {
    "longer": lambda o, p: len(o),
    "shorter": lambda o, p: -len(o),
    "input_overlap": _input_overlap,
    "novel_words": lambda o, p: -_input_overlap(o, p) if o.strip() else -2.0,
    "less_repetition": _distinct_share,
    "nonempty_then_shorter": lambda o, p: (bool(o.strip()), -len(o)),
    "nonempty_then_longer": lambda o, p: (bool(o.strip()), len(o)),
}


def comparator_verdicts(pairs: list[dict]) -> list[dict]:
    """Imported verdicts {validator, item_id, winner} of COMPARATORS, plus a judge that always
    answers a (the position baseline)."""
    rows = []
    for pair in pairs:
        for name, key in COMPARATORS.items():
            a, b = key(pair["output_a"] or "", pair), key(pair["output_b"] or "", pair)
            rows.append({"validator": name, "item_id": pair["item_id"],
                         "winner": "a" if a > b else "b" if b > a else "tie"})
        rows.append({"validator": "always_a", "item_id": pair["item_id"], "winner": "a"})
    return rows


if __name__ == "__main__":
    main()
