"""Request bodies as JSON, with a nesting limit: a body nested thousands of levels deep is a 400, never a
RecursionError (a 500) in the parser or in whatever walks the result later."""

from __future__ import annotations

import json
from typing import Any

# OpenAI request bodies (tool schemas included) stay far below this
MAX_JSON_DEPTH = 64


class InvalidJson(ValueError):
    """The body is not JSON the services accept; the message says why, without quoting the body."""


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidJson(f"the request body is nested deeper than {max_depth} levels") from None
    except ValueError:  # includes UnicodeDecodeError
        raise InvalidJson("the request body is not valid JSON") from None
    # brackets counted in C first: only a body with that many containers can be that deep
    if body.count(b"[") + body.count(b"{") > max_depth and _deeper_than(value, max_depth):
        raise InvalidJson(f"the request body is nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
