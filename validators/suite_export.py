"""A saved report card as a self-contained Python module that runs anywhere:

    python suite.py outputs.jsonl

Code assertions and comparators run in that process (the user runs their own suite on their own
machine); LLM graders and judges call an OpenAI-compatible endpoint named by environment
variables. The answer-reading rules of validators.judging are copied into the module when it is
exported, so a judge reads the same winner there as here.
"""

from __future__ import annotations

import inspect
import json
import pprint

from validators import judging

MODULE_TEMPLATE = '''#!/usr/bin/env python3
"""Concord report card "{name}" for project "{project}", saved {created}.

Usage: python {filename} outputs.jsonl > verdicts.jsonl

Each line of outputs.jsonl is an object with "output" and optionally "input", "reference",
"meta" (or "metadata"), "item_id" and "system". Each printed line gives every chosen
validator's verdict (pass, fail or error) and the suite's: an output fails the suite when any
chosen validator fails it.

A line with "output_a" and "output_b" instead (and optionally "system_a", "system_b") is a pair:
the chosen pairwise judge names the better output, a, b or tie, or error when its answer names
none. An LLM judge is asked in both orders (output_a shown first, then output_b shown first);
when the two orders disagree the pair is a tie or an error, as the judge was set up. A rating
judge scores each output and the higher score wins; a code comparator is called as
compare(output_a, output_b, input, reference, meta).

Judges with kind "external" gave verdicts imported into Concord from elsewhere: they have no
source and cannot run here. They are listed in VALIDATORS and reported under "not_run".

LLM graders use an OpenAI-compatible endpoint: CONCORD_LLM_BASE_URL (default: the provider's
URL at export time), CONCORD_LLM_MODEL, and the API key from CONCORD_LLM_API_KEY or from the
provider's own variable. No third-party packages are needed.
"""

import json
import os
import re
import sys
import urllib.request

VALIDATORS = {validators}

# Kinds whose verdicts were imported into Concord: nothing here can recompute them.
NOT_RUNNABLE = ("external",)

METRICS_AT_EXPORT = {metrics}


# -- answer reading, copied from Concord's validators/judging.py at export time --------------
{judging}
# -- end of the copy -------------------------------------------------------------------------


def _compile(source, name):
    namespace = {{}}
    exec(compile(source, "<validator>", "exec"), namespace)
    return namespace[name]


def _render(template, record, **outputs):
    fields = {{"output": record.get("output", ""), "input": record.get("input", ""),
              "reference": record.get("reference") or "", "meta": record.get("meta") or record.get("metadata") or {{}},
              **outputs}}

    def field(match):
        name, key = match.group(1), match.group(2)
        if name == "meta":
            return str(fields["meta"].get(key, ""))
        return str(fields.get(name, ""))

    text = re.sub(r"(?<!{{){{(output_a|output_b|output|input|reference|meta)(?:\\[([^\\]]+)\\])?}}(?!}})",
                  field, template)
    return text.replace("{{{{", "{{").replace("}}}}", "}}")


def _parse(answer):
    words = re.findall(r"[a-z]+", answer.lower())
    for word in words[:3]:
        if word in ("yes", "pass"):
            return "pass"
        if word in ("no", "fail"):
            return "fail"
    return "error"


def _ask(validator, prompt):
    provider = validator["provider"] or {{}}
    base = os.environ.get("CONCORD_LLM_BASE_URL", provider.get("base_url", "")).rstrip("/")
    model = os.environ.get("CONCORD_LLM_MODEL", provider.get("model", ""))
    key = os.environ.get("CONCORD_LLM_API_KEY") or os.environ.get(provider.get("api_key_env") or "", "")
    body = json.dumps({{"model": model, "temperature": 0,
                       "messages": [{{"role": "user", "content": prompt}}]}}).encode()
    request = urllib.request.Request(base + "/chat/completions", data=body, headers={{
        "Content-Type": "application/json", "Authorization": "Bearer " + (key or "none")}})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["choices"][0]["message"]["content"]


def _rating(validator, record, output):
    answer = _ask(validator, _render(validator["source"], record, output=output))
    return parse_rating(answer, validator["patterns"][0] if validator["patterns"] else None)


def _passes(validator, score):
    if score is None or validator["threshold"] is None:
        return "error"
    return "pass" if float(score) >= validator["threshold"] else "fail"


def verdict(validator, record, checks):
    try:
        if validator["kind"] == "code":
            result = checks[validator["id"]](record.get("output", ""), record.get("input", ""),
                                             record.get("reference"), record.get("meta") or record.get("metadata") or {{}})
            if result is None:
                return "error"
            if isinstance(result, bool):
                return "pass" if result else "fail"
            return _passes(validator, result)
        if validator["kind"] == "rating":
            return _passes(validator, _rating(validator, record, record.get("output", "")))
        return _parse(_ask(validator, _render(validator["source"], record)))
    except Exception:
        return "error"


def pair_verdict(validator, record, checks):
    """{{"winner": a | b | tie | error, ...}} for one pair, in the record's order."""
    output_a, output_b = record.get("output_a", ""), record.get("output_b", "")
    try:
        if validator["kind"] == "code":
            result = checks[validator["id"]](output_a, output_b, record.get("input", ""), record.get("reference"),
                                             record.get("meta") or record.get("metadata") or {{}})
            if isinstance(result, str) and result.lower() in (A, B, TIE):
                return {{"winner": result.lower()}}
            if isinstance(result, (int, float)) and not isinstance(result, bool):
                return {{"winner": A if result > 0 else (B if result < 0 else TIE)}}
            return {{"winner": "error"}}
        if validator["kind"] == "rating":
            score_a = _rating(validator, record, output_a)
            score_b = _rating(validator, record, output_b)
            return {{"winner": winner_from_scores(score_a, score_b) or "error", "score_a": score_a,
                    "score_b": score_b}}
        shown = parse_pairwise_answer(
            _ask(validator, _render(validator["source"], record, output_a=output_a, output_b=output_b)),
            validator["patterns"])
        swapped = swap_back(parse_pairwise_answer(
            _ask(validator, _render(validator["source"], record, output_a=output_b, output_b=output_a)),
            validator["patterns"]))
        combined = combine_orders(shown, swapped, inconsistent_as_tie=validator["inconsistent_is_tie"])
        return {{"winner": combined if combined in (A, B, TIE) else "error", "first": shown, "second": swapped,
                "inconsistent": shown is not None and swapped is not None and shown != swapped}}
    except Exception:
        return {{"winner": "error"}}


def main(path):
    runnable = [v for v in VALIDATORS if v["kind"] not in NOT_RUNNABLE]
    not_run = [v["name"] for v in VALIDATORS if v["kind"] in NOT_RUNNABLE]
    checks = {{v["id"]: _compile(v["source"], "compare" if v["target"] == "pair" else "check")
              for v in runnable if v["kind"] == "code"}}
    per_output = [v for v in runnable if v["target"] != "pair"]
    per_pair = [v for v in runnable if v["target"] == "pair"]
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if "output_a" in record and "output_b" in record:
                judged = {{v["name"]: pair_verdict(v, record, checks) for v in per_pair}}
                print(json.dumps({{"item_id": record.get("item_id"), "system_a": record.get("system_a"),
                                  "system_b": record.get("system_b"), "judges": judged,
                                  "winner": next((j["winner"] for j in judged.values()), None),
                                  "not_run": not_run}}))
                continue
            verdicts = {{v["name"]: verdict(v, record, checks) for v in per_output}}
            suite = "fail" if "fail" in verdicts.values() else ("error" if "error" in verdicts.values() else "pass")
            print(json.dumps({{"item_id": record.get("item_id"), "system": record.get("system"),
                              "verdicts": verdicts, "suite": suite, "not_run": not_run}}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
'''


def suite_as_json(suite) -> dict:
    return {
        "name": suite.name, "project": suite.project.slug, "created_at": suite.created_at.isoformat(),
        "coverage": suite.coverage, "false_failure_rate": suite.false_failure_rate,
        "n_grades": suite.n_grades, **suite.snapshot,
        "validators": [_exported_validator(v) for v in suite.snapshot.get("validators", [])],
    }


def judging_source() -> str:
    """validators/judging.py without its docstring and `from __future__` line, to paste into a
    module: the suite reads answers by the rules Concord measured the judge with."""
    source = inspect.getsource(judging)
    body = source[source.index('"""', 3) + 3:]
    return body.replace("from __future__ import annotations\n", "").strip() + "\n"


def _exported_validator(entry: dict) -> dict:
    """A snapshot entry with the fields a suite saved before issue 13 lacks."""
    return {"target": "output", "patterns": [], "inconsistent_is_tie": True, "threshold_source": None, **entry}


def suite_as_module(suite) -> str:
    snapshot = suite.snapshot
    pairwise = snapshot.get("pairwise")
    metrics = {
        "suite": snapshot.get("suite"),
        "criteria": {c["key"]: {k: c[k] for k in ("chosen", "reason", "ceiling")} for c in snapshot.get("criteria", [])},
        "pairwise": None if pairwise is None else {k: pairwise[k] for k in ("chosen", "reason", "floor")},
    }
    return MODULE_TEMPLATE.format(
        name=suite.name.replace('"', "'"), project=suite.project.slug,
        created=suite.created_at.strftime("%Y-%m-%d %H:%M UTC"), filename=f"{suite.project.slug}_suite.py",
        validators=pprint.pformat([_exported_validator(v) for v in snapshot["validators"]], width=100,
                                  sort_dicts=False),
        judging=judging_source(),
        metrics=pprint.pformat(json.loads(json.dumps(metrics)), width=100, sort_dicts=False),
    )
