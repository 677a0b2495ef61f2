"""emd's state directory on this machine (`$XDG_STATE_HOME/emd`, else `~/.local/state/emd`): atomic JSON
and secret files, and one lock that serializes the state changes of concurrent `emd` runs."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"  # XDG: ignore relative
    return root / "emd"


def ensure_dir(path: Path) -> Path:
    """The directory, created private to the user (0700) when missing."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`: a reader sees the old
    content or the new one, never a part."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON, or `default` when the file is missing or unreadable (a torn file cannot happen: every
    write is atomic, so unreadable means edited by hand)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return default


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's lock (flock: released by the kernel when this process dies, so a crash never
    leaves it held)."""
    ensure_dir(directory)
    with open(directory / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
