"""The sandbox worker: a zygote that forks one confined child per batch (DESIGN §5).

Started by `pool._Worker` with an empty environment, inside bubblewrap's namespaces over a
minimal read-only root where the platform allows it (see `isolation.py`). The zygote never runs
an assertion: it imports what assertions may use, drops to nobody, loads its seccomp filter and
then only forks. Each batch runs in a fresh child that lowers its limits, loads a second filter
(no fork, exec, signals or sockets), runs the batch and exits, so nothing one project's code
does to a process (patched classes, cached state, a leaked object) outlives its batch or reaches
another project's code. Order matters and is the point of this module:

1. move the protocol onto private descriptors and point 0/1/2 at /dev/null;
2. import everything an assertion may use and warm it up (nothing is imported afterwards);
3. drop to nobody (root ignores RLIMIT_NPROC, so limits only bind after the drop), set
   no_new_privs and non-dumpable (so a child cannot open the zygote's /proc/<pid>/mem);
4. load the zygote's seccomp filter, say "ready" with the facts above;
5. per request: fork; the child lowers its limits, loads the child filter, answers through a
   private pipe and exits; the zygote enforces the per-output timeout on it and forwards
   exactly one frame, or says how the child died.

Everything the parent receives is treated by it as hostile; this module only has to make the
hostile part (the assertion) small.
"""

from __future__ import annotations

import _strptime  # noqa: F401 - datetime.strptime imports it lazily; preload before the drop
import base64
import codecs
import ctypes
import errno
import json
import math
import mmap
import os
import resource
import select
import signal
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
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    PROGRESS,
    encode_frame,
)

NOBODY = 65534
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
# The zygote polls its child this often for progress; well below any sensible timeout.
CHILD_POLL_SECONDS = 0.02

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
    counts[words[0]] += 1
    pairs = list(itertools.combinations(words[:3], 2))
    text = f"{output!r:>10}" + string.ascii_letters + "%s" % ratio
    return data["n"] >= 0 and day.year == 2024 and mean == 2 and bool(name) and len(text) > 0
"""


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


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
        self.zygote_filter = base64.b64decode(config.get("zygote_filter") or "")
        self.child_filter = base64.b64decode(config.get("child_filter") or "")
        self.reader = open(protocol_in, "rb", buffering=1 << 16)
        self.protocol_out = protocol_out
        self.progress = mmap.mmap(int(config["progress_fd"]), PROGRESS.size)
        os.close(int(config["progress_fd"]))
        self.modules = policy.load_allowed_modules()
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.notes: list[str] = []
        self.privileges_dropped = False
        self.no_new_privs = False
        self.seccomp = False

    # --- startup ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run one trusted assertion through every allowed module so that whatever they import
        or compile lazily on first use happens now, while the standard library is readable."""
        for name in PRELOADED_CODECS:
            codecs.lookup(name)
        loaded = self.load(WARM_UP_SOURCE)
        if loaded.check is None:
            raise RuntimeError(f"the warm-up assertion failed to load: {loaded.error}")
        if loaded.check("Warm up, warm up.", "warm up", None, {"k": 1}) is not True:
            raise RuntimeError("the warm-up assertion did not pass")

    def drop_privileges(self) -> None:
        if os.getuid() != 0:
            # Under bubblewrap without root the user namespace already made us nobody.
            if os.getuid() != NOBODY:
                self.notes.append(f"running as uid {os.getuid()}, not root: no privilege drop")
        else:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            self.privileges_dropped = True
        if sys.platform.startswith("linux"):
            # Without no_new_privs an escaped assertion could execve a setuid binary and be
            # root again; it is also what lets an unprivileged process load a seccomp filter.
            self.no_new_privs = self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            self.libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        if not self.no_new_privs:
            self.notes.append("could not set no_new_privs")

    def load_filter(self, program: bytes) -> bool:
        """Load a seccomp BPF program built by the parent (with libseccomp, outside the
        sandbox, so the sandbox needs neither the library nor /sbin/ldconfig to find it)."""
        if not program:
            return False
        count = len(program) // ctypes.sizeof(_SockFilter)
        instructions = (_SockFilter * count).from_buffer_copy(program)
        prog = _SockFprog(count, instructions)
        return self.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0

    def confine_zygote(self) -> None:
        megabyte = 1024 * 1024
        for name, limits in {
            "RLIMIT_NOFILE": (self.open_files, self.open_files),
            "RLIMIT_FSIZE": (0, 0),
            "RLIMIT_CORE": (0, 0),
            # The zygote's own address space: it holds only a reply being forwarded.
            "RLIMIT_AS": (max(self.memory_mb, 256) * megabyte, max(self.memory_mb, 256) * megabyte),
        }.items():
            self._set_limit(name, limits)
        self.seccomp = self.load_filter(self.zygote_filter)
        if self.zygote_filter and not self.seccomp:
            self.notes.append(f"could not load the seccomp filter (errno {ctypes.get_errno()})")

    def _set_limit(self, name: str, limits: tuple[int, int]) -> None:
        kind = getattr(resource, name, None)
        if kind is None:
            self.notes.append(f"{name} does not exist on this platform")
            return
        try:
            resource.setrlimit(kind, limits)
        except (ValueError, OSError) as exc:
            self.notes.append(f"could not set {name}: {exc}")

    def confine_child(self, n_items: int) -> None:
        """Limits, then the child filter: after this the process cannot create another
        process, run a program, signal anyone or open a socket."""
        megabyte = 1024 * 1024
        # CPU is a backstop for a child whose zygote stopped watching; the zygote enforces
        # the per-output timeout. The hard limit (SIGKILL) sits a second above the soft one
        # (SIGXCPU), so a child out of CPU ends with a signal that says why.
        cpu = min(self.cpu_lifetime_seconds, math.ceil(self.timeout_seconds * (n_items + 1)) + 1)
        for name, limits in {
            "RLIMIT_AS": (self.memory_mb * megabyte, self.memory_mb * megabyte),
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_NPROC": (0, 0),
        }.items():
            self._set_limit(name, limits)
        if self.child_filter and not self.load_filter(self.child_filter):
            # Never run an assertion with less than the parent was told.
            os._exit(121)

    def facts(self) -> dict[str, Any]:
        limits: dict[str, int | None] = {}
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                     "RLIMIT_CORE"):
            kind = getattr(resource, name, None)
            hard = resource.getrlimit(kind)[1] if kind is not None else None
            limits[name] = None if hard in (None, resource.RLIM_INFINITY) else hard
        # What a child will have: the zygote keeps NPROC and CPU open so it can fork.
        limits["RLIMIT_AS"] = self.memory_mb * 1024 * 1024
        limits["RLIMIT_CPU"] = self.cpu_lifetime_seconds + 1
        limits["RLIMIT_NPROC"] = 0
        return {
            "op": "ready",
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "groups": os.getgroups(),
            "privileges_dropped": self.privileges_dropped,
            "no_new_privs": self.no_new_privs,
            "seccomp": self.seccomp,
            "namespaces": _namespaces(),
            "root_entries": _listing("/"),
            "visible_pids": [entry for entry in _listing("/proc") if entry.isdigit()],
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
            if request["op"] not in ("batch", "probe"):
                raise ValueError(f"unknown op {request['op']!r}")
            self.serve_in_child(request)

    def serve_in_child(self, request: dict[str, Any]) -> None:
        batch = int(request["batch"])
        n_items = len(request.get("items", ())) if request["op"] == "batch" else 1
        reply_read, reply_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(reply_read)
            self.reader.close()
            os.close(self.protocol_out)
            # The child answers its zygote only, through a pipe nobody else reads.
            self.protocol_out = reply_write
            self._child_main(request, batch, n_items)
        os.close(reply_write)
        reply, timed_out = self._collect(pid, batch, reply_read)
        os.close(reply_read)
        _, status = os.waitpid(pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
        if reply is not None and returncode == 0 and not timed_out:
            self.write_raw(reply)
        else:
            self.send({"op": "child_died", "batch": batch, "returncode": returncode,
                       "timed_out": timed_out, "reply_bytes": 0 if reply is None else len(reply)})

    def _child_main(self, request: dict[str, Any], batch: int, n_items: int) -> None:
        code = 0
        try:
            self.confine_child(n_items)
            if request["op"] == "probe":
                reply = run_probe(self, str(request["name"]), batch)
            else:
                reply = self.run_batch(request)
            if reply is not None:
                self.send(reply)
        except BaseException:  # noqa: BLE001 - a child ends here whatever happened
            code = 120
        os._exit(code)

    def _collect(self, pid: int, batch: int, reply_read: int) -> tuple[bytes | None, bool]:
        """Read the child's reply while watching its progress: kill it once one position has
        not moved for the timeout. Returns (exactly one frame or None, timed out)."""
        received = bytearray()
        observed: int | None = None
        observed_since = time.monotonic()
        while True:
            readable, _, _ = select.select([reply_read], [], [], CHILD_POLL_SECONDS)
            if readable:
                data = os.read(reply_read, 1 << 20)
                if not data:
                    break
                received += data
                if len(received) > MAX_REPLY_BYTES + HEADER.size:
                    os.kill(pid, signal.SIGKILL)
                    return None, False
            marked_batch, position = PROGRESS.unpack_from(self.progress, 0)
            position = position if marked_batch == batch else None
            now = time.monotonic()
            if position != observed:
                observed, observed_since = position, now
            elif now - observed_since >= self.timeout_seconds:
                os.kill(pid, signal.SIGKILL)
                return None, True
        if len(received) < HEADER.size:
            return None, False
        (length,) = HEADER.unpack_from(received)
        if length != len(received) - HEADER.size:
            return None, False  # a second frame, or a cut one: not a reply
        return bytes(received), False

    def mark(self, batch: int, position: int) -> None:
        PROGRESS.pack_into(self.progress, 0, batch, position)

    def load(self, source: str, function: str = policy.CHECK_FUNCTION) -> LoadedAssertion:
        if function not in policy.ENTRY_POINTS:
            return LoadedAssertion(None, f"no entry point named {function!r}")
        code, error = policy.compile_assertion(source)
        if code is None:
            return LoadedAssertion(None, error)
        namespace = policy.assertion_globals(self.modules)
        try:
            exec(code, namespace)  # restricted byte code, in a confined child
        except BaseException as exc:  # SystemExit from an assertion included
            return LoadedAssertion(None, policy.describe_exception(exc, self.memory_mb))
        check = namespace.get(function)
        if not callable(check):
            return LoadedAssertion(
                None,
                f"the assertion must define a function "
                f"{function}({', '.join(policy.ENTRY_POINTS[function])})",
            )
        return LoadedAssertion(check, "")

    def run_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        batch = int(request["batch"])
        items = request["items"]
        self.mark(batch, LOADING_SOURCE)
        function = request.get("function", policy.CHECK_FUNCTION)
        loaded = self.load(request["source"], function if isinstance(function, str) else "")
        if loaded.check is None:
            self.mark(batch, len(items))
            return {"op": "load_error", "batch": batch, "detail": loaded.error,
                    "cpu_seconds": _cpu_seconds()}
        check = loaded.check
        classify = (policy.classify_comparison if function == policy.COMPARE_FUNCTION
                    else policy.classify_return)
        rows: list[list[Any]] = []
        mark, progress, clock = PROGRESS.pack_into, self.progress, time.perf_counter
        for position, item in enumerate(items):
            mark(progress, 0, batch, position)
            started = clock()
            try:
                returned = check(*item)
                if (returned is True or returned is False) and classify is policy.classify_return:
                    row = ["bool", returned, "", 0]
                else:
                    value = classify(returned)
                    row = [value.kind, value.value, value.detail, 0]
            except BaseException as exc:  # SystemExit from an assertion included
                row = ["error", None, policy.describe_exception(exc, self.memory_mb), 0]
            # Whole microseconds: JSON writes an int far faster than a float's repr.
            row[3] = int((clock() - started) * 1_000_000)
            rows.append(row)
        self.mark(batch, len(items))
        return {"op": "results", "batch": batch, "results": rows, "cpu_seconds": _cpu_seconds()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _listing(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _namespaces() -> dict[str, str]:
    """The namespace ids this process is in; the parent compares them with its own."""
    found: dict[str, str] = {}
    for kind in ("mnt", "pid", "net", "ipc", "uts"):
        try:
            found[kind] = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            found[kind] = ""
    return found


# --- probes: trusted diagnostics run in a confined child ----------------------------------
#
# Reachable only through the parent's `SandboxPool.run_probe`, which sends a probe name, never
# code. They let tests prove the OS layer on its own, as if the Python layer had been escaped.


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


def _probe_unix_socket() -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect("/var/run/postgresql/.s.PGSQL.5432")
        return "connected"


def _probe_write_stdout() -> str:
    written = os.write(1, b"\x00\x00\x00\x05{junk" * 100) + os.write(2, b"junk\n" * 100)
    return f"wrote {written} bytes to fds 1 and 2"


def _probe_exec() -> str:
    os.execv("/bin/sh", ["sh", "-c", "true"])
    return "exec returned"


def _probe_signal_zygote() -> str:
    os.kill(os.getppid(), signal.SIGKILL)
    return f"signalled {os.getppid()}"


def _probe_read(path: str) -> Callable[[], str]:
    def read() -> str:
        with open(path, "rb") as handle:
            return f"read {len(handle.read(100))} bytes"

    return read


PROBES: dict[str, Callable[[], object]] = {
    "identity": lambda: f"uid={os.getuid()} gid={os.getgid()} groups={os.getgroups()}",
    "environment": lambda: dict(os.environ),
    "working_directory": lambda: os.listdir("."),
    "root_entries": lambda: sorted(os.listdir("/")),
    "visible_pids": lambda: sorted(p for p in os.listdir("/proc") if p.isdigit()),
    "read_passwd": _probe_read("/etc/passwd"),
    "read_shadow": _probe_read("/etc/shadow"),
    "list_root": lambda: os.listdir("/root"),
    "regain_root": lambda: os.setuid(0),
    "fork": _probe_fork,
    "exec": _probe_exec,
    "signal_zygote": _probe_signal_zygote,
    "allocate_1gb": lambda: len(bytearray(1 << 30)),
    "write_file": _probe_write_file,
    "connect_localhost": _probe_connect,
    "unix_socket": _probe_unix_socket,
    "udp_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).fileno(),
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
        worker.confine_zygote()
    except Exception as exc:  # reported to the parent, which refuses the worker
        worker.send({"op": "fatal", "detail": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    worker.send(worker.facts())
    try:
        worker.serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise


if __name__ == "__main__":
    main()
