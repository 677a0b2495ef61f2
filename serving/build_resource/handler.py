"""Custom resource `Custom::EmdModelBuild` (the CDK Provider framework calls `on_event`, then `is_complete`
every query interval): the bootstrap's CodeBuild project runs serving/build/buildspec.yml on the stack's build
inputs (a CDK asset), the same steps as the pipeline's build stage, so cached weights and images are reused.

ResourceProperties: ProjectName, SourceBucket, SourceKey (the asset), Environment ({name: value} overrides).
Data returned: BuildId, ImageUri, ModelDataS3Uri, WeightsPrefix (read from the build's exported variables).

- Create/Update start a build, or wait for one already running on the same inputs (a deploy that outlasted
  CloudFormation's hour and is tried again); the build id is the physical id.
- A failed build fails the resource with the build's own one-line reason (its `[emd-build] error:` log line,
  else CodeBuild's message for the failed phase).
- A build still running after EMD_WAIT_SECONDS fails the resource with what to do; the build goes on.
- Delete does nothing: the weights and images stay cached, as after `emd destroy`.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

import boto3

IMAGE_OUTPUT = "EMD_ENGINE_IMAGE_URI"
WEIGHTS_OUTPUT = "EMD_MODEL_DATA_S3_URI"
ERROR_MARK = "[emd-build] error:"
RECENT_BUILDS = 20  # how many of the project's latest builds are searched for one on the same inputs
LOG_TAIL = 50
DEFAULT_WAIT_SECONDS = 3300


class BuildFailed(RuntimeError):
    """The message becomes the resource's status reason in the stack's events."""


def _codebuild() -> Any:
    return boto3.client("codebuild")


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    props = event["ResourceProperties"]
    cb = _codebuild()
    location = f"{props['SourceBucket']}/{props['SourceKey']}"
    build = (
        running_build(cb, props["ProjectName"], location)
        or cb.start_build(
            projectName=props["ProjectName"],
            sourceTypeOverride="S3",
            sourceLocationOverride=location,
            environmentVariablesOverride=[
                {"name": k, "value": str(v), "type": "PLAINTEXT"}
                for k, v in sorted(props["Environment"].items())
            ],
        )["build"]
    )
    print(f"build {build['id']} on {location}")
    return {
        "PhysicalResourceId": build["id"],
        "Data": {"BuildId": build["id"], "WaitingSince": str(time.time())},
    }


def running_build(cb: Any, project: str, location: str) -> dict[str, Any] | None:
    ids = cb.list_builds_for_project(projectName=project, sortOrder="DESCENDING").get("ids", [])[
        :RECENT_BUILDS
    ]
    if not ids:
        return None
    for build in cb.batch_get_builds(ids=ids).get("builds", []):
        if (
            build.get("buildStatus") == "IN_PROGRESS"
            and (build.get("source") or {}).get("location") == location
        ):
            return dict(build)
    return None


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    build_id = event["PhysicalResourceId"]
    builds = _codebuild().batch_get_builds(ids=[build_id]).get("builds", [])
    if not builds:
        raise BuildFailed(f"CodeBuild has no build {build_id}")
    build = builds[0]
    status = build.get("buildStatus", "IN_PROGRESS")
    if status == "IN_PROGRESS":
        waited = time.time() - float((event.get("Data") or {}).get("WaitingSince") or time.time())
        if waited > float(os.environ.get("EMD_WAIT_SECONDS", DEFAULT_WAIT_SECONDS)):
            raise BuildFailed(
                f"build {build_id} is still running ({build.get('currentPhase', '?').lower()} phase, "
                f"{_minutes(build)} min) after {int(waited // 60)} min of waiting, CloudFormation's limit "
                "for one resource: it goes on; run the same cdk deploy again to wait for it"
            )
        return {"IsComplete": False}
    if status != "SUCCEEDED":
        raise BuildFailed(failure_reason(build))
    return {"IsComplete": True, "Data": outputs(build)}


def outputs(build: dict[str, Any]) -> dict[str, str]:
    exported = {v["name"]: v.get("value", "") for v in build.get("exportedEnvironmentVariables") or []}
    image, weights = exported.get(IMAGE_OUTPUT), exported.get(WEIGHTS_OUTPUT)
    if not image or not weights or not weights.startswith("s3://"):
        raise BuildFailed(
            f"build {build['id']} succeeded but exported no {IMAGE_OUTPUT} / {WEIGHTS_OUTPUT} (got "
            f"{sorted(k for k, v in exported.items() if v)}): the bootstrap's buildspec is older than this "
            "stack; update the shared stacks (emd bootstrap)"
        )
    prefix = weights.removeprefix("s3://").partition("/")[2]
    return {"BuildId": build["id"], "ImageUri": image, "ModelDataS3Uri": weights, "WeightsPrefix": prefix}


def failure_reason(build: dict[str, Any]) -> str:
    """'build <id> failed in phase <PHASE>: <reason> (log: <group> <stream>)', the reason being the build's
    own error line when its log has one."""
    status = build.get("buildStatus", "FAILED").lower().replace("_", " ")
    phases = build.get("phases") or []
    failed = next((p for p in phases if p.get("phaseStatus") not in (None, "SUCCEEDED")), None)
    context = "; ".join(c["message"] for c in (failed or {}).get("contexts") or [] if c.get("message"))
    reason = _error_line(build) or context or "no reason given"
    where = f" in phase {failed['phaseType']}" if failed else ""
    logs = build.get("logs") or {}
    log = f" (log: {logs['groupName']} {logs['streamName']})" if logs.get("groupName") else ""
    return f"build {build['id']} {status}{where}: {reason}{log}"


def _error_line(build: dict[str, Any]) -> str | None:
    logs_info = build.get("logs") or {}
    group, stream = logs_info.get("groupName"), logs_info.get("streamName")
    if not group or not stream:
        return None
    logs = boto3.client("logs")
    try:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream, limit=LOG_TAIL, startFromHead=False
        )["events"]
    except Exception as exc:  # the reason is a courtesy: without it the phase's message is given
        print(f"log tail of {build['id']} unavailable: {type(exc).__name__}")
        return None
    # the first error line of the tail: the failed step's own (later phases only report that it failed)
    for event in events:
        message = event.get("message", "")
        if ERROR_MARK in message:
            return message.split(ERROR_MARK, 1)[1].strip()
    return None


def _minutes(build: dict[str, Any]) -> int:
    start = build.get("startTime")
    if isinstance(start, datetime):
        return int((time.time() - start.timestamp()) // 60)
    return 0
