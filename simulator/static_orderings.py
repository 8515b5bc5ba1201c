"""subset2evaluate's static orderings for the label-efficiency simulator (DESIGN §4.3, §7).

Zouhar, Cui & Sachan 2025, "How to Select Datapoints for Efficient Human Evaluation of NLG
Models?" (github.com/zouharvi/subset2evaluate): order the *inputs* once, before any human
label, by a utility computed from automatic metrics or the outputs themselves, and have people
grade every output of the inputs taken first. With the package installed its own
`select_subset.basic` computes the utilities on in-memory items (never its downloaders);
without it, a transcription of its `methods.metric_var`, `metric_avg` and `diversity_unigram`
(version 1.0.27) does. Pure Python and numpy, no Django import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

S2E_PREFIX = "s2e_"
S2E_METHODS = ("metric_var", "metric_avg", "diversity")


def _chrf(hypothesis: str, reference: str) -> float:
    """chrF (Popović 2015; character n-grams 1–6, β = 2), as sacrebleu computes it, for when
    sacrebleu is missing."""
    def grams(text: str, n: int) -> Counter:
        text = text.replace(" ", "")
        return Counter(text[i:i + n] for i in range(len(text) - n + 1))

    precisions, recalls = [], []
    for n in range(1, 7):
        hyp, ref = grams(hypothesis, n), grams(reference, n)
        if not hyp or not ref:
            continue
        common = sum((hyp & ref).values())
        precisions.append(common / sum(hyp.values()))
        recalls.append(common / sum(ref.values()))
    if not precisions:
        return 0.0
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    return 0.0 if p + r == 0 else 100.0 * 5 * p * r / (4 * p + r)


def _chrf_scorer() -> tuple[Callable[[str, str], float], str]:
    try:
        import sacrebleu
    except ImportError:
        return _chrf, "chrF (own implementation)"
    metric = sacrebleu.metrics.CHRF()
    return (lambda h, r: metric.sentence_score(h, [r]).score), f"chrF (sacrebleu {sacrebleu.__version__})"


def s2e_items(records: list[dict]) -> tuple[list[dict], list[str], str]:
    """The file as subset2evaluate's in-memory items: one per input, with every system's output
    (`tgt`) and a cheap lexical metric (chrF against the reference; the input when there is
    none) in `scores`. Returns the items, their item ids, and the metric's description."""
    scorer, described = _chrf_scorer()
    by_item: dict[str, dict] = {}
    references: dict[str, str] = {}
    for record in records:
        references.setdefault(record["item_id"], record.get("reference") or "")
    for record in records:
        item = by_item.setdefault(record["item_id"], {
            "i": len(by_item), "src": record["input"], "tgt": {}, "scores": {},
        })
        reference = references[record["item_id"]] or record["input"]
        item["tgt"][record["system"]] = record["output"]
        item["scores"][record["system"]] = {"chrf": scorer(record["output"], reference)}
    return list(by_item.values()), list(by_item), described


def s2e_utilities(items: list[dict], method: str) -> tuple[list[float], str]:
    """Per item, subset2evaluate's utility for `method` (higher is taken first), and where it
    came from. With the package installed, its own `select_subset.basic` computes them on the
    in-memory items (never its downloaders); without it, a transcription of its
    `methods.metric_var`, `metric_avg` and `diversity_unigram` (subset2evaluate 1.0.27)."""
    try:
        from subset2evaluate import select_subset
    except ImportError:
        select_subset = None
    if select_subset is not None:
        import importlib.metadata

        version = importlib.metadata.version("subset2evaluate")
        kwargs = {"metric": "bleu"} if method == "diversity" else {"metric": "chrf"}
        ordered = select_subset.basic([dict(item) for item in items], method=method, **kwargs)
        utility = {item["i"]: float(item["subset2evaluate_utility"]) for item in ordered}
        source = f"subset2evaluate {version}, {method}({kwargs['metric']})"
        return [utility[item["i"]] for item in items], source
    if method == "metric_var":
        return [float(np.var([s["chrf"] for s in it["scores"].values()])) for it in items], "own"
    if method == "metric_avg":
        return [-float(np.mean([s["chrf"] for s in it["scores"].values()])) for it in items], "own"
    utilities = []
    for item in items:
        overlaps = []
        texts = list(item["tgt"].values())
        for i, a in enumerate(texts):
            for b in texts[i + 1:]:
                ca, cb = Counter(a.split()), Counter(b.split())
                total = sum(ca.values()) + sum(cb.values())
                overlaps.append(1.0 if not total else 2 * sum((ca & cb).values()) / total)
        utilities.append(-float(np.mean(overlaps)) if overlaps else 0.0)
    return utilities, "own transcription of diversity_unigram"


def static_order(
    records: list[dict], items: list[dict], item_ids: list[str], utilities: list[float],
    seed: int,
) -> list[int]:
    """Record rows in the order a static item ordering grades them: items by utility (highest
    first, stable), each item's outputs in a seeded random order."""
    rows_by_item: dict[str, list[int]] = {}
    for row, record in enumerate(records):
        rows_by_item.setdefault(record["item_id"], []).append(row)
    rng = np.random.default_rng(seed)
    order = sorted(range(len(items)), key=lambda i: -utilities[i])
    rows: list[int] = []
    for index in order:
        item_rows = rows_by_item[item_ids[index]]
        rows.extend(item_rows[i] for i in rng.permutation(len(item_rows)))
    return rows
