"""The local engine (llama-cpp-python serving SmolLM2) speaks the OpenAI API, measured with real clients: the
official `openai` SDK and LangChain's ChatOpenAI, against the engine adapter directly and through the gateway
in file-store mode (as `emd deploy -s local` runs it). One engine for the session; answers are kept short."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from model_specs.registry import LOCAL_KEY_DIGESTS_FILE, LOCAL_REGISTRY_FILE, api_key_secret_name
from tests.integration.conftest import PY, ROOT, SERVED_NAME, free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "emd-test-key-0123456789"
LONG = [{"role": "user", "content": "Write a very long story about a cat who travels the world."}]
HI = [{"role": "user", "content": "Say hello."}]


WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Tokyo"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def local_gateway(adapter: str, logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway as the local target runs it: no AWS, registry and key digest read from a state dir."""
    state = tmp_path_factory.mktemp("emd-state")
    secret = api_key_secret_name(SERVED_NAME, "dev")
    entry = {
        "model_id": SERVED_NAME,
        "model_tag": "dev",
        "model_type": "llm",
        "service_type": "local",
        "backend": "http",
        "base_url": adapter + "/v1",
        "api_key_secret_name": secret,
    }
    (state / LOCAL_REGISTRY_FILE).write_text(json.dumps({"entries": {f"{SERVED_NAME}/dev": entry}}))
    (state / LOCAL_KEY_DIGESTS_FILE).write_text(
        json.dumps({secret: hashlib.sha256(KEY.encode()).hexdigest()})
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PYTHONPATH": str(ROOT),
        "EMD_STORE": "file",
        "EMD_STATE_DIR": str(state),
        "EMD_GATEWAY_HOST": "127.0.0.1",
        "EMD_GATEWAY_PORT": str(port),
    }
    with open(logs_dir / "gateway-file-store.log", "ab") as log:
        proc = subprocess.Popen([PY, "-m", "serving.gateway"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


@pytest.fixture(params=["adapter", "gateway"])
def base_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base URL, API key): the engine adapter's /v1 passthrough, or the gateway in front of it."""
    if request.param == "adapter":
        return request.getfixturevalue("adapter") + "/v1", "unused"
    return request.getfixturevalue("local_gateway"), KEY


@pytest.fixture
def client(base_url: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url[0], api_key=base_url[1], max_retries=0, timeout=120)


def chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=SERVED_NAME, **kwargs)


# ---------------------------------------------------------------- openai SDK


def test_chat_answers_and_streams(client: openai.OpenAI) -> None:
    answer = chat(client, messages=HI, max_tokens=6)
    assert answer.choices[0].message.content and answer.model == SERVED_NAME
    assert answer.usage and answer.usage.completion_tokens <= 6
    text = "".join(
        c.choices[0].delta.content or "" for c in chat(client, messages=HI, max_tokens=6, stream=True)
    )
    assert text


def test_max_completion_tokens_is_respected(client: openai.OpenAI) -> None:
    answer = chat(client, messages=LONG, max_completion_tokens=5, temperature=0)
    assert answer.usage and answer.usage.completion_tokens == 5
    assert answer.choices[0].finish_reason == "length"


def test_include_usage_ends_the_stream_with_the_engines_counts(client: openai.OpenAI) -> None:
    """The usage chunk OpenAI sends last (empty choices): the prompt as the engine counts it unstreamed, the
    completion as many tokens as the engine streamed (one chunk each for plain English text)."""
    for messages, limit, finish in ((LONG, 7, "length"), (HI, 80, "stop")):
        whole = chat(client, messages=messages, max_tokens=1)
        chunks = list(
            chat(
                client,
                messages=messages,
                max_tokens=limit,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        last = chunks[-1]
        assert last.choices == [] and last.usage is not None
        assert all(c.usage is None for c in chunks[:-1])
        assert chunks[-2].choices[0].finish_reason == finish
        tokens = [c for c in chunks[:-1] if c.choices[0].delta.content]
        assert whole.usage is not None and last.usage.prompt_tokens == whole.usage.prompt_tokens
        assert last.usage.completion_tokens == len(tokens) == (limit if finish == "length" else len(tokens))
        assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


class Person(BaseModel):
    name: str
    age: int


def test_json_schema_answer_parses(client: openai.OpenAI) -> None:
    answer = client.chat.completions.parse(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": "Alice is 30 years old. Give her name and age as JSON."}],
        response_format=Person,
        max_tokens=60,
        temperature=0,
    )
    assert isinstance(answer.choices[0].message.parsed, Person)


def test_n_returns_n_choices(client: openai.OpenAI) -> None:
    answer = chat(client, messages=HI, max_tokens=4, n=2, seed=3)
    assert [c.index for c in answer.choices] == [0, 1]
    assert answer.usage and answer.usage.completion_tokens == 8  # both ran to max_tokens (length)
    assert {c.finish_reason for c in answer.choices} <= {"length", "stop"}

    seen: dict[int, str] = {0: "", 1: ""}
    finished: set[int] = set()
    ids = set()
    for chunk in chat(client, messages=HI, max_tokens=4, n=2, stream=True):
        ids.add(chunk.id)
        for choice in chunk.choices:
            seen[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1} and all(seen.values()) and len(ids) == 1


def test_embeddings_one_unit_vector_per_input(client: openai.OpenAI) -> None:
    vectors: dict[str, list[list[float]]] = {}
    for encoding in ("float", "base64"):  # the SDK asks for base64 unless told otherwise, and decodes it
        kwargs: dict[str, Any] = {"encoding_format": encoding} if encoding == "float" else {}
        result = client.embeddings.create(model=SERVED_NAME, input=["hello world", "a cat"], **kwargs)
        assert [d.index for d in result.data] == [0, 1]
        vectors[encoding] = [d.embedding for d in result.data]
        for vector in vectors[encoding]:
            assert len(vector) == 576 and isinstance(vector[0], float)
            assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-4)
    assert vectors["base64"][1] == pytest.approx(vectors["float"][1], abs=1e-6)  # float32 on the wire
    single = client.embeddings.create(model=SERVED_NAME, input="hello world", encoding_format="float")
    assert len(single.data) == 1 and single.usage.prompt_tokens == 2
    assert single.data[0].embedding == pytest.approx(vectors["float"][0], abs=1e-4)
    assert single.data[0].embedding != pytest.approx(vectors["float"][1], abs=1e-2)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"messages": "hello"}, "messages"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"n": 2, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"logit_bias": {"hello": 5}}, "logit_bias.hello"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
    ],
)
def test_malformed_requests_are_400_naming_the_field(
    client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"messages": HI, "max_tokens": 2, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=SERVED_NAME, **body)
    error = caught.value.body
    assert isinstance(error, dict) and error.get("param") == param, error
    assert caught.value.status_code == 400 and error.get("type") == "invalid_request_error"
    assert "site-packages" not in str(error) and ".py" not in str(error)


def test_tool_call_history_with_null_content_is_accepted(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "What is 6 times 7?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "mul", "arguments": "[6,7]"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]},
    ]
    assert chat(client, messages=messages, max_tokens=4).choices[0].message.content


def test_a_required_tool_is_called_and_streamed_as_openai_does(client: openai.OpenAI) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    answer = chat(client, messages=ask, tools=[WEATHER], tool_choice="required", max_tokens=30, temperature=0)
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls" and message.function_call is None
    assert message.tool_calls and message.tool_calls[0].function.name == "weather"
    assert "city" in json.loads(message.tool_calls[0].function.arguments)

    with client.chat.completions.stream(
        model=SERVED_NAME,
        messages=ask,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=30,  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather" and "city" in json.loads(call.function.arguments)


def test_completions_with_a_list_of_prompts(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=SERVED_NAME, prompt=["Once upon", "The sky"], max_tokens=3)
    assert [c.index for c in answer.choices] == [0, 1] and all(c.text for c in answer.choices)


def test_invocations_gets_the_same_translation(adapter: str) -> None:
    """The SageMaker contract (/invocations) goes through the same bridge as /v1/*."""
    ok = httpx.post(adapter + "/invocations", json={"messages": HI, "max_tokens": 3, "n": 2}, timeout=60)
    assert ok.status_code == 200 and len(ok.json()["choices"]) == 2
    bad = httpx.post(adapter + "/invocations", json={"messages": HI, "temperature": "hot"}, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "temperature"


# ---------------------------------------------------------------- LangChain


@pytest.fixture
def no_tiktoken_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ChatOpenAI must not fetch tiktoken encoding files (no internet at run time): a fetch fails the test."""
    import tiktoken.load

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError(f"tiktoken tried to download {args[:1]}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)


@pytest.fixture
def chat_model(base_url: tuple[str, str], no_tiktoken_download: None) -> Any:
    from langchain_openai import ChatOpenAI

    def make(**kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=SERVED_NAME, base_url=base_url[0], api_key=base_url[1], max_retries=0, timeout=120, **kwargs
        )

    return make


def test_langchain_invoke_stream_and_max_tokens(chat_model: Any) -> None:
    reply = chat_model(max_tokens=5, temperature=0).invoke("Write a very long story about a cat.")
    assert reply.content and reply.usage_metadata["output_tokens"] == 5

    chunks = list(chat_model(max_tokens=6, stream_usage=True).stream("Say hello."))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content
    usage = total.usage_metadata
    assert usage and usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 6
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_langchain_tool_calls(chat_model: Any) -> None:
    from langchain_core.tools import tool

    @tool
    def weather(city: Literal["Paris", "London", "Tokyo"]) -> str:
        """The weather in a city."""
        return "sunny"

    model = chat_model(max_tokens=30, temperature=0).bind_tools([weather], tool_choice="weather")
    reply = model.invoke("What is the weather in Paris?")
    assert [c["name"] for c in reply.tool_calls] == ["weather"] and "city" in reply.tool_calls[0]["args"]
    total = None
    for chunk in model.stream("What is the weather in Paris?"):
        total = chunk if total is None else total + chunk
    assert total is not None and [c["name"] for c in total.tool_calls] == ["weather"]


class City(BaseModel):
    """A city and its country."""

    city: str
    country: str


def test_langchain_structured_output_parses(chat_model: Any) -> None:
    structured = chat_model(max_tokens=60, temperature=0).with_structured_output(City)
    answer = structured.invoke("Paris is the capital of France. Give the city and the country.")
    assert isinstance(answer, City)
