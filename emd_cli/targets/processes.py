"""Background processes of the local target: started detached from the terminal, recognised later by PID and
start time (a PID the kernel reused for another program is not ours), stopped with SIGTERM then SIGKILL;
loopback ports checked and picked."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

LOOPBACK = "127.0.0.1"
# psutil's start time comes from jiffies since boot: equal for the same process, whatever reads it
START_TIME_TOLERANCE = 0.05

Liveness = Literal["running", "dead", "reused"]


@dataclass(frozen=True)
class ProcessRef:
    """One process we started: its PID and its start time (seconds since the epoch)."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid, psutil.Process(pid).create_time())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRef:
        return cls(int(data["pid"]), float(data["started"]))

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started}

    def liveness(self) -> Liveness:
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > START_TIME_TOLERANCE:
                return "reused"
            if proc.status() == psutil.STATUS_ZOMBIE:
                return "dead"
        except psutil.NoSuchProcess:
            return "dead"
        return "running"

    def alive(self) -> bool:
        return self.liveness() == "running"

    def children(self) -> list[ProcessRef]:
        """Its descendants now (the engine the adapter started, and the engine's own workers)."""
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        refs = []
        for kid in kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                refs.append(ProcessRef(kid.pid, kid.create_time()))
        return refs


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (no controlling terminal: Ctrl-C in the shell and closing it leave
    it running), stdin from /dev/null, stdout and stderr appended to `log` (created 0600)."""
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=log.parent,
        )
    finally:
        os.close(fd)


def stop(ref: ProcessRef, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`: True when the process is gone (or was never ours to stop)."""
    if ref.liveness() != "running":
        return True
    try:
        proc = psutil.Process(ref.pid)
        proc.terminate()
        _, alive = psutil.wait_procs([proc], timeout=timeout)
        if alive:
            proc.kill()
            _, alive = psutil.wait_procs([proc], timeout=5)
    except psutil.NoSuchProcess:
        return True
    return not alive or ref.liveness() != "running"


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as aiohttp binds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_owner(port: int) -> str | None:
    """'pid 123 (nginx)' for the process listening on the port, when this user may see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                return f"pid {conn.pid}"
    return None


def wait_port_free(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
