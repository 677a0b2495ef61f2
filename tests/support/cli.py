"""`emd` as a user runs it: `python -m emd_cli` from the repository root in a subprocess, output captured, no
terminal on stdin (so nothing waits for an answer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def environ_without(*prefixes: str) -> dict[str, str]:
    """This process's environment without the variables starting with prefixes (e.g. a developer's AWS_*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def run_emd(
    *args: str, env: dict[str, str], timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(
        [sys.executable, "-m", "emd_cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **feed,
    )  # fmt: skip
