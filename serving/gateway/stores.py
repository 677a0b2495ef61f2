"""Where the gateway reads its deployment registry and API key digests: one interface, two stores.

- AwsStore: SSM parameters under /emd/models/ (the registry) and Secrets Manager (one key per deployment).
- FileStore: files under a local state directory, written by `emd deploy -s local`: `registry.json` (the
  same RegistryEntry schema) and `key-digests.json` (sha256 hex digest of each key by secret name; the key
  value itself is never stored here).

Both methods block (file or network I/O): the gateway calls them off the event loop.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from model_specs.registry import LOCAL_KEY_DIGESTS_FILE as KEY_DIGESTS_FILE
from model_specs.registry import LOCAL_REGISTRY_FILE as REGISTRY_FILE
from model_specs.registry import RegistryEntry

log = logging.getLogger("emd.gateway.store")


class KeyUnavailable(Exception):
    """The key store could not be read (network, throttling, permissions): not the same as 'no such key'."""


class DeploymentStore(Protocol):
    def load_entries(self) -> dict[str, RegistryEntry]:
        """Every registry entry, keyed by '<model-id>/<tag>'. Raises when the store cannot be read."""
        ...

    def key_digest(self, secret_name: str) -> bytes | None:
        """sha256 digest of the deployment's key; None when there is no such key. KeyUnavailable when the
        store cannot be read."""
        ...


def _entries_from_values(values: list[tuple[str, str]]) -> dict[str, RegistryEntry]:
    """(source name, JSON value) pairs to entries; malformed values are skipped with a warning."""
    entries: dict[str, RegistryEntry] = {}
    for name, value in values:
        try:
            entry = RegistryEntry.model_validate_json(value)
        except ValidationError as exc:
            log.warning("skipping malformed registry entry %s: %s", name, exc.error_count())
            continue
        entries[entry.route] = entry
    return entries


class AwsStore:
    def __init__(self, ssm: Any, secrets: Any, prefix: str) -> None:
        self._ssm = ssm
        self._secrets = secrets
        self._prefix = prefix

    def load_entries(self) -> dict[str, RegistryEntry]:
        values = [
            (param.get("Name", "?"), param["Value"])
            for page in self._ssm.get_paginator("get_parameters_by_path").paginate(
                Path=self._prefix, Recursive=True
            )
            for param in page.get("Parameters", [])
        ]
        return _entries_from_values(values)

    def key_digest(self, secret_name: str) -> bytes | None:
        from serving.gateway.auth import digest, key_from_secret_string

        try:
            value = self._secrets.get_secret_value(SecretId=secret_name).get("SecretString")
        except Exception as exc:
            code = (getattr(exc, "response", {}) or {}).get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None
            raise KeyUnavailable(f"{secret_name}: {code or type(exc).__name__}") from None
        key = key_from_secret_string(value) if isinstance(value, str) else None
        return digest(key) if key else None


class FileStore:
    """The local target's store: plain JSON files the `emd` CLI writes atomically (write + rename)."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)

    def _read(self, name: str) -> Any:
        path = self._dir / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyUnavailable(f"{path}: {type(exc).__name__}") from None

    def load_entries(self) -> dict[str, RegistryEntry]:
        data = self._read(REGISTRY_FILE)
        items = data.get("entries", {}) if isinstance(data, dict) else {}
        return _entries_from_values([(route, json.dumps(value)) for route, value in items.items()])

    def key_digest(self, secret_name: str) -> bytes | None:
        data = self._read(KEY_DIGESTS_FILE)
        value = data.get(secret_name) if isinstance(data, dict) else None
        if not isinstance(value, str):
            return None
        try:
            return bytes.fromhex(value)
        except ValueError:
            log.warning("malformed key digest for %s", secret_name)
            return None
