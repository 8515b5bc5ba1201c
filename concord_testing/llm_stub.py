"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests, benchmarks and the offline demo.

It speaks enough of the API for Concord's LLM client: ``POST /v1/chat/completions``,
``POST /v1/embeddings`` and ``GET /v1/models``. A test steers it at runtime (from any thread)
and reads back what it received::

    with LLMStubServer(latency_s=0.1) as stub:
        stub.fail_next(2, status=429, retry_after=0.2)
        ...  # point a client at stub.base_url
        assert stub.request_count == 3

It is a real socket server, not a patched client, so the tests exercise the SDK, the HTTP
stack, timeouts and connection handling exactly as production does.

Run ``python -m concord_testing.llm_stub --port 8765`` to point a running app at it.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Responder = Callable[[str], str]
# Answers a whole chat request body (model, every message); raises StubRefusal to refuse it.
ChatAnswerer = Callable[[dict[str, Any]], str]

GARBLED_PAGE = b"<html><body>Gateway says hello</body></html>"
NONSENSE_ANSWER = "I would rather talk about the weather; it is lovely today."
DEFAULT_MODEL = "concord-stub"
DEFAULT_EMBEDDING_MODEL = "concord-stub-embedding"

_WORD = re.compile(r"\w+", re.UNICODE)


def keyword_responder(keyword: str) -> Responder:
    """Answer YES when the prompt contains ``keyword`` (case-insensitive), else NO."""
    needle = keyword.casefold()

    def respond(prompt: str) -> str:
        return "YES" if needle in prompt.casefold() else "NO"

    return respond


def hashed_responder(pass_rate: float = 0.7) -> Responder:
    """Answer YES for a stable, pseudo-random ``pass_rate`` share of prompts.

    The demo's prompts all say "Answer YES or NO", so a keyword responder would pass everything;
    hashing the prompt gives varied yet reproducible verdicts.
    """

    def respond(prompt: str) -> str:
        digest = hashlib.sha256(prompt.encode("utf-8")).digest()
        return "YES" if int.from_bytes(digest[:8], "big") / 2**64 < pass_rate else "NO"

    return respond


def count_tokens(text: str) -> int:
    """The stub's token count: whitespace-separated words, so tests can predict usage exactly."""
    return len(text.split())


def pseudo_embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector from a hashed bag of words.

    Texts sharing words get a positive cosine, which is enough for selectors that look for
    similar or dissimilar outputs, and no model download is needed.
    """
    vector = [0.0] * dimensions
    words = _WORD.findall(text.casefold()) or [""]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "big") % dimensions
        # A signed hash keeps unrelated words from piling up positive mass (the "hashing trick",
        # Weinberger et al. 2009), so unrelated texts stay near-orthogonal.
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        # Signed counts can cancel out; fall back to a fixed axis so the vector stays unit length.
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


class StubRefusal(Exception):
    """Raised by a ChatAnswerer: the request is answered with this HTTP error instead."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    authorization: str | None


@dataclass(frozen=True)
class _Fault:
    kind: Literal["status", "hang", "garbled"]
    status: int = 500
    retry_after: float | None = None
    hang_seconds: float = 0.0


@dataclass
class _Behaviour:
    responder: Responder
    latency_s: float
    nonsense: bool = False
    faults: collections.deque[_Fault] = field(default_factory=collections.deque)


class _StubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Hung handlers must not keep a test waiting at shutdown.
    block_on_close = False
    # The default backlog of 5 drops SYNs when 32 clients connect at once, and a dropped SYN
    # costs a full second of TCP retransmission, which would ruin the concurrency figures.
    request_queue_size = 256
    stub: LLMStubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or close idle keep-alive connections reset them; that is
        # normal traffic here, not a server fault worth a traceback in the test output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive lets the client reuse connections, as it would against a real provider.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK and every answer costs ~40 ms extra.
    disable_nagle_algorithm = True
    server: _StubHTTPServer
    server_version = "ConcordLLMStub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.stub.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.server.stub._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self.server.stub._handle(self, "POST")

    def send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.send_body(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (usually a timeout); nothing left to tell it.
            self.close_connection = True


class LLMStubServer:
    """A threaded OpenAI-compatible server on an ephemeral loopback port.

    Every setter takes the lock, so a test may change behaviour while requests are in flight.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        yes_keyword: str = "[[yes]]",
        responder: Responder | None = None,
        latency_s: float = 0.0,
        embedding_dimensions: int = 64,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        verbose: bool = False,
        echo_authorization: bool = False,
        chat_answerer: ChatAnswerer | None = None,
    ) -> None:
        if embedding_dimensions < 1:
            raise ValueError("embedding_dimensions must be at least 1")
        self.host = host
        self.requested_port = port
        self.model = model
        self.embedding_dimensions = embedding_dimensions
        self.api_key = api_key
        self.verbose = verbose
        # A hostile provider: it repeats the Authorization header it received in its error
        # messages and answers, as an attacker's server would to harvest a key.
        self.echo_authorization = echo_authorization
        # Takes precedence over the responder: it sees the model name and every message, which a
        # recorded-judge replay (concord_testing.judge_replay) needs to find its answer.
        self.chat_answerer = chat_answerer
        self._lock = threading.Lock()
        self._behaviour = _Behaviour(
            responder=responder or keyword_responder(yes_keyword), latency_s=latency_s
        )
        self._requests: list[RecordedRequest] = []
        # Bumped by reset(), so a request that arrived before it does not overwrite a newer
        # record at the same position.
        self._generation = 0
        self._in_flight = 0
        self._max_in_flight = 0
        # Set at shutdown so sleeping handlers (latency, hangs) return at once.
        self._stopping = threading.Event()
        self._server: _StubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LLMStubServer:
        if self._server is not None:
            raise RuntimeError("the stub server is already running")
        self._stopping.clear()
        server = _StubHTTPServer((self.host, self.requested_port), _Handler)
        server.stub = self
        self._server = server
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"llm-stub:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LLMStubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stub server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- steering --------------------------------------------------------------------------

    def set_responder(self, responder: Responder) -> None:
        """Answer chat completions with ``responder(last user message)``."""
        with self._lock:
            self._behaviour.responder = responder

    def set_latency(self, seconds: float) -> None:
        """Delay every successful answer by ``seconds``, like a model thinking."""
        with self._lock:
            self._behaviour.latency_s = seconds

    def set_nonsense(self, enabled: bool = True) -> None:
        """Answer every chat completion with text that is neither YES/NO nor PASS/FAIL."""
        with self._lock:
            self._behaviour.nonsense = enabled

    def fail_next(self, n: int, *, status: int = 429, retry_after: float | None = None) -> None:
        """Answer the next ``n`` POST requests with an error ``status`` (and a Retry-After)."""
        if status < 400:
            raise ValueError("fail_next needs an error status (>= 400)")
        with self._lock:
            self._behaviour.faults.extend(
                _Fault("status", status=status, retry_after=retry_after) for _ in range(n)
            )

    def hang_next(self, n: int, *, seconds: float = 30.0) -> None:
        """Let the next ``n`` POST requests hang for ``seconds`` (or until shutdown), unanswered.

        Pick ``seconds`` above the client's timeout; the connection is then closed without a
        response.
        """
        with self._lock:
            self._behaviour.faults.extend(_Fault("hang", hang_seconds=seconds) for _ in range(n))

    def garble_next(self, n: int) -> None:
        """Answer the next ``n`` POST requests with 200 and an HTML page, like a stray proxy."""
        with self._lock:
            self._behaviour.faults.extend(_Fault("garbled") for _ in range(n))

    def reset(self) -> None:
        """Forget recorded requests, pending faults and the in-flight high-water mark."""
        with self._lock:
            self._behaviour.faults.clear()
            self._behaviour.nonsense = False
            self._requests.clear()
            self._generation += 1
            self._max_in_flight = self._in_flight

    # -- observation -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def count(self, path_suffix: str) -> int:
        """How many requests hit a path ending in ``path_suffix`` (e.g. "/chat/completions")."""
        with self._lock:
            return sum(1 for request in self._requests if request.path.endswith(path_suffix))

    @property
    def chat_prompts(self) -> list[str]:
        """The last user message of every chat completion request, in arrival order."""
        with self._lock:
            recorded = list(self._requests)
        return [
            _last_user_message(request.body)
            for request in recorded
            if request.path.endswith("/chat/completions") and request.body is not None
        ]

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was working on at the same moment."""
        with self._lock:
            return self._max_in_flight

    # -- request handling ------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        body: dict[str, Any] | None = None
        parse_error: str | None = None
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            try:
                decoded = json.loads(raw or b"null")
            except ValueError as error:
                parse_error = f"the request body is not JSON: {error}"
            else:
                if isinstance(decoded, dict):
                    body = decoded
                else:
                    parse_error = "the request body must be a JSON object"

        authorization = handler.headers.get("Authorization")
        authorised = self.api_key is None or authorization == f"Bearer {self.api_key}"
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            # A rejected key does not use up a fault the test queued for a real request.
            fault = (
                self._behaviour.faults.popleft()
                if (authorised and method == "POST" and self._behaviour.faults)
                else None
            )
            behaviour = _Behaviour(
                responder=self._behaviour.responder,
                latency_s=self._behaviour.latency_s,
                nonsense=self._behaviour.nonsense,
            )
            # Recorded on arrival, so a test sees a hanging request while it hangs; the status
            # is filled in once known (0 = never answered).
            serial, generation = len(self._requests), self._generation
            self._requests.append(RecordedRequest(method, path, body, 0, authorization))

        status, payload, headers = HTTPStatus.OK, {}, {}
        # How the handler answers: JSON, an HTML page (garbled), or not at all (hang).
        reply: Literal["json", "html", "none"] = "json"
        try:
            if not authorised:
                status, payload = (
                    HTTPStatus.UNAUTHORIZED,
                    _error(
                        "Incorrect API key provided."
                        + (f" You sent: {authorization}" if self.echo_authorization else ""),
                        "invalid_request_error", "invalid_api_key",
                    ),
                )
            elif fault is not None and fault.kind == "hang":
                self._stopping.wait(fault.hang_seconds)
                reply = "none"
            elif fault is not None and fault.kind == "garbled":
                reply = "html"
            elif fault is not None:
                status, payload = (
                    fault.status,
                    _error(
                        f"Stub fault: HTTP {fault.status}.",
                        "rate_limit_error" if fault.status == 429 else "server_error",
                        None,
                    ),
                )
                if fault.retry_after is not None:
                    headers["Retry-After"] = _format_seconds(fault.retry_after)
            elif parse_error is not None:
                status, payload = (
                    HTTPStatus.BAD_REQUEST,
                    _error(parse_error, "invalid_request_error", None),
                )
            else:
                try:
                    status, payload = self._route(method, path, body, behaviour, serial)
                except Exception as error:  # noqa: BLE001 - a test's responder may be buggy
                    # Answered as a 500 so the failure shows in the client's detail instead of
                    # as a dropped connection.
                    status, payload = (
                        HTTPStatus.INTERNAL_SERVER_ERROR,
                        _error(f"stub responder failed: {error!r}", "server_error", None),
                    )
                if status == HTTPStatus.OK and method == "POST" and behaviour.latency_s > 0:
                    self._stopping.wait(behaviour.latency_s)
        finally:
            # Leave the in-flight count before the client can see the answer: otherwise its
            # next request may arrive first and the high-water mark would read one too many.
            with self._lock:
                self._in_flight -= 1
                if reply != "none" and generation == self._generation:
                    self._requests[serial] = dataclasses.replace(
                        self._requests[serial], status=int(status)
                    )
        if reply == "json":
            if self.echo_authorization and status == HTTPStatus.OK:
                for choice in payload.get("choices", ()):
                    choice["message"]["content"] += f" (you sent {authorization})"
            handler.send_json(int(status), payload, headers)
        elif reply == "html":
            handler.send_body(int(status), GARBLED_PAGE, "text/html")
        else:
            handler.close_connection = True

    def _route(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        behaviour: _Behaviour,
        serial: int,
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/v1/models":
            return HTTPStatus.OK, {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": 0, "owned_by": "concord-stub"}
                    for model in (self.model, DEFAULT_EMBEDDING_MODEL)
                ],
            }
        if method == "POST" and path == "/v1/chat/completions" and body is not None:
            return self._chat_completion(body, behaviour, serial)
        if method == "POST" and path == "/v1/embeddings" and body is not None:
            return self._embeddings(body)
        return HTTPStatus.NOT_FOUND, _error(
            f"Unknown endpoint {method} {path}.", "invalid_request_error", "unknown_url"
        )

    def _chat_completion(
        self, body: dict[str, Any], behaviour: _Behaviour, serial: int
    ) -> tuple[int, dict[str, Any]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return HTTPStatus.BAD_REQUEST, _error(
                "'messages' must be a non-empty list.", "invalid_request_error", None
            )
        if behaviour.nonsense:
            answer = NONSENSE_ANSWER
        elif self.chat_answerer is not None:
            try:
                answer = self.chat_answerer(body)
            except StubRefusal as refusal:
                return refusal.status, _error(refusal.message, "invalid_request_error", refusal.code)
        else:
            answer = behaviour.responder(_last_user_message(body))
        prompt_tokens = sum(count_tokens(message_text(message)) for message in messages)
        completion_tokens = count_tokens(answer)
        return HTTPStatus.OK, {
            "id": f"chatcmpl-stub-{serial}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(text, str) and text for text in texts)
        ):
            # Mirrors the real API, which rejects empty strings and token arrays alike here.
            return HTTPStatus.BAD_REQUEST, _error(
                "'input' must be a non-empty string or a list of non-empty strings.",
                "invalid_request_error",
                None,
            )
        dimensions = body.get("dimensions") or self.embedding_dimensions
        if not isinstance(dimensions, int) or dimensions < 1:
            return HTTPStatus.BAD_REQUEST, _error(
                "'dimensions' must be a positive integer.", "invalid_request_error", None
            )
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = pseudo_embedding(text, dimensions)
            encoded: list[float] | str = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(text) for text in texts)
        return HTTPStatus.OK, {
            "object": "list",
            "data": data,
            "model": str(body.get("model") or DEFAULT_EMBEDDING_MODEL),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _format_seconds(seconds: float) -> str:
    # Retry-After is integral seconds in RFC 9110, but sub-second values keep tests fast and
    # real clients (ours included) parse them as floats.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def message_text(message: object, part_separator: str = " ") -> str:
    """The text of one chat message: its content string, or its text parts joined."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Content parts: [{"type": "text", "text": "..."}, ...]
        return part_separator.join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user_message(body: dict[str, Any] | None) -> str:
    messages = (body or {}).get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m concord_testing.llm_stub",
        description="Serve an OpenAI-compatible stub on 127.0.0.1 for offline development.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument(
        "--keyword",
        default=None,
        help="answer YES when the prompt contains this text, else NO "
        "(default: a stable hash of the prompt decides)",
    )
    parser.add_argument(
        "--pass-rate", type=float, default=0.7, help="share of YES answers when hashing"
    )
    parser.add_argument("--dimensions", type=int, default=64, help="embedding dimensions")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--replay", metavar="JUDGES.jsonl", default=None,
        help="answer with recorded judge completions (LLMBar format); needs --pairs",
    )
    parser.add_argument("--pairs", metavar="PAIRS.jsonl", default=None,
                        help="the pairs the recorded judges judged (with --replay)")
    options = parser.parse_args(argv)
    if (options.replay is None) != (options.pairs is None):
        parser.error("--replay and --pairs go together")
    chat_answerer: ChatAnswerer | None = None
    if options.replay is not None:
        from concord_testing.judge_replay import JudgeRecordings

        chat_answerer = JudgeRecordings.from_files(options.replay, options.pairs).answer_request

    responder = (
        keyword_responder(options.keyword)
        if options.keyword is not None
        else hashed_responder(options.pass_rate)
    )
    stub = LLMStubServer(
        host=options.host,
        port=options.port,
        responder=responder,
        latency_s=options.latency,
        embedding_dimensions=options.dimensions,
        api_key=options.api_key,
        verbose=options.verbose,
        chat_answerer=chat_answerer,
    )
    with stub:
        # Flushed: a parent process reads this line to learn the port (see --port 0).
        print(
            f"LLM stub listening on {stub.base_url} (model {stub.model!r}); Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping")


if __name__ == "__main__":
    main()
