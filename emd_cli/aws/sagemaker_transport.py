"""An httpx transport that turns the `openai` client's requests into SageMaker runtime calls, for AWS
deployments without the gateway: the client works unchanged (`OpenAI(http_client=httpx.Client(transport=…))`).

POST /v1/<route> -> InvokeEndpoint (or InvokeEndpointWithResponseStream when the body asks to stream), with
CustomAttributes 'route=/v1/<route>' as the gateway sends them, so the engine adapter answers the same way.
The response stream's PayloadPart events (the container's SSE bytes) become the HTTP body; SageMaker's
errors become the HTTP status and OpenAI-shaped body the client expects. Requests are signed with the
caller's AWS credentials (SigV4): the deployment's API key is not involved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

SSE = "text/event-stream"


class _PayloadParts(httpx.SyncByteStream):
    def __init__(self, events: Any) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        for event in self._events:
            part = event.get("PayloadPart")
            if part and part.get("Bytes"):
                yield part["Bytes"]
            elif "ModelStreamError" in event or "InternalStreamFailure" in event:
                error = event.get("ModelStreamError") or event.get("InternalStreamFailure") or {}
                message = json.dumps({"error": {"message": error.get("Message", "stream failed")}})
                yield f"data: {message}\n\n".encode()
                return

    def close(self) -> None:
        self._events.close()


class SageMakerTransport(httpx.BaseTransport):
    def __init__(self, runtime: Any, endpoint_name: str, inference_component: str | None = None) -> None:
        self._runtime = runtime
        self._endpoint = endpoint_name
        self._component = inference_component

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = path[path.index("/v1/") :] if "/v1/" in path else path
        if request.method != "POST":
            return _error(404, f"{request.method} {route} is not available without the gateway")
        body = request.read()
        content_type = request.headers.get("content-type", "application/json")
        kwargs: dict[str, Any] = {
            "EndpointName": self._endpoint,
            "Body": body,
            "ContentType": content_type,
            "CustomAttributes": f"route={route}",
        }
        if self._component:
            kwargs["InferenceComponentName"] = self._component
        try:
            if _wants_stream(content_type, body):
                answer = self._runtime.invoke_endpoint_with_response_stream(Accept=SSE, **kwargs)
                return httpx.Response(
                    200, headers={"content-type": SSE}, stream=_PayloadParts(answer["Body"])
                )
            answer = self._runtime.invoke_endpoint(Accept="application/json", **kwargs)
        except Exception as exc:
            return _from_aws_error(exc)
        return httpx.Response(
            200,
            headers={"content-type": answer.get("ContentType") or "application/json"},
            content=answer["Body"].read(),
        )


def _wants_stream(content_type: str, body: bytes) -> bool:
    if not content_type.startswith("application/json"):
        return False
    try:
        return bool(json.loads(body or b"{}").get("stream"))
    except (ValueError, AttributeError):
        return False


def _error(status: int, message: str, kind: str = "invalid_request_error") -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": kind, "code": None}})


def _from_aws_error(exc: Exception) -> httpx.Response:
    """A ModelError carries the container's own status and body; other errors map to their HTTP status."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        raise exc
    error = response.get("Error", {})
    if error.get("Code") == "ModelError":
        status = int(response.get("OriginalStatusCode") or 502)
        original = response.get("OriginalMessage") or error.get("Message", "")
        try:
            return httpx.Response(status, json=json.loads(original))
        except ValueError:
            return _error(status, original, "upstream_error")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 502)
    return _error(
        status, f"SageMaker {error.get('Code', 'error')}: {error.get('Message', '')}", "upstream_error"
    )


def sagemaker_http_client(
    runtime: Any, endpoint_name: str, timeout: float, inference_component: str | None = None
) -> httpx.Client:
    return httpx.Client(
        transport=SageMakerTransport(runtime, endpoint_name, inference_component), timeout=timeout
    )
