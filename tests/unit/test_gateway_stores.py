"""The gateway's two deployment stores read the same registry schema and give key digests, never keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from serving.gateway.config import GatewayConfig
from serving.gateway.stores import KEY_DIGESTS_FILE, REGISTRY_FILE, AwsStore, FileStore, KeyUnavailable

ENTRY = {
    "model_id": "SmolLM2-135M-Instruct-GGUF",
    "model_tag": "dev",
    "model_type": "llm",
    "service_type": "local",
    "backend": "http",
    "base_url": "http://127.0.0.1:9999",
    "api_key_secret_name": "emd/SmolLM2-135M-Instruct-GGUF/dev/api-key",
}


def test_file_store_reads_entries_and_digests(tmp_path: Path) -> None:
    route = "SmolLM2-135M-Instruct-GGUF/dev"
    (tmp_path / REGISTRY_FILE).write_text(
        json.dumps({"entries": {route: ENTRY, "bad/dev": {"model_id": "x"}}})
    )
    secret = ENTRY["api_key_secret_name"]
    (tmp_path / KEY_DIGESTS_FILE).write_text(json.dumps({secret: hashlib.sha256(b"sk-1").hexdigest()}))
    store = FileStore(tmp_path)
    entries = store.load_entries()
    assert list(entries) == [route]  # the malformed entry is skipped
    assert entries[route].base_url == "http://127.0.0.1:9999"
    assert store.key_digest(secret) == hashlib.sha256(b"sk-1").digest()
    assert store.key_digest("emd/other/dev/api-key") is None


def test_file_store_without_files_is_empty_and_a_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.load_entries() == {}
    assert store.key_digest("emd/x/dev/api-key") is None
    (tmp_path / KEY_DIGESTS_FILE).write_text("{half")
    with pytest.raises(KeyUnavailable):
        store.key_digest("emd/x/dev/api-key")


class _Secrets:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"SecretString": str(self.answer)}


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        self.response = {"Error": {"Code": code}}


def test_aws_store_tells_a_missing_secret_from_an_unreadable_one() -> None:
    assert AwsStore(None, _Secrets('{"api_key": "sk-2"}'), "/emd/models").key_digest("s") == (
        hashlib.sha256(b"sk-2").digest()
    )
    assert AwsStore(None, _Secrets(_ClientError("ResourceNotFoundException")), "/p").key_digest("s") is None
    with pytest.raises(KeyUnavailable, match="ThrottlingException"):
        AwsStore(None, _Secrets(_ClientError("ThrottlingException")), "/p").key_digest("s")


def test_gateway_config_names_what_is_missing_in_one_line() -> None:
    with pytest.raises(SystemExit, match="no AWS region: set AWS_REGION"):
        GatewayConfig.from_env({})
    with pytest.raises(SystemExit, match="EMD_STORE=file needs EMD_STATE_DIR"):
        GatewayConfig.from_env({"EMD_STORE": "file"})
    cfg = GatewayConfig.from_env({"EMD_STORE": "file", "EMD_STATE_DIR": "/tmp/x"})
    assert not cfg.aws and cfg.state_dir == "/tmp/x"
