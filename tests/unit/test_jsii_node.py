"""Synth must not print jsii's node end-of-life banner: emd_constructs points jsii at the pinned node 22."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def _import_cdk_stderr(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stderr


def test_emd_stacks_import_uses_node_22_without_banner():
    stderr = _import_cdk_stderr(
        "import emd_stacks, aws_cdk, os, subprocess;"
        "print(subprocess.run([os.environ['JSII_NODE'], '--version'], capture_output=True, text=True).stdout)"
    )
    assert "end-of-life" not in stderr.lower(), stderr


def test_pinned_node_is_22():
    node = ROOT / "node_modules" / ".bin" / "node"
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v22."), version
