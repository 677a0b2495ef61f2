"""Responses name the model the client asked for ('<model-id>/<tag>' or '<model-id>'), not the engine's
served name. The `"model": "<name>"` members of a JSON body or of SSE events are rewritten in place, with no
JSON parse: an unescaped `"model"` followed by `:` can only be an object key (inside a JSON string a quote is
escaped), so each one found is a real member."""

from __future__ import annotations

import json
from dataclasses import dataclass

_KEY = b'"model"'
_SPACE = b" \t\r\n"
MAX_PENDING = 1 << 20


def _closing_quote(data: bytes, start: int) -> int:
    """Index of the quote ending the JSON string whose content starts at start, or -1."""
    while True:
        end = data.find(b'"', start)
        if end < 0:
            return -1
        backslashes = 0
        while data[end - 1 - backslashes] == 0x5C:  # '\\'
            backslashes += 1
        if backslashes % 2 == 0:
            return end
        start = end + 1


def rewrite_model(data: bytes, model: str) -> bytes:
    """data with the value of every "model" member set to model."""
    return _rewrite(data, model).data


@dataclass
class _Rewritten:
    data: bytes  # data itself when nothing changed
    kept: int = 0  # "model" members that already held the model
    member: tuple[bytes, bytes] | None = None  # the first member replaced: (as it was, as it is now)


def _rewrite(data: bytes, model: str) -> _Rewritten:
    if _KEY not in data:
        return _Rewritten(data)
    value = json.dumps(model).encode()
    out: list[bytes] = []
    result = _Rewritten(data)
    pos = search = 0
    while (key := data.find(_KEY, search)) >= 0:
        colon = key + len(_KEY)
        while colon < len(data) and data[colon] in _SPACE:
            colon += 1
        if colon >= len(data) or data[colon] != 0x3A:  # ':' — "model" was a value, not a key
            search = key + 1
            continue
        start = colon + 1
        while start < len(data) and data[start] in _SPACE:
            start += 1
        if start >= len(data) or data[start] != 0x22:  # not a string value (null, a number)
            search = start
            continue
        end = _closing_quote(data, start + 1)
        if end < 0:
            break
        if data[start : end + 1] == value:
            result.kept += 1
        else:
            if result.member is None:
                result.member = (data[key : end + 1], data[key:start] + value)
            out += (data[pos:start], value)
            pos = end + 1
        search = end + 1
    if out:
        out.append(data[pos:])
        result.data = b"".join(out)
    return result


def rewrite_json_model(data: bytes, content_type: str | None, model: str) -> bytes:
    """A whole answer with model as its model, when it is JSON (anything else is returned as it is)."""
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        return data
    return rewrite_model(data, model)


class SseModelRewriter:
    """rewrite_model over an SSE byte stream: bytes are released event by event, so a member split across two
    reads is still rewritten. An engine names its model alike in every event: once an event already carries
    the wanted name the rest of the stream passes through untouched, and once a member was rewritten the same
    member in later events is replaced by a plain bytes.replace."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._pending = b""
        self._passthrough = False
        self._member: tuple[bytes, bytes] | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._passthrough:
            return chunk
        data = self._pending + chunk if self._pending else chunk
        since = max(0, len(self._pending) - 3)  # the pending bytes hold no event boundary
        cut = max(data.rfind(b"\n\n", since), data.rfind(b"\r\n\r\n", since))
        if cut < 0:
            if len(data) > MAX_PENDING:  # not SSE as engines send it: passed on as it is
                self._pending = b""
                return data
            self._pending = data
            return b""
        cut += 4 if data.startswith(b"\r\n\r\n", cut) else 2
        self._pending = data[cut:]
        return self._events(data[:cut])

    def _events(self, events: bytes) -> bytes:
        """Complete events rewritten: the first one member by member, which tells how the engine names its
        model; the others as that one showed."""
        if self._passthrough:
            return events
        if self._member is not None and self._member[0] in events:
            return events.replace(*self._member)
        boundary = events.find(b"\n\n")
        first, rest = (events, b"") if boundary < 0 else (events[: boundary + 2], events[boundary + 2 :])
        result = _rewrite(first, self._model)
        self._passthrough = result.data is first and result.kept > 0
        self._member = result.member or self._member
        return result.data + self._events(rest) if rest else result.data

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._events(rest)
