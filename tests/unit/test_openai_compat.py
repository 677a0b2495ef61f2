"""serving.engine.openai_compat: OpenAI request bodies validated, translated for llama-cpp-python, and its
answers fixed up (pure functions)."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.engine.openai_compat import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MAX_CHOICES,
    ChoiceStream,
    Plan,
    Refusal,
    completion_tokens,
    merge_answers,
    plan_request,
    pooled_embeddings,
    usage_chunk,
    usage_probe,
)

USER = {"role": "user", "content": "hi"}


def plan(route: str, body: dict[str, Any]) -> Plan:
    got = plan_request(route, body)
    assert isinstance(got, Plan), got
    return got


def refusal(route: str, body: Any) -> Refusal:
    got = plan_request(route, body)
    assert isinstance(got, Refusal), got
    return got


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [USER], "temperature": "hot"}, "temperature", "invalid_type"),
        ({"messages": [USER], "temperature": True}, "temperature", "invalid_type"),
        ({"messages": [USER], "temperature": 2.5}, "temperature", "invalid_value"),
        ({"messages": "hello"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "invalid_value"),
        ({}, "messages", "missing_required_parameter"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [USER, {"role": "user", "content": 5}]}, "messages[1].content", "invalid_type"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0]",
         "invalid_value"),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id",
         "missing_required_parameter"),
        ({"messages": [USER], "max_tokens": 5.0}, "max_tokens", "invalid_type"),
        ({"messages": [USER], "max_completion_tokens": 0}, "max_completion_tokens", "invalid_value"),
        ({"messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        ({"messages": [USER], "stream": "yes"}, "stream", "invalid_type"),
        ({"messages": [USER], "logit_bias": {"hello": 1}}, "logit_bias.hello", "invalid_value"),
        ({"messages": [USER], "response_format": {"type": "json_schema"}}, "response_format.json_schema",
         "missing_required_parameter"),
        ({"messages": [USER], "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name",
         "missing_required_parameter"),
    ],
)  # fmt: skip
def test_malformed_chat_requests_name_the_field(body: dict[str, Any], param: str, code: str) -> None:
    got = refusal(CHAT, body)
    assert (got.param, got.code) == (param, code)
    assert f"'{param}'" in got.message and "site-packages" not in got.message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert refusal(CHAT, [USER]).message == "The request body must be a JSON object."
    assert refusal(EMBEDDINGS, None).code == "invalid_type"


def test_fields_added_to_the_api_later_pass_through() -> None:
    call = plan(CHAT, {"messages": [USER], "store": True, "reasoning_effort": "low"}).calls[0]
    assert call.body["store"] is True and call.body["reasoning_effort"] == "low"


# ---------------------------------------------------------------- chat translation


def test_max_completion_tokens_becomes_max_tokens() -> None:
    body = plan(CHAT, {"messages": [USER], "max_completion_tokens": 5}).calls[0].body
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
    both = plan(CHAT, {"messages": [USER], "max_tokens": 9, "max_completion_tokens": 5}).calls[0].body
    assert both["max_tokens"] == 5


def test_messages_are_what_the_engine_accepts() -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "42"}]},
    ]
    got = plan(CHAT, {"messages": messages}).calls[0].body["messages"]
    assert [m["role"] for m in got] == ["system", "user", "assistant", "tool"]
    assert [m["content"] for m in got] == ["be brief", "a\nb", "", "42"]
    assert got[2]["tool_calls"] == messages[2]["tool_calls"]
    assert messages[0]["role"] == "developer"  # the client's body is not changed


def test_images_are_refused_for_a_text_model() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    got = refusal(
        CHAT, {"messages": [USER, {"role": "user", "content": [{"type": "text", "text": "x"}, part]}]}
    )
    assert got.param == "messages[1].content[1].type" and "image_url" in got.message


def test_json_schema_becomes_the_engines_schema_grammar() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}
    body = plan(CHAT, {"messages": [USER], "response_format": fmt}).calls[0].body
    assert body["response_format"] == {"type": "json_object", "schema": schema}
    bare = {"type": "json_schema", "json_schema": {"name": "A"}}
    assert plan(CHAT, {"messages": [USER], "response_format": bare}).calls[0].body["response_format"] == {
        "type": "json_object"
    }
    json_mode = {"type": "json_object"}
    assert (
        plan(CHAT, {"messages": [USER], "response_format": json_mode}).calls[0].body["response_format"]
        == json_mode
    )


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
OTHER = {"type": "function", "function": {"name": "time"}}


def test_tool_choice() -> None:
    forced = plan(CHAT, {"messages": [USER], "tools": [TOOL], "tool_choice": "required"}).calls[0].body
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    auto = plan(CHAT, {"messages": [USER], "tools": [TOOL, OTHER], "tool_choice": "auto"}).calls[0].body
    assert auto["tool_choice"] == "auto"
    several = refusal(CHAT, {"messages": [USER], "tools": [TOOL, OTHER], "tool_choice": "required"})
    assert several.param == "tool_choice"
    unknown = {"type": "function", "function": {"name": "nope"}}
    assert refusal(CHAT, {"messages": [USER], "tools": [TOOL], "tool_choice": unknown}).param == (
        "tool_choice.function.name"
    )
    assert refusal(CHAT, {"messages": [USER], "tool_choice": "auto"}).param == "tool_choice"


def test_n_is_one_engine_call_per_choice_with_distinct_seeds() -> None:
    got = plan(
        CHAT,
        {"messages": [USER], "n": 3, "seed": 7, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert [c.index for c in got.calls] == [0, 1, 2]
    assert [c.body["seed"] for c in got.calls] == [7, 8, 9]
    assert [c.counts_prompt for c in got.calls] == [True, False, False]
    assert got.stream and got.include_usage
    assert all("n" not in c.body and "stream_options" not in c.body for c in got.calls)
    assert refusal(CHAT, {"messages": [USER], "n": MAX_CHOICES + 1}).param == "n"


def test_stream_options_need_stream() -> None:
    assert (
        refusal(CHAT, {"messages": [USER], "stream_options": {"include_usage": True}}).param
        == "stream_options"
    )
    assert not plan(CHAT, {"messages": [USER], "stream": True, "stream_options": {}}).include_usage


def test_usage_probe_is_an_unstreamed_one_token_twin() -> None:
    body = {"messages": [USER], "stream": True, "max_tokens": 50, "logprobs": True, "tools": [TOOL]}
    assert usage_probe(body) == {"messages": [USER], "max_tokens": 1, "tools": [TOOL]}


# ---------------------------------------------------------------- completions and embeddings


def test_a_list_of_prompts_times_n_choices() -> None:
    got = plan(COMPLETIONS, {"prompt": ["a", "b"], "n": 2})
    assert [(c.body["prompt"], c.index, c.counts_prompt) for c in got.calls] == [
        ("a", 0, True),
        ("a", 1, False),
        ("b", 2, True),
        ("b", 3, False),
    ]
    assert all(
        c.body["max_tokens"] == 16 for c in got.calls
    )  # OpenAI's default; the engine reads null as none


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "logprobs": 9}, "logprobs"),
        ({"prompt": ["x"] * 9, "n": 2}, "n"),
    ],
)
def test_completions_the_engine_cannot_answer_are_refused(body: dict[str, Any], param: str) -> None:
    assert refusal(COMPLETIONS, body).param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": [1, 2]}, "input"), ({"input": ""}, "input"), ({"input": ["a", ""]}, "input"),
     ({"input": "a", "dimensions": 64}, "dimensions"),
     ({"input": "a", "encoding_format": "hex"}, "encoding_format")],
)  # fmt: skip
def test_embeddings_the_engine_cannot_answer_are_refused(body: dict[str, Any], param: str) -> None:
    assert refusal(EMBEDDINGS, body).param == param


def test_embeddings_plan() -> None:
    got = plan(EMBEDDINGS, {"input": ["a", "b"], "encoding_format": "base64", "model": "m"})
    assert got.encoding_format == "base64" and got.calls[0].body == {"input": ["a", "b"], "model": "m"}


# ---------------------------------------------------------------- answers


def answer(text: str, prompt: int, completion: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "function_call": {"name": "f", "arguments": "{}"}}
    return {
        "id": f"chatcmpl-{text}",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def test_merged_answer_has_each_choice_and_the_prompt_counted_once() -> None:
    two = plan(CHAT, {"messages": [USER], "n": 2})
    merged = merge_answers(two, [answer("a", 10, 3), answer("b", 10, 4)])
    assert [(c["index"], c["message"]["content"]) for c in merged["choices"]] == [(0, "a"), (1, "b")]
    assert merged["usage"] == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
    assert merged["id"] == "chatcmpl-a"
    assert all("function_call" not in c["message"] for c in merged["choices"])
    legacy = plan(CHAT, {"messages": [USER], "functions": [{"name": "f"}]})
    assert "function_call" in merge_answers(legacy, [answer("a", 1, 1)])["choices"][0]["message"]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "engine-id",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
    }


def test_streamed_choices_are_restamped_and_tool_call_names_sent_once() -> None:
    stream = ChoiceStream(1, include_usage=True, keep_function_call=False)
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"c'},
    }
    first = stream.restamp(chunk({"tool_calls": [call], "function_call": {"name": "weather"}}), "stream-id")
    later = {**call, "function": {"name": "weather", "arguments": 'ity":1}'}}
    second = stream.restamp(chunk({"tool_calls": [later]}, "tool_calls"), "stream-id")
    assert first["id"] == second["id"] == "stream-id" and first["usage"] is None
    assert first["choices"][0]["index"] == 1 and "function_call" not in first["choices"][0]["delta"]
    assert first["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "weather"
    assert second["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "function": {"arguments": 'ity":1}'},
    }
    assert stream.text == '{"city":1}' and stream.finish_reason == "tool_calls"


def test_streamed_text_is_collected_for_the_count() -> None:
    stream = ChoiceStream(0, include_usage=False, keep_function_call=False)
    stream.restamp(chunk({"role": "assistant"}), "s")
    stream.restamp(chunk({"content": "Hel"}), "s")
    out = stream.restamp(chunk({"content": "lo"}, "stop"), "s")
    assert stream.text == "Hello" and stream.finish_reason == "stop" and "usage" not in out
    completion = ChoiceStream(0, include_usage=False, keep_function_call=False)
    completion.restamp({"id": "x", "choices": [{"index": 0, "text": "abc", "finish_reason": None}]}, "s")
    assert completion.text == "abc"


def test_completion_tokens_and_usage_chunk() -> None:
    assert completion_tokens(6, "length", 7) == 7  # stopped at the limit: exactly max_tokens were generated
    assert completion_tokens(6, "stop", 7) == 6
    assert completion_tokens(6, "length", None) == 6
    first = chunk({"role": "assistant"})
    totals = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert usage_chunk(first, totals) == {
        "id": "engine-id",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": totals,
    }


def test_per_token_embeddings_are_mean_pooled_and_normalised() -> None:
    engine = {
        "data": [{"object": "embedding", "index": 0, "embedding": [[1.0, 2.0], [3.0, 2.0]]}],
        "usage": {},
    }
    got = pooled_embeddings(engine, "float")["data"][0]["embedding"]
    assert got == pytest.approx([2 / math.sqrt(8), 2 / math.sqrt(8)])
    pooled = {"data": [{"index": 0, "embedding": [3.0, 4.0]}]}
    b64 = pooled_embeddings(pooled, "base64")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(b64)) == pytest.approx((0.6, 0.8))
    assert pooled["data"][0]["embedding"] == [3.0, 4.0]  # the engine's answer is not changed in place


@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3), min_size=1, max_size=5))
def test_pooled_vectors_are_unit_length_or_zero(rows: list[list[float]]) -> None:
    vector = pooled_embeddings({"data": [{"index": 0, "embedding": rows}]}, "float")["data"][0]["embedding"]
    norm = math.sqrt(math.fsum(x * x for x in vector))
    assert len(vector) == 3 and (math.isclose(norm, 1.0, rel_tol=1e-9) or norm == 0)
