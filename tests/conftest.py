"""Session-wide test environment: no real AWS, no hub downloads, node 22 for jsii."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# nothing reaches real AWS: a client without an explicit endpoint (e.g. the AWS target that `emd status`
# consults next to the local one) meets a closed loopback port and fails at once, without retries
if "AWS_ENDPOINT_URL" not in os.environ:
    from tests.support.servers import free_port

    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    os.environ.setdefault("AWS_MAX_ATTEMPTS", "1")
_node = ROOT / "node_modules" / ".bin" / "node"
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))

# the compiled catalogue (model_specs.compiled) of test runs stays out of the user's cache dir
if "EMD_CACHE_DIR" not in os.environ:
    os.environ["EMD_CACHE_DIR"] = tempfile.mkdtemp(prefix="emd-test-cache-")
    atexit.register(shutil.rmtree, os.environ["EMD_CACHE_DIR"], ignore_errors=True)

# the local Hugging Face-compatible hub: fixtures hf_hub_server (session), hf_hub (per test, client patched)
pytest_plugins = ["tests.support.hf_server"]
