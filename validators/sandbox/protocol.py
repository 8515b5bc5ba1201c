"""Frames between the pool and its workers: a 4-byte big-endian length, then UTF-8 JSON.

JSON both ways because the worker runs hostile code: the parent must never unpickle what a
worker sends, and a bounded, schema-checked JSON object is all it accepts.
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
# Replies are verdicts with details cut to 500 characters: 200 of them fit in well under 1 MB,
# so anything near this bound is a worker misbehaving.
MAX_REPLY_BYTES = 4 * 1024 * 1024
# Requests carry outputs; one huge output is still sent alone rather than refused.
MAX_REQUEST_BYTES = 256 * 1024 * 1024

# The slot a worker writes its progress into (shared memory, see pool._Worker): the batch it
# is on and the position within it, so the parent knows which output a stall belongs to.
PROGRESS = struct.Struct("<qq")
LOADING_SOURCE = -1


class FrameError(Exception):
    """The bytes on the pipe are not a frame this side accepts."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("ascii")
    return HEADER.pack(len(body)) + body


def frame_from_json(body: str) -> bytes:
    encoded = body.encode("ascii")
    return HEADER.pack(len(encoded)) + encoded


class FrameDecoder:
    """Incremental decoder for frames arriving in arbitrary chunks from a non-blocking pipe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self.max_bytes:
                raise FrameError(f"frame of {length} bytes is over the {self.max_bytes} limit")

    def next_message(self) -> dict[str, Any] | None:
        if len(self._buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buffer)
        if len(self._buffer) < HEADER.size + length:
            return None
        body = bytes(self._buffer[HEADER.size : HEADER.size + length])
        del self._buffer[: HEADER.size + length]
        if self._buffer:
            raise FrameError("bytes after the reply")
        try:
            message = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise FrameError(f"not JSON: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise FrameError("a frame must be a JSON object with an op")
        return message
