"""Issue 11: the hostile corpus leaves nothing behind, one project's code cannot change another
project's verdicts, text storage cannot hold never fails a run, the Python layer hands out no
real module, and ordinary Python runs."""

from __future__ import annotations

import glob
import os
import types
from pathlib import Path

import pytest

from tests.validators.hostile_assertions import HOSTILE_ASSERTIONS
from tests.validators.test_sandbox import _descendants
from validators.models import Run, VerdictRecord
from validators.sandbox import CheckItem, SandboxPool, check_source
from validators.sandbox.policy import ALLOWED_MODULES, assertion_globals, load_allowed_modules
from validators.services.authoring import validator_create
from validators.services.runs import run_start

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLAIN = "def check(output, input, reference, meta):\n    return 'ok' in output\n"
PLAIN_ITEMS = [CheckItem("ok then", "q"), CheckItem("no", "q")]


def _traces_left() -> list[str]:
    patterns = ["/tmp/concord-pwned*", "/var/tmp/concord-pwned*", "/tmp/concord-sandbox-probe-*",
                str(PROJECT_ROOT / "concord-pwned*"), str(PROJECT_ROOT / "pwned*"),
                str(PROJECT_ROOT / "var" / "**" / "concord-pwned*")]
    return sorted(path for pattern in patterns for path in glob.glob(pattern, recursive=True))


def test_the_whole_corpus_leaves_no_file_and_no_process_behind():
    before = _traces_left()
    with SandboxPool(size=2, timeout_seconds=1.0, memory_mb=256) as pool:
        outcomes = {
            hostile.name: pool.run(hostile.source, [CheckItem("hello", "q", None, {"k": "v"})])[0]
            for hostile in HOSTILE_ASSERTIONS
        }
        launchers = pool.status()["worker_pids"]
        # Each launcher holds bubblewrap's init and the zygote, or the zygote alone in weak
        # mode: no batch child, nothing a hostile assertion started, is still alive.
        lingering = {pid: _descendants(pid) for pid in launchers}
        plain = pool.run(PLAIN, PLAIN_ITEMS)

    assert {name for name, result in outcomes.items() if result.outcome != "error"} == set()
    assert _traces_left() == before
    expected_depth = 2 if pool.wall.mode == "namespaces" else 0
    assert all(len(pids) == expected_depth for pids in lingering.values()), lingering
    assert [r.outcome for r in plain] == ["pass", "fail"]


@pytest.mark.django_db
def test_tampering_in_one_project_leaves_another_projects_verdicts_right(
    project, make_outputs, django_capture_on_commit_callbacks, owner
):
    from annotate.services.projects import project_create

    other = project_create(name="Other team", slug="other-team", owner=owner)
    make_outputs(n_samples=3, systems=("alpha", "beta"))
    make_outputs(n_samples=3, systems=("alpha", "beta"), target=other)
    tampering = [
        validator_create(project=project, kind="code", name=hostile.name,
                                  source=hostile.source)
        for hostile in HOSTILE_ASSERTIONS
        if (hostile.name.startswith("tamper_") or hostile.name == "monkeypatch_shared_module")
        and not check_source(hostile.source)  # what compiles; the rest is refused at save
    ]
    # Runs as far as it can: it changes what it can reach, its own copies, on every call.
    grafting = validator_create(project=project, kind="code", name="graft", source=(
        "import json, collections\n"
        "SEEN = collections.Counter()\n"
        "def check(output, input, reference, meta):\n"
        "    SEEN[output] += 1\n"
        "    json.loads = lambda text: True\n"
        "    return True\n"
    ))
    always_false = validator_create(
        project=other, kind="code", name="never",
        source="import json\ndef check(output, input, reference, meta):\n"
               "    return json.loads('false')\n",
    )

    with django_capture_on_commit_callbacks(execute=True):
        run_start(project=project, validators=[*tampering, grafting])
        run_start(project=other, validators=[always_false])

    assert len(tampering) >= 6
    assert set(VerdictRecord.objects.filter(validator__in=tampering)
               .values_list("outcome", flat=True)) == {"error"}
    assert set(VerdictRecord.objects.filter(validator=grafting)
               .values_list("outcome", flat=True)) == {"error"}
    theirs = VerdictRecord.objects.filter(validator=always_false)
    assert theirs.count() == 6
    assert set(theirs.values_list("outcome", flat=True)) == {"fail"}


@pytest.mark.django_db
def test_nul_and_surrogates_in_details_are_stored_escaped_and_the_run_goes_on(
    project, make_outputs, django_capture_on_commit_callbacks
):
    make_outputs(n_samples=2, systems=("alpha", "beta"))
    nul = validator_create(project=project, kind="code", name="nul", source=(
        "def check(output, input, reference, meta):\n    raise ValueError('bad\\x00byte')\n"))
    surrogate = validator_create(project=project, kind="code", name="surrogate", source=(
        "def check(output, input, reference, meta):\n    raise ValueError('half \\udc80 pair')\n"))
    after = validator_create(project=project, kind="code", name="after", source=PLAIN)

    with django_capture_on_commit_callbacks(execute=True):
        run = run_start(project=project, validators=[nul, surrogate, after])

    run = Run.objects.get(pk=run.pk)
    assert (run.status, run.done, run.failed) == ("done", 12, 8)
    assert set(VerdictRecord.objects.filter(validator=nul).values_list("detail", flat=True)) == {
        "ValueError: bad\\x00byte (line 2)"}
    assert set(VerdictRecord.objects.filter(validator=surrogate)
               .values_list("detail", flat=True)) == {"ValueError: half \\udc80 pair (line 2)"}
    assert VerdictRecord.objects.filter(validator=after).count() == 4


def _reachable(start: object, limit: int = 20000) -> list[object]:
    """Everything an assertion can reach from `start` through attribute reads the guarded
    getattr allows (no underscore names), breadth first."""
    seen: dict[int, object] = {id(start): start}
    frontier = [start]
    while frontier and len(seen) < limit:
        following = []
        for value in frontier:
            for name in dir(value):
                if name.startswith("_") or name == "format":
                    continue
                try:
                    found = getattr(value, name)
                except Exception:
                    continue
                if id(found) not in seen:
                    seen[id(found)] = found
                    following.append(found)
        frontier = following
    return list(seen.values())


def test_no_real_module_or_dangerous_builtin_is_reachable_from_what_an_assertion_gets():
    namespace = assertion_globals(load_allowed_modules())
    roots = [*namespace["__builtins__"].values(), *load_allowed_modules().values()]
    dangerous = {open, exec, eval, compile, __import__, globals, locals, vars, os.system}

    reachable = [found for root in roots for found in _reachable(root, limit=4000)]

    modules = {found.__name__ for found in reachable if isinstance(found, types.ModuleType)}
    assert modules <= {f"{name} (sandbox copy)" for name in ALLOWED_MODULES}
    assert not [found for found in reachable if any(found is bad for bad in dangerous)]


ORDINARY_PYTHON = {
    "augmented_item": (
        "import collections\n"
        "def check(output, input, reference, meta):\n"
        "    pool = {'a': 3}\n"
        "    pool['a'] -= 1\n"
        "    counts = collections.Counter()\n"
        "    for word in output.split():\n"
        "        counts[word] += 1\n"
        "    grid = [[0, 0]]\n"
        "    grid[0][1] += 5\n"
        "    return pool['a'] == 2 and counts['ok'] == 2 and grid == [[0, 5]]\n",
        "pass",
    ),
    "augmented_attribute": (
        "class Tally:\n"
        "    def __init__(self):\n"
        "        self.total = 0\n"
        "    def add(self, n):\n"
        "        self.total += n\n"
        "        return self\n"
        "def check(output, input, reference, meta):\n"
        "    tally = Tally()\n"
        "    tally.add(2).add(3)\n"
        "    tally.total *= 2\n"
        "    return tally.total == 10\n",
        "pass",
    ),
    "try_except_and_comprehensions": (
        "import json\n"
        "def check(output, input, reference, meta):\n"
        "    try:\n"
        "        json.loads(output)\n"
        "    except ValueError:\n"
        "        pass\n"
        "    try:\n"
        "        {}['missing']\n"
        "    except KeyError as exc:\n"
        "        missing = str(exc)\n"
        "    squares = {n: n * n for n in range(4)}\n"
        "    evens = [n for n in range(10) if n % 2 == 0]\n"
        "    total = sum(x for x in evens)\n"
        "    return missing == \"'missing'\" and squares[3] == 9 and total == 20\n",
        "pass",
    ),
    "defaultdict_deque_sets": (
        "import collections\n"
        "def check(output, input, reference, meta):\n"
        "    groups = collections.defaultdict(list)\n"
        "    groups['x'].append(1)\n"
        "    window = collections.deque(maxlen=2)\n"
        "    window.extend([1, 2, 3])\n"
        "    seen = set()\n"
        "    seen |= {1, 2}\n"
        "    return groups['x'] == [1] and list(window) == [2, 3] and seen == {1, 2}\n",
        "pass",
    ),
    "slices_and_unpacking": (
        "def check(output, input, reference, meta):\n"
        "    first, *rest = output.split()\n"
        "    values = list(range(6))\n"
        "    values[1:3] = ['a', 'b']\n"
        "    return first == 'ok' and len(rest) == 1 and values[:3] == [0, 'a', 'b']\n",
        "pass",
    ),
    "numeric_score_from_helpers": (
        "import difflib\n"
        "def ratio(a, b):\n"
        "    return difflib.SequenceMatcher(None, a, b).ratio()\n"
        "def check(output, input, reference, meta):\n"
        "    return ratio(output, reference or '')\n",
        "pass",
    ),
}


@pytest.mark.parametrize("name", sorted(ORDINARY_PYTHON))
def test_ordinary_python_runs(name):
    source, expected = ORDINARY_PYTHON[name]
    with SandboxPool(size=1) as pool:
        [result] = pool.run(source, [CheckItem("ok ok", "q", "ok ok", {})], threshold=0.5)

    assert (result.outcome, result.detail) == (expected, "")
