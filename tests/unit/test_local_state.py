"""emd's state on this machine: XDG location, atomic private files, the lock between emd runs, processes
recognised by PID and start time, and the local store's key handling (value 0600, digest for the gateway)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emd_cli import state
from emd_cli.targets.local_store import LocalStore
from emd_cli.targets.processes import ProcessRef, port_free
from model_specs.registry import RegistryEntry


def test_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state.state_dir() == tmp_path / "emd"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert state.state_dir() == Path.home() / ".local" / "state" / "emd"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state.state_dir() == Path.home() / ".local" / "state" / "emd"


def test_write_json_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.json"
    state.write_json(path, {"a": 1})
    state.write_json(path, {"a": 2})
    assert state.read_json(path) == {"a": 2}
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary file left
    path.write_text("{torn")
    assert state.read_json(path, {}) == {} and state.read_json(tmp_path / "missing") is None


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    state.write_json(path, {"old": True})
    with pytest.raises(TypeError):
        state.write_json(path, {"bad": object()})
    assert state.read_json(path) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    probe = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'a+')\n"
        "try:\n    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n    sys.exit(3)\n"
    )
    lock = str(tmp_path / state.LOCK_FILE)
    with state.locked(tmp_path):
        assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, lock]).returncode == 0


def test_process_ref_tells_running_dead_and_reused() -> None:
    me = ProcessRef.of(os.getpid())
    assert me.liveness() == "running"
    assert ProcessRef(me.pid, me.started - 1000).liveness() == "reused"  # same PID, another start time
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ref = ProcessRef.of(child.pid)
    child.wait()
    assert ref.liveness() == "dead"
    assert ProcessRef.from_json(me.to_json()) == me


def test_port_free() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_free(port)
    assert port_free(port)


def test_store_keeps_the_key_value_private_and_only_its_digest_for_the_gateway(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    route, secret = "m/dev", "emd/m/dev/api-key"
    store.put_key(route, secret, "emd-one")
    store.put_key("m/b", "emd/m/b/api-key", "emd-two")
    assert store.read_key(route) == "emd-one"
    assert store.key_path(route).stat().st_mode & 0o777 == 0o600
    digests = json.loads((tmp_path / "key-digests.json").read_text())
    assert digests[secret] == hashlib.sha256(b"emd-one").hexdigest()
    assert "emd-one" not in (tmp_path / "key-digests.json").read_text()
    assert store.drop_key(route, secret)
    assert store.read_key(route) is None and list(
        json.loads((tmp_path / "key-digests.json").read_text())
    ) == ["emd/m/b/api-key"]


def test_store_registry_and_records(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    entry = RegistryEntry(
        model_id="m", model_tag="dev", model_type="llm", service_type="local", backend="http",
        base_url="http://127.0.0.1:1234", api_key_secret_name="emd/m/dev/api-key",
    )  # fmt: skip
    store.put_entry(entry)
    raw = json.loads((tmp_path / "registry.json").read_text())
    assert RegistryEntry.model_validate(raw["entries"]["m/dev"]) == entry
    store.write_record({"route": "m/dev", "stage": "running"})
    store.write_record({"route": "m/b", "stage": "starting"})
    assert sorted(store.records()) == ["m/b", "m/dev"]
    store.remove_deployment("m/dev")
    assert sorted(store.records()) == ["m/b"]
    assert store.drop_entry("m/dev") and not store.drop_entry("m/dev")
