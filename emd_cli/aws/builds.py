"""CodeBuild builds: follow one phase by phase, and explain a failed one (its failed phase, CodeBuild's reason
and the tail of its CloudWatch log)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from emd_cli.aws.errors import AwsFailure
from emd_cli.aws.session import AwsSession, poll_seconds

LOG_TAIL_LINES = 25


def describe_build(aws: AwsSession, build_id: str) -> dict[str, Any]:
    builds = aws.client("codebuild").batch_get_builds(ids=[build_id]).get("builds", [])
    if not builds:
        raise AwsFailure(f"CodeBuild has no build {build_id}")
    return builds[0]


def log_tail(aws: AwsSession, build: dict[str, Any], lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of the build's CloudWatch log ([] when it has none yet)."""
    logs_info = build.get("logs") or {}
    group, stream = logs_info.get("groupName"), logs_info.get("streamName")
    if not group or not stream:
        return []
    logs = aws.client("logs")
    try:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream, limit=lines, startFromHead=False
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"].rstrip() for e in events][-lines:]


def failure_summary(aws: AwsSession, build: dict[str, Any]) -> list[str]:
    """'phase BUILD failed: <reason>' followed by the log tail."""
    failed = next((p for p in build.get("phases", []) if p.get("phaseStatus") in ("FAILED", "FAULT")), None)
    head = f"build {build['id']} {build.get('buildStatus', 'FAILED').lower()}"
    if failed:
        reason = "; ".join(c.get("message", "") for c in failed.get("contexts", []) if c.get("message"))
        head += f" in phase {failed['phaseType']}" + (f": {reason}" if reason else "")
    tail = log_tail(aws, build)
    return [head, *(["last lines of the build log:"] + [f"  {line}" for line in tail] if tail else [])]


def follow_build(aws: AwsSession, build_id: str, console: Console, *, label: str) -> dict[str, Any]:
    """Print each phase as it starts; return the build when it succeeded, raise AwsFailure (with the failed
    phase and the log tail) when it did not."""
    started, shown = time.monotonic(), set()
    with console.status(f"{label}: starting") as spinner:
        while True:
            build = describe_build(aws, build_id)
            elapsed = int(time.monotonic() - started)
            for phase in build.get("phases", []):
                name = phase["phaseType"]
                if name not in shown and name not in ("SUBMITTED", "QUEUED", "COMPLETED"):
                    shown.add(name)
                    console.print(f"  {elapsed // 60:02d}:{elapsed % 60:02d}  {label}: {name.lower()}")
            status = build.get("buildStatus", "IN_PROGRESS")
            if status == "SUCCEEDED":
                return build
            if status != "IN_PROGRESS":
                raise AwsFailure("\n".join([f"{label} failed:", *failure_summary(aws, build)]))
            spinner.update(
                f"{label}: {build.get('currentPhase', '').lower()} ({elapsed // 60}m{elapsed % 60:02d}s)"
            )
            time.sleep(poll_seconds())
