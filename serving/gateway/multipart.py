"""The `model` field of a multipart/form-data body (/v1/audio/transcriptions), read with aiohttp's multipart
parser over the bytes already received.

The work is linear in the body and bounded: the body must open with its boundary (no preamble), at most
MAX_PARTS parts are looked at, each with aiohttp's header limits, the model value may not exceed
MAX_MODEL_BYTES, and the parts before it are skipped in large chunks (a C-level search for the boundary).
"""

from __future__ import annotations

from email.message import Message

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

MAX_PARTS = 64
MAX_MODEL_BYTES = 256
_SKIP_CHUNK = 1 << 16


class BadMultipart(ValueError):
    """The body is not a multipart form the gateway parses; the message says why, without quoting it."""


class _BodyBytes:
    """What MultipartReader reads from (readline, read, unread_data, at_eof), over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._data) if end < 0 else end + 1
        if max_line_length is not None and end - self._pos > max_line_length:
            raise BadMultipart("a part header line is too long")
        line = self._data[self._pos : end]
        self._pos = end
        return line

    async def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def unread_data(self, data: bytes) -> None:
        # the parser only ever pushes back the bytes it has just read
        start = self._pos - len(data)
        if start < 0 or self._data[start : self._pos] != data:
            raise BadMultipart("the multipart body could not be parsed")
        self._pos = start

    def at_eof(self) -> bool:
        return self._pos >= len(self._data)


async def model_field(body: bytes, content_type: str) -> str | None:
    """The form's model value (stripped), or None when the form has no model field. BadMultipart when the
    body is not a well-formed form within the limits."""
    try:
        reader = MultipartReader(CIMultiDict({"Content-Type": content_type}), _BodyBytes(body))  # type: ignore[arg-type]
    except (ValueError, AssertionError):
        raise BadMultipart("Content-Type must be multipart/form-data with a boundary") from None
    delimiter = b"--" + _boundary(content_type)
    if not (body.startswith(delimiter) or body.startswith(b"\r\n" + delimiter)):
        raise BadMultipart("the multipart body must start with its boundary")
    try:
        for _ in range(MAX_PARTS):
            part = await reader.next()
            if part is None:
                return None
            if not isinstance(part, BodyPartReader):
                raise BadMultipart("nested multipart bodies are not accepted")
            if part.name == "model":
                return await _model_value(part)
            while not part.at_eof():
                await part.read_chunk(_SKIP_CHUNK)
    except (ValueError, HttpProcessingError) as exc:
        if isinstance(exc, BadMultipart):
            raise
        raise BadMultipart("the multipart body could not be parsed") from None
    raise BadMultipart(f"the form has more than {MAX_PARTS} parts before its model field")


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["Content-Type"] = content_type
    return str(header.get_param("boundary") or "").encode()


async def _model_value(part: BodyPartReader) -> str:
    value = bytearray()
    while not part.at_eof():
        value += await part.read_chunk(MAX_MODEL_BYTES + 1)
        if len(value) > MAX_MODEL_BYTES:
            raise BadMultipart(f"the model field is longer than {MAX_MODEL_BYTES} bytes")
    try:
        return value.decode().strip()
    except UnicodeDecodeError:
        raise BadMultipart("the model field is not UTF-8") from None
