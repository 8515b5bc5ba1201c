"""The sandbox worker: a long-lived child process that runs code assertions (DESIGN §5).

Started by `pool._Worker` with an empty environment, in an empty temporary directory and, where
permitted, under `unshare -n`. Order matters and is the point of this module:

1. move the protocol onto private descriptors and point 0/1/2 at /dev/null;
2. import everything an assertion may use (the standard library lives under /root here, which
   is unreadable once privileges are dropped, so nothing can be imported afterwards);
3. drop to nobody (root ignores RLIMIT_NPROC, so the limits only bind after the drop);
4. lower the limits: address space, CPU, open files, processes, file size, core dumps;
5. say "ready" with the facts above, then serve batches until stdin closes.

Everything the parent receives from here is treated by it as hostile; this module only has to
make the hostile part (the assertion) small.
"""

from __future__ import annotations

import _strptime  # noqa: F401 - datetime.strptime imports it lazily; preload before the drop
import codecs
import collections
import ctypes
import json
import math
import mmap
import os
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from validators.sandbox import policy
from validators.sandbox.protocol import (
    HEADER,
    LOADING_SOURCE,
    MAX_REQUEST_BYTES,
    PROGRESS,
    encode_frame,
)

NOBODY = 65534
PR_SET_NO_NEW_PRIVS = 38
COMPILED_CACHE_SIZE = 64

# Codecs are imported on first use; the common ones are loaded before the drop so that
# `output.encode("latin-1")` still works afterwards.
PRELOADED_CODECS = (
    "ascii", "latin-1", "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252", "idna",
    "unicode_escape", "raw_unicode_escape", "punycode",
)

WARM_UP_SOURCE = """
import re, json, datetime, difflib, statistics, unicodedata, collections, itertools, string
def check(output, input, reference, meta):
    words = re.findall(r"\\w+", output.lower())
    data = json.loads(json.dumps({"n": len(words), "meta": meta}))
    day = datetime.datetime.strptime("2024-01-02", "%Y-%m-%d").date()
    ratio = difflib.SequenceMatcher(None, output, input).ratio()
    mean = statistics.mean([1, 2, 3])
    name = unicodedata.name("a")
    counts = collections.Counter(words)
    pairs = list(itertools.combinations(words[:3], 2))
    text = f"{output!r:>10}" + string.ascii_letters + "%s" % ratio
    return data["n"] >= 0 and day.year == 2024 and mean == 2 and bool(name) and len(text) > 0
"""


@dataclass
class LoadedAssertion:
    check: Callable[..., Any] | None
    error: str


class Worker:
    def __init__(self, config: dict[str, Any], protocol_in: int, protocol_out: int) -> None:
        self.memory_mb = int(config["memory_mb"])
        self.timeout_seconds = float(config["timeout_seconds"])
        self.cpu_lifetime_seconds = int(config["cpu_lifetime_seconds"])
        self.open_files = int(config["open_files"])
        self.reader = open(protocol_in, "rb", buffering=1 << 16)
        self.protocol_out = protocol_out
        self.progress = mmap.mmap(int(config["progress_fd"]), PROGRESS.size)
        os.close(int(config["progress_fd"]))
        self.modules = policy.load_allowed_modules()
        self.compiled: collections.OrderedDict[str, LoadedAssertion] = collections.OrderedDict()
        self.notes: list[str] = []
        self.privileges_dropped = False
        self.no_new_privs = False

    # --- startup ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run one assertion through every allowed module so that whatever they import or
        compile lazily on first use happens now, while the standard library is readable."""
        for name in PRELOADED_CODECS:
            codecs.lookup(name)
        loaded = self.load(WARM_UP_SOURCE)
        if loaded.check is None:
            raise RuntimeError(f"the warm-up assertion failed to load: {loaded.error}")
        if loaded.check("Warm up, warm up.", "warm up", None, {"k": 1}) is not True:
            raise RuntimeError("the warm-up assertion did not pass")
        self.compiled.clear()

    def drop_privileges(self) -> None:
        if os.getuid() != 0:
            self.notes.append(
                f"running as uid {os.getuid()}, not root: no privilege drop, limits still apply"
            )
        else:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            self.privileges_dropped = True
        # Without this an escaped assertion could still execve a setuid binary and be root.
        if sys.platform.startswith("linux"):
            # The interpreter links libc, so its own symbol table has prctl.
            libc = ctypes.CDLL(None, use_errno=True)
            self.no_new_privs = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        if not self.no_new_privs:
            self.notes.append("could not set no_new_privs")

    def lower_limits(self) -> None:
        megabyte = 1024 * 1024
        wanted = {
            "RLIMIT_AS": (self.memory_mb * megabyte, self.memory_mb * megabyte),
            # The hard limit (SIGKILL) sits a second above the last soft one (SIGXCPU), so a
            # worker out of CPU ends with a signal that says why.
            "RLIMIT_CPU": (self.cpu_lifetime_seconds, self.cpu_lifetime_seconds + 1),
            "RLIMIT_NOFILE": (self.open_files, self.open_files),
            "RLIMIT_NPROC": (0, 0),
            "RLIMIT_FSIZE": (0, 0),
            "RLIMIT_CORE": (0, 0),
        }
        for name, limits in wanted.items():
            kind = getattr(resource, name, None)
            if kind is None:
                self.notes.append(f"{name} does not exist on this platform")
                continue
            try:
                resource.setrlimit(kind, limits)
            except (ValueError, OSError) as exc:
                self.notes.append(f"could not set {name}: {exc}")

    def facts(self) -> dict[str, Any]:
        limits: dict[str, int | None] = {}
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                     "RLIMIT_CORE"):
            kind = getattr(resource, name, None)
            hard = resource.getrlimit(kind)[1] if kind is not None else None
            limits[name] = None if hard in (None, resource.RLIM_INFINITY) else hard
        return {
            "op": "ready",
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "groups": os.getgroups(),
            "privileges_dropped": self.privileges_dropped,
            "no_new_privs": self.no_new_privs,
            "limits": limits,
            "notes": self.notes,
        }

    # --- serving ------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self.write_raw(encode_frame(message))

    def write_raw(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            written = os.write(self.protocol_out, view)
            view = view[written:]

    def receive(self) -> dict[str, Any] | None:
        header = self.reader.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        (length,) = HEADER.unpack(header)
        if length > MAX_REQUEST_BYTES:
            raise ValueError(f"request of {length} bytes is over the limit")
        body = self.reader.read(length)
        if len(body) < length:
            return None
        return json.loads(body)

    def serve(self) -> None:
        while True:
            request = self.receive()
            if request is None:
                return
            if request["op"] == "batch":
                self.send(self.run_batch(request))
            elif request["op"] == "probe":
                reply = run_probe(self, str(request["name"]), int(request["batch"]))
                if reply is not None:
                    self.send(reply)
            else:
                raise ValueError(f"unknown op {request['op']!r}")

    def mark(self, batch: int, position: int) -> None:
        PROGRESS.pack_into(self.progress, 0, batch, position)

    def cpu_seconds(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def budget_cpu(self, n_items: int) -> None:
        """The CPU limit is per process lifetime, so it is moved up before each batch: it is a
        backstop for a worker whose parent is gone, while the parent enforces the timeout."""
        budget = math.ceil(self.timeout_seconds * (n_items + 1)) + 1
        soft = min(self.cpu_lifetime_seconds, math.ceil(self.cpu_seconds()) + budget)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, self.cpu_lifetime_seconds + 1))
        except (ValueError, OSError):
            pass

    def load(self, source: str) -> LoadedAssertion:
        loaded = self.compiled.get(source)
        if loaded is not None:
            self.compiled.move_to_end(source)
            return loaded
        loaded = self._load_uncached(source)
        self.compiled[source] = loaded
        if len(self.compiled) > COMPILED_CACHE_SIZE:
            self.compiled.popitem(last=False)
        return loaded

    def _load_uncached(self, source: str) -> LoadedAssertion:
        code, error = policy.compile_assertion(source)
        if code is None:
            return LoadedAssertion(None, error)
        namespace = policy.assertion_globals(self.modules)
        try:
            exec(code, namespace)  # restricted byte code in the sandbox
        except BaseException as exc:  # SystemExit from an assertion included
            return LoadedAssertion(None, policy.describe_exception(exc, self.memory_mb))
        check = namespace.get(policy.CHECK_FUNCTION)
        if not callable(check):
            return LoadedAssertion(
                None,
                f"the assertion must define a function "
                f"{policy.CHECK_FUNCTION}({', '.join(policy.CHECK_PARAMETERS)})",
            )
        return LoadedAssertion(check, "")

    def run_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        batch = int(request["batch"])
        items = request["items"]
        self.mark(batch, LOADING_SOURCE)
        self.budget_cpu(len(items))
        loaded = self.load(request["source"])
        if loaded.check is None:
            self.mark(batch, len(items))
            return {"op": "load_error", "batch": batch, "detail": loaded.error,
                    "cpu_seconds": self.cpu_seconds()}
        check = loaded.check
        rows: list[list[Any]] = []
        mark, progress, clock = PROGRESS.pack_into, self.progress, time.perf_counter
        for position, item in enumerate(items):
            mark(progress, 0, batch, position)
            started = clock()
            try:
                returned = check(*item)
                if returned is True or returned is False:
                    row = ["bool", returned, "", 0]
                else:
                    value = policy.classify_return(returned)
                    row = [value.kind, value.value, value.detail, 0]
            except BaseException as exc:  # SystemExit from an assertion included
                row = ["error", None, policy.describe_exception(exc, self.memory_mb), 0]
            # Whole microseconds: JSON writes an int far faster than a float's repr.
            row[3] = int((clock() - started) * 1_000_000)
            rows.append(row)
        self.mark(batch, len(items))
        return {"op": "results", "batch": batch, "results": rows,
                "cpu_seconds": self.cpu_seconds()}


# --- probes: trusted diagnostics run after the drop ---------------------------------------
#
# Reachable only through the parent's `SandboxPool.run_probe`, which sends a probe name, never
# code. They let tests prove the OS layer on its own, as if RestrictedPython had been escaped.


def _probe_fork() -> str:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return f"forked child {pid}"


def _probe_write_file() -> str:
    path = f"/tmp/concord-sandbox-probe-{os.getpid()}"
    try:
        with open(path, "w") as handle:
            handle.write("x" * 100)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return f"wrote {path}"


def _probe_connect() -> str:
    with socket.create_connection(("127.0.0.1", 9), timeout=1.0):
        return "connected"


def _probe_write_stdout() -> str:
    written = os.write(1, b"\x00\x00\x00\x05{junk" * 100) + os.write(2, b"junk\n" * 100)
    return f"wrote {written} bytes to fds 1 and 2"


PROBES: dict[str, Callable[[], object]] = {
    "identity": lambda: f"uid={os.getuid()} gid={os.getgid()} groups={os.getgroups()}",
    "environment": lambda: dict(os.environ),
    "working_directory": lambda: os.listdir("."),
    "read_shadow": lambda: open("/etc/shadow").read(10),
    "list_root": lambda: os.listdir("/root"),
    "regain_root": lambda: os.setuid(0),
    "fork": _probe_fork,
    "allocate_1gb": lambda: len(bytearray(1 << 30)),
    "write_file": _probe_write_file,
    "connect_localhost": _probe_connect,
    "write_stdout": _probe_write_stdout,
}

# Probes that misbehave on the protocol itself, to prove the parent survives a hostile worker.
MISBEHAVING_PROBES = ("garbage_reply", "oversized_reply", "exit", "hang")


def run_probe(worker: Worker, name: str, batch: int) -> dict[str, Any] | None:
    worker.mark(batch, 0)
    if name == "garbage_reply":
        worker.write_raw(HEADER.pack(12) + b"\xff\xfenot json!!")
        return None
    if name == "oversized_reply":
        worker.write_raw(HEADER.pack(1 << 30) + b"{")
        return None
    if name == "exit":
        os._exit(3)
    if name == "hang":
        while True:
            pass
    probe = PROBES.get(name)
    if probe is None:
        detail = f"no probe named {name!r}"
    else:
        try:
            detail = f"returned: {probe()!r}"
        except BaseException as exc:  # a MemoryError is an expected answer
            detail = f"{type(exc).__name__}: {exc}"
    worker.mark(batch, 1)
    return {"op": "probe", "batch": batch, "name": name, "detail": policy.truncate_detail(detail)}


def _take_protocol_descriptors() -> tuple[int, int]:
    """Keep the pipes on private descriptors and leave 0/1/2 on /dev/null, so nothing written
    to stdout (by a C extension, or an assertion that got that far) lands in a frame."""
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)
    return protocol_in, protocol_out


def main() -> None:
    config = json.loads(sys.argv[1])
    protocol_in, protocol_out = _take_protocol_descriptors()
    worker = Worker(config, protocol_in, protocol_out)
    try:
        worker.warm_up()
        worker.drop_privileges()
        worker.lower_limits()
    except Exception as exc:  # reported to the parent, which refuses the worker
        worker.send({"op": "fatal", "detail": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    worker.send(worker.facts())
    worker.serve()


if __name__ == "__main__":
    main()
