"""A loopback OpenAI-compatible server that answers with what real LLM judges once answered
(DESIGN §4.6, "Recorded judges"), so the product's whole LLM path meets real model output
offline.

A chat request is answered with the recorded completion of
- the judge named by the request's ``model`` (e.g. ``GPT-4/CoT``),
- the pair whose texts the rendered prompt contains (both outputs for a comparison judge, one
  for a rating judge; a pair whose input also occurs, then the longest match, wins),
- in the order the prompt shows them: output_a first → the ``swap: false`` run, output_b
  first → the ``swap: true`` run; a rating judge gets ``scores["a"]`` or ``scores["b"]``.
Anything else (unknown model, no pair, two pairs matching equally well, no recorded answer)
is refused with HTTP 404 and a message saying which, as a provider refuses an unknown model.

    with JudgeReplayServer("judges.jsonl", "pairs.jsonl") as replay:
        ...  # point a client at replay.base_url, model "GPT-4/CoT"

or ``python -m concord_testing.llm_stub --replay judges.jsonl --pairs pairs.jsonl --port 0``.

Beware: validators.llm treats a 404 as "this provider serves no such model" and stops sending
the rest of that batch, which is right for an unknown model and pessimistic for one prompt
the replay cannot place; ``miss_status`` changes the status of the latter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from concord_testing.llm_stub import LLMStubServer, StubRefusal, message_text

SHOWN, SWAPPED = False, True  # the `swap` flag of a recorded run


@dataclass(frozen=True)
class RecordedPair:
    item_id: str
    input: str
    output_a: str
    output_b: str


@dataclass(frozen=True)
class PlacedPrompt:
    """Where a prompt's texts come from: a pair, and which of its outputs it shows first
    ('a' or 'b'), or for a one-output prompt which output it shows."""

    pair: RecordedPair
    shown: tuple[str, ...]  # ('a', 'b'), ('b', 'a'), ('a',) or ('b',)


class ReplayMiss(LookupError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _first_free(prompt: str, text: str, start: int, taken: Sequence[tuple[int, int]]) -> int:
    """The first position ≥ start where `text` occurs outside every `taken` span, or -1."""
    position = prompt.find(text, start)
    while position >= 0:
        end = position + len(text)
        if not any(lo < end and position < hi for lo, hi in taken):
            return position
        position = prompt.find(text, position + 1)
    return -1


def _spans(prompt: str, text: str, start: int) -> list[tuple[int, int]]:
    spans, position = [], prompt.find(text, start)
    while position >= 0:
        spans.append((position, position + len(text)))
        position = prompt.find(text, position + len(text))
    return spans


def _output_positions(prompt: str, pair: RecordedPair, start: int) -> dict[str, int]:
    """Where each output first occurs after `start`; the shorter output is looked for outside
    the longer one's occurrences, since a short answer ("5") may sit inside the other."""
    sides = sorted((("a", pair.output_a), ("b", pair.output_b)), key=lambda s: -len(s[1]))
    (long_side, long_text), (short_side, short_text) = sides
    positions: dict[str, int] = {}
    if not long_text:
        return positions
    long_spans = _spans(prompt, long_text, start)
    if long_spans:
        positions[long_side] = long_spans[0][0]
    if short_text:
        found = _first_free(prompt, short_text, start, long_spans)
        if found >= 0:
            positions[short_side] = found
    return positions


class JudgeRecordings:
    """The recorded completions of many judges on many pairs, and the lookup from a rendered
    prompt to one of them. Thread-safe: read-only after construction."""

    def __init__(self, judge_rows: Iterable[Mapping[str, Any]],
                 pair_rows: Iterable[Mapping[str, Any]]) -> None:
        self.pairs = [
            RecordedPair(str(r["item_id"]), r.get("input") or "", r.get("output_a") or "",
                         r.get("output_b") or "")
            for r in pair_rows
        ]
        self._judges: dict[str, dict[str, Mapping[str, Any]]] = {}
        for row in judge_rows:
            self._judges.setdefault(str(row["judge"]), {})[str(row["item_id"])] = row
        # Whole lines of every text → pairs: a rendered prompt keeps the texts' lines, so the
        # few pairs sharing a line with it are the only ones worth a substring search.
        self._by_line: dict[str, set[int]] = {}
        for index, pair in enumerate(self.pairs):
            for text in (pair.input, pair.output_a, pair.output_b):
                for line in text.splitlines():
                    if line.strip():
                        self._by_line.setdefault(line.strip(), set()).add(index)

    @classmethod
    def from_files(cls, judges_path: str | Path, pairs_path: str | Path) -> JudgeRecordings:
        return cls(read_jsonl(judges_path), read_jsonl(pairs_path))

    @property
    def judges(self) -> list[str]:
        return sorted(self._judges)

    def mode(self, judge: str) -> str:
        rows = self._judges.get(judge)
        if not rows:
            raise ReplayMiss(f"no recorded judge is named {judge!r}", "model_not_found")
        return str(next(iter(rows.values())).get("mode") or "comparison")

    def place(self, prompt: str, *, outputs: int) -> PlacedPrompt:
        """The pair (and order) a prompt showing `outputs` outputs (2 or 1) was rendered from."""
        candidates = {i for line in prompt.splitlines() for i in self._by_line.get(line.strip(), ())}
        ranked = self._ranked(prompt, candidates, outputs)
        if not ranked and len(candidates) < len(self.pairs):
            # The prompt may run a text into other words on one line: look everywhere.
            ranked = self._ranked(prompt, range(len(self.pairs)), outputs)
        if not ranked:
            what = "both outputs" if outputs == 2 else "an output"
            raise ReplayMiss(f"no recorded pair has {what} in the prompt", "pair_not_found")
        if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
            tied = [placed.pair.item_id for score, placed in ranked if score == ranked[0][0]]
            raise ReplayMiss(
                f"the prompt matches several recorded pairs equally well: {', '.join(tied[:5])}",
                "pair_ambiguous",
            )
        return ranked[0][1]

    def _ranked(self, prompt: str, indices: Iterable[int],
                outputs: int) -> list[tuple[tuple[bool, int], PlacedPrompt]]:
        ranked = []
        for index in indices:
            pair = self.pairs[index]
            input_at = prompt.find(pair.input) if pair.input else -1
            # Outputs follow the instruction in every template; an output quoted by the
            # instruction itself must not count.
            start = input_at + len(pair.input) if input_at >= 0 else 0
            positions = _output_positions(prompt, pair, start)
            if len(positions) != outputs:
                continue
            shown = tuple(sorted(positions, key=positions.__getitem__))
            matched = sum(len(pair.output_a if side == "a" else pair.output_b) for side in shown)
            ranked.append(((input_at >= 0, matched), PlacedPrompt(pair, shown)))
        ranked.sort(key=lambda entry: entry[0], reverse=True)
        return ranked

    def answer(self, judge: str, prompt: str) -> str:
        """The recorded completion `judge` gave to `prompt`, or ReplayMiss saying why not."""
        mode = self.mode(judge)
        placed = self.place(prompt, outputs=1 if mode == "rating" else 2)
        row = self._judges[judge].get(placed.pair.item_id)
        if row is None:
            raise ReplayMiss(
                f"judge {judge!r} has no recording for pair {placed.pair.item_id}", "not_recorded"
            )
        if mode == "rating":
            side = placed.shown[0]
            completion = (row.get("scores") or {}).get(side)
            what = f"score of output_{side}"
        else:
            swap = placed.shown[0] == "b"
            run = next((r for r in row.get("runs") or () if bool(r.get("swap")) == swap), {})
            completion = run.get("completion")
            what = f"{'swapped' if swap else 'shown'}-order completion"
        if completion is None:
            raise ReplayMiss(
                f"judge {judge!r} has no recorded {what} for pair {placed.pair.item_id}",
                "not_recorded",
            )
        return str(completion)

    def answer_request(self, body: Mapping[str, Any], *,
                       miss_status: int = HTTPStatus.NOT_FOUND) -> str:
        """An LLMStubServer chat answerer: the request's model is the judge, all its messages
        together are the prompt."""
        judge = str(body.get("model") or "")
        prompt = "\n".join(message_text(m, "\n") for m in body.get("messages") or ())
        try:
            return self.answer(judge, prompt)
        except ReplayMiss as miss:
            status = HTTPStatus.NOT_FOUND if miss.code == "model_not_found" else miss_status
            raise StubRefusal(int(status), f"judge replay: {miss.message}", miss.code) from None


class JudgeReplayServer:
    """An LLMStubServer answering with recorded judge completions; a context manager."""

    def __init__(self, judges_path: str | Path, pairs_path: str | Path, *,
                 host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0,
                 miss_status: int = HTTPStatus.NOT_FOUND, verbose: bool = False) -> None:
        self.recordings = JudgeRecordings.from_files(judges_path, pairs_path)
        self.miss_status = miss_status
        self.stub = LLMStubServer(
            host=host, port=port, latency_s=latency_s, verbose=verbose,
            chat_answerer=self._answer,
        )

    def _answer(self, body: dict[str, Any]) -> str:
        return self.recordings.answer_request(body, miss_status=self.miss_status)

    def start(self) -> JudgeReplayServer:
        self.stub.start()
        return self

    def stop(self) -> None:
        self.stub.stop()

    def __enter__(self) -> JudgeReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.stub.port

    @property
    def base_url(self) -> str:
        return self.stub.base_url

    @property
    def request_count(self) -> int:
        return self.stub.request_count

    @property
    def max_in_flight(self) -> int:
        return self.stub.max_in_flight
