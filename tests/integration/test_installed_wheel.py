"""`emd` installed like a user installs it: the wheel built from this tree, installed into a fresh venv
outside it, holds every file the packages need and synthesizes the same templates as the source tree (the
CDK feature flags ship with the package: emd_stacks/cdk_context.json)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("emd_cli", "emd_stacks", "emd_constructs", "model_specs", "serving")
PLAN = ["plan", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g4dn.12xlarge", "-e", "vllm", "-s", "ecs"]
PLAN += ["--region", "cn-north-1", "--json"]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    emd: Path
    workdir: Path  # outside the source tree


def _run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`pip wheel --no-deps .`, then a venv without the source tree that holds the wheel; its dependencies
    come from the project venv's site-packages, added by a .pth line (so the project venv's editable-install
    finder, itself a .pth, is not loaded)."""
    work = tmp_path_factory.mktemp("installed")
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT])
    # setuptools' warnings (e.g. the deprecated TOML-table licence) would print on every user's install
    assert not any(w in build.stderr for w in ("BackendWarning", "DeprecationWarning", "deprecated")), (
        build.stderr
    )
    (wheel,) = (work / "dist").glob("emd-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel])
    purelib = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    )
    (purelib / "zz_project_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return Installed(wheel=wheel, python=python, emd=venv / "bin" / "emd", workdir=work)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_REGION", "AWS_DEFAULT_REGION")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_NODE=str(ROOT / "node_modules/.bin/node"),
    )
    return env


def test_the_installed_packages_are_the_wheels_not_the_source_tree(installed: Installed) -> None:
    code = "import importlib; print(*[importlib.import_module(p).__file__ for p in " + repr(PACKAGES) + "])"
    files = _run([installed.python, "-c", code], cwd=installed.workdir, env=_env()).stdout.split()
    venv = installed.python.parent.parent
    assert len(files) == len(PACKAGES) and all(Path(f).is_relative_to(venv) for f in files), files


def test_the_wheel_holds_every_file_of_the_packages(installed: Installed) -> None:
    """Catalogue YAML, Dockerfiles, buildspec, shell scripts, requirements, the CDK context: everything in the
    package folders of the tree (caches aside) is in the wheel."""
    in_tree = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    in_wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    assert in_tree - in_wheel == set()
    assert {
        "emd_stacks/cdk_context.json",
        "serving/build/buildspec.yml",
        "serving/engine/entrypoint.sh",
    } <= in_wheel


def test_plan_from_the_wheel_synthesizes_the_templates_of_the_source_tree(installed: Installed) -> None:
    ours = installed.workdir / "from-wheel"
    theirs = installed.workdir / "from-source"
    runs = [  # side by side: each synth takes several seconds
        subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd, cwd in (
            ([installed.emd, *PLAN, "--outdir", ours], installed.workdir),
            ([sys.executable, "-m", "emd_cli", *PLAN, "--outdir", theirs], ROOT),
        )
    ]
    (wheel_out, wheel_err), (source_out, source_err) = (run.communicate(timeout=300) for run in runs)
    assert [run.returncode for run in runs] == [0, 0], wheel_err[-2000:] + source_err[-2000:]
    assert json.loads(wheel_out)["synth"] == json.loads(source_out)["synth"] == "synthesized"
    templates = sorted(p.name for p in theirs.glob("*.template.json"))
    assert templates and sorted(p.name for p in ours.glob("*.template.json")) == templates
    for name in templates:
        assert json.loads((ours / name).read_text()) == json.loads((theirs / name).read_text()), name


def test_list_from_the_wheel_matches_the_source_tree(installed: Installed, tmp_path: Path) -> None:
    env = {**_env(), "EMD_CACHE_DIR": str(tmp_path)}
    args = ["list-supported-models", "--json", "--region", "us-west-2"]
    wheel = _run([installed.emd, *args], cwd=installed.workdir, env=env)
    source = _run([sys.executable, "-m", "emd_cli", *args], cwd=ROOT, env=env)
    assert json.loads(wheel.stdout) == json.loads(source.stdout)


DIRECT_SYNTH = """
import sys
import emd_constructs
from emd_stacks.model import ModelStack
from emd_stacks.synth import cloudformation_app
from model_specs.deployment import resolve_deployment

app = cloudformation_app(sys.argv[1])
d = resolve_deployment(model_id="SmolLM2-135M-Instruct-GGUF", instance_type="g4dn.xlarge",
                       engine_type="llama.cpp", service_type="ecs", region="cn-north-1")
ModelStack(app, d, own_api_key=True)
app.synth()
"""


def test_a_direct_model_stack_from_the_wheel_has_the_assets_of_the_source_tree(installed: Installed) -> None:
    """`cdk deploy -c model_id=…`'s stack carries two assets built from package files (the build inputs and
    the custom resource's handler): the same keys whether the packages come from the wheel or the tree."""
    ours, theirs = installed.workdir / "direct-wheel", installed.workdir / "direct-source"
    runs = [
        subprocess.Popen(
            [python, "-c", DIRECT_SYNTH, out], cwd=cwd, env=_env(), stderr=subprocess.PIPE, text=True
        )
        for python, out, cwd in ((installed.python, ours, installed.workdir), (sys.executable, theirs, ROOT))
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    (name,) = [p.name for p in theirs.glob("*.template.json")]
    wheel, source = (json.loads((d / name).read_text()) for d in (ours, theirs))
    assert wheel == source
    keys = {
        r["Properties"].get("SourceKey")
        for r in source["Resources"].values()
        if r["Type"] == "Custom::EmdModelBuild"
    }
    assert len(keys) == 1 and None not in keys and (theirs / f"asset.{next(iter(keys))}").exists()
