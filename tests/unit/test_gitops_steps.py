"""The pipeline steps' own logic, through a real httpx client on a mock transport and stand-in CodeBuild
answers: smoke-test retries and failures (never the key), the request for each model kind, build polling and
failure text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from serving.gitops.builds import failure, wait_builds
from serving.gitops.smoke import Route, SmokeFailure, check_route, key_from_secret, request_for

KEY = "emd-not-to-be-printed"
ROUTE = Route("Qwen2.5-0.5B-Instruct/prod", "llm", "emd/Qwen2.5-0.5B-Instruct/prod/api-key")


def gateway(answers: list[tuple[int, dict[str, str], Any]], seen: list[httpx.Request]) -> httpx.Client:
    """A gateway answering POSTs from `answers` in turn; /v1/models lists the route for the right key."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"error": {"message": "invalid API key"}})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": ROUTE.route}]})
        status, headers, body = answers.pop(0)
        return httpx.Response(status, headers=headers, json=body)

    return httpx.Client(base_url="http://gateway.test", transport=httpx.MockTransport(handle))


def test_a_cold_endpoint_is_retried_after_its_retry_after():
    seen: list[httpx.Request] = []
    answers = [(503, {"Retry-After": "7"}, {"error": "starting"}), (200, {}, {"choices": []})]
    slept: list[float] = []
    result = check_route(gateway(answers, seen), ROUTE, KEY, deadline=1e12, sleep=slept.append)
    assert result.startswith(f"{ROUTE.route}: listed, 200 in ")
    assert slept == [7.0]
    posts = [r for r in seen if r.method == "POST"]
    assert len(posts) == 2 and json.loads(posts[0].content)["model"] == ROUTE.route


def test_a_refused_key_names_the_secret_not_the_key():
    with pytest.raises(SmokeFailure) as info:
        check_route(gateway([], []), ROUTE, "emd-wrong", deadline=1e12, sleep=lambda _s: None)
    assert str(info.value) == f"{ROUTE.route}: the gateway refused the key from {ROUTE.api_key_secret_name}"


def test_an_error_answer_fails_at_once_with_its_status_and_text():
    answers = [(400, {}, {"error": {"message": "max_tokens too large " + "x" * 400}})]
    with pytest.raises(SmokeFailure) as info:
        check_route(gateway(answers, []), ROUTE, KEY, deadline=1e12, sleep=lambda _s: None)
    text = str(info.value)
    assert text.startswith(f"{ROUTE.route}: HTTP 400: ") and text.endswith("…") and KEY not in text


def test_retries_stop_at_the_deadline():
    answers = [(503, {"Retry-After": "1"}, {})] * 3
    clock = iter([0.0, 0.0, 5.0, 10.0, 20.0])
    with pytest.raises(SmokeFailure, match="HTTP 503"):
        check_route(gateway(list(answers), []), ROUTE, KEY, deadline=9.0, clock=lambda: next(clock),
                    sleep=lambda _s: None)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "path"),
    [("llm", "/v1/chat/completions"), ("vlm", "/v1/chat/completions"), ("embedding", "/v1/embeddings"),
     ("rerank", "/v1/rerank"), ("asr", "/v1/audio/transcriptions")],
)  # fmt: skip
def test_one_request_per_model_kind(kind: str, path: str):
    request = request_for(Route("m/t", kind, None))
    assert request["url"] == path
    if kind == "asr":
        _name, wav, _mime = request["files"]["file"]
        assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and request["data"] == {"model": "m/t"}
    else:
        assert request["json"]["model"] == "m/t"


def test_key_from_either_secret_form():
    assert key_from_secret(" emd-abc\n") == "emd-abc"
    assert key_from_secret('{"api_key": "emd-abc"}') == "emd-abc"


class Builds:
    """batch_get_builds answering IN_PROGRESS `polls` times, then the final build."""

    def __init__(self, final: dict[str, Any], polls: int) -> None:
        self.final, self.polls, self.calls = final, polls, 0

    def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
        self.calls += 1
        status = "IN_PROGRESS" if self.calls <= self.polls else None
        return {"builds": [{**self.final, "buildStatus": status or self.final["buildStatus"]} for _ in ids]}


def test_builds_are_polled_until_they_finish():
    client = Builds({"id": "p:1", "buildStatus": "SUCCEEDED"}, polls=2)
    slept: list[float] = []
    done = wait_builds(client, ["p:1"], poll=3.0, sleep=slept.append)
    assert done["p:1"]["buildStatus"] == "SUCCEEDED" and slept == [3.0, 3.0]


def test_a_failed_build_names_its_phase_reason_and_log_tail():
    build = {
        "id": "p:2",
        "buildStatus": "FAILED",
        "phases": [
            {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED"},
            {
                "phaseType": "PRE_BUILD",
                "phaseStatus": "FAILED",
                "contexts": [{"message": "COMMAND_EXECUTION_ERROR"}],
            },
        ],
    }
    text = failure(build, ["[emd-build] error: model Qwen/x not found on huggingface"])
    assert text.splitlines() == [
        "build p:2 failed in phase PRE_BUILD: COMMAND_EXECUTION_ERROR",
        "  [emd-build] error: model Qwen/x not found on huggingface",
    ]
