"""The LLM grader client: prompt rendering, answer parsing, a cache and concurrent grading.

No Django import: callers hand in plain :class:`ProviderConfig` objects (built from the
``Provider`` model, with the API key already read from the environment) and get plain
:class:`LLMResult` objects back, so this module is tested and benchmarked against a loopback
stub server alone.

Why asyncio rather than a thread pool: a grading run keeps tens of requests waiting on the
network at once, and one event loop with one connection pool does that on a single thread,
where a pool of sync clients would need a thread (and a connection pool) per slot. A timed-out
request is cancelled cleanly instead of leaving a thread blocked in a socket read. The loop runs
in a helper thread while callbacks and cache calls stay in the caller's thread, because the
caller is typically a Celery task writing verdicts through the Django ORM, which refuses to run
inside an event loop and whose test transaction is only visible on the caller's connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import hashlib
import json
import os
import queue
import random
import re
import string
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import numpy as np
import openai
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

# "answered": the raw answer of a judge that reads its own answers (grade_prompts with
# read_verdict=False), such as a pairwise or rating judge.
Outcome = Literal["pass", "fail", "error", "answered"]
Verdict = Literal["pass", "fail"]

UNPARSEABLE_DETAIL = "could not read YES/NO or PASS/FAIL from the answer"

# Servers for local models accept any key, but the SDK insists on one.
_PLACEHOLDER_API_KEY = "concord-no-key"
# Enough for typical outputs while staying far below the API's 2048 inputs per request.
DEFAULT_EMBEDDING_BATCH_SIZE = 64
# A DB-backed cache pays a round trip per set_many; batching keeps that off the hot path while
# a crash still loses at most this many paid-for answers.
_CACHE_FLUSH_EVERY = 64
_CACHE_LOOKUP_CHUNK = 500
_MAX_ERROR_TEXT = 300

T = TypeVar("T")


class PromptTemplateError(ValueError):
    """A prompt template uses something other than {output}, {input}, {reference}, {meta[key]}."""


class LLMProviderError(RuntimeError):
    """The provider could not give an answer (unreachable, rejected the key, kept failing)."""


class MissingAPIKeyError(LLMProviderError):
    """The provider names an API key environment variable that is not set."""


@dataclass(frozen=True)
class ProviderConfig:
    """An OpenAI-compatible endpoint and how hard to push it.

    The backoff fields default to production values; tests shrink them to stay fast.
    """

    base_url: str
    model: str
    api_key: str | None
    concurrency: int = 8
    timeout_seconds: float = 30.0
    temperature: float = 0.0
    max_retries: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    # A provider asking for a long pause would otherwise stall a worker for minutes.
    retry_after_max_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")


@dataclass(frozen=True)
class LLMResult:
    outcome: Outcome
    raw: str
    detail: str
    latency_ms: float
    tokens: int | None
    cached: bool


class CachedAnswer(NamedTuple):
    raw: str
    tokens: int | None


class AnswerCache(Protocol):
    """Stores raw answers by :func:`answer_cache_key`.

    Implementations may return plain ``(raw, tokens)`` tuples; keys they do not hold are
    simply absent from the answer of ``get_many``.
    """

    def get_many(self, keys: Sequence[str]) -> Mapping[str, tuple[str, int | None]]: ...

    def set_many(self, answers: Mapping[str, tuple[str, int | None]]) -> None: ...


class InMemoryAnswerCache:
    """A process-local :class:`AnswerCache`, for tests, benchmarks and one-off scripts."""

    def __init__(self) -> None:
        self._answers: dict[str, CachedAnswer] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        with self._lock:
            return {key: self._answers[key] for key in keys if key in self._answers}

    def set_many(self, answers: Mapping[str, tuple[str, int | None]]) -> None:
        with self._lock:
            for key, (raw, tokens) in answers.items():
                self._answers[key] = CachedAnswer(raw, tokens)

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)


def answer_cache_key(model: str, prompt: str, params: Mapping[str, Any]) -> str:
    """sha256 hex of a canonical JSON of (model, prompt, params).

    Canonical (sorted keys, fixed separators) so the same request always maps to the same key
    across processes and Python versions.
    """
    canonical = json.dumps(
        {"model": model, "prompt": prompt, "params": dict(params)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resolve_api_key(env_var: str | None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """Read a provider's API key from the environment variable it names.

    ``None`` or an empty name means the provider needs no key (a local server).
    """
    if not env_var:
        return None
    value = (os.environ if environ is None else environ).get(env_var)
    if not value:
        raise MissingAPIKeyError(
            f"the API key environment variable {env_var} is not set; "
            f"export {env_var}=... where the web server and the workers run"
        )
    return value


# -- prompt templates ------------------------------------------------------------------------

_PLAIN_FIELDS = frozenset({"output", "input", "reference"})
# A pairwise judge's template sees both outputs instead of one (DESIGN §4.6).
_PAIR_FIELDS = frozenset({"output_a", "output_b", "input", "reference"})
# Only a bracketed key directly after "meta": nothing may follow it, so "{meta[x].__globals__}"
# and "{meta[x][y]}" are refused instead of walking into the value.
_META_FIELD = re.compile(r"meta\[([^\[\]]+)\]")


def _template_field_errors(template: str, fields: frozenset[str] = _PLAIN_FIELDS) -> list[str]:
    errors: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [
            f"malformed braces in prompt template ({error}); write {{{{ and }}}} for literal braces"
        ]
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in fields and not _META_FIELD.fullmatch(field_name):
            errors.append(f"unknown field '{field_name}' in prompt template")
            continue
        if conversion is not None:
            errors.append(f"conversion '!{conversion}' on '{field_name}' is not allowed")
        if format_spec:
            # Specs are refused outright: "{output:>99999999}" would be a memory bomb, and
            # nested fields inside specs would be a second way into the values.
            errors.append(f"format spec ':{format_spec}' on '{field_name}' is not allowed")
    return errors


class _PromptFormatter(string.Formatter):
    """Resolves only the four allowed fields; never getattr, never arbitrary indexing.

    render_prompt checks the template first; these overrides are the second line of defence.
    """

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if field_name in (_PLAIN_FIELDS | _PAIR_FIELDS) and field_name in kwargs:
            return kwargs[field_name], field_name
        match = _META_FIELD.fullmatch(field_name)
        if match is None:
            raise PromptTemplateError(f"unknown field '{field_name}' in prompt template")
        key = match.group(1)
        meta = kwargs["meta"]
        if key not in meta:
            raise PromptTemplateError(f"meta has no key '{key}' (used as {{{field_name}}})")
        return _meta_text(meta[key]), field_name

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            raise PromptTemplateError(f"conversion '!{conversion}' is not allowed")
        return value

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec:
            raise PromptTemplateError("format specs are not allowed in prompt templates")
        return str(value)


def _meta_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


_FORMATTER = _PromptFormatter()


def check_template(template: str) -> list[str]:
    """Every problem in a prompt template, for the validator form; empty when it is fine."""
    errors = _template_field_errors(template)
    if not errors and not any(
        field_name == "output" for _, field_name, _, _ in string.Formatter().parse(template)
    ):
        errors.append("the template never uses {output}, so the grader would not see the output")
    return errors


def check_pair_template(template: str) -> list[str]:
    """Every problem in a pairwise judge's template; empty when it is fine."""
    errors = _template_field_errors(template, _PAIR_FIELDS)
    if errors:
        return errors
    used = {field_name for _, field_name, _, _ in string.Formatter().parse(template)}
    return [
        f"the template never uses {{{name}}}, so the judge would not see that output"
        for name in ("output_a", "output_b") if name not in used
    ]


def render_pair_prompt(
    template: str, *, output_a: str, output_b: str, input: str, reference: str | None,
    meta: Mapping[str, Any],
) -> str:
    """Fill {output_a} (shown first), {output_b}, {input}, {reference} and {meta[key]}; the
    same guarantees as :func:`render_prompt`."""
    errors = _template_field_errors(template, _PAIR_FIELDS)
    if errors:
        raise PromptTemplateError(errors[0])
    return _FORMATTER.vformat(
        template, (),
        {"output_a": output_a, "output_b": output_b, "input": input, "reference": reference or "",
         "meta": meta},
    )


def render_prompt(
    template: str, *, output: str, input: str, reference: str | None, meta: Mapping[str, Any]
) -> str:
    """Fill {output}, {input}, {reference} and {meta[key]}; nothing else is reachable.

    Raises :class:`PromptTemplateError` for any other field, attribute or index access,
    conversion or format spec, and for a meta key the output's metadata lacks.
    """
    errors = _template_field_errors(template)
    if errors:
        raise PromptTemplateError(errors[0])
    return _FORMATTER.vformat(
        template,
        (),
        {"output": output, "input": input, "reference": reference or "", "meta": meta},
    )


# -- answers ---------------------------------------------------------------------------------

_VERDICT_WORDS: dict[str, Verdict] = {
    "yes": "pass",
    "pass": "pass",
    "passed": "pass",
    "no": "fail",
    "fail": "fail",
    "failed": "fail",
}
_VERDICT_TOKEN = re.compile(r"(yes|no|passed|pass|failed|fail)(?!\w)", re.IGNORECASE)
# What may sit between repeated verdict words ("YES!", "Yes, yes", "YES or NO", "PASS/FAIL").
_VERDICT_GAP = re.compile(r"(?:[\W_]+|\b(?:or|and|nor)\b)*", re.IGNORECASE)
# "Answer: YES", "Final verdict - fail", "The answer is NO", "{verdict: yes}" (quotes removed).
_ANSWER_LABEL = re.compile(
    r"(?:(?:the|my|final|overall)\s+)*"
    r"(?:answer|verdict|decision|grade|judge?ment|result|conclusion|assessment|overall)"
    r"(?:\s*[:=\-\u2013\u2014]+\s*|\s+is\s*[:=\-\u2013\u2014]*\s*)",
    re.IGNORECASE,
)
_MARKUP = str.maketrans("", "", "*_`\"'")
_LEADING_NOISE = re.compile(r"^[\W\d_]+")
_AMBIGUOUS = "ambiguous"


def _clean_line(line: str) -> str:
    # Markdown emphasis and quotes go anywhere; bullets, headings, numbering only in front.
    return _LEADING_NOISE.sub("", line.translate(_MARKUP).strip())


def _leading_verdict(text: str) -> tuple[str | None, bool]:
    """The verdict stated by the verdict words at the start of ``text``.

    Returns (``"pass"`` / ``"fail"`` / ``_AMBIGUOUS`` / None, whether the words filled the text).
    """
    found: set[str] = set()
    position = 0
    while match := _VERDICT_TOKEN.match(text, position):
        found.add(_VERDICT_WORDS[match.group(1).lower()])
        gap = _VERDICT_GAP.match(text, match.end())
        position = gap.end() if gap else match.end()
    if not found:
        return None, False
    verdict = found.pop() if len(found) == 1 else _AMBIGUOUS
    return verdict, position == len(text)


def parse_answer(text: str) -> Verdict | None:
    """Read a grader's verdict, or None when the answer does not state exactly one.

    A verdict is stated (case-insensitively, ignoring markdown, quotes, bullets and
    punctuation) by
      1. the verdict word(s) that open the first line: "Yes. The answer is grounded.",
      2. a last line that is nothing but a verdict, after some reasoning: "...\\n**NO**",
      3. any labelled line: "Answer: YES", "Final verdict - fail", "The answer is NO".
    All statements must agree. No statement, statements that disagree ("Yes.\\n...\\nAnswer:
    NO"), or both polarities in one statement ("YES or NO", "Pass/Fail") give None, so an
    unclear grader becomes an error verdict rather than a silent pass or fail.
    """
    lines = [cleaned for line in text.splitlines() if (cleaned := _clean_line(line))]
    if not lines:
        return None
    statements: list[str] = []
    first, _ = _leading_verdict(lines[0])
    if first is not None:
        statements.append(first)
    if len(lines) > 1:
        last, whole_line = _leading_verdict(lines[-1])
        if last is not None and whole_line:
            statements.append(last)
    for line in lines:
        label = _ANSWER_LABEL.match(line)
        if label is not None:
            labelled, _ = _leading_verdict(line[label.end() :])
            if labelled is not None:
                statements.append(labelled)
    verdicts = set(statements)
    if len(verdicts) != 1 or _AMBIGUOUS in verdicts:
        return None
    verdict = verdicts.pop()
    return "pass" if verdict == "pass" else "fail"


def _result_from_answer(
    raw: str, tokens: int | None, *, latency_ms: float, cached: bool, retries: Sequence[str],
    read_verdict: bool = True,
) -> LLMResult:
    verdict: Outcome | None = parse_answer(raw) if read_verdict else "answered"
    if verdict is None:
        return LLMResult("error", raw, UNPARSEABLE_DETAIL, latency_ms, tokens, cached)
    detail = ""
    if retries:
        noun = "retry" if len(retries) == 1 else "retries"
        detail = f"answered after {len(retries)} {noun} ({'; '.join(retries)})"
    return LLMResult(verdict, raw, detail, latency_ms, tokens, cached)


# -- retries ---------------------------------------------------------------------------------

# 408/409 are what OpenAI's own SDK retries besides 429 and 5xx: transient by definition.
_RETRYABLE_STATUS = frozenset({408, 409, 429})
# These say the provider as a whole is misconfigured, so every other prompt would fail too.
_PROVIDER_WIDE_STATUS = frozenset({401, 403, 404})


class _GiveUp(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _ProviderHealth:
    """Shared by the requests of one call, so a dead or misconfigured provider fails fast.

    Without it, 2000 prompts against a closed port would each wait out the whole backoff
    schedule: minutes of sleeping to learn what the first prompt already knew.
    """

    broken: str | None = None


def _error_text(error: openai.APIStatusError) -> str:
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else error.message
    return text[:_MAX_ERROR_TEXT]


def _retry_after_seconds(error: openai.APIStatusError) -> float | None:
    headers = error.response.headers
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff_seconds(
    provider: ProviderConfig, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    if retry_after is not None:
        # Honour the server, plus up to 10% so clients told the same moment do not all
        # return in the same instant.
        wait = min(retry_after, provider.retry_after_max_seconds)
        return wait + rng.uniform(0, 0.1 * wait)
    # "Full jitter" (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
    # spreads retries of concurrent requests instead of synchronising them into bursts.
    ceiling = min(provider.backoff_max_seconds, provider.backoff_base_seconds * 2**attempt)
    return rng.uniform(0, ceiling)


async def _with_retries(
    provider: ProviderConfig,
    health: _ProviderHealth,
    rng: random.Random,
    call: Callable[[], Awaitable[T]],
) -> tuple[T, list[str]]:
    """Run ``call`` under the retry policy; returns its value and the reasons for retries.

    Raises :class:`_GiveUp` with a readable detail once retrying is pointless or exhausted.
    """
    attempts = provider.max_retries + 1
    reasons: list[str] = []
    for attempt in range(attempts):
        if health.broken is not None:
            if reasons:
                # Another request proved the provider down while this one waited to retry.
                raise _GiveUp(_gave_up(attempt, reasons[-1]))
            raise _GiveUp(f"not sent: {health.broken}")
        retry_after: float | None = None
        unreachable = False
        try:
            async with asyncio.timeout(provider.timeout_seconds):
                return await call(), reasons
        except (TimeoutError, openai.APITimeoutError):
            reason = f"no answer within {provider.timeout_seconds:g} s"
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            reason = f"could not connect to the provider at {provider.base_url}: {cause}"
            unreachable = True
        except openai.APIStatusError as error:
            status = error.status_code
            text = _error_text(error)
            if status == 401:
                health.broken = (
                    f"the provider at {provider.base_url} rejected the API key (HTTP 401): {text}"
                )
                raise _GiveUp(health.broken) from None
            if status in _PROVIDER_WIDE_STATUS:
                health.broken = (
                    f"the provider at {provider.base_url} refused the request for model "
                    f"{provider.model!r} (HTTP {status}): {text}"
                )
                raise _GiveUp(health.broken) from None
            if status not in _RETRYABLE_STATUS and status < 500:
                raise _GiveUp(f"the provider refused the request (HTTP {status}): {text}") from None
            reason = f"HTTP {status}: {text}"
            retry_after = _retry_after_seconds(error)
        except (openai.APIError, ValueError) as error:
            # A 200 whose body is not the expected JSON (a proxy's HTML page, a truncated
            # body): asking again rarely helps, and one bad answer must not sink the run.
            raise _GiveUp(f"could not read the provider's response: {error}") from None
        reasons.append(reason)
        if attempt + 1 == attempts:
            if unreachable:
                health.broken = reason
            break
        await asyncio.sleep(_backoff_seconds(provider, attempt, retry_after, rng))
    raise _GiveUp(_gave_up(attempts, reasons[-1]))


def _gave_up(attempts: int, last_error: str) -> str:
    noun = "attempt" if attempts == 1 else "attempts"
    return f"gave up after {attempts} {noun}; last error: {last_error}"


def _client(provider: ProviderConfig) -> openai.AsyncOpenAI:
    # The SDK's own retries are off: ours add jitter, the Retry-After cap and the fail-fast
    # health check, and count every attempt in the verdict's detail.
    return openai.AsyncOpenAI(
        base_url=provider.base_url,
        api_key=provider.api_key or _PLACEHOLDER_API_KEY,
        max_retries=0,
        timeout=provider.timeout_seconds,
    )


def _run_sync(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make_coroutine()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # This thread already runs a loop (Playwright's sync API, a notebook), where asyncio.run
    # refuses to start; a short-lived thread gets a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


# -- grading ---------------------------------------------------------------------------------


def _grading_messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    return messages


def grading_cache_params(provider: ProviderConfig, system_prompt: str | None) -> dict[str, Any]:
    """The request parameters that change the answer, as they enter the cache key. The
    endpoint is one of them: two servers may serve different models under one name."""
    return {
        "temperature": provider.temperature, "system_prompt": system_prompt or "",
        "endpoint": provider.base_url.rstrip("/"),
    }


def _read_completion(completion: object) -> tuple[str, int | None]:
    """The answer text and total tokens of a chat completion, or _GiveUp if there is none."""
    if not isinstance(completion, ChatCompletion):
        raise _GiveUp(
            "could not read the provider's response: expected a chat.completion object, got "
            f"{type(completion).__name__}"
        )
    if not completion.choices:
        raise _GiveUp("the provider answered without any choices")
    message = completion.choices[0].message
    # A refusal has no content; keeping its text makes the error verdict explain itself.
    raw = message.content if message.content is not None else (message.refusal or "")
    tokens = completion.usage.total_tokens if completion.usage is not None else None
    return raw, tokens


_Delivery = tuple[str, LLMResult, CachedAnswer | None]


async def _grade_pending(
    provider: ProviderConfig,
    pending: Sequence[tuple[str, str]],
    system_prompt: str | None,
    deliver: Callable[[_Delivery], None],
    read_verdict: bool = True,
) -> None:
    health = _ProviderHealth()
    rng = random.Random()
    work = iter(pending)

    async def grade_one(client: openai.AsyncOpenAI, key: str, prompt: str) -> None:
        started = time.perf_counter()
        messages = _grading_messages(prompt, system_prompt)

        def request() -> Awaitable[Any]:
            return client.chat.completions.create(
                model=provider.model, messages=messages, temperature=provider.temperature
            )

        try:
            completion, retries = await _with_retries(provider, health, rng, request)
            raw, tokens = _read_completion(completion)
        except _GiveUp as failure:
            elapsed_ms = (time.perf_counter() - started) * 1000
            deliver((key, LLMResult("error", "", failure.detail, elapsed_ms, None, False), None))
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        result = _result_from_answer(
            raw, tokens, latency_ms=elapsed_ms, cached=False, retries=retries,
            read_verdict=read_verdict,
        )
        deliver((key, result, CachedAnswer(raw, tokens)))

    async def worker(client: openai.AsyncOpenAI) -> None:
        # Workers pull from one shared iterator, so at most `concurrency` requests are ever in
        # flight and memory stays flat however many prompts there are.
        for key, prompt in work:
            await grade_one(client, key, prompt)

    async with _client(provider) as client:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(provider.concurrency, len(pending))):
                group.create_task(worker(client))


_FINISHED = object()


class _GradingThread(threading.Thread):
    """Runs the event loop for one grade_prompts call and posts results to ``inbox``."""

    def __init__(
        self,
        provider: ProviderConfig,
        pending: Sequence[tuple[str, str]],
        system_prompt: str | None,
        read_verdict: bool = True,
    ) -> None:
        super().__init__(name="llm-grader", daemon=True)
        self._read_verdict = read_verdict
        self.inbox: queue.Queue[object] = queue.Queue()
        self._provider = provider
        self._pending = pending
        self._system_prompt = system_prompt
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            self._task = loop.create_task(
                _grade_pending(self._provider, self._pending, self._system_prompt, self.inbox.put,
                               self._read_verdict)
            )
            self._loop = loop
            self._ready.set()
            loop.run_until_complete(self._task)
            self.inbox.put(_FINISHED)
        except asyncio.CancelledError:
            self.inbox.put(_FINISHED)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            self.inbox.put(error)
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def cancel(self) -> None:
        self._ready.wait()
        loop, task = self._loop, self._task
        if loop is None or task is None:
            return
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # the loop already finished and closed


def grade_prompts(
    provider: ProviderConfig,
    prompts: Sequence[str],
    *,
    cache: AnswerCache | None = None,
    system_prompt: str | None = None,
    on_result: Callable[[int, LLMResult], None] | None = None,
    read_verdict: bool = True,
) -> list[LLMResult]:
    """Grade rendered prompts, concurrently up to ``provider.concurrency``; results in order.

    With ``read_verdict=False`` the answers are not read as YES/NO: every answered prompt ends
    as ``answered`` with its text in ``raw`` (judges that parse their own answers, such as
    pairwise and rating judges), and only a provider failure is an error.

    Synchronous: safe to call from a Celery task or a view. ``on_result(index, result)`` and
    the cache are called from the calling thread as results arrive (cached ones first), so they
    may use the ORM. Identical prompts are sent once. Every prompt ends as pass, fail or error;
    an error carries the reason in ``detail`` and, for an unreadable answer, the text in ``raw``.
    """
    params = grading_cache_params(provider, system_prompt)
    indices_by_key: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        key = answer_cache_key(provider.model, prompt, params)
        indices_by_key.setdefault(key, []).append(index)
    results: list[LLMResult | None] = [None] * len(prompts)

    def deliver(key: str, result: LLMResult) -> None:
        for index in indices_by_key[key]:
            results[index] = result
            if on_result is not None:
                on_result(index, result)

    hits: dict[str, tuple[str, int | None]] = {}
    if cache is not None:
        keys = list(indices_by_key)
        # Chunked so a database cache never builds an IN (...) past SQLite's variable limit.
        for start in range(0, len(keys), _CACHE_LOOKUP_CHUNK):
            hits.update(cache.get_many(keys[start : start + _CACHE_LOOKUP_CHUNK]))
    pending: list[tuple[str, str]] = []
    for key, indices in indices_by_key.items():
        if key in hits:
            raw, tokens = hits[key]
            deliver(key, _result_from_answer(raw, tokens, latency_ms=0.0, cached=True, retries=(),
                                             read_verdict=read_verdict))
        else:
            pending.append((key, prompts[indices[0]]))

    if pending:
        _grade_in_background(provider, pending, system_prompt, cache, deliver, read_verdict)
    graded = [result for result in results if result is not None]
    if len(graded) != len(prompts):
        raise RuntimeError(f"{len(prompts) - len(graded)} prompts got no result")
    return graded


def _grade_in_background(
    provider: ProviderConfig,
    pending: Sequence[tuple[str, str]],
    system_prompt: str | None,
    cache: AnswerCache | None,
    deliver: Callable[[str, LLMResult], None],
    read_verdict: bool = True,
) -> None:
    grader = _GradingThread(provider, pending, system_prompt, read_verdict)
    grader.start()
    unsaved: dict[str, CachedAnswer] = {}
    try:
        while True:
            message = grader.inbox.get()
            if message is _FINISHED:
                break
            if isinstance(message, BaseException):
                raise message
            key, result, answer = message  # type: ignore[misc]
            if answer is not None and cache is not None:
                unsaved[key] = answer
                if len(unsaved) >= _CACHE_FLUSH_EVERY:
                    batch, unsaved = unsaved, {}
                    cache.set_many(batch)
            deliver(key, result)
    finally:
        # On a failing callback (or Ctrl-C) stop spending tokens; answers already paid for are
        # still worth keeping.
        grader.cancel()
        grader.join()
        if cache is not None and unsaved:
            cache.set_many(unsaved)


# -- single completions and embeddings ---------------------------------------------------------


def chat(
    provider: ProviderConfig,
    messages: list[dict[str, Any]],
    *,
    response_format_json: bool = False,
) -> str:
    """One chat completion under the grading retry policy; raises LLMProviderError on failure."""
    extra: dict[str, Any] = (
        {"response_format": {"type": "json_object"}} if response_format_json else {}
    )

    async def complete() -> str:
        async with _client(provider) as client:

            def request() -> Awaitable[Any]:
                return client.chat.completions.create(
                    model=provider.model,
                    messages=messages,
                    temperature=provider.temperature,
                    **extra,
                )

            completion, _ = await _with_retries(
                provider, _ProviderHealth(), random.Random(), request
            )
        raw, _tokens = _read_completion(completion)
        return raw

    try:
        return _run_sync(complete)
    except _GiveUp as failure:
        raise LLMProviderError(failure.detail) from None


def embed(
    provider: ProviderConfig,
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_EMBEDDING_BATCH_SIZE,
) -> np.ndarray:
    """Embeddings of ``texts`` as a float32 array of shape (len(texts), dimensions).

    Batches are sent concurrently up to ``provider.concurrency`` with the same retry policy;
    ``provider.model`` names the embedding model. Raises LLMProviderError on failure.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    # The API rejects empty strings; a space embeds as "nothing said", which is what they mean.
    inputs = [text if text else " " for text in texts]
    batches = [
        (start, inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size)
    ]
    vectors: list[list[float] | None] = [None] * len(inputs)

    async def embed_all() -> None:
        health = _ProviderHealth()
        rng = random.Random()
        work = iter(batches)

        async def worker(client: openai.AsyncOpenAI) -> None:
            for start, batch in work:

                def request(batch: list[str] = batch) -> Awaitable[Any]:
                    return client.embeddings.create(
                        model=provider.model, input=batch, encoding_format="float"
                    )

                response, _ = await _with_retries(provider, health, rng, request)
                if not isinstance(response, CreateEmbeddingResponse):
                    raise _GiveUp(
                        "could not read the provider's response: expected an embeddings list, "
                        f"got {type(response).__name__}"
                    )
                if len(response.data) != len(batch):
                    raise _GiveUp(
                        f"asked for {len(batch)} embeddings, the provider returned "
                        f"{len(response.data)}"
                    )
                for item in response.data:
                    vectors[start + item.index] = list(item.embedding)

        async with _client(provider) as client:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(provider.concurrency, len(batches))):
                        group.create_task(worker(client))
            except* _GiveUp as failures:
                raise failures.exceptions[0] from None

    try:
        _run_sync(embed_all)
    except _GiveUp as failure:
        raise LLMProviderError(failure.detail) from None
    dimensions = {len(vector) for vector in vectors if vector is not None}
    if None in vectors or len(dimensions) != 1:
        raise LLMProviderError("the provider returned missing or ragged embeddings")
    return np.asarray(vectors, dtype=np.float32)
