"""The code-assertion sandbox (DESIGN §5): verdicts, the hostile corpus, the OS layer on its
own (through the worker's built-in probes), timeouts and a worker that misbehaves."""

from __future__ import annotations

import ast
import datetime
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.validators.hostile_assertions import HOSTILE_ASSERTIONS, HostileAssertion
from validators.sandbox import (
    CheckItem,
    CheckResult,
    SandboxError,
    SandboxPool,
    SandboxWorkerError,
    check_source,
    get_pool,
)
from validators.sandbox.pool import SandboxDisabled, _verdicts
from validators.sandbox.protocol import HEADER, FrameDecoder, FrameError, encode_frame

RUNNING_AS_ROOT = os.getuid() == 0
MEGABYTE = 1024 * 1024

CONTAINS_OK = (
    "import re\n"
    "def check(output, input, reference, meta):\n"
    "    return re.search(r'\\bok\\b', output) is not None\n"
)
BENIGN_ITEMS = [CheckItem("all ok here", "q"), CheckItem("nothing", "q"), CheckItem("ok", "q")]
BENIGN_OUTCOMES = ["pass", "fail", "pass"]


def _source(body: str, prelude: str = "") -> str:
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{prelude}def check(output, input, reference, meta):\n{indented}\n"


def _outcomes(results: list[CheckResult]) -> list[str]:
    return [result.outcome for result in results]


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    # Short timeout and a small address space keep the hostile corpus fast.
    with SandboxPool(size=2, timeout_seconds=1.0, memory_mb=256) as shared:
        yield shared


# --- check_source: compiles, never runs ---------------------------------------------------


def test_check_source_accepts_a_valid_assertion():
    assert check_source(CONTAINS_OK) == []


def test_check_source_reports_a_syntax_error_with_its_line():
    problems = check_source("def check(output, input, reference, meta)\n    return True\n")

    assert problems == [
        "Line 1: SyntaxError: expected ':' at statement: "
        "'def check(output, input, reference, meta)'"
    ]


def test_check_source_requires_a_check_function():
    assert check_source("def grade(output):\n    return True\n") == [
        "the assertion must define a function check(output, input, reference, meta)"
    ]


def test_check_source_reports_a_check_that_cannot_take_four_arguments():
    assert check_source("def check(output):\n    return True\n") == [
        "Line 1: check takes 1 arguments; it is called as check(output, input, reference, meta)"
    ]
    assert check_source(_source("return True").replace("meta)", "meta, extra)")) == [
        "Line 1: check needs more arguments than check(output, input, reference, meta) provides"
    ]
    assert check_source("def check(*args):\n    return True\n") == []


def test_check_source_reports_imports_outside_the_allow_list():
    assert check_source(_source("import os\nreturn True")) == [
        "Line 2: import of 'os' is not allowed (allowed: re, json, math, string, difflib, "
        "unicodedata, statistics, collections, itertools, datetime)"
    ]


def test_check_source_reports_underscore_names_from_the_restricted_compiler():
    assert check_source(_source("return output.__class__ is str")) == [
        'Line 2: "__class__" is an invalid attribute name because it starts with "_".'
    ]


def test_check_source_does_not_run_the_module():
    # Given a module that would never finish if it were executed
    source = "while True:\n    pass\n" + _source("return True")

    started = time.monotonic()
    problems = check_source(source)

    assert problems == []
    assert time.monotonic() - started < 1.0


def test_check_source_survives_pathological_sources():
    assert check_source("x = " + "-" * 100_000 + "1") == [
        "the assertion is nested too deeply to compile"
    ]
    assert check_source("x = " + "+".join(["a"] * 40_000)) == [
        "the assertion is nested too deeply to compile"
    ]
    assert check_source("x" * 200_001) == ["the assertion is longer than 200000 characters"]
    assert check_source("x = 1\x00") == [
        "SyntaxError: source code string cannot contain null bytes"
    ]


# --- benign verdicts ---------------------------------------------------------------------


def test_boolean_results_pass_and_fail_with_scores_one_and_zero(pool):
    results = pool.run(CONTAINS_OK, BENIGN_ITEMS)

    assert [(r.outcome, r.score, r.detail) for r in results] == [
        ("pass", 1.0, ""), ("fail", 0.0, ""), ("pass", 1.0, ""),
    ]
    assert all(r.latency_ms >= 0 for r in results)


def test_numbers_are_compared_with_the_threshold(pool):
    source = _source("return float(output)")
    items = [CheckItem(value, "q") for value in ("0.3", "0.5", "0.7", "inf")]

    results = pool.run(source, items, threshold=0.5)

    assert [(r.outcome, r.score) for r in results] == [
        ("fail", 0.3), ("pass", 0.5), ("pass", 0.7), ("pass", float("inf")),
    ]


def test_an_integer_result_becomes_a_float_score(pool):
    results = pool.run(_source("return len(output)"), [CheckItem("four", "q")], threshold=3)

    assert results == [CheckResult("pass", 4.0, "", results[0].latency_ms)]
    assert type(results[0].score) is float


def test_a_boolean_result_ignores_the_threshold(pool):
    results = pool.run(_source("return output == 'yes'"),
                       [CheckItem("yes", "q"), CheckItem("no", "q")], threshold=2.0)

    assert [(r.outcome, r.score) for r in results] == [("pass", 1.0), ("fail", 0.0)]


def test_a_number_without_a_threshold_is_an_error(pool):
    results = pool.run(_source("return 0.25"), [CheckItem("x", "q")])

    assert (results[0].outcome, results[0].score, results[0].detail) == (
        "error", None, "check returned a number (0.25) but the validator has no threshold",
    )


def test_none_and_nan_and_other_types_are_errors(pool):
    source = _source(
        "if output == 'none':\n    return None\n"
        "if output == 'nan':\n    return float('nan')\n"
        "return output"
    )
    items = [CheckItem(value, "q") for value in ("none", "nan", "text")]

    results = pool.run(source, items, threshold=0.5)

    assert [(r.outcome, r.score, r.detail) for r in results] == [
        ("error", None, "check returned None"),
        ("error", None, "check returned NaN"),
        ("error", None, "check returned str; expected bool, a number or None"),
    ]


def test_an_exception_in_check_is_an_error_naming_it_and_its_line(pool):
    source = _source("total = len(output)\nreturn total / 0")

    results = pool.run(source, [CheckItem("x", "q"), CheckItem("y", "q")])

    assert [(r.outcome, r.detail) for r in results] == [
        ("error", "ZeroDivisionError: division by zero (line 3)"),
    ] * 2


def test_allowed_modules_work(pool):
    source = _source(
        "words = re.findall(r'\\w+', output.lower())\n"
        "data = json.loads(input)\n"
        "ratio = difflib.SequenceMatcher(None, output, reference).ratio()\n"
        "day = datetime.datetime.strptime(data['day'], '%Y-%m-%d').date()\n"
        "top = collections.Counter(words).most_common(1)[0][0]\n"
        "pairs = list(itertools.combinations(words, 2))\n"
        "return (math.isclose(statistics.mean([len(w) for w in words]), 4.0)\n"
        "        and ratio > 0.5 and day.weekday() == 1 and top == 'ping'\n"
        "        and len(pairs) == 3 and unicodedata.category(output[0]) == 'Lu'\n"
        "        and string.capwords('a b') == 'A B' and 'é'.encode('latin-1') == b'\\xe9')",
        prelude="import re, json, math, string, difflib, unicodedata, statistics\n"
                "import collections, itertools, datetime\n",
    )
    item = CheckItem("Ping ping pong", '{"day": "2024-01-02"}', reference="Ping ping pang")

    results = pool.run(source, [item])

    assert (results[0].outcome, results[0].detail) == ("pass", "")


def test_meta_and_a_missing_reference_reach_check(pool):
    source = _source("return reference is None and meta['tone'] == 'formal' and meta['n'] == 3")

    results = pool.run(source, [CheckItem("x", "q", None, {"tone": "formal", "n": 3}),
                                CheckItem("x", "q", "ref", {"tone": "formal", "n": 3})])

    assert _outcomes(results) == ["pass", "fail"]


def test_meta_values_json_cannot_hold_arrive_as_strings(pool):
    source = _source("return meta['when'] == '2024-01-02' and meta['tags'] == ['a']")

    results = pool.run(source, [CheckItem("x", "q", None, {"when": datetime.date(2024, 1, 2),
                                                           "tags": ("a",)})])

    assert _outcomes(results) == ["pass"]


def test_unicode_crosses_both_ways(pool):
    source = _source("return len(output) == 4 and output.upper() == 'ASSE🙂' and input == '質問'")

    results = pool.run(source, [CheckItem("aße🙂", "質問"), CheckItem("ASSE", "質問")])

    assert _outcomes(results) == ["pass", "fail"]


def test_print_is_discarded_and_does_not_disturb_the_protocol(pool):
    source = _source("for n in range(1000):\n    print('\\x00\\x00\\x00\\x05{junk', n)\nreturn True")

    assert _outcomes(pool.run(source, BENIGN_ITEMS)) == ["pass"] * 3
    assert _outcomes(pool.run(CONTAINS_OK, BENIGN_ITEMS)) == BENIGN_OUTCOMES


def test_classes_defined_by_an_assertion_accept_attribute_writes(pool):
    source = _source(
        "tally = Tally()\nfor word in output.split():\n    tally.add(word)\nreturn tally.count",
        prelude="class Tally:\n    def __init__(self):\n        self.count = 0\n"
                "    def add(self, word):\n        self.count = self.count + 1\n",
    )

    results = pool.run(source, [CheckItem("one two three", "q")], threshold=3)

    assert (results[0].outcome, results[0].score) == ("pass", 3.0)


def test_a_whole_source_failure_makes_every_item_that_error(pool):
    items = [CheckItem(str(n), "q") for n in range(5)]

    syntax = pool.run("def check(output, input, reference, meta)\n", items)
    missing = pool.run("def grade(output, input, reference, meta):\n    return True\n", items)
    raising = pool.run("limit = 1 / 0\n" + _source("return True"), items)

    assert {(r.outcome, r.detail) for r in syntax} == {(
        "error",
        "Line 1: SyntaxError: expected ':' at statement: "
        "'def check(output, input, reference, meta)'",
    )}
    assert {(r.outcome, r.detail) for r in missing} == {
        ("error", "the assertion must define a function check(output, input, reference, meta)")
    }
    assert {(r.outcome, r.detail) for r in raising} == {
        ("error", "ZeroDivisionError: division by zero (line 1)")
    }
    assert len(syntax) == len(missing) == len(raising) == 5


def test_many_items_come_back_in_order_across_batches(pool):
    source = _source("return int(output) % 3 == 0")
    items = [CheckItem(str(n), "q") for n in range(1050)]  # six batches of up to 200

    results = pool.run(source, items)

    assert _outcomes(results) == ["pass" if n % 3 == 0 else "fail" for n in range(1050)]


def test_concurrent_runs_from_several_threads_get_their_own_verdicts(pool):
    sources = {divisor: _source(f"return int(output) % {divisor} == 0") for divisor in (2, 3, 5, 7)}
    items = [CheckItem(str(n), "q") for n in range(500)]
    outcomes: dict[int, list[str]] = {}

    def run(divisor: int) -> None:
        outcomes[divisor] = _outcomes(pool.run(sources[divisor], items))

    threads = [threading.Thread(target=run, args=(divisor,)) for divisor in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for divisor in sources:
        assert outcomes[divisor] == ["pass" if n % divisor == 0 else "fail" for n in range(500)]


def test_empty_items_give_no_verdicts(pool):
    assert pool.run(CONTAINS_OK, []) == []


def test_no_state_passes_from_one_run_to_the_next():
    # A module-level list counts calls within one batch; each run starts in a fresh child of
    # a zygote that never ran user code, so the count restarts and another source sees nothing.
    counting = "CALLS = []\n" + _source("CALLS.append(1)\nreturn len(CALLS)")
    peeking = _source("return len(CALLS)")
    items = [CheckItem("x", "q")] * 3

    with SandboxPool(size=1) as single:
        first = single.run(counting, items, threshold=0)
        second = single.run(counting, items[:2], threshold=0)
        other = single.run(peeking, items[:1], threshold=0)

    assert [r.score for r in first] == [1.0, 2.0, 3.0]
    assert [r.score for r in second] == [1.0, 2.0]
    assert other[0].detail == "NameError: name 'CALLS' is not defined (line 2)"


# --- the hostile corpus ------------------------------------------------------------------


def test_the_corpus_is_large_enough_and_named_uniquely():
    names = [hostile.name for hostile in HOSTILE_ASSERTIONS]

    assert len(names) >= 100
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("hostile", HOSTILE_ASSERTIONS, ids=lambda hostile: hostile.name)
def test_a_hostile_assertion_ends_as_an_error_and_the_pool_keeps_serving(
    pool, hostile: HostileAssertion
):
    results = pool.run(hostile.source, [CheckItem("hello", "q", None, {"k": "v"})])

    assert results[0].outcome == "error"
    assert results[0].score is None
    assert hostile.expected_detail in results[0].detail
    assert len(results[0].detail) <= 500
    assert _outcomes(pool.run(CONTAINS_OK, BENIGN_ITEMS)) == BENIGN_OUTCOMES


# --- timeouts and dying workers ----------------------------------------------------------

HANGS_ON_HANG = _source("while output == 'hang':\n    pass\nreturn True")


def test_a_timeout_is_pinned_on_its_output_and_the_batch_continues(pool):
    items = [CheckItem(text, "q") for text in ("a", "b", "hang", "c", "d")]

    started = time.monotonic()
    results = pool.run(HANGS_ON_HANG, items)
    elapsed = time.monotonic() - started

    assert [(r.outcome, r.detail) for r in results] == [
        ("pass", ""), ("pass", ""), ("error", "timed out after 1.0 s"), ("pass", ""), ("pass", ""),
    ]
    assert results[2].latency_ms == 1000.0
    assert 1.0 <= elapsed < 4.0


def test_after_repeated_timeouts_the_rest_of_the_run_is_not_attempted():
    items = [CheckItem("hang", "q")] * 5

    with SandboxPool(size=1, timeout_seconds=0.3, max_timeouts_per_run=2) as impatient:
        results = impatient.run(HANGS_ON_HANG, items)

    assert [r.detail for r in results] == ["timed out after 0.3 s"] * 2 + [
        "not run: the assertion already timed out on 2 outputs in this run"
    ] * 3


def test_the_cpu_limit_stops_a_worker_the_parent_has_not_stopped_yet():
    # Given a parent timeout well above the worker's CPU allowance
    with SandboxPool(size=1, timeout_seconds=10.0, cpu_lifetime_seconds=1) as pool_:
        started = time.monotonic()
        results = pool_.run(_source("while True:\n    pass"), [CheckItem("x", "q")])
        elapsed = time.monotonic() - started

    assert (results[0].outcome, results[0].detail) == ("error", "CPU time limit exceeded")
    assert elapsed < 5.0


def _descendants(pid: int) -> list[int]:
    """Host pids below `pid`, parents first (bwrap, its init, the zygote, the batch child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        found += frontier
    return found


def test_the_process_running_an_assertion_killed_mid_batch_costs_only_its_output():
    # As when the machine's OOM killer picks the batch's child: the zygote reports how the
    # child died, the output it was on gets the error, the rest go to a fresh child.
    slow_on_slow = _source("if output == 'slow':\n    for n in range(10**9):\n        pass\n"
                           "return True")
    items = [CheckItem(text, "q") for text in ("a", "slow", "b")]
    with SandboxPool(size=1, timeout_seconds=10.0) as single:
        (zygote_launcher,) = single.status()["worker_pids"]
        before = set(_descendants(zygote_launcher))

        def kill_the_batch_child() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                new = [pid for pid in _descendants(zygote_launcher) if pid not in before]
                if new:
                    time.sleep(0.3)  # let it reach the slow output
                    os.kill(new[-1], signal.SIGKILL)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_the_batch_child)
        killer.start()
        results = single.run(slow_on_slow, items)
        killer.join()

        assert [(r.outcome, r.detail) for r in results] == [
            ("pass", ""), ("error", "sandbox worker was killed (SIGKILL)"), ("pass", ""),
        ]
        assert single.status()["worker_pids"] == [zygote_launcher]


def test_a_zygote_killed_mid_batch_is_replaced_and_the_batch_is_run_again():
    slow_on_slow = _source("if output == 'slow':\n    for n in range(10**7):\n        pass\n"
                           "return True")
    items = [CheckItem(text, "q") for text in ("a", "slow", "b")]
    with SandboxPool(size=1, timeout_seconds=10.0) as single:
        (victim,) = single.status()["worker_pids"]
        killer = threading.Timer(0.05, os.kill, args=(victim, signal.SIGKILL))
        killer.start()
        results = single.run(slow_on_slow, items)
        killer.join()

        assert _outcomes(results) == ["pass", "pass", "pass"]
        assert victim not in single.status()["worker_pids"]


def test_a_worker_killed_while_idle_is_replaced_on_next_use():
    with SandboxPool(size=1) as single:
        (victim,) = single.status()["worker_pids"]

        os.kill(victim, signal.SIGKILL)
        results = single.run(CONTAINS_OK, BENIGN_ITEMS)
        status = single.status()

    assert _outcomes(results) == BENIGN_OUTCOMES
    assert victim not in status["worker_pids"]
    assert len(status["worker_pids"]) == 1
    assert (status["workers_started"], status["workers_replaced"]) == (2, 1)


def test_a_closed_pool_refuses_work():
    closed = SandboxPool(size=1)
    closed.close()

    with pytest.raises(SandboxError, match="the sandbox pool is closed"):
        closed.run(CONTAINS_OK, BENIGN_ITEMS)


def test_get_pool_is_one_pool_per_process():
    assert get_pool() is get_pool()
    assert isinstance(get_pool(), SandboxPool)


# --- the OS layer on its own (probes run trusted code in a confined child) ----------------

FULL_WALL = SandboxPool(size=1).wall.mode == "namespaces"
needs_full_wall = pytest.mark.skipif(not FULL_WALL, reason="bubblewrap cannot run here")
ALL_BARRIERS = [
    "mount namespace", "pid namespace", "network namespace", "ipc namespace", "uts namespace",
    "minimal read-only root", "uid nobody", "no_new_privs", "seccomp filter", "resource limits",
    "fresh process per batch",
]


@pytest.mark.skipif(not (RUNNING_AS_ROOT and os.path.exists("/proc/self/ns/pid")),
                    reason="the project's machines run the suite as root on Linux")
def test_the_projects_machines_build_the_full_wall():
    # Not a skip: if this machine lost bubblewrap or seccomp, the suite must say so.
    with SandboxPool(size=1) as default:
        status = default.status()

    assert status["mode"] == "namespaces", status["problems"]
    assert status["missing_barriers"] == []
    assert status["active_barriers"] == ALL_BARRIERS


@needs_full_wall
def test_status_reports_the_confinement_of_a_default_pool():
    with SandboxPool() as default:
        status = default.status()

    assert status["code_validators_enabled"] is True
    assert status["no_new_privs"] is True
    assert status["seccomp"] is True
    assert status["limits"] == {
        "RLIMIT_AS": 512 * MEGABYTE, "RLIMIT_CPU": 3601, "RLIMIT_NOFILE": 16,
        "RLIMIT_NPROC": 0, "RLIMIT_FSIZE": 0, "RLIMIT_CORE": 0,
    }
    assert (status["uid"], status["gid"], status["groups"]) == (65534, 65534, [])
    assert not set(status["root_entries"]) & {"etc", "home", "root", "var", "run", "work"}
    assert set(status["root_entries"]) <= {
        "dev", "lib", "lib32", "lib64", "libx32", "usr", "opt", "proc", "python", "tmp",
    }
    # bubblewrap's init and the zygote: nothing of the host.
    assert len(status["visible_pids"]) == 2


@needs_full_wall
@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ("identity", "returned: 'uid=65534 gid=65534 groups=[]'"),
        ("read_passwd", "FileNotFoundError: [Errno 2] No such file or directory: '/etc/passwd'"),
        ("read_shadow", "FileNotFoundError: [Errno 2] No such file or directory: '/etc/shadow'"),
        ("list_root", "FileNotFoundError: [Errno 2] No such file or directory: '/root'"),
        ("working_directory", "PermissionError: [Errno 13] Permission denied: '.'"),
        ("regain_root", "PermissionError: [Errno 1] Operation not permitted"),
        ("fork", "PermissionError: [Errno 1] Operation not permitted"),
        ("exec", "PermissionError: [Errno 1] Operation not permitted"),
        ("signal_zygote", "PermissionError: [Errno 1] Operation not permitted"),
        ("connect_localhost", "PermissionError: [Errno 1] Operation not permitted"),
        ("unix_socket", "PermissionError: [Errno 1] Operation not permitted"),
        ("udp_socket", "PermissionError: [Errno 1] Operation not permitted"),
        ("allocate_1gb", "MemoryError: "),
    ],
)
def test_the_child_is_confined_by_the_os(pool, probe: str, expected: str):
    assert pool.run_probe(probe) == expected


@needs_full_wall
def test_the_child_sees_only_the_sandbox_processes_and_cannot_write_its_directory(pool):
    pids = ast.literal_eval(pool.run_probe("visible_pids").removeprefix("returned: "))
    assert len(pids) == 3  # bubblewrap's init, the zygote, this child
    assert pool.run_probe("write_file").startswith(
        "PermissionError: [Errno 13] Permission denied: '/tmp/concord-sandbox-probe-")


def test_the_worker_environment_is_empty_but_for_what_the_launcher_sets(pool):
    detail = pool.run_probe("environment")

    environment = ast.literal_eval(detail.removeprefix("returned: "))
    assert set(environment) <= {"LC_CTYPE", "LD_LIBRARY_PATH", "PWD"}
    assert environment.get("LD_LIBRARY_PATH", "/python/lib") == "/python/lib"


def test_writing_to_stdout_and_stderr_does_not_reach_the_protocol(pool):
    assert pool.run_probe("write_stdout") == "returned: 'wrote 1400 bytes to fds 1 and 2'"
    assert _outcomes(pool.run(CONTAINS_OK, BENIGN_ITEMS)) == BENIGN_OUTCOMES


def test_an_unknown_probe_is_named_in_the_answer(pool):
    assert pool.run_probe("nope") == "no probe named 'nope'"


@pytest.mark.parametrize(
    ("probe", "message", "zygotes_replaced"),
    [
        # A frame that is not JSON reaches the parent: the zygote forwarded it, so it goes.
        ("garbage_reply", "sandbox worker sent a malformed reply (not JSON", 1),
        # The rest are caught by the zygote, which stays: the child alone is gone.
        ("oversized_reply", "sandbox worker sent a malformed reply (not exactly one frame)", 0),
        ("exit", "sandbox worker exited with status 3", 0),
        ("hang", "timed out after 1.0 s", 0),
    ],
)
def test_a_child_breaking_the_protocol_is_answered_for(pool, probe, message, zygotes_replaced):
    replaced_before = pool.status()["workers_replaced"]

    with pytest.raises(SandboxWorkerError) as raised:
        pool.run_probe(probe)

    assert message in str(raised.value)
    assert pool.status()["workers_replaced"] == replaced_before + zygotes_replaced
    assert _outcomes(pool.run(CONTAINS_OK, BENIGN_ITEMS)) == BENIGN_OUTCOMES


def test_where_namespaces_are_refused_code_validators_are_off_unless_an_admin_accepts():
    with SandboxPool(size=1, bwrap=None) as refused:
        status = refused.status()
        with pytest.raises(SandboxDisabled, match="code validators are off: this platform"):
            refused.run(CONTAINS_OK, BENIGN_ITEMS)

    assert status["mode"] == "weak"
    assert status["code_validators_enabled"] is False
    assert "CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION=1" in status["disabled_reason"]
    assert "bubblewrap is not available" in status["problems"]
    assert "minimal read-only root" in status["missing_barriers"]

    with SandboxPool(size=1, bwrap=None, allow_weak_isolation=True) as accepted:
        results = accepted.run(CONTAINS_OK, BENIGN_ITEMS)
        weak = accepted.status()

    assert _outcomes(results) == BENIGN_OUTCOMES
    assert weak["weak_isolation_accepted"] is True
    assert "minimal read-only root" in weak["missing_barriers"]
    assert "mount namespace" in weak["missing_barriers"]
    # What still holds in the weaker mode is listed, so an admin knows what they accepted.
    if RUNNING_AS_ROOT:
        assert {"uid nobody", "no_new_privs", "seccomp filter", "resource limits",
                "fresh process per batch"} <= set(weak["active_barriers"])


# --- frames --------------------------------------------------------------------------------


def test_frames_survive_arbitrary_chunking():
    frame = encode_frame({"op": "results", "batch": 7, "text": "é🙂"})
    decoder = FrameDecoder(max_bytes=1024)

    for byte in frame[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_message() is None
    decoder.feed(frame[-1:])

    assert decoder.next_message() == {"op": "results", "batch": 7, "text": "é🙂"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (HEADER.pack(2048) + b"{", "frame of 2048 bytes is over the 1024 limit"),
        (HEADER.pack(2) + b"[]", "a frame must be a JSON object with an op"),
        (HEADER.pack(9) + b'{"op": 1}', "a frame must be a JSON object with an op"),
        (HEADER.pack(3) + b"{x}", "not JSON"),
        (encode_frame({"op": "a"}) + b"\x00", "bytes after the reply"),
    ],
)
def test_frames_a_parent_must_refuse(raw: bytes, message: str):
    decoder = FrameDecoder(max_bytes=1024)

    with pytest.raises(FrameError, match=message):
        decoder.feed(raw)
        decoder.next_message()


def test_worker_rows_become_verdicts_with_the_threshold_applied_in_the_parent():
    rows = [["bool", True, "", 1500], ["number", 0.4, "", 2], ["none", None, "", 0],
            ["error", None, "KeyError: 'x'", 0]]

    verdicts = _verdicts({"results": rows}, 4, threshold=0.5)

    assert verdicts == [
        CheckResult("pass", 1.0, "", 1.5), CheckResult("fail", 0.4, "", 0.002),
        CheckResult("error", None, "check returned None", 0.0),
        CheckResult("error", None, "KeyError: 'x'", 0.0),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["bool", True, "", 0]] * 2, "expected 1 results"),
        ([("bool", True, "", 0)], "a result is not a 4-item list"),
        ([["bool", 1, "", 0]], "a bool result without a bool"),
        ([["number", float("nan"), "", 0]], "a number result without a number"),
        ([["number", "0.9", "", 0]], "a number result without a number"),
        ([["bool", True, "", 0.5]], "a result without a latency"),
        ([["bool", True, "", -1]], "a result without a latency"),
        ([["error", None, ["not", "text"], 0]], "a result of unknown kind"),
        ([["pwned", None, "", 0]], "a result of unknown kind"),
    ],
)
def test_worker_rows_off_the_schema_are_refused(rows: list, message: str):
    with pytest.raises(FrameError, match=message):
        _verdicts({"results": rows}, 1, threshold=0.5)
