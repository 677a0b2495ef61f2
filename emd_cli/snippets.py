"""Ready-to-paste curl and Python (`openai`) examples for an Endpoint, printed at the end of `emd deploy`."""

from __future__ import annotations

import json

from emd_cli.targets.base import Endpoint

KEY_VARIABLE = "EMD_API_KEY"
HELLO = "Hello! Who are you?"


def _request(endpoint: Endpoint) -> tuple[str, dict[str, object]]:
    """(OpenAI path, JSON body) of a first request for the model's type."""
    if endpoint.model_type == "embedding":
        return "/embeddings", {"model": endpoint.model, "input": ["Hello!", "How are you?"]}
    if endpoint.model_type == "rerank":
        body = {
            "model": endpoint.model,
            "query": "What is EMD?",
            "documents": ["EMD deploys models.", "Bananas."],
        }
        return "/rerank", body
    return "/chat/completions", {"model": endpoint.model, "messages": [{"role": "user", "content": HELLO}]}


def curl(endpoint: Endpoint) -> str:
    auth = f' \\\n  -H "Authorization: Bearer ${KEY_VARIABLE}"' if endpoint.api_key else ""
    if endpoint.model_type == "asr":
        return (
            f"curl {endpoint.base_url}/audio/transcriptions{auth} \\\n"
            f"  -F model={endpoint.model} -F file=@speech.wav"
        )
    path, body = _request(endpoint)
    return (
        f"curl {endpoint.base_url}{path}{auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n  -d '{json.dumps(body)}'"
    )


def python(endpoint: Endpoint) -> str:
    if endpoint.api_key:
        head = f'import os\n\nfrom openai import OpenAI\n\nkey = os.environ["{KEY_VARIABLE}"]\n'
    else:
        head = 'from openai import OpenAI\n\nkey = "none"  # a public deployment takes any key\n'
    head += f'client = OpenAI(base_url="{endpoint.base_url}", api_key=key)\n'
    model = json.dumps(endpoint.model)
    if endpoint.model_type == "embedding":
        body = f'result = client.embeddings.create(model={model}, input=["Hello!", "How are you?"])\n'
        body += "print([len(item.embedding) for item in result.data])\n"
    elif endpoint.model_type == "rerank":
        _, request = _request(endpoint)
        body = f"print(client.post('/rerank', cast_to=object, body={json.dumps(request)}))\n"
    elif endpoint.model_type == "asr":
        body = (
            'with open("speech.wav", "rb") as audio:\n'
            f"    print(client.audio.transcriptions.create(model={model}, file=audio).text)\n"
        )
    else:
        body = (
            "stream = client.chat.completions.create(\n"
            f'    model={model}, messages=[{{"role": "user", "content": "{HELLO}"}}], stream=True\n'
            ")\n"
            "for chunk in stream:\n"
            "    if chunk.choices:\n"
            '        print(chunk.choices[0].delta.content or "", end="", flush=True)\n'
            "print()\n"
        )
    return head + body
