"""Gateway pieces that need no server: key parsing, bearer parsing, URL joining, settings."""

from __future__ import annotations

import json

from serving.common.openai_format import error_body, is_event_boundary, sse_error_event
from serving.gateway.auth import bearer_token, digest, key_from_secret_string
from serving.gateway.backends import http_url
from serving.gateway.config import GatewayConfig


def test_secret_string_plain_or_json() -> None:
    assert key_from_secret_string("sk-abc\n") == "sk-abc"
    assert key_from_secret_string('{"api_key": "sk-json"}') == "sk-json"
    assert key_from_secret_string('{"other": 1}') is None
    assert key_from_secret_string("{not json") is None
    assert key_from_secret_string("") is None


def test_bearer_token() -> None:
    assert bearer_token("Bearer sk-1") == "sk-1"
    assert bearer_token("bearer   sk-2 ") == "sk-2"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert digest("a") != digest("b") and len(digest("a")) == 32


def test_http_url_with_or_without_v1() -> None:
    assert http_url("http://h:8080", "/v1/embeddings") == "http://h:8080/v1/embeddings"
    assert http_url("http://h:8080/v1/", "/v1/embeddings") == "http://h:8080/v1/embeddings"


def test_config_caps_key_ttl_at_a_minute() -> None:
    r = {"AWS_REGION": "us-east-1"}
    cfg = GatewayConfig.from_env({**r, "EMD_KEY_CACHE_TTL": "3600", "EMD_GATEWAY_PORT": "9000"})
    assert cfg.key_cache_ttl == 60 and cfg.port == 9000 and cfg.registry_prefix == "/emd/models"
    assert GatewayConfig.from_env(r).port == 8080
    assert GatewayConfig.from_env(r).event_loop == "uvloop"
    assert GatewayConfig.from_env({**r, "EMD_GATEWAY_LOOP": "asyncio"}).event_loop == "asyncio"
    assert GatewayConfig.from_env({**r, "EMD_ASYNC_WAIT_SECONDS": "30"}).async_wait_seconds == 30
    waits = GatewayConfig.from_env({**r, "EMD_COLD_START_WAIT": "108"})
    assert (waits.cold_start_wait, waits.stream_cold_start_wait) == (108, 540)
    assert GatewayConfig.from_env({**r, "EMD_STREAM_COLD_START_WAIT": "60"}).stream_cold_start_wait == 60


def test_config_rejects_a_port_that_is_not_one() -> None:
    import pytest

    for bad in ("abc", "99999", "0", "-1"):
        with pytest.raises(SystemExit, match=f"EMD_GATEWAY_PORT='{bad}' is not a TCP port"):
            GatewayConfig.from_env({"AWS_REGION": "us-east-1", "EMD_GATEWAY_PORT": bad})


def test_config_rejects_an_unknown_event_loop() -> None:
    import pytest

    with pytest.raises(SystemExit, match="EMD_GATEWAY_LOOP='tokio' is not one of: uvloop, asyncio"):
        GatewayConfig.from_env({"AWS_REGION": "us-east-1", "EMD_GATEWAY_LOOP": "tokio"})


def test_gateway_event_loop_is_uvloop_unless_asked_otherwise() -> None:
    import asyncio

    import uvloop

    from serving.gateway.__main__ import new_event_loop

    for kind, expected in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        loop = new_event_loop(kind)
        try:
            assert isinstance(loop, expected)
            assert kind == "uvloop" or not isinstance(loop, uvloop.Loop)
        finally:
            loop.close()


def test_openai_error_shapes() -> None:
    assert error_body("m", 401)["error"]["type"] == "authentication_error"
    assert error_body("m", 503)["error"]["type"] == "server_error"
    assert sse_error_event("boom").startswith(b"data: {") and sse_error_event("boom").endswith(b"\n\n")
    assert is_event_boundary(b"data: x\n\n") and not is_event_boundary(b"data: x")


def test_sagemaker_backend_invokes_the_inference_component_of_a_scale_to_zero_deployment() -> None:
    import aiohttp
    from aiohttp import web

    from model_specs.registry import RegistryEntry
    from tests.support.sagemaker_wire import refuse_unsigned
    from tests.unit.gateway_harness import KEY, MemoryStore, auth, gateway, post, run, runtime_clients, serve

    components: list[str | None] = []

    async def invoke(request: web.Request) -> web.Response:
        components.append(request.headers.get("X-Amzn-SageMaker-Inference-Component"))
        return web.json_response({})

    def entry(model_id: str, component: str | None) -> RegistryEntry:
        return RegistryEntry(
            model_id=model_id,
            model_type="llm",
            service_type="sagemaker_realtime",
            backend="sagemaker",
            endpoint_name="emd-m",
            inference_component_name=component,
            api_key_secret_name="emd/m/dev/api-key",
        )

    async def scenario() -> None:
        runtime = web.Application(middlewares=[refuse_unsigned()])
        runtime.router.add_post("/endpoints/{name}/invocations", invoke)
        store = MemoryStore([entry("ic", "emd-m-ic"), entry("plain", None)], {"emd/m/dev/api-key": KEY})
        async with (
            serve(runtime) as sm,
            gateway(store, None, **runtime_clients(sm)) as url,
            aiohttp.ClientSession() as s,
        ):
            for model in ("ic", "plain"):
                status, _, _ = await post(s, url + "/v1/chat/completions", {"model": model}, auth())
                assert status == 200

    run(scenario())
    assert components == ["emd-m-ic", None]


def forward_async(s3: object, *, wait_seconds: float, client_gone: bool) -> tuple[object, list[dict]]:
    """One non-streamed request through SageMakerAsyncBackend with a stub S3 and runtime: (response, the
    InvokeEndpointAsync calls)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from model_specs.registry import RegistryEntry
    from serving.gateway.async_backend import SageMakerAsyncBackend
    from serving.gateway.cold_start import ColdStart

    queued: list[dict] = []

    class Runtime:
        def invoke_endpoint_async(self, **kw):
            queued.append(kw)
            return {"InferenceId": "inf-1", "OutputLocation": "s3://b/p/output/inf-1.out"}

    entry = RegistryEntry(
        model_id="m",
        model_type="llm",
        service_type="sagemaker_async",
        backend="sagemaker_async",
        endpoint_name="emd-m",
        s3_input_path="s3://b/p/input/",
        api_key_secret_name="emd/m/dev/api-key",
    )
    transport = mock.Mock()
    transport.is_closing.return_value = client_gone

    async def run():
        backend = SageMakerAsyncBackend(Runtime(), s3, ThreadPoolExecutor(2), wait_seconds=wait_seconds)
        headers = {"Content-Type": "application/json"}
        request = make_mocked_request("POST", "/v1/chat/completions", headers=headers, transport=transport)
        return await backend.forward(request, entry, b"{}", "m", ColdStart(entry, 0, 15, None))

    return asyncio.run(run()), queued


class StubS3:
    """put/delete recorded; get_object raises the given S3 error code (the answer never arrives)."""

    def __init__(self, get_error: str) -> None:
        self.get_error = get_error
        self.puts: list[str] = []
        self.deletes: list[str] = []

    def put_object(self, **kw):
        self.puts.append(kw["Key"])

    def get_object(self, **kw):
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": self.get_error, "Message": "-"}}, "GetObject")

    def delete_object(self, **kw):
        self.deletes.append(kw["Key"])


def test_async_backend_names_an_access_denied_answer_when_its_wait_runs_out() -> None:
    """Without s3:ListBucket S3 answers a missing key with AccessDenied: polled like a missing key, and named
    in the 504 so a wrong task role is diagnosable."""
    import json

    s3 = StubS3("AccessDenied")
    resp, queued = forward_async(s3, wait_seconds=0.5, client_gone=False)
    assert resp.status == 504
    assert "AccessDenied" in json.loads(resp.body)["error"]["message"]
    assert s3.puts and s3.puts[0].startswith("p/input/")
    assert queued[0]["InputLocation"] == f"s3://b/{s3.puts[0]}" and queued[0]["RequestTTLSeconds"] == 60
    assert queued[0]["CustomAttributes"] == "route=/v1/chat/completions"
    assert set(s3.deletes) == {s3.puts[0], "p/output/inf-1.out"}


def test_async_backend_stops_polling_when_the_client_has_gone() -> None:
    import time

    s3 = StubS3("NoSuchKey")
    started = time.monotonic()
    resp, _ = forward_async(s3, wait_seconds=60, client_gone=True)
    assert resp.status == 499 and time.monotonic() - started < 5  # not the 60 s wait
    assert "p/output/inf-1.out" in s3.deletes


def test_rewrite_model_sets_every_model_member_and_nothing_else() -> None:
    from serving.gateway.model_name import SseModelRewriter, rewrite_model

    body = (
        b'{"id":"x","model": "served","choices":[{"message":{"role":"model",'
        b'"content":"say \\"model\\": \\"x\\""}}],"usage":{"model":null},"x":"a\\\\","model":"s2"}'
    )
    out = rewrite_model(body, 'm/"q"')
    assert json.loads(out)["model"] == 'm/"q"'  # both members; the last one wins in a JSON parse
    assert out.count(b'"model": "m/\\"q\\""') == 1 and out.count(b'"model":"m/\\"q\\""') == 1
    assert b'"role":"model"' in out and b'say \\"model\\": \\"x\\"' in out and b'"model":null' in out
    rewriter = SseModelRewriter("m")
    events = b'data: {"model":"s"}\n\ndata: {"model":"s"}\n\ndata: [DONE]\n\n'
    streamed = b"".join(rewriter.feed(events[i : i + 5]) for i in range(0, len(events), 5)) + rewriter.flush()
    assert streamed == events.replace(b'"s"', b'"m"')
    same = SseModelRewriter("m")  # an engine that already serves the asked name: passed through as it is
    first = b'data: {"model":"m"}\n\n'
    assert same.feed(first) is first and same.feed(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"


def test_client_address_believes_forwarded_for_only_from_trusted_proxies() -> None:
    from serving.gateway.access import client_address, networks, valid_request_id

    alb = networks(["10.0.0.0/16"])
    assert client_address("10.0.3.4", "203.0.113.9", alb) == "203.0.113.9"
    assert client_address("10.0.3.4", "198.51.100.1, 203.0.113.9, 10.0.1.1", alb) == "203.0.113.9"
    assert client_address("203.0.113.50", "1.2.3.4", alb) == "203.0.113.50"  # spoofed by the client itself
    assert client_address("10.0.3.4", "not-an-ip", alb) == "10.0.3.4"
    assert client_address("10.0.3.4", "1.2.3.4", ()) == "10.0.3.4"
    assert not valid_request_id("req 1") and not valid_request_id("a/b") and not valid_request_id("é")
    assert valid_request_id("req-1.2:3_x") and not valid_request_id("a" * 129) and not valid_request_id("")


def test_json_bodies_nested_too_deep_are_refused() -> None:
    import pytest

    from serving.common.json_body import MAX_JSON_DEPTH, InvalidJson, parse_json

    assert parse_json(b'{"a": [[1]]}') == {"a": [[1]]}
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert parse_json(b'{"m": [' + b"{}," * 500 + b"{}]}")  # many containers, shallow
    for depth in (MAX_JSON_DEPTH + 1, 5000):
        with pytest.raises(InvalidJson, match="nested deeper"):
            parse_json(b"[" * depth + b"]" * depth)
    with pytest.raises(InvalidJson, match="not valid JSON"):
        parse_json(b'{"a": \xff}')


def test_adapter_passes_on_only_the_openai_routes() -> None:
    from serving.engine.routing import passthrough_path

    assert passthrough_path("POST", "/v1/chat/completions") == "/v1/chat/completions"
    assert passthrough_path("GET", "/v1/models") == "/v1/models"
    assert passthrough_path("GET", "/v1/models/Qwen/Qwen2?x=1") == "/v1/models/Qwen/Qwen2"
    for method, path in (("GET", "/v1/%2e%2e/docs"), ("GET", "/v1/../openapi.json"), ("GET", "/v1/models/"),
                         ("GET", "/v1/models/../../docs"), ("POST", "/v1//chat/completions"),
                         ("GET", "/v1/chat/completions"), ("POST", "/v1/fine_tuning/jobs")):  # fmt: skip
        assert passthrough_path(method, path) is None, path
