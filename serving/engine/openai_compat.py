"""Where llama-cpp-python's OpenAI server differs from the OpenAI API, and how the engine adapter bridges it.

Requests are validated against pydantic models of OpenAI's request bodies: a wrong type or value is a 400 in
OpenAI's error shape naming the field (`param`), instead of the engine's 500 carrying its file paths. They
are then translated to what the engine accepts (`max_completion_tokens` -> `max_tokens`, `json_schema` -> its
`json_object` + schema grammar, `developer` -> `system`, text content parts joined), or refused with a 400
where the engine cannot do what OpenAI would (images, token arrays, `dimensions`, `best_of`). The engine
answers one choice per request, so `n` choices (and a list of prompts) become one engine call each, merged
here; its embeddings come per token for a model without pooling, so they are mean-pooled, and normalised as
OpenAI's are.

Pure functions; serving.engine.compat_relay makes the engine calls.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
# the engine generates choices one after another: more than this many in one request is refused
MAX_CHOICES = 16
COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


# ---------------------------------------------------------------- OpenAI request bodies


class _Body(BaseModel):
    # strict: a JSON string is not a number, as OpenAI answers; fields OpenAI added since pass through
    model_config = ConfigDict(strict=True, extra="allow")


class ContentPart(_Body):
    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a content part of type 'text' needs a string 'text'")
        return self


Content = str | list[ContentPart]


class FunctionCall(_Body):
    name: str
    arguments: str


class ToolCall(_Body):
    id: str
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(_Body):
    role: Literal["system", "developer"]
    content: Content
    name: str | None = None


class UserMessage(_Body):
    role: Literal["user"]
    content: Content
    name: str | None = None


class AssistantMessage(_Body):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    name: str | None = None
    refusal: str | None = None


class ToolMessage(_Body):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


class FunctionMessage(_Body):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class StreamOptions(_Body):
    include_usage: bool | None = None


class JsonSchema(_Body):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextFormat(_Body):
    type: Literal["text"]


class JsonObjectFormat(_Body):
    type: Literal["json_object"]


class JsonSchemaFormat(_Body):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class FunctionDefinition(_Body):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Body):
    type: Literal["function"]
    function: FunctionDefinition


class ToolName(_Body):
    name: str


class NamedToolChoice(_Body):
    type: Literal["function"]
    function: ToolName


TokenId = Annotated[str, Field(pattern=r"^[0-9]+$")]


class _Generation(_Body):
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[TokenId, Annotated[int, Field(ge=-100, le=100)]] | None = None
    seed: int | None = None
    user: str | None = None


class ChatCompletionRequest(_Generation):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(_Generation):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=None, ge=0)
    suffix: str | None = None
    echo: bool | None = None
    best_of: int | None = Field(default=None, ge=1, le=20)
    logprobs: int | None = Field(default=None, ge=0, le=5)


class EmbeddingRequest(_Body):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


REQUEST_MODELS: dict[str, type[_Body]] = {
    CHAT: ChatCompletionRequest,
    COMPLETIONS: CompletionRequest,
    EMBEDDINGS: EmbeddingRequest,
}


# ---------------------------------------------------------------- refusals


@dataclass(frozen=True)
class Refusal:
    """A 400 in OpenAI's error shape."""

    message: str
    param: str | None
    code: str


def _param(loc: tuple[int | str, ...], body: Any, missing: bool) -> str | None:
    """OpenAI's name for the field at a pydantic error location ('messages[1].content'): the location is
    walked along the body, so union branch and tag names (which are not keys of the body) drop out."""
    path, node = "", body
    for position, item in enumerate(loc):
        if isinstance(node, dict) and isinstance(item, str) and item in node:
            path, node = (f"{path}.{item}" if path else item), node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            path, node = f"{path}[{item}]", node[item]
        elif missing and position == len(loc) - 1 and isinstance(item, str):
            path = f"{path}.{item}" if path else item
    return path or None


QUOTE = "'"


def _refusal_from(error: Any, body: Any) -> Refusal:
    kind = error["type"]
    param = _param(tuple(error["loc"]), body, kind == "missing")
    if kind.startswith("union_tag_") and error.get("ctx", {}).get("discriminator"):
        param = f"{param}.{error['ctx']['discriminator'].strip(QUOTE)}" if param else param
    what = f"'{param}'" if param else "the request body"
    msg = error["msg"].removeprefix("Value error, ")
    detail = msg[:1].lower() + msg[1:]
    if kind == "missing":
        return Refusal(f"Missing required parameter: {what}.", param, "missing_required_parameter")
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        return Refusal(f"Invalid type for {what}: {detail}.", param, "invalid_type")
    return Refusal(f"Invalid value for {what}: {detail}.", param, "invalid_value")


def validation_refusal(exc: ValidationError, body: Any) -> Refusal:
    """The most specific of pydantic's errors, as OpenAI reports one: the deepest field, and a wrong value
    before a wrong type (the branch of a union whose type matched says what is wrong)."""
    refusals = [_refusal_from(error, body) for error in exc.errors(include_url=False, include_input=False)]
    return max(refusals, key=lambda r: (len(r.param or ""), r.code != "invalid_type"))


# ---------------------------------------------------------------- request translation


@dataclass(frozen=True)
class EngineCall:
    """One engine request; its single choice takes `index` in the merged answer."""

    body: dict[str, Any]
    index: int
    counts_prompt: bool  # the first call for its prompt: its prompt tokens count once in the usage


@dataclass(frozen=True)
class Plan:
    route: str
    calls: tuple[EngineCall, ...]
    stream: bool = False
    include_usage: bool = False
    encoding_format: str = "float"
    # the engine adds the deprecated function_call beside tool_calls: kept only for the deprecated `functions`
    keep_function_call: bool = False


def plan_request(route: str, body: Any) -> Plan | Refusal:
    """Validate an OpenAI request body for `route` and turn it into the engine calls that answer it. The
    translation works on a copy of the client's own dict, so fields the models do not name pass unchanged."""
    if not isinstance(body, dict):
        return Refusal("The request body must be a JSON object.", None, "invalid_type")
    try:
        REQUEST_MODELS[route].model_validate(body)
    except ValidationError as exc:
        return validation_refusal(exc, body)
    if route == EMBEDDINGS:
        return _embedding_plan(body)
    stream = body.get("stream") is True
    if body.get("stream_options") is not None and not stream:
        return Refusal(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    include_usage = stream and (body.get("stream_options") or {}).get("include_usage") is True
    engine_body = {k: v for k, v in body.items() if k not in ("n", "stream_options")}
    if route == CHAT:
        translated, prompts = _chat_body(engine_body), [None]
    else:
        translated, prompts = _completion_body(engine_body), _prompts(body["prompt"])
    if isinstance(translated, Refusal):
        return translated
    if isinstance(prompts, Refusal):
        return prompts
    n = body.get("n") or 1
    if n * len(prompts) > MAX_CHOICES:
        return Refusal(
            f"This engine generates choices one after another: at most {MAX_CHOICES} per request "
            f"(n × prompts), got {n * len(prompts)}.",
            "n",
            "invalid_value",
        )
    calls = []
    for p, prompt in enumerate(prompts):
        for j in range(n):
            call_body = dict(translated)
            if prompt is not None:
                call_body["prompt"] = prompt
            if n > 1 and isinstance(call_body.get("seed"), int):
                call_body["seed"] += j  # the same seed would give n identical choices
            calls.append(EngineCall(call_body, p * n + j, j == 0))
    return Plan(
        route,
        tuple(calls),
        stream=stream,
        include_usage=include_usage,
        keep_function_call="functions" in body and "tools" not in body,
    )


def _chat_body(body: dict[str, Any]) -> dict[str, Any] | Refusal:
    out = dict(body)
    messages = []
    for i, message in enumerate(body["messages"]):
        translated = _engine_message(i, message)
        if isinstance(translated, Refusal):
            return translated
        messages.append(translated)
    out["messages"] = messages
    limit = out.pop("max_completion_tokens", None)
    if limit is not None:  # OpenAI's successor of max_tokens; the engine knows only max_tokens
        out["max_tokens"] = limit
    tool_choice = _engine_tool_choice(body)
    if isinstance(tool_choice, Refusal):
        return tool_choice
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    fmt = out.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        # llama-cpp-python constrains the output with a grammar built from a JSON schema given this way
        schema = fmt["json_schema"].get("schema")
        out["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    return out


def _engine_tool_choice(body: dict[str, Any]) -> Any:
    """The engine forces a call only to a named function (with a grammar of its parameters): `required` with
    a single tool names it; with several it is refused rather than silently left to the model."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if choice is None:
        return None
    if not tools:
        message = "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
        return Refusal(message, "tool_choice", "invalid_value")
    names = [tool["function"]["name"] for tool in tools]
    if isinstance(choice, dict) and choice["function"]["name"] not in names:
        named = choice["function"]["name"]
        message = f"Invalid value for 'tool_choice': no function named {named!r} in 'tools'."
        return Refusal(message, "tool_choice.function.name", "invalid_value")
    if choice == "required":
        if len(names) > 1:
            message = (
                "This engine can force a call only to one named function: with several tools, name it in "
                "'tool_choice' ({'type': 'function', 'function': {'name': ...}})."
            )
            return Refusal(message, "tool_choice", "invalid_value")
        return {"type": "function", "function": {"name": names[0]}}
    return choice


def _engine_message(i: int, message: dict[str, Any]) -> dict[str, Any] | Refusal:
    out = dict(message)
    if out["role"] == "developer":
        out["role"] = "system"
    content = out.get("content")
    if content is None:  # an assistant turn that only called tools; the engine wants a string
        out["content"] = ""
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if part["type"] != "text":
                return Refusal(
                    f"This model takes text only: content parts of type {part['type']!r} are not supported.",
                    f"messages[{i}].content[{j}].type",
                    "invalid_value",
                )
        out["content"] = "\n".join(part["text"] for part in content)
    return out


def _completion_body(body: dict[str, Any]) -> dict[str, Any] | Refusal:
    if body.get("max_tokens") == 0:
        return Refusal(
            "This engine cannot score a prompt without generating: 'max_tokens' must be at least 1.",
            "max_tokens",
            "invalid_value",
        )
    best_of = body.get("best_of")
    if best_of not in (None, 1):
        message = "'best_of' is not supported by this engine: ask for 'n' choices instead."
        return Refusal(message, "best_of", "invalid_value")
    out = {k: v for k, v in body.items() if k != "best_of"}
    if out.get("max_tokens") is None:
        out["max_tokens"] = COMPLETION_MAX_TOKENS  # OpenAI's default; the engine reads null as "no limit"
    return out


def _prompts(prompt: Any) -> list[Any] | Refusal:
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not prompts or not all(isinstance(p, str) for p in prompts):
        return Refusal(
            "This model takes 'prompt' as a string or a non-empty array of strings, not token arrays.",
            "prompt",
            "invalid_value",
        )
    return list(prompts)


def _embedding_plan(body: dict[str, Any]) -> Plan | Refusal:
    if body.get("dimensions") is not None:
        return Refusal("This model does not support specifying dimensions.", "dimensions", "invalid_value")
    given = body["input"]
    inputs = [given] if isinstance(given, str) else given
    if not inputs or not all(isinstance(x, str) and x for x in inputs):
        return Refusal(
            "This model takes 'input' as a non-empty string or an array of non-empty strings, "
            "not token arrays.",
            "input",
            "invalid_value",
        )
    engine_body = {k: v for k, v in body.items() if k not in ("encoding_format", "dimensions")}
    return Plan(
        EMBEDDINGS,
        (EngineCall(engine_body, 0, True),),
        encoding_format=body.get("encoding_format") or "float",
    )


def usage_probe(body: dict[str, Any]) -> dict[str, Any]:
    """The unstreamed one-token twin of a streamed engine call: its usage gives the engine's own prompt count
    (the engine applies the chat template, so the adapter cannot count the prompt itself)."""
    drop = ("stream", "logprobs", "top_logprobs", "echo")
    return {**{k: v for k, v in body.items() if k not in drop}, "max_tokens": 1}


# ---------------------------------------------------------------- answers


def usage(plan: Plan, counts: list[tuple[int, int]]) -> dict[str, int]:
    """OpenAI's usage from (prompt, completion) tokens per engine call: each prompt counted once, the
    completions of every choice summed."""
    prompt = sum(p for call, (p, _) in zip(plan.calls, counts, strict=True) if call.counts_prompt)
    completion = sum(c for _, c in counts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def merge_answers(plan: Plan, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One OpenAI answer from the engine's one-choice answers, each choice under its index."""
    choices = [
        _openai_choice(choice, call.index, plan.keep_function_call)
        for call, answer in zip(plan.calls, answers, strict=True)
        for choice in answer.get("choices", [])
    ]
    merged = {**answers[0], "choices": choices}
    usages = [answer.get("usage") for answer in answers]
    if all(isinstance(u, dict) for u in usages):
        merged["usage"] = usage(plan, [(u["prompt_tokens"], u["completion_tokens"]) for u in usages])  # type: ignore[index]
    return merged


def _openai_choice(choice: dict[str, Any], index: int, keep_function_call: bool) -> dict[str, Any]:
    out = {**choice, "index": index}
    if not keep_function_call and isinstance(out.get("message"), dict):
        out["message"] = {k: v for k, v in out["message"].items() if k != "function_call"}
    return out


class ChoiceStream:
    """One engine stream (one choice) inside the merged stream: each chunk gets the choice's index, the
    stream's one id and OpenAI's `usage: null`; a tool call's id, type and name come in its first delta only
    (the engine repeats them, which OpenAI clients would concatenate). Keeps the generated text, to count."""

    def __init__(self, index: int, include_usage: bool, keep_function_call: bool) -> None:
        self.index = index
        self.include_usage = include_usage
        self.keep_function_call = keep_function_call
        self.text = ""
        self.finish_reason: str | None = None
        self._started_tools: set[Any] = set()

    def restamp(self, chunk: dict[str, Any], stream_id: str) -> dict[str, Any]:
        chunk["id"] = stream_id
        for choice in chunk.get("choices", []):
            choice["index"] = self.index
            self.text += choice.get("text") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._fix_delta(delta)
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _fix_delta(self, delta: dict[str, Any]) -> None:
        self.text += delta.get("content") or ""
        if not self.keep_function_call:
            delta.pop("function_call", None)
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            self.text += function.get("arguments") or ""  # the name is not generated: the grammar names it
            if call.get("index") in self._started_tools:
                call.pop("id", None)
                call.pop("type", None)
                function.pop("name", None)
            self._started_tools.add(call.get("index"))


def completion_tokens(counted: int, finish_reason: str | None, max_tokens: Any) -> int:
    """Tokens generated for one streamed choice: exactly max_tokens when generation stopped at that limit,
    otherwise the engine tokenizer's count of the streamed text."""
    if finish_reason == "length" and isinstance(max_tokens, int) and max_tokens > 0:
        return max_tokens
    return counted


def usage_chunk(first_chunk: dict[str, Any], totals: dict[str, int]) -> dict[str, Any]:
    """The last chunk of a stream with include_usage, as OpenAI sends it: no choices, the usage."""
    keep = ("id", "object", "created", "model", "system_fingerprint")
    return {**{k: first_chunk[k] for k in keep if k in first_chunk}, "choices": [], "usage": totals}


def pooled_embeddings(answer: dict[str, Any], encoding_format: str) -> dict[str, Any]:
    """One unit vector per input: per-token vectors (a model without pooling) are averaged, every vector is
    L2-normalised as OpenAI's are, and base64 is little-endian float32 as OpenAI encodes it."""
    data = []
    for item in answer.get("data", []):
        vector = item["embedding"]
        if vector and isinstance(vector[0], list):
            vector = mean_pool(vector)
        vector = l2_normalised(vector)
        data.append({**item, "embedding": encode_base64(vector) if encoding_format == "base64" else vector})
    return {**answer, "data": data}


def mean_pool(vectors: list[list[float]]) -> list[float]:
    return [math.fsum(column) / len(vectors) for column in zip(*vectors, strict=True)]


def l2_normalised(vector: list[float]) -> list[float]:
    # scaled by the largest magnitude first: squaring subnormal components would lose all precision
    scale = max((abs(x) for x in vector), default=0.0)
    if scale == 0:
        return list(vector)
    scaled = [x / scale for x in vector]
    norm = math.sqrt(math.fsum(x * x for x in scaled))
    return [x / norm for x in scaled]


def encode_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
