"""`emd invoke`: talk to a deployment through the official `openai` client: a streaming multi-turn chat
(or one streamed answer with --prompt) for LLMs and VLMs, one-shot embeddings, rerank and transcription."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from emd_cli.options import profile_option, region_option, target_option
from emd_cli.targets.base import Endpoint, TargetError
from model_specs.errors import EmdUserError

REQUEST_TIMEOUT = 600.0
REPL_HELP = "Empty line: ignored. /reset: new conversation. /exit or Ctrl-D: quit."


def client_for(endpoint: Endpoint, profile: str | None = None) -> Any:
    """The `openai` client for an endpoint: the gateway's OpenAI API with the deployment's key, or, for an
    AWS deployment without the gateway, SageMaker's runtime through an httpx transport (signed with the
    caller's AWS credentials of `profile`)."""
    from openai import OpenAI

    if not endpoint.via_gateway:
        from emd_cli.aws.sagemaker_transport import sagemaker_http_client
        from emd_cli.aws.session import AwsSession

        if not endpoint.sagemaker_endpoint_name or not endpoint.region:
            raise EmdUserError(f"{endpoint.route} has neither a gateway URL nor a SageMaker endpoint")
        aws = AwsSession(endpoint.region, profile)
        return OpenAI(
            base_url=f"https://runtime.sagemaker.{aws.region}.{aws.url_suffix}/v1",
            api_key="sigv4",  # requests are signed with AWS credentials, not the deployment's key
            max_retries=1,
            http_client=sagemaker_http_client(
                aws.client("sagemaker-runtime"),
                endpoint.sagemaker_endpoint_name,
                REQUEST_TIMEOUT,
                endpoint.inference_component_name,
            ),
        )
    return OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or "none",  # public deployments: the client needs some value
        max_retries=1,
        timeout=REQUEST_TIMEOUT,
    )


def around_an_internal_gateway(endpoint: Endpoint) -> Endpoint:
    """The endpoint to call from here: the gateway's, unless it is internal and out of this machine's reach;
    then SageMaker directly (real-time SageMaker deployments), else a TargetError naming what to do."""
    from emd_cli.exposure import INTERNAL, gateway_reachable, outside_vpc_advice

    if not endpoint.via_gateway or endpoint.gateway_exposure != INTERNAL:
        return endpoint
    if gateway_reachable(endpoint.base_url):
        return endpoint  # this machine is in the VPC (or on its VPN)
    where = f"the gateway {endpoint.base_url} is internal (reachable from its VPC only)"
    if endpoint.direct is None:
        advice = outside_vpc_advice(endpoint.region or "<region>", sagemaker_direct=False)
        raise TargetError(f"{where} and {endpoint.route} is not a SageMaker real-time deployment: {advice}")
    click.echo(
        f"note: {where}: calling the SageMaker endpoint {endpoint.direct.sagemaker_endpoint_name} directly "
        f"with your AWS credentials",
        err=True,
    )
    return endpoint.direct


def stream_answer(client: Any, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """Stream one chat answer to stdout as it comes; return it whole."""
    parts: list[str] = []
    stream = client.chat.completions.create(model=model, messages=messages, stream=True, **params)
    for chunk in stream:
        if not chunk.choices:
            continue
        text = chunk.choices[0].delta.content or ""
        parts.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(parts)


def chat_repl(client: Any, endpoint: Endpoint, system: str | None, params: dict[str, Any]) -> None:
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    if sys.stdin.isatty():
        click.echo(f"Chatting with {endpoint.model} at {endpoint.base_url}. {REPL_HELP}", err=True)
    while True:
        try:
            line = input("you> " if sys.stdin.isatty() else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            messages = list(start)
            click.echo("(new conversation)", err=True)
            continue
        messages.append({"role": "user", "content": line})
        answer = stream_answer(client, endpoint.model, messages, params)
        messages.append({"role": "assistant", "content": answer})


def embed(client: Any, endpoint: Endpoint, inputs: list[str], as_json: bool) -> None:
    result = client.embeddings.create(model=endpoint.model, input=inputs)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    for text, item in zip(inputs, result.data, strict=False):
        head = ", ".join(f"{v:.4f}" for v in item.embedding[:4])
        click.echo(f"{text[:40]!r}: {len(item.embedding)} dimensions [{head}, …]")


def rerank(client: Any, endpoint: Endpoint, query: str, documents: list[str], as_json: bool) -> None:
    result = client.post(
        "/rerank", cast_to=object, body={"model": endpoint.model, "query": query, "documents": documents}
    )
    if as_json or not isinstance(result, dict):
        click.echo(json.dumps(result, indent=2))
        return
    for item in sorted(result.get("results", []), key=lambda r: -r.get("relevance_score", 0)):
        index = item.get("index", 0)
        doc = documents[index] if isinstance(index, int) and index < len(documents) else "?"
        click.echo(f"{item.get('relevance_score', 0):.4f}  {doc}")


def transcribe(client: Any, endpoint: Endpoint, audio: Path) -> None:
    with audio.open("rb") as fh:
        click.echo(client.audio.transcriptions.create(model=endpoint.model, file=fh).text)


@click.command("invoke", short_help="Chat with a deployment, or embed / rerank / transcribe once.")
@click.argument("route", metavar="MODEL_ID/TAG")
@click.option(
    "--prompt", help="Ask once and stream the answer (chat models); the text to embed (embeddings)."
)
@click.option("--system", help="System message for the chat.")
@click.option("--max-tokens", type=click.IntRange(1), help="Longest answer, in tokens.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--input", "inputs", multiple=True, help="Embeddings: a text to embed (repeatable).")
@click.option("--query", help="Rerank: the query.")
@click.option("--document", "documents", multiple=True, help="Rerank: a document to score (repeatable).")
@click.option(
    "--file", "audio", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="ASR: audio file."
)
@click.option("--json", "as_json", is_flag=True, help="Embeddings / rerank: print the whole JSON response.")
@target_option
@region_option
@profile_option
def invoke(
    route: str,
    prompt: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    inputs: tuple[str, ...],
    query: str | None,
    documents: tuple[str, ...],
    audio: Path | None,
    as_json: bool,
    target: str | None,
    region: str | None,
    profile: str | None,
) -> None:
    """Call a deployment through its OpenAI-compatible API with the official `openai` client, using the key
    emd keeps for it. Chat models: a multi-turn chat streamed as it is generated, or one answer with --prompt
    (lines piped on stdin are each one turn).

    \b
    Examples:
      emd invoke SmolLM2-135M-Instruct-GGUF/dev
      emd invoke SmolLM2-135M-Instruct-GGUF/dev --prompt "Name three colours." --max-tokens 60
      emd invoke bge-m3/dev --input "Hello!" --input "How are you?"
      emd invoke bge-reranker-v2-m3/dev --query "What is EMD?" --document "EMD deploys models." \\
                 --document "Bananas."
    """
    import openai

    from emd_cli.targets import find_target, normalize_route

    name = normalize_route(route)
    endpoint = find_target(name, target, region=region, profile=profile).endpoint(name)
    if endpoint is None:
        raise EmdUserError(f"no deployment {name!r}")
    endpoint = around_an_internal_gateway(endpoint)
    client = client_for(endpoint, profile)
    params = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature)) if v is not None}
    try:
        if endpoint.model_type == "embedding":
            texts = list(inputs) or ([prompt] if prompt else [])
            if not texts:
                raise click.UsageError(f"{name} is an embedding model: give --input TEXT (repeatable)")
            embed(client, endpoint, texts, as_json)
        elif endpoint.model_type == "rerank":
            if not query or not documents:
                raise click.UsageError(f"{name} is a rerank model: give --query TEXT and --document TEXT …")
            rerank(client, endpoint, query, list(documents), as_json)
        elif endpoint.model_type == "asr":
            if audio is None:
                raise click.UsageError(f"{name} transcribes speech: give --file AUDIO")
            transcribe(client, endpoint, audio)
        elif prompt is not None:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}
            ]
            stream_answer(client, endpoint.model, messages, params)
        else:
            chat_repl(client, endpoint, system, params)
    except openai.APIConnectionError:
        raise TargetError(f"cannot reach {endpoint.base_url} for {name}: see `emd status {name}`") from None
    except openai.APIStatusError as exc:
        raise TargetError(f"{endpoint.base_url} answered {exc.status_code}: {_error_message(exc)}") from None
    except KeyboardInterrupt:
        click.echo()


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc.message)
