"""A pool of long-lived sandbox workers that run code assertions in batches (DESIGN §5).

The calling process (web or Celery) never runs assertion code. It sends batches of outputs as
JSON frames to workers started by `worker.py`, enforces the per-output timeout itself (a
worker reports which output it is on through a small shared-memory slot, so a stall is pinned
on the right output without a round trip per output), and treats every byte a worker sends as
hostile: bounded frames, strict JSON schema, and anything unexpected ends that worker.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import math
import mmap
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

from validators.sandbox.isolation import Wall, bwrap_path, decide_wall, worker_import_paths
from validators.sandbox.policy import (
    CHECK_FUNCTION,
    COMPARE_FUNCTION,
    COMPARISON_WINNERS,
    truncate_detail,
)
from validators.sandbox.protocol import (
    LOADING_SOURCE,
    MAX_REPLY_BYTES,
    PROGRESS,
    FrameDecoder,
    FrameError,
    encode_frame,
    frame_from_json,
)

PASS, FAIL, ERROR = "pass", "fail", "error"
OUTCOMES = (PASS, FAIL, ERROR)
# Batches are also cut by size so that a few long outputs do not make one giant frame.
MAX_BATCH_BYTES = 4 * 1024 * 1024
STARTUP_TIMEOUT_SECONDS = 20.0
# The zygote enforces the per-output timeout on its child; the parent steps in only when the
# zygote itself stops answering, this long after the child should have been stopped.
ZYGOTE_GRACE_SECONDS = 1.5
WEAK_ISOLATION_SETTING = "CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION"
# One encoder for every batch: json.dumps(default=...) builds a new one per call, which is
# slower than the checks themselves. Meta values JSON cannot hold are sent as strings.
_ITEM_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))

_BOOTSTRAP = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1])['paths']; "
    "from validators.sandbox.worker import main; main()"
)


@dataclass(frozen=True)
class CheckItem:
    """One output to check, with what `check(output, input, reference, meta)` receives.
    `meta` crosses to the worker as JSON; values JSON cannot hold arrive as strings."""

    output: str
    input: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareItem:
    """Two outputs of one input for a code comparator,
    `compare(output_a, output_b, input, reference, meta)`; `output_a` is the one passed first."""

    output_a: str
    output_b: str
    input: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareResult:
    """A comparator's verdict on one pair: winner 'a', 'b', 'tie' or 'error'; `score` is the
    number it returned (a − b), when it returned one."""

    winner: str
    score: float | None
    detail: str
    latency_ms: float


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one output. `score` is set exactly when the outcome is pass or fail:
    the number `check` returned, or 1.0/0.0 for True/False, so a threshold can be swept over
    boolean and numeric assertions alike. `latency_ms` is the time `check` took in the
    worker (the timeout itself for an output that timed out, 0 when it never ran)."""

    outcome: str
    score: float | None
    detail: str
    latency_ms: float


class SandboxError(Exception):
    """The sandbox itself failed (as opposed to an assertion failing, which is a verdict)."""


class SandboxUnavailable(SandboxError):
    """No worker could be started or kept alive long enough to accept a batch."""


class SandboxWorkerError(SandboxError):
    """A worker broke the protocol while answering a probe; it has been replaced."""


class SandboxDisabled(SandboxUnavailable):
    """The platform refuses the namespaces the sandbox needs and no admin accepted less."""


def _error(detail: str, latency_ms: float = 0.0) -> CheckResult:
    return CheckResult(ERROR, None, truncate_detail(detail), latency_ms)


def _death_detail(returncode: int | None) -> str:
    if returncode is None:
        return "sandbox worker stopped answering"
    if returncode >= 0:
        return f"sandbox worker exited with status {returncode}"
    number = -returncode
    if number == signal.SIGXCPU:
        return "CPU time limit exceeded"
    if number == signal.SIGSEGV:
        return "sandbox worker crashed (SIGSEGV)"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"sandbox worker was killed ({name})"


@dataclass(frozen=True)
class _WorkerSettings:
    timeout_seconds: float
    memory_mb: int
    cpu_lifetime_seconds: int
    open_files: int


@dataclass(frozen=True)
class _Failure:
    """Why an exchange with a worker ended without a reply. `position` is where the worker
    was: None before it took the request, LOADING_SOURCE, an output's index, or the number of
    outputs when it was writing its reply. The worker is dead by the time this exists."""

    position: int | None
    detail: str
    timed_out: bool = False
    malformed: bool = False
    # Only the batch's child died; the zygote answered for it and keeps serving.
    zygote_alive: bool = False


class _Worker:
    def __init__(self, settings: _WorkerSettings, wall: Wall) -> None:
        self.settings = settings
        self.workdir = tempfile.mkdtemp(prefix="concord-sandbox-")
        # An unlinked file both processes map: the worker writes (batch, position) into it.
        self.progress_file = tempfile.TemporaryFile()
        self.progress_file.truncate(PROGRESS.size)
        self.progress = mmap.mmap(self.progress_file.fileno(), PROGRESS.size)
        self.decoder = FrameDecoder(MAX_REPLY_BYTES)
        self.cpu_seconds = 0.0
        self.facts: dict[str, Any] = {}
        config = {
            "paths": worker_import_paths(wall.mode),
            "zygote_filter": base64.b64encode(wall.zygote_filter).decode("ascii"),
            "child_filter": base64.b64encode(wall.child_filter).decode("ascii"),
            "progress_fd": self.progress_file.fileno(),
            "memory_mb": settings.memory_mb,
            "timeout_seconds": settings.timeout_seconds,
            "cpu_lifetime_seconds": settings.cpu_lifetime_seconds,
            "open_files": settings.open_files,
        }
        command = [*wall.launch_prefix, wall.interpreter, "-I", "-S", "-B", "-c", _BOOTSTRAP,
                   json.dumps(config)]
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env={}, cwd=self.workdir,
                pass_fds=(self.progress_file.fileno(),), close_fds=True,
            )
        except OSError as exc:
            self._release_files()
            raise SandboxUnavailable(f"could not start a sandbox worker: {exc}") from exc
        assert self.process.stdin is not None and self.process.stdout is not None
        self.request_fd = self.process.stdin.fileno()
        self.reply_fd = self.process.stdout.fileno()
        os.set_blocking(self.request_fd, False)
        os.set_blocking(self.reply_fd, False)
        self._await_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def _await_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                message = self.decoder.next_message()
            except FrameError as exc:
                self.kill()
                raise SandboxUnavailable(f"sandbox worker sent a bad greeting: {exc}") from None
            if message is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SandboxUnavailable("sandbox worker did not start in time")
            if not self._read_available(min(remaining, 0.1)):
                returncode = self.process.poll()
                self.kill()
                raise SandboxUnavailable(
                    f"sandbox worker failed to start: {_death_detail(returncode)}"
                )
        if message.get("op") != "ready":
            self.kill()
            raise SandboxUnavailable(
                f"sandbox worker failed to start: {str(message.get('detail'))[:2000]}"
            )
        self.facts = message

    def _read_available(self, wait_seconds: float) -> bool:
        """Read what the worker has written within `wait_seconds`; False on end of file."""
        readable, _, _ = select.select([self.reply_fd], [], [], wait_seconds)
        if not readable:
            return True
        try:
            data = os.read(self.reply_fd, 1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self.decoder.feed(data)
        return True

    def _send(self, frame: bytes, deadline: float) -> bool:
        view = memoryview(frame)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _, writable, _ = select.select([], [self.request_fd], [], remaining)
            if not writable:
                continue
            try:
                written = os.write(self.request_fd, view)
            except BlockingIOError:
                continue
            except OSError:
                return False
            view = view[written:]
        return True

    def _position(self, batch: int) -> int | None:
        marked_batch, position = PROGRESS.unpack_from(self.progress, 0)
        return position if marked_batch == batch else None

    def exchange(
        self, frame: bytes, batch: int, n_positions: int, timeout_seconds: float
    ) -> dict[str, Any] | _Failure:
        """Send one request and wait for its reply while watching the progress slot: the
        worker is killed once one position has not moved for `timeout_seconds`."""
        started = time.monotonic()
        # Every position may legitimately take the whole timeout; past that, something lies.
        hard_deadline = started + timeout_seconds * (n_positions + 2) + 1.0 + ZYGOTE_GRACE_SECONDS
        poll_seconds = min(0.05, timeout_seconds / 5)
        if not self._send(frame, started + timeout_seconds + 1.0):
            return self._fail(batch, None)
        observed: int | None = None
        observed_since = started
        while True:
            try:
                message = self.decoder.next_message()
            except FrameError as exc:
                return self._fail(batch, f"sandbox worker sent a malformed reply ({exc})",
                                  malformed=True)
            if message is not None:
                if message.get("batch") != batch:
                    return self._fail(batch, "sandbox worker answered another request",
                                      malformed=True)
                if message.get("op") == "child_died":
                    return self._child_failure(batch, message, timeout_seconds)
                return message
            try:
                still_open = self._read_available(poll_seconds)
            except FrameError as exc:
                return self._fail(batch, f"sandbox worker sent a malformed reply ({exc})",
                                  malformed=True)
            if not still_open:
                return self._fail(batch, None)
            now = time.monotonic()
            position = self._position(batch)
            if position != observed:
                observed, observed_since = position, now
            if (now - observed_since >= timeout_seconds + ZYGOTE_GRACE_SECONDS
                    or now >= hard_deadline):
                return self._fail(batch, f"timed out after {timeout_seconds} s", timed_out=True)

    def _child_failure(self, batch: int, message: dict[str, Any], timeout_seconds: float
                       ) -> _Failure:
        returncode = message.get("returncode")
        position = self._position(batch)
        if message.get("timed_out") is True:
            return _Failure(position, f"timed out after {timeout_seconds} s", timed_out=True,
                            zygote_alive=True)
        if type(returncode) is not int:
            return self._fail(batch, "sandbox worker sent a malformed reply (child status)",
                              malformed=True)
        if returncode == 0:
            return _Failure(position, "sandbox worker sent a malformed reply (not exactly one "
                            "frame)", malformed=True, zygote_alive=True)
        return _Failure(position, _death_detail(returncode), zygote_alive=True)

    def _fail(
        self, batch: int, detail: str | None, *, timed_out: bool = False, malformed: bool = False
    ) -> _Failure:
        position = self._position(batch)
        returncode = self.process.poll()
        if returncode is None and detail is None:
            # The pipe closed but the process lingers; give it a moment to report its end.
            with contextlib.suppress(subprocess.TimeoutExpired):
                returncode = self.process.wait(timeout=1.0)
        self.kill()
        return _Failure(position, detail or _death_detail(returncode), timed_out, malformed)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._release_files()

    def _release_files(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self.progress.close()
        self.progress_file.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class _Slot:
    """A place for one worker; the worker in it is replaced lazily after it fails."""

    worker: _Worker | None = None


@dataclass
class _Run:
    """State shared by the batches of one `run` call."""

    source_json: str
    threshold: float | None
    results: list[CheckResult | None]
    # The entry point the worker calls: `check` (one output) or `compare` (a pair).
    function: str = CHECK_FUNCTION
    source_failure: str | None = None
    timeouts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _Batch:
    indices: list[int]
    items: Sequence[CheckItem] | Sequence[CompareItem]

    def encode(self, positions: list[int]) -> str:
        return _ITEM_ENCODER.encode([
            _arguments(item) for item in (self.items[self.indices[position]] for position in positions)
        ])


def _arguments(item: CheckItem | CompareItem) -> list[Any]:
    """The positional arguments of the worker's call, in the entry point's order."""
    if isinstance(item, CompareItem):
        return [item.output_a, item.output_b, item.input, item.reference, item.meta]
    return [item.output, item.input, item.reference, item.meta]


def _item_chars(item: CheckItem | CompareItem) -> int:
    outputs = (len(item.output_a) + len(item.output_b) if isinstance(item, CompareItem)
               else len(item.output))
    return outputs + len(item.input) + len(item.reference or "") + 64 * len(item.meta)


def _rows(rows: list[Any]):
    """A worker's result rows ([kind, value, detail, latency in µs]) with the fields every
    function shares checked: (kind, value, detail, latency in ms)."""
    for row in rows:
        if type(row) is not list or len(row) != 4:
            raise FrameError("a result is not a 4-item list")
        kind, value, detail, latency_us = row
        if type(latency_us) is not int or latency_us < 0:
            raise FrameError("a result without a latency")
        if kind == "number" and (type(value) not in (int, float) or math.isnan(value)):
            raise FrameError("a number result without a number")
        if kind == "error" and type(detail) is not str:
            raise FrameError("a result of unknown kind")
        yield kind, value, detail, latency_us / 1000.0


def _comparisons(rows: list[Any]) -> list[CheckResult]:
    """A comparator's rows, checked like _verdicts'; the outcome is the winner."""
    verdicts: list[CheckResult] = []
    for kind, value, detail, latency_ms in _rows(rows):
        if kind == "winner":
            if type(value) is not str or value not in COMPARISON_WINNERS:
                raise FrameError("a winner result without a winner")
            verdicts.append(CheckResult(value, None, "", latency_ms))
        elif kind == "number":
            winner = "a" if value > 0 else "b" if value < 0 else "tie"
            verdicts.append(CheckResult(winner, float(value), "", latency_ms))
        elif kind == "none":
            verdicts.append(_error("compare returned None", latency_ms))
        elif kind == "error":
            verdicts.append(_error(detail, latency_ms))
        else:
            raise FrameError("a result of unknown kind")
    return verdicts


def _verdicts(message: dict[str, Any], expected: int, threshold: float | None,
              function: str = CHECK_FUNCTION) -> list[CheckResult]:
    """Verdicts from a worker's rows ([kind, value, detail, latency in µs]), checked field by
    field; a FrameError for anything off-schema. The threshold is applied here, not in the
    worker, so a worker can misreport only what its own assertion could have returned."""
    rows = message.get("results")
    if not isinstance(rows, list) or len(rows) != expected:
        raise FrameError(f"expected {expected} results")
    if function == COMPARE_FUNCTION:
        return _comparisons(rows)
    verdicts: list[CheckResult] = []
    for kind, value, detail, latency_ms in _rows(rows):
        if kind == "bool":
            if type(value) is not bool:
                raise FrameError("a bool result without a bool")
            verdicts.append(CheckResult(PASS if value else FAIL, 1.0 if value else 0.0, "",
                                        latency_ms))
        elif kind == "number":
            if threshold is None:
                verdicts.append(_error(
                    f"check returned a number ({value:g}) but the validator has no threshold",
                    latency_ms,
                ))
            else:
                verdicts.append(CheckResult(PASS if value >= threshold else FAIL, float(value),
                                            "", latency_ms))
        elif kind == "none":
            verdicts.append(_error("check returned None", latency_ms))
        elif kind == "error":
            verdicts.append(_error(detail, latency_ms))
        else:
            raise FrameError("a result of unknown kind")
    return verdicts


class SandboxPool:
    """Runs code assertions in `size` sandboxed worker processes. Thread-safe: concurrent
    `run` calls share the workers, and one call spreads its batches over all of them."""

    def __init__(
        self,
        size: int = 2,
        *,
        timeout_seconds: float = 2.0,
        memory_mb: int = 512,
        batch_size: int = 200,
        max_timeouts_per_run: int | None = 10,
        cpu_lifetime_seconds: int = 3600,
        open_files: int = 16,
        isolate_network: bool = True,
        allow_weak_isolation: bool = False,
        bwrap: str | None | object = ...,
    ) -> None:
        """`allow_weak_isolation` lets code run where the platform refuses namespaces (see
        isolation.py); `bwrap` overrides the bubblewrap binary (None: none, to test that)."""
        if size < 1 or batch_size < 1 or timeout_seconds <= 0:
            raise ValueError("size, batch_size and timeout_seconds must be positive")
        self.size = size
        self.timeout_seconds = float(timeout_seconds)
        self.batch_size = batch_size
        # Past this many timeouts the assertion is plainly broken (a catastrophic regex, a
        # loop); running the rest would cost timeout_seconds each for the same answer.
        self.max_timeouts_per_run = max_timeouts_per_run
        self._settings = _WorkerSettings(
            timeout_seconds=self.timeout_seconds, memory_mb=memory_mb,
            cpu_lifetime_seconds=cpu_lifetime_seconds, open_files=open_files,
        )
        self.wall = decide_wall(bwrap=bwrap_path() if bwrap is ... else bwrap,  # type: ignore[arg-type]
                                isolate_network=isolate_network)
        self.allow_weak_isolation = allow_weak_isolation
        self._slots = [_Slot() for _ in range(size)]
        self._idle: Queue[_Slot] = Queue()
        for slot in self._slots:
            self._idle.put(slot)
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sandbox")
        self._counter_lock = threading.Lock()
        self._workers_started = 0
        self._workers_replaced = 0
        self._last_facts: dict[str, Any] = {}
        self._closed = False
        self._owner_pid = os.getpid()

    # --- public API ---------------------------------------------------------------------

    def run(
        self, source: str, items: Sequence[CheckItem], *, threshold: float | None = None
    ) -> list[CheckResult]:
        """One verdict per item, in order. Never raises for a bad assertion (every problem is
        an `error` verdict); raises SandboxUnavailable when workers cannot be started."""
        return self._run_items(source, items, threshold, CHECK_FUNCTION)

    def compare(self, source: str, items: Sequence[CompareItem]) -> list[CompareResult]:
        """A code comparator's verdict per pair, in order: its source defines
        `compare(output_a, output_b, input, reference, meta)`, run with every guarantee of
        `run`. Never raises for a bad comparator (every problem is an `error` winner); raises
        SandboxUnavailable when workers cannot be started."""
        results = self._run_items(source, items, None, COMPARE_FUNCTION)
        return [CompareResult(r.outcome, r.score, r.detail, r.latency_ms) for r in results]

    def _run_items(
        self, source: str, items: Sequence[CheckItem] | Sequence[CompareItem],
        threshold: float | None, function: str,
    ) -> list[CheckResult]:
        self._ensure_open()
        if not items:
            return []
        run = _Run(json.dumps(source), threshold, [None] * len(items), function=function)
        batches = self._batches(items)
        futures: list[Future[None]] = [
            self._executor.submit(self._run_batch, run, batch) for batch in batches
        ]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()
        verdicts = [result for result in run.results if result is not None]
        if len(verdicts) != len(items):
            raise SandboxError("a batch ended without a verdict for every output")
        return verdicts

    def run_probe(self, name: str) -> str:
        """Run one of the worker's built-in diagnostics (see worker.PROBES) in a worker that
        has already dropped its privileges: the OS layer tested on its own. Takes a name,
        never code. Raises SandboxWorkerError if the worker broke the protocol."""
        self._ensure_open()
        with self._checkout() as slot:
            worker = self._ready_worker(slot, n_items=1)
            batch = _new_batch_id()
            frame = encode_frame({"op": "probe", "batch": batch, "name": name})
            reply = worker.exchange(frame, batch, 1, self.timeout_seconds)
            if isinstance(reply, _Failure):
                if not reply.zygote_alive:
                    self._discard(slot)
                raise SandboxWorkerError(reply.detail)
            if reply.get("op") != "probe" or not isinstance(reply.get("detail"), str):
                self._discard(slot)
                raise SandboxWorkerError("sandbox worker sent a malformed reply")
            return truncate_detail(reply["detail"])

    def status(self) -> dict[str, Any]:
        """How the workers are confined, as reported by a zygote before it forked anything
        (starts one if none is running), and which barriers are missing. Answers even when
        code validators are off, so pages can say why."""
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        facts: dict[str, Any] = {}
        if not self.disabled_reason:
            with self._checkout() as slot:
                self._ready_worker(slot, n_items=0)
            facts = self._last_facts
        barriers = _barriers(self.wall, facts)
        return {
            "mode": self.wall.mode,
            "code_validators_enabled": not self.disabled_reason,
            "disabled_reason": self.disabled_reason,
            "weak_isolation_accepted": self.wall.mode == "weak" and self.allow_weak_isolation,
            "barriers": barriers,
            "active_barriers": [name for name, active in barriers.items() if active],
            "missing_barriers": [name for name, active in barriers.items() if not active],
            "problems": list(self.wall.problems),
            "size": self.size,
            "timeout_seconds": self.timeout_seconds,
            "memory_mb": self._settings.memory_mb,
            "batch_size": self.batch_size,
            "max_timeouts_per_run": self.max_timeouts_per_run,
            "network_isolated": barriers["network namespace"],
            "uid": facts.get("uid"),
            "gid": facts.get("gid"),
            "groups": facts.get("groups"),
            "privileges_dropped": facts.get("privileges_dropped"),
            "no_new_privs": facts.get("no_new_privs"),
            "seccomp": facts.get("seccomp"),
            "root_entries": facts.get("root_entries"),
            "visible_pids": facts.get("visible_pids"),
            "limits": facts.get("limits"),
            "worker_pids": [worker.pid for worker in (slot.worker for slot in self._slots)
                            if worker is not None and worker.alive()],
            "workers_started": self._workers_started,
            "workers_replaced": self._workers_replaced,
            "notes": list(facts.get("notes", [])),
        }

    def close(self) -> None:
        if self._closed or os.getpid() != self._owner_pid:
            # A forked copy of a pool shares its pipes with the original: leave them alone.
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        for slot in self._slots:
            if slot.worker is not None:
                slot.worker.kill()
                slot.worker = None

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- batches ------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        if self.disabled_reason:
            raise SandboxDisabled(self.disabled_reason)

    @property
    def disabled_reason(self) -> str:
        if self.wall.mode == "namespaces" or self.allow_weak_isolation:
            return ""
        return ("code validators are off: this platform refuses the namespaces the sandbox "
                f"needs ({'; '.join(self.wall.problems)}). An admin can accept the weaker "
                f"isolation with {WEAK_ISOLATION_SETTING}=1.")

    def _batches(self, items: Sequence[CheckItem] | Sequence[CompareItem]) -> list[_Batch]:
        batches: list[_Batch] = []
        indices: list[int] = []
        size_chars = 0
        for index, item in enumerate(items):
            # An estimate is enough: the bound only keeps frames from growing without limit.
            item_chars = _item_chars(item)
            if indices and (len(indices) >= self.batch_size
                            or size_chars + item_chars > MAX_BATCH_BYTES):
                batches.append(_Batch(indices, items))
                indices, size_chars = [], 0
            indices.append(index)
            size_chars += item_chars
        batches.append(_Batch(indices, items))
        return batches

    @contextlib.contextmanager
    def _checkout(self) -> Iterator[_Slot]:
        slot = self._idle.get()
        try:
            yield slot
        finally:
            self._idle.put(slot)

    def _ready_worker(self, slot: _Slot, n_items: int) -> _Worker:
        worker = slot.worker
        budget = math.ceil(self.timeout_seconds * (n_items + 1)) + 1
        if worker is not None and (
            not worker.alive()
            or worker.cpu_seconds + budget > self._settings.cpu_lifetime_seconds
        ):
            self._discard(slot)
            worker = None
        if worker is None:
            worker = slot.worker = _Worker(self._settings, self.wall)
            self._last_facts = worker.facts
            with self._counter_lock:
                self._workers_started += 1
        return worker

    def _discard(self, slot: _Slot) -> None:
        """End the slot's worker; the next use of the slot starts a fresh one."""
        if slot.worker is not None:
            slot.worker.kill()
            slot.worker = None
            with self._counter_lock:
                self._workers_replaced += 1

    def _run_batch(self, run: _Run, batch: _Batch) -> None:
        pending = list(range(len(batch.indices)))
        unaccepted = 0
        while pending:
            # close() kills the workers under running batches; do not start new ones.
            self._ensure_open()
            stop = self._stop_reason(run)
            if stop is not None:
                for position in pending:
                    run.results[batch.indices[position]] = _error(stop)
                return
            # Encoded before a worker is taken, so workers do not sit idle while it happens.
            batch_id = _new_batch_id()
            frame = frame_from_json(
                f'{{"op":"batch","batch":{batch_id},"source":{run.source_json},'
                f'"function":"{run.function}","items":{batch.encode(pending)}}}'
            )
            with self._checkout() as slot:
                worker = self._ready_worker(slot, len(pending))
                reply = worker.exchange(frame, batch_id, len(pending) + 1, self.timeout_seconds)
                if not isinstance(reply, _Failure):
                    reply = self._checked_reply(reply, len(pending), run.threshold, run.function)
                if isinstance(reply, _Failure):
                    if not reply.zygote_alive:
                        self._discard(slot)
                else:
                    worker.cpu_seconds = reply["cpu_seconds"]
            if isinstance(reply, _Failure):
                if not (reply.zygote_alive or reply.malformed or reply.timed_out):
                    # The zygote itself died (killed while idle, or by the machine): assertions
                    # run in its children and cannot signal it, so this is not the assertion's
                    # doing; the batch goes to a fresh zygote once more.
                    unaccepted += 1
                    if unaccepted > 1:
                        raise SandboxUnavailable(f"sandbox workers keep failing: {reply.detail}")
                    continue
                pending = self._after_failure(run, batch, pending, reply)
                continue
            if reply["op"] == "load_error":
                with run.lock:
                    run.source_failure = reply["detail"]
                continue
            for position, verdict in zip(pending, reply["verdicts"], strict=True):
                run.results[batch.indices[position]] = verdict
            pending = []

    def _checked_reply(
        self, reply: dict[str, Any], expected: int, threshold: float | None,
        function: str = CHECK_FUNCTION,
    ) -> dict[str, Any] | _Failure:
        cpu_seconds = reply.get("cpu_seconds")
        if isinstance(cpu_seconds, bool) or not isinstance(cpu_seconds, int | float):
            return _Failure(expected, "sandbox worker sent a malformed reply (no cpu_seconds)",
                            malformed=True)
        if reply["op"] == "load_error":
            if not isinstance(reply.get("detail"), str):
                return _Failure(expected, "sandbox worker sent a malformed reply (detail)",
                                malformed=True)
            return {**reply, "detail": truncate_detail(reply["detail"])}
        if reply["op"] != "results":
            return _Failure(expected, "sandbox worker sent a malformed reply (op)",
                            malformed=True)
        try:
            verdicts = _verdicts(reply, expected, threshold, function)
        except FrameError as exc:
            return _Failure(expected, f"sandbox worker sent a malformed reply ({exc})",
                            malformed=True)
        return {**reply, "verdicts": verdicts}

    def _stop_reason(self, run: _Run) -> str | None:
        with run.lock:
            if run.source_failure is not None:
                return run.source_failure
            if self.max_timeouts_per_run is not None and run.timeouts >= self.max_timeouts_per_run:
                return (f"not run: the assertion already timed out on {run.timeouts} outputs "
                        f"in this run")
        return None

    def _after_failure(
        self, run: _Run, batch: _Batch, pending: list[int], failure: _Failure
    ) -> list[int]:
        """Pin a failure on the output the worker was on; the others go to a fresh worker."""
        latency_ms = self.timeout_seconds * 1000.0 if failure.timed_out else 0.0
        position = failure.position
        if (failure.malformed or position is None or position < LOADING_SOURCE
                or position >= len(pending)):
            for pending_position in pending:
                run.results[batch.indices[pending_position]] = _error(failure.detail)
            return []
        if position == LOADING_SOURCE:
            with run.lock:
                run.source_failure = f"{failure.detail} while loading the assertion"
            return pending
        run.results[batch.indices[pending[position]]] = _error(failure.detail, latency_ms)
        if failure.timed_out:
            with run.lock:
                run.timeouts += 1
        return pending[:position] + pending[position + 1:]


def _new_batch_id() -> int:
    # Unguessable, so nothing a child writes can pass for the answer to a later request.
    return secrets.randbits(62)


# The parent's own namespaces, to tell whether a worker's differ.
_OWN_NAMESPACES = {kind: (os.readlink(f"/proc/self/ns/{kind}")
                          if os.path.exists(f"/proc/self/ns/{kind}") else "")
                   for kind in ("mnt", "pid", "net", "ipc", "uts")}
_FORBIDDEN_ROOT_ENTRIES = {"etc", "home", "root", "var", "run", "srv", "mnt", "media", "work"}


def _barriers(wall: Wall, facts: dict[str, Any]) -> dict[str, bool]:
    """Each barrier named for a person, and whether the running zygote has it."""
    namespaces = facts.get("namespaces") or {}

    def separate(kind: str) -> bool:
        theirs = namespaces.get(kind, "")
        return bool(theirs) and theirs != _OWN_NAMESPACES.get(kind, "")

    root = set(facts.get("root_entries") or ())
    limits = facts.get("limits") or {}
    return {
        "mount namespace": separate("mnt"),
        "pid namespace": separate("pid"),
        "network namespace": separate("net"),
        "ipc namespace": separate("ipc"),
        "uts namespace": separate("uts"),
        "minimal read-only root": bool(root) and not (root & _FORBIDDEN_ROOT_ENTRIES),
        "uid nobody": facts.get("uid") == 65534,
        "no_new_privs": facts.get("no_new_privs") is True,
        "seccomp filter": facts.get("seccomp") is True,
        "resource limits": bool(limits) and limits.get("RLIMIT_NPROC") == 0
        and limits.get("RLIMIT_FSIZE") == 0,
        "fresh process per batch": bool(facts),
    }


_shared_pool: SandboxPool | None = None
_shared_pool_lock = threading.Lock()


_shared_pool_options: dict[str, Any] = {}


def configure(**options: Any) -> None:
    """Options for the process-wide pool (Django passes its settings here at start-up);
    a pool already running is closed so the next use starts one with them."""
    global _shared_pool
    with _shared_pool_lock:
        _shared_pool_options.clear()
        _shared_pool_options.update(options)
        if _shared_pool is not None and _shared_pool._owner_pid == os.getpid():
            _shared_pool.close()
        _shared_pool = None


def get_pool() -> SandboxPool:
    """The process-wide pool, started on first use and closed at exit. A forked process
    (a Celery prefork child) gets its own rather than sharing the parent's pipes."""
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None or _shared_pool._owner_pid != os.getpid():
            _shared_pool = SandboxPool(**_shared_pool_options)
        return _shared_pool


def _close_shared_pool() -> None:
    if _shared_pool is not None:
        _shared_pool.close()


atexit.register(_close_shared_pool)
