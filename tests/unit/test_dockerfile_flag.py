"""`emd plan|deploy --dockerfile-local-path`: the file's text becomes engine_params.dockerfile (built on the
EMD engine image by the build stage); a bad file or a conflicting flag is one line and exit 2, before any
AWS call; -s local refuses it (no Docker there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emd_cli.main import cli
from emd_stacks.model_inputs import engine_image_tag
from model_specs.deployment import resolve_deployment

DOCKERFILE = "RUN pip install --no-cache-dir flash-attn\nENV EMD_EXTRA=1\n"
AWS_ARGS = ["--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-e", "vllm", "-s", "ec2"]
LOCAL_ARGS = ["--model-id", "SmolLM2-135M-Instruct-GGUF", "-s", "local"]


@pytest.fixture
def dockerfile(tmp_path: Path) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), env={"AWS_REGION": "us-east-1"})


def test_plan_builds_the_users_dockerfile_on_the_engine_image(dockerfile: Path) -> None:
    res = run("plan", *AWS_ARGS, "--no-synth", "--json", "--dockerfile-local-path", str(dockerfile))
    assert res.exit_code == 0, res.output
    facts = json.loads(res.stdout)
    expected = resolve_deployment(
        model_id="Qwen2.5-7B-Instruct", instance_type="g5.2xlarge", engine_type="vllm", service_type="ec2",
        region="us-east-1", extra_params={"engine_params": {"dockerfile": DOCKERFILE}},
    )  # fmt: skip
    tag = engine_image_tag(expected)
    assert tag.startswith("vllm-custom-") and tag in facts["image"] and "your Dockerfile" in facts["image"]
    assert facts["extra_params"]["engine_params"]["dockerfile"] == "2 lines (see Image)"


def test_plan_table_names_the_custom_image(dockerfile: Path) -> None:
    res = run("plan", *AWS_ARGS, "--no-synth", "--dockerfile-local-path", str(dockerfile))
    assert res.exit_code == 0, res.output
    assert "vllm-custom-" in res.stdout and "flash-attn" not in res.stdout


def test_deploy_hands_the_dockerfile_to_the_target(dockerfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import emd_cli.targets as targets

    seen: list[object] = []

    class Target:
        def deploy(self, dep, **_: object):  # type: ignore[no-untyped-def]
            seen.append(dep)
            raise targets.EmdUserError("stop here")

    monkeypatch.setattr(targets, "target_for", lambda *a, **k: Target())
    res = run("deploy", *AWS_ARGS, "--skip-confirm", "--dockerfile-local-path", str(dockerfile))
    assert res.exit_code == 2 and "stop here" in res.stderr
    (dep,) = seen
    assert dep.extra_params.engine_params.dockerfile == DOCKERFILE  # type: ignore[attr-defined]


def _write(tmp_path: Path, name: str, content: bytes | None) -> str:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("command", ["plan", "deploy"])
@pytest.mark.parametrize(
    ("make", "extra", "needle"),
    [
        (lambda d: str(d / "absent"), None, "does not exist"),
        (lambda d: _write(d, "folder", None), None, "is a folder, not a file"),
        (lambda d: _write(d, "bin", b"\xff\xfe\x00RUN"), None, "is not UTF-8 text"),
        (lambda d: _write(d, "big", b"RUN true\n" * 8000), None, "is 72000 bytes: at most 65536"),
        (lambda d: _write(d, "ubuntu", b"FROM ubuntu:24.04\n"), None, "its first FROM is 'ubuntu:24.04'"),
        (
            lambda d: _write(d, "ok", DOCKERFILE.encode()),
            {"engine_params": {"image_uri": "registry.example.com/team/engine:v3"}},
            "not both --dockerfile-local-path and engine_params.image_uri",
        ),
        (
            lambda d: _write(d, "ok", DOCKERFILE.encode()),
            {"engine_params": {"dockerfile": "RUN true\n"}},
            "not both --dockerfile-local-path and engine_params.dockerfile",
        ),
    ],
)  # fmt: skip
def test_a_bad_file_or_conflicting_flag_is_one_line_and_exit_2(
    tmp_path: Path, command: str, make, extra, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emd_cli.targets as targets

    monkeypatch.setattr(targets, "target_for", lambda *a, **k: pytest.fail("no target may be reached"))
    args = [command, *AWS_ARGS, "--dockerfile-local-path", make(tmp_path)]
    args += ["--no-synth"] if command == "plan" else ["--skip-confirm"]
    if extra:
        args += ["--extra-params", json.dumps(extra)]
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "--dockerfile-local-path" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stdout == "" and "Traceback" not in res.output


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_local_refuses_a_dockerfile(dockerfile: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import emd_cli.targets as targets

    monkeypatch.setattr(targets, "target_for", lambda *a, **k: pytest.fail("no target may be reached"))
    res = run(command, *LOCAL_ARGS, "--dockerfile-local-path", str(dockerfile))
    assert res.exit_code == 2, res.output
    assert "-s local" in res.stderr and "no Docker" in res.stderr and res.stdout == ""


def test_help_documents_the_flag() -> None:
    for command in ("plan", "deploy"):
        res = run(command, "--help")
        assert "--dockerfile-local-path" in res.stdout, command
