"""Which OpenAI route an /invocations body is for: SageMaker CustomAttributes 'route=/v1/...' (set by the
gateway) wins; otherwise the body's shape decides."""

from __future__ import annotations

from typing import Any

ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/audio/transcriptions",
)
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
MODELS = "/v1/models"


def passthrough_path(method: str, raw_path: str) -> str | None:
    """The engine path of a direct /v1 request (ECS and EC2 hosts), or None for anything but the OpenAI
    routes: percent-encoded or dot segments (`/v1/%2e%2e/docs`) and the engine's other pages are not passed
    on. The query string is dropped."""
    path = raw_path.split("?", 1)[0]
    if "%" in path or "//" in path or any(seg in (".", "..") for seg in path.split("/")):
        return None
    if method == "POST" and path in ROUTES:
        return path
    if method == "GET" and (
        path == MODELS or (path.startswith(MODELS + "/") and len(path) > len(MODELS) + 1)
    ):
        return path
    return None


def route_from_attributes(attributes: str | None) -> str | None:
    for item in (attributes or "").split(","):
        key, _, value = item.strip().partition("=")
        if key.strip() == "route" and value.strip() in ROUTES:
            return value.strip()
    return None


def route_from_body(content_type: str, body: Any) -> str | None:
    if content_type.startswith("multipart/"):
        return "/v1/audio/transcriptions"
    if not isinstance(body, dict):
        return None
    if "messages" in body:
        return "/v1/chat/completions"
    if "query" in body and "documents" in body:
        return "/v1/rerank"
    if "prompt" in body:
        return "/v1/completions"
    if "input" in body:
        return "/v1/embeddings"
    return None


def tei_rerank_request(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI-style/Cohere-style rerank body -> text-embeddings-inference /rerank body."""
    docs = [d if isinstance(d, str) else d.get("text", "") for d in body.get("documents", [])]
    return {"query": body.get("query", ""), "texts": docs, "return_text": False, "truncate": True}


def tei_rerank_response(tei: list[dict[str, Any]], body: dict[str, Any], model: str) -> dict[str, Any]:
    results = sorted(
        ({"index": r["index"], "relevance_score": r["score"]} for r in tei),
        key=lambda r: r["relevance_score"],
        reverse=True,
    )
    top_n = body.get("top_n")
    if isinstance(top_n, int) and top_n > 0:
        results = results[:top_n]
    return {"object": "list", "model": model, "results": results}
