"""A saved report card as a self-contained Python module that runs anywhere:

    python suite.py outputs.jsonl

Code assertions run in that process (the user runs their own suite on their own machine);
LLM graders call an OpenAI-compatible endpoint named by environment variables.
"""

from __future__ import annotations

import json
import pprint

MODULE_TEMPLATE = '''#!/usr/bin/env python3
"""Concord report card "{name}" for project "{project}", saved {created}.

Usage: python {filename} outputs.jsonl > verdicts.jsonl

Each line of outputs.jsonl is an object with "output" and optionally "input", "reference",
"meta" (or "metadata"), "item_id" and "system". Each printed line gives every chosen
validator's verdict (pass, fail or error) and the suite's: an output fails the suite when any
chosen validator fails it.

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

METRICS_AT_EXPORT = {metrics}


def _compile_check(source):
    namespace = {{}}
    exec(compile(source, "<validator>", "exec"), namespace)
    return namespace["check"]


def _render(template, record):
    fields = {{"output": record.get("output", ""), "input": record.get("input", ""),
              "reference": record.get("reference") or "", "meta": record.get("meta") or record.get("metadata") or {{}}}}

    def field(match):
        name, key = match.group(1), match.group(2)
        if name == "meta":
            return str(fields["meta"].get(key, ""))
        return str(fields[name])

    text = re.sub(r"(?<!{{){{(output|input|reference|meta)(?:\\[([^\\]]+)\\])?}}(?!}})", field, template)
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


def verdict(validator, record, checks):
    try:
        if validator["kind"] == "code":
            result = checks[validator["id"]](record.get("output", ""), record.get("input", ""),
                                             record.get("reference"), record.get("meta") or record.get("metadata") or {{}})
            if result is None:
                return "error"
            if isinstance(result, bool):
                return "pass" if result else "fail"
            if validator["threshold"] is None:
                return "error"
            return "pass" if float(result) >= validator["threshold"] else "fail"
        return _parse(_ask(validator, _render(validator["source"], record)))
    except Exception:
        return "error"


def main(path):
    checks = {{v["id"]: _compile_check(v["source"]) for v in VALIDATORS if v["kind"] == "code"}}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            verdicts = {{v["name"]: verdict(v, record, checks) for v in VALIDATORS}}
            suite = "fail" if "fail" in verdicts.values() else ("error" if "error" in verdicts.values() else "pass")
            print(json.dumps({{"item_id": record.get("item_id"), "system": record.get("system"),
                              "verdicts": verdicts, "suite": suite}}))


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
    }


def suite_as_module(suite) -> str:
    snapshot = suite.snapshot
    metrics = {
        "suite": snapshot.get("suite"),
        "criteria": {c["key"]: {k: c[k] for k in ("chosen", "reason", "ceiling")} for c in snapshot.get("criteria", [])},
    }
    return MODULE_TEMPLATE.format(
        name=suite.name.replace('"', "'"), project=suite.project.slug,
        created=suite.created_at.strftime("%Y-%m-%d %H:%M UTC"), filename=f"{suite.project.slug}_suite.py",
        validators=pprint.pformat(snapshot["validators"], width=100, sort_dicts=False),
        metrics=pprint.pformat(json.loads(json.dumps(metrics)), width=100, sort_dicts=False),
    )
