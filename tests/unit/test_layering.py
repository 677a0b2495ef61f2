"""DESIGN.md's dependency rule, checked on the source: emd_cli → emd_stacks → emd_constructs → model_specs;
serving imports only model_specs (it runs in containers and CodeBuild, without the CDK)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("emd_cli", "emd_stacks", "emd_constructs", "model_specs", "serving")
ALLOWED = {
    "emd_cli": {"emd_cli", "emd_stacks", "emd_constructs", "model_specs"},
    "emd_stacks": {"emd_stacks", "emd_constructs", "model_specs"},
    "emd_constructs": {"emd_constructs", "model_specs"},
    "model_specs": {"model_specs"},
    "serving": {"serving", "model_specs"},
}


def top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def imported_packages(path: Path) -> set[str]:
    return top_level_imports(path) & set(PROJECT)


@pytest.mark.parametrize("package", PROJECT)
def test_imports_point_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_packages(path) - ALLOWED[package]
    }
    assert offenders == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from serving.build.prepare import image_tag\n")
    assert imported_packages(module) - ALLOWED["emd_stacks"] == {"serving"}


def test_the_cli_calls_aws_through_one_layer() -> None:
    """boto3 and botocore are imported only in emd_cli/aws (sessions, errors, stacks …): every command gets
    the same timeouts, retries and one-line errors."""
    cli = ROOT / "emd_cli"
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in cli.rglob("*.py")
        if path.relative_to(cli).parts[0] != "aws" and top_level_imports(path) & {"boto3", "botocore"}
    )
    assert offenders == []
