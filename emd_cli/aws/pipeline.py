"""The deployment pipeline from the CLI's side: start an execution for one bundle, read where an execution is,
follow it stage by stage, list recent executions by deployment, stop them.

Which deployment an execution belongs to is recorded where CodePipeline itself reports it: the bundle's S3
object carries `codepipeline-artifact-revision-summary` metadata (a small JSON object), which CodePipeline
shows as the execution's source revision summary in ListPipelineExecutions — one paginated call for every
deployment. Executions still in their first seconds (no source revision yet) are read from their variables.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console

from emd_cli.aws.builds import describe_build, failure_summary
from emd_cli.aws.errors import AwsFailure
from emd_cli.aws.session import AwsSession, poll_seconds
from emd_cli.aws.stacks import EventPrinter, event_ids, first_failed_event
from model_specs.registry import PIPELINE_SOURCE_ACTION, PIPELINE_SOURCE_KEY

REVISION_SUMMARY = "codepipeline-artifact-revision-summary"
RECENT_EXECUTIONS = 100  # one page: status looks at the latest executions only
RUNNING = ("InProgress", "Stopping")


@dataclass(frozen=True)
class ActionView:
    stage: str
    action: str
    status: str  # InProgress | Succeeded | Failed | Abandoned
    provider: str  # S3 | CodeBuild | CloudFormation
    external_id: str | None
    error: str | None
    started: datetime | None


@dataclass(frozen=True)
class ExecutionView:
    id: str
    status: str  # InProgress | Stopping | Stopped | Succeeded | Failed | Superseded | Cancelled
    summary: str | None
    actions: list[ActionView] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def current(self) -> ActionView | None:
        return self.actions[-1] if self.actions else None

    @property
    def failed_action(self) -> ActionView | None:
        return next((a for a in self.actions if a.status == "Failed"), None)


@dataclass(frozen=True)
class ExecutionSummary:
    id: str
    status: str
    started: datetime | None
    deployment: dict[str, Any] | None  # the bundle's revision summary: route, stack, service, public, …
    bundle_version: str | None = None  # the S3 object version of the bundle it ran on


def start_execution(
    aws: AwsSession,
    *,
    pipeline: str,
    bucket: str,
    bundle: bytes,
    variables: dict[str, str],
    summary: dict[str, str],
) -> str:
    """Upload the bundle (a new object version) and start an execution on exactly that version."""
    put = aws.client("s3").put_object(
        Bucket=bucket,
        Key=PIPELINE_SOURCE_KEY,
        Body=bundle,
        Metadata={REVISION_SUMMARY: json.dumps(summary, separators=(",", ":"))},
    )
    version = put.get("VersionId")
    if not version:
        raise AwsFailure(f"the artifact bucket {bucket} is not versioned: run `emd bootstrap` again")
    return str(
        aws.client("codepipeline").start_pipeline_execution(
            name=pipeline,
            variables=[{"name": k, "value": v} for k, v in variables.items()],
            sourceRevisions=[
                {
                    "actionName": PIPELINE_SOURCE_ACTION,
                    "revisionType": "S3_OBJECT_VERSION_ID",
                    "revisionValue": version,
                }
            ],
            clientRequestToken=variables["deployment_id"],
        )["pipelineExecutionId"]
    )


def read_execution(aws: AwsSession, pipeline: str, execution_id: str) -> ExecutionView:
    """Where one execution is: its status and its actions so far, oldest first (2 calls)."""
    cp = aws.client("codepipeline")
    execution = cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]
    details = [
        d
        for page in cp.get_paginator("list_action_executions").paginate(
            pipelineName=pipeline, filter={"pipelineExecutionId": execution_id}
        )
        for d in page.get("actionExecutionDetails", [])
    ]
    return ExecutionView(
        id=execution_id,
        status=execution["status"],
        summary=execution.get("statusSummary"),
        actions=[action_view(d) for d in sorted(details, key=lambda d: str(d.get("startTime", "")))],
    )


def action_view(detail: dict[str, Any]) -> ActionView:
    result = (detail.get("output") or {}).get("executionResult") or {}
    error = (result.get("errorDetails") or {}).get("message") or result.get("externalExecutionSummary")
    started = detail.get("startTime")
    return ActionView(
        stage=detail.get("stageName", "?"),
        action=detail.get("actionName", "?"),
        status=detail.get("status", "?"),
        provider=((detail.get("input") or {}).get("actionTypeId") or {}).get("provider", "?"),
        external_id=result.get("externalExecutionId"),
        error=error if detail.get("status") == "Failed" else None,
        started=started if isinstance(started, datetime) else None,
    )


def recent_executions(aws: AwsSession, pipeline: str) -> list[ExecutionSummary]:
    """The latest executions (one page), newest first, each with the deployment it belongs to."""
    cp = aws.client("codepipeline")
    page = cp.list_pipeline_executions(pipelineName=pipeline, maxResults=RECENT_EXECUTIONS)
    found = []
    for item in page.get("pipelineExecutionSummaries", []):
        deployment = _revision_summary(item)
        if deployment is None and item.get("status") in RUNNING:
            deployment = _from_variables(cp, pipeline, item["pipelineExecutionId"])
        started = item.get("startTime")
        found.append(
            ExecutionSummary(
                id=item["pipelineExecutionId"],
                status=item.get("status", "?"),
                started=started if isinstance(started, datetime) else None,
                deployment=deployment,
                bundle_version=next(
                    (r["revisionId"] for r in item.get("sourceRevisions", []) if r.get("revisionId")), None
                ),
            )
        )
    return found


def _revision_summary(item: dict[str, Any]) -> dict[str, Any] | None:
    for revision in item.get("sourceRevisions", []):
        try:
            data = json.loads(revision.get("revisionSummary") or "")
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("route"):
            return data
    return None


def _from_variables(cp: Any, pipeline: str, execution_id: str) -> dict[str, Any] | None:
    execution = cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)
    values = {v["name"]: v.get("resolvedValue") for v in execution["pipelineExecution"].get("variables", [])}
    if not values.get("model_id"):
        return None
    return {
        "route": f"{values['model_id']}/{values.get('model_tag')}",
        "stack": values.get("stack_name"),
        "deployment_id": values.get("deployment_id"),
    }


def stop_execution(aws: AwsSession, pipeline: str, execution_id: str, reason: str) -> None:
    aws.client("codepipeline").stop_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id, abandon=True, reason=reason
    )


def follow_execution(
    aws: AwsSession, pipeline: str, execution_id: str, console: Console, *, stack_name: str
) -> ExecutionView:
    """Print each action as it starts and ends, the build's phases and the stack's events while they run;
    return the execution once it succeeded, raise AwsFailure explaining the failure otherwise."""
    started = time.monotonic()
    shown: dict[tuple[str, str], str] = {}
    phases: set[str] = set()
    stack_events: EventPrinter | None = None

    def say(text: str) -> None:
        seconds = int(time.monotonic() - started)
        console.print(f"  {seconds // 60:02d}:{seconds % 60:02d}  {text}", highlight=False)

    with console.status("pipeline: starting") as spinner:
        while True:
            view = read_execution(aws, pipeline, execution_id)
            for action in view.actions:
                key = (action.stage, action.action)
                if shown.get(key) != action.status:
                    shown[key] = action.status
                    say(f"{action.stage}: {action.action} {_words(action.status)}")
                if action.provider == "CodeBuild" and action.status == "InProgress" and action.external_id:
                    build = describe_build(aws, action.external_id)
                    for phase in build.get("phases", []):
                        name = phase["phaseType"]
                        if name in ("PRE_BUILD", "BUILD", "POST_BUILD") and name not in phases:
                            phases.add(name)
                            say(f"{action.stage}: {name.lower().replace('_', ' ')}")
                if action.provider == "CloudFormation" and action.status == "InProgress":
                    if stack_events is None:
                        cfn = aws.client("cloudformation")
                        stack_events = EventPrinter(
                            cfn, stack_name, console, event_ids(cfn, stack_name), started
                        )
                    stack_events.poll()
            if not view.running:
                if stack_events is not None:
                    stack_events.poll()
                if view.status == "Succeeded":
                    return view
                raise AwsFailure("\n".join(explain_failure(aws, view, stack_name)))
            current = view.current
            spinner.update(
                f"pipeline: {current.stage if current else 'Source'} ({int(time.monotonic() - started)}s)"
            )
            time.sleep(poll_seconds())


def _words(status: str) -> str:
    return {"InProgress": "started", "Succeeded": "done", "Failed": "FAILED"}.get(status, status.lower())


def explain_failure(aws: AwsSession, view: ExecutionView, stack_name: str) -> list[str]:
    """Why an execution did not succeed: the failed build phase and its log tail, or the stack's event."""
    action = view.failed_action
    lines = [
        f"pipeline execution {view.id} {view.status.lower()}" + (f": {view.summary}" if view.summary else "")
    ]
    if action is None:
        return lines
    lines[0] = f"{action.stage} stage failed ({action.action})"
    if action.provider == "CodeBuild" and action.external_id:
        lines += failure_summary(aws, describe_build(aws, action.external_id))
    elif action.provider == "CloudFormation":
        reason = first_failed_event(aws.client("cloudformation"), stack_name)
        lines.append(f"stack {stack_name}: {reason or action.error or 'failed'}")
    elif action.error:
        lines.append(action.error)
    return lines
