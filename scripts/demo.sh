#!/usr/bin/env bash
# `make demo`: the whole local cycle with the real commands. Deploy SmolLM2 on this machine with a generated
# key, ask one question through the `openai` client (streamed), show a wrong key refused with 401, `emd
# status`, the plan and cost of a model on SageMaker real-time, then destroy. Its state lives in a temporary
# XDG_STATE_HOME (your own local deployments are not touched) and is removed even when a step fails.
set -euo pipefail

ROUTE="SmolLM2-135M-Instruct-GGUF/demo"
STATE="$(mktemp -d)"
export XDG_STATE_HOME="$STATE"
PORT="$(python - <<'PY'
import socket
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", 8080))
        print(8080)
    except OSError:  # 8080 is taken: any free port
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
PY
)"
BASE_URL="http://127.0.0.1:$PORT/v1"
STARTED=$SECONDS

clean_up() {
    if emd status --json 2>/dev/null | grep -q "\"route\": \"$ROUTE\""; then
        emd destroy "$ROUTE" --yes >/dev/null 2>&1 || echo "demo: could not destroy $ROUTE (see emd status)" >&2
    fi
    rm -rf "$STATE"
}
trap clean_up EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local --model-tag demo --port $PORT"
DEPLOY_OUT="$(emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local --model-tag demo --port "$PORT" --skip-confirm)"
printf '%s\n' "$DEPLOY_OUT"
eval "$(grep '^export EMD_API_KEY=' <<<"$DEPLOY_OUT")"

step "2. one question through the openai client, streamed"
BASE_URL="$BASE_URL" MODEL="$ROUTE" python - <<'PY'
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["EMD_API_KEY"])
question = "In one sentence, why run a language model on your own machine?"
print(f"Q: {question}\nA: ", end="", flush=True)
stream = client.chat.completions.create(
    model=os.environ["MODEL"], messages=[{"role": "user", "content": question}], max_tokens=80, stream=True
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
PY

step "3. a wrong key is refused"
BASE_URL="$BASE_URL" MODEL="$ROUTE" python - <<'PY'
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="emd-not-the-key", max_retries=0)
try:
    client.chat.completions.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "hi"}])
except openai.AuthenticationError as exc:
    print(f"HTTP {exc.status_code}: {exc.body['message'] if isinstance(exc.body, dict) else exc.message}")
else:
    sys.exit("demo: the wrong key was accepted")
PY

step "4. emd status"
emd status

step "5. the same kind of deployment on AWS: emd plan (plan and cost on SageMaker real-time, no AWS call)"
emd plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -e vllm -s sagemaker_realtime --no-synth

step "6. emd destroy $ROUTE --yes"
emd destroy "$ROUTE" --yes

printf '\nDemo done in %s s. Your turn: emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local\n' \
    "$((SECONDS - STARTED))"
