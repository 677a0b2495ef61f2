"""The Build step of a wave: each deployment is built by the EMD bootstrap's own CodeBuild project in its
target (the one `emd deploy`'s pipeline runs), on a bundle like the CLI's: template.json, deployment.json,
serving/ and model_specs/. Its buildspec (serving/build) caches weights by model revision and engine images by
content hash, so a wave whose models.yaml entries did not change moves no weights and builds no image. The
build's parameters.json values go to SSM parameters (model_specs.gitops.artifact_parameter_name) that the
model stack's EngineImageUri / ModelDataS3Uri parameters read at deploy time.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_specs.gitops import PlanEntry, artifact_parameter_name
from model_specs.registry import PARAM_ARTIFACT_BUCKET, PARAM_CODEBUILD_PROJECT

BUNDLE_PACKAGES = ("serving", "model_specs")
POLL_SECONDS = 15.0
LOG_TAIL_LINES = 30
BUILD_LOG_MARK = "[emd-build]"  # serving.build.prepare's own lines: what was cached, built, skipped


class StepError(RuntimeError):
    """A step failed for a reason to print as is (one line, or a few with a log tail)."""


def log(message: str) -> None:
    print(f"[emd-gitops] {message}", flush=True)


@dataclass(frozen=True)
class Bootstrap:
    bucket: str
    project: str


def read_bootstrap(ssm: Any, region: str) -> Bootstrap:
    names = [PARAM_ARTIFACT_BUCKET, PARAM_CODEBUILD_PROJECT]
    found = {p["Name"]: p["Value"] for p in ssm.get_parameters(Names=names).get("Parameters", [])}
    missing = [n for n in names if n not in found]
    if missing:
        raise StepError(
            f"EMD is not bootstrapped in {region} ({', '.join(missing)} missing): run `emd bootstrap "
            f"--region "
            f"{region}` (or `npx cdk deploy EMD-Bootstrap EMD-Gateway`) in that account"
        )
    return Bootstrap(found[PARAM_ARTIFACT_BUCKET], found[PARAM_CODEBUILD_PROJECT])


def add_tree(zf: zipfile.ZipFile, root: Path, package: str) -> None:
    for path in sorted((root / package).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            zf.write(path, path.relative_to(root).as_posix())


def build_bundle(entry: PlanEntry, assembly: Path, src: Path) -> bytes:
    """The source zip the bootstrap's buildspec expects."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(assembly / entry.template, "template.json")
        zf.writestr("deployment.json", json.dumps(entry.deployment, indent=2))
        for package in BUNDLE_PACKAGES:
            add_tree(zf, src, package)
    return buf.getvalue()


def bundle_prefix(pipeline: str, entry: PlanEntry) -> str:
    return f"gitops/{pipeline}/{entry.stack_name}/"


def start_build(codebuild: Any, boot: Bootstrap, prefix: str, entry: PlanEntry, deployment_id: str) -> str:
    variables = {
        "EMD_DEPLOYMENT_ID": deployment_id,
        "EMD_MODEL_ID": entry.deployment["model_id"],
        "EMD_MODEL_TAG": entry.deployment["model_tag"],
        "EMD_STACK_NAME": entry.stack_name,
    }
    build = codebuild.start_build(
        projectName=boot.project,
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{boot.bucket}/{prefix}source.zip",
        artifactsOverride={
            "type": "S3",
            "location": boot.bucket,
            "path": prefix.rstrip("/"),
            "name": "output",
            "packaging": "NONE",
            "namespaceType": "NONE",
        },
        environmentVariablesOverride=[
            {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()
        ],
    )["build"]
    return str(build["id"])


def wait_builds(
    codebuild: Any,
    build_ids: list[str],
    *,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Poll until no build is in progress; return each build's description."""
    pending, done = list(build_ids), {}
    while pending:
        for chunk in (pending[i : i + 100] for i in range(0, len(pending), 100)):
            for build in codebuild.batch_get_builds(ids=chunk).get("builds", []):
                if build.get("buildStatus", "IN_PROGRESS") != "IN_PROGRESS":
                    done[build["id"]] = build
        pending = [b for b in pending if b not in done]
        if pending:
            sleep(poll)
    return done


def build_log(logs: Any, build: dict[str, Any], lines: int | None = None) -> list[str]:
    info = build.get("logs") or {}
    group, stream = info.get("groupName"), info.get("streamName")
    if not group or not stream:
        return []
    try:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": lines is None,
        }
        if lines is not None:
            kwargs["limit"] = lines
        events = logs.get_log_events(**kwargs)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"].rstrip() for e in events]


def failure(build: dict[str, Any], tail: list[str]) -> str:
    failed = next((p for p in build.get("phases", []) if p.get("phaseStatus") in ("FAILED", "FAULT")), None)
    text = f"build {build['id']} {str(build.get('buildStatus', 'FAILED')).lower()}"
    if failed:
        reason = "; ".join(c.get("message", "") for c in failed.get("contexts", []) if c.get("message"))
        text += f" in phase {failed['phaseType']}" + (f": {reason}" if reason else "")
    return "\n".join([text, *(f"  {line}" for line in tail)])


def read_parameters(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}output/parameters.json")["Body"].read()
    return {str(k): str(v) for k, v in json.loads(body).get("Parameters", {}).items()}


def publish_parameters(ssm: Any, entry: PlanEntry, values: dict[str, str]) -> None:
    model_id, tag = entry.deployment["model_id"], entry.deployment["model_tag"]
    for name, value in sorted(values.items()):
        ssm.put_parameter(
            Name=artifact_parameter_name(model_id, tag, name),
            Value=value,
            Type="String",
            Overwrite=True,
            Description=f"EMD GitOps build output {name} of {entry.route}",
        )


def build_entries(
    session: Any,
    region: str,
    entries: list[PlanEntry],
    *,
    pipeline: str,
    assembly: Path,
    src: Path,
    run_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Start one build per entry (in parallel), wait for all, publish the outputs of each; StepError naming
    every failed build with its log tail."""
    ssm, s3 = session.client("ssm"), session.client("s3")
    codebuild, logs = session.client("codebuild"), session.client("logs")
    boot = read_bootstrap(ssm, region)
    started: dict[str, tuple[PlanEntry, str]] = {}
    for entry in entries:
        prefix = bundle_prefix(pipeline, entry)
        s3.put_object(Bucket=boot.bucket, Key=f"{prefix}source.zip", Body=build_bundle(entry, assembly, src))
        build_id = start_build(codebuild, boot, prefix, entry, run_id)
        log(f"{entry.route}: build {build_id} started")
        started[build_id] = (entry, prefix)
    results = wait_builds(codebuild, list(started), sleep=sleep)
    problems = []
    for build_id, (entry, prefix) in started.items():
        build = results[build_id]
        if build.get("buildStatus") != "SUCCEEDED":
            problems.append(f"{entry.route}: " + failure(build, build_log(logs, build, LOG_TAIL_LINES)))
            continue
        for line in build_log(logs, build):
            if BUILD_LOG_MARK in line:
                log(f"{entry.route}: {line.split(BUILD_LOG_MARK, 1)[1].strip()}")
        values = read_parameters(s3, boot.bucket, prefix)
        publish_parameters(ssm, entry, values)
        log(f"{entry.route}: {', '.join(sorted(values))} published")
    if problems:
        raise StepError("\n".join(problems))
