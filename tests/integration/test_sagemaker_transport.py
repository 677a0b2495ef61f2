"""The `openai` client, unchanged, against a SageMaker endpoint without the gateway: the httpx transport maps
its requests to InvokeEndpoint / InvokeEndpointWithResponseStream (the real event-stream wire format, from
the SageMaker runtime stand-in of conftest) and back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import openai
import pytest
from aiohttp import web

from emd_cli.aws.sagemaker_transport import sagemaker_http_client
from tests.integration.conftest import fake_sagemaker_runtime
from tests.support.servers import ServerThread

pytestmark = [pytest.mark.integration]
ENDPOINT = "emd-smollm2-dev-1234"


def container() -> web.Application:
    """What SageMaker runs: /invocations answering by the route the CustomAttributes name."""

    async def invocations(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        route = request.headers.get("X-Amzn-SageMaker-Custom-Attributes", "")
        if not isinstance(body.get("messages"), list):
            error = {"error": {"message": "messages must be a list", "type": "invalid_request_error"}}
            return web.json_response(error, status=400)
        if route != "route=/v1/chat/completions":
            return web.json_response({"error": {"message": f"unexpected {route}"}}, status=500)
        words = ["Hello", " from", " SageMaker"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            return web.json_response(
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for word in words:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/invocations", invocations)
    return app


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with ServerThread(container()) as engine, ServerThread(fake_sagemaker_runtime(engine.url)) as runtime:
        sagemaker = boto3.client(
            "sagemaker-runtime",
            endpoint_url=runtime.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        http = sagemaker_http_client(sagemaker, ENDPOINT, timeout=30)
        yield openai.OpenAI(
            base_url="https://runtime.sagemaker.us-east-1.amazonaws.com/v1", api_key="x", http_client=http
        )


def test_a_completion(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="m/dev", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from SageMaker"


def test_a_stream_arrives_in_parts(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m/dev", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    parts = [c.choices[0].delta.content for c in stream if c.choices]
    assert parts == ["Hello", " from", " SageMaker"]


def test_the_containers_error_reaches_the_client_as_itself(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages must be a list"):
        client.chat.completions.create(model="m/dev", messages="hi")  # type: ignore[arg-type]


def test_what_sagemaker_cannot_serve_is_a_clear_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="not available without the gateway"):
        client.models.list()
