"""The local target's files under `<state dir>/local/` (emd_cli.state): what the gateway reads and what the
CLI keeps about each deployment.

    registry.json, key-digests.json     the gateway's file-backed store (EMD_STORE=file, EMD_STATE_DIR=here)
    gateway.json, gateway.log           the shared local gateway: PID, start time, port; its log
    deployments/<model-id>/<tag>/
        deployment.json                 processes, ports, stage of one deployment
        api-key                         the key value (0600), read by `emd invoke`
        engine.log                      the engine adapter's and the engine's log

Every write is atomic and made under the lock (`locked()`); readers need no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Any

from emd_cli import state
from model_specs.registry import LOCAL_KEY_DIGESTS_FILE, LOCAL_REGISTRY_FILE, RegistryEntry

RECORD_FILE = "deployment.json"
KEY_FILE = "api-key"
ENGINE_LOG = "engine.log"


class LocalStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state.state_dir() / "local"

    def locked(self):  # type: ignore[no-untyped-def]
        return state.locked(self.root)

    # ---------------------------------------------------------------- deployments

    @property
    def gateway_file(self) -> Path:
        return self.root / "gateway.json"

    @property
    def gateway_log(self) -> Path:
        return self.root / "gateway.log"

    def deployment_dir(self, route: str) -> Path:
        model_id, _, tag = route.partition("/")
        return self.root / "deployments" / model_id / tag

    def record(self, route: str) -> dict[str, Any] | None:
        data = state.read_json(self.deployment_dir(route) / RECORD_FILE)
        return data if isinstance(data, dict) else None

    def records(self) -> dict[str, dict[str, Any]]:
        found = {}
        for path in sorted((self.root / "deployments").glob(f"*/*/{RECORD_FILE}")):
            data = state.read_json(path)
            if isinstance(data, dict) and isinstance(data.get("route"), str):
                found[data["route"]] = data
        return found

    def write_record(self, record: dict[str, Any]) -> None:
        state.write_json(self.deployment_dir(record["route"]) / RECORD_FILE, record)

    def remove_deployment(self, route: str) -> None:
        """The deployment's folder (record, key file, log); its model-id folder too when it is left empty."""
        folder = self.deployment_dir(route)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: other tags of the model
            folder.parent.rmdir()

    def gateway(self) -> dict[str, Any] | None:
        data = state.read_json(self.gateway_file)
        return data if isinstance(data, dict) else None

    # ---------------------------------------------------------------- API keys

    def key_path(self, route: str) -> Path:
        return self.deployment_dir(route) / KEY_FILE

    def read_key(self, route: str) -> str | None:
        try:
            return self.key_path(route).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def put_key(self, route: str, secret_name: str, key: str) -> None:
        """The value in its 0600 file, its sha256 digest where the gateway reads it."""
        state.write_atomic(self.key_path(route), key + "\n", mode=0o600)
        digests = self._digests()
        digests[secret_name] = hashlib.sha256(key.encode()).hexdigest()
        state.write_json(self.root / LOCAL_KEY_DIGESTS_FILE, digests)

    def drop_key(self, route: str, secret_name: str | None) -> bool:
        digests = self._digests()
        had = secret_name in digests
        if had:
            del digests[secret_name]
            state.write_json(self.root / LOCAL_KEY_DIGESTS_FILE, digests)
        return state.remove(self.key_path(route)) or had

    def _digests(self) -> dict[str, str]:
        data = state.read_json(self.root / LOCAL_KEY_DIGESTS_FILE, {})
        return data if isinstance(data, dict) else {}

    # ---------------------------------------------------------------- the gateway's registry

    def put_entry(self, entry: RegistryEntry) -> None:
        entries = self._entries()
        entries[entry.route] = entry.model_dump(mode="json", exclude_none=True)
        state.write_json(self.root / LOCAL_REGISTRY_FILE, {"entries": entries})

    def drop_entry(self, route: str) -> bool:
        entries = self._entries()
        if route not in entries:
            return False
        del entries[route]
        state.write_json(self.root / LOCAL_REGISTRY_FILE, {"entries": entries})
        return True

    def _entries(self) -> dict[str, Any]:
        data = state.read_json(self.root / LOCAL_REGISTRY_FILE, {})
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}
