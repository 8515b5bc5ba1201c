"""The client script of docs/api_client.md runs end to end against a live server."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.models import Grade, Project
from tests.factories import UserFactory
from validators.models import Suite

DOC = Path(__file__).resolve().parents[2] / "docs" / "api_client.md"


def script_from_doc() -> str:
    [script] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return script


def labelled_outputs() -> str:
    """Four labelled inputs (alpha right, beta wrong) and one unlabelled, for the queue."""
    lines = []
    for i in range(5):
        reference = f"answer {i}"
        for system, text in (("alpha", reference), ("beta", f"something else {i * 7}")):
            record = {"item_id": f"q{i}", "input": f"Question {i}?", "reference": reference,
                      "system": system, "output": text}
            if i < 4:
                record["human"] = {"label": 1 if system == "alpha" else 0}
            lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


@pytest.mark.django_db(transaction=True)
def test_walkthrough_runs_the_whole_loop(live_server, tmp_path):
    user = UserFactory(username="olivia")
    user.set_password("a long test password")
    user.save()
    (tmp_path / "client.py").write_text(script_from_doc())
    (tmp_path / "outputs.jsonl").write_text(labelled_outputs())

    result = subprocess.run(
        [sys.executable, "client.py", live_server.url, "olivia", "a long test password",
         "outputs.jsonl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    project = Project.objects.get()
    assert lines[0] == f"project {project.slug} (you are owner)"
    assert lines[1] == "Imported 5 samples, 10 outputs, 8 grades."
    assert lines[2] == "2 validators added"
    assert re.fullmatch(r"run \d+: done, 20/20 verdicts, 0 errors", lines[3])
    # A new project's default selector, or its ε-random share.
    assert re.fullmatch(r"graded output \d+: (pass|fail) \(chosen by (both_goals|random)\)", lines[4])
    assert Grade.objects.filter(annotator__username="olivia").count() == 1
    suite = Suite.objects.get()
    assert lines[-1] == (
        f"suite {suite.pk} saved with 1 validator(s); "
        f"run it with: python {project.slug}_suite.py outputs.jsonl"
    )
    assert (tmp_path / f"{project.slug}_suite.py").read_text().startswith("#!/usr/bin/env python3")
