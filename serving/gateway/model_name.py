"""Responses name the model the client asked for ('<model-id>/<tag>' or '<model-id>'), not the engine's
served name. The `"model": "<name>"` members of a JSON body or of SSE events are rewritten in place, with no
JSON parse: an unescaped `"model"` followed by `:` can only be an object key (inside a JSON string a quote is
escaped), so each one found is a real member."""

from __future__ import annotations

import json

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
    return _rewrite(data, model)[0]


def _rewrite(data: bytes, model: str) -> tuple[bytes, int]:
    """(data rewritten, how many "model" members already held model); data itself when nothing changed."""
    if _KEY not in data:
        return data, 0
    value = json.dumps(model).encode()
    out: list[bytes] = []
    pos = search = kept = 0
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
            kept += 1
        else:
            out += (data[pos:start], value)
            pos = end + 1
        search = end + 1
    if not out:
        return data, kept
    out.append(data[pos:])
    return b"".join(out), kept


def rewrite_json_model(data: bytes, content_type: str | None, model: str) -> bytes:
    """A whole answer with model as its model, when it is JSON (anything else is returned as it is)."""
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        return data
    return rewrite_model(data, model)


class SseModelRewriter:
    """rewrite_model over an SSE byte stream: bytes are released event by event, so a member split across two
    reads is still rewritten. An engine names its model alike in every event: once an event already carries
    the wanted name, the rest of the stream passes through untouched."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._pending = b""
        self._passthrough = False

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
        events = data[:cut]
        rewritten, kept = _rewrite(events, self._model)
        self._passthrough = rewritten is events and kept > 0
        return rewritten

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest if self._passthrough else rewrite_model(rest, self._model)
