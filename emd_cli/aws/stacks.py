"""CloudFormation stacks through change sets, with their events shown as they happen (elapsed time first).

`deploy_stack` creates or updates (a rerun with nothing to change says so), explains a stack left in
ROLLBACK_COMPLETE and, when allowed, deletes it first; `delete_stack` deletes and follows the events.
A failure raises AwsFailure naming the first resource that failed and CloudFormation's reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from emd_cli.aws.errors import AwsFailure
from emd_cli.aws.session import AwsSession, poll_seconds

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
TEMPLATE_BODY_LIMIT = 51_200  # bytes; larger templates go through S3 (TemplateURL)
_FAILED = ("FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE")


@dataclass
class StackResult:
    name: str
    status: str
    changed: bool
    outputs: dict[str, str] = field(default_factory=dict)


def stack_status(cfn: Any, name: str) -> dict[str, Any] | None:
    """The stack's description, or None when it does not exist (or was deleted)."""
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return None if stack["StackStatus"] == "DELETE_COMPLETE" else stack


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def tags_of(stack: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


class EventPrinter:
    """Prints each new stack event once: '  01:12  CREATE_COMPLETE  Bucket (AWS::S3::Bucket)  reason'."""

    def __init__(
        self, cfn: Any, name: str, console: Console, seen: set[str], started: float | None = None
    ) -> None:
        """seen: event ids not to show; started: time.monotonic() that elapsed times count from."""
        self._cfn, self._name, self._console = cfn, name, console
        self._seen = set(seen)
        self._started = time.monotonic() if started is None else started
        self.first_failure: str | None = None

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self._started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def poll(self) -> None:
        new: list[dict[str, Any]] = []
        try:
            for page in self._cfn.get_paginator("describe_stack_events").paginate(StackName=self._name):
                fresh = [e for e in page["StackEvents"] if e["EventId"] not in self._seen]
                new += fresh
                if len(fresh) < len(page["StackEvents"]):
                    break  # events come newest first: the rest were seen already
        except self._cfn.exceptions.ClientError as exc:
            if "does not exist" not in str(exc):  # not created yet, or deleted already
                raise
        for event in reversed(new):
            self._seen.add(event["EventId"])
            self._show(event)

    def _show(self, event: dict[str, Any]) -> None:
        status = event.get("ResourceStatus", "")
        reason = event.get("ResourceStatusReason") or ""
        style = "red" if "FAILED" in status else "green" if status.endswith("COMPLETE") else "dim"
        what = f"{event.get('LogicalResourceId')} ({event.get('ResourceType')})"
        self._console.print(
            f"  {self.elapsed()}  [{style}]{status}[/]  {what}" + (f"  {reason}" if reason else ""),
            highlight=False,
            markup=True,
        )
        if status.endswith("FAILED") and self.first_failure is None and "cancelled" not in reason.lower():
            self.first_failure = f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): {reason}"


def event_ids(cfn: Any, name: str) -> set[str]:
    """Ids of the stack's latest events (before an operation: they are not shown again)."""
    try:
        return {e["EventId"] for e in cfn.describe_stack_events(StackName=name)["StackEvents"]}
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return set()
        raise


def follow_stack(
    cfn: Any,
    name: str,
    console: Console,
    seen: set[str],
) -> dict[str, Any] | None:
    """Print events not in `seen` until the stack leaves *_IN_PROGRESS; return its description (None once
    deleted)."""
    printer = EventPrinter(cfn, name, console, seen)
    with console.status(f"{name}: waiting for CloudFormation") as spinner:
        while True:
            stack = stack_status(cfn, name)
            printer.poll() if stack is not None else None
            if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
                if stack is not None and _failed(stack["StackStatus"]):
                    raise AwsFailure(
                        f"stack {name} failed ({stack['StackStatus']}): "
                        + (printer.first_failure or stack.get("StackStatusReason") or "see the events above")
                    )
                return stack
            spinner.update(f"{name}: {stack['StackStatus']} ({printer.elapsed()})")
            time.sleep(poll_seconds())


def _failed(status: str) -> bool:
    return any(status.endswith(s) for s in _FAILED) or status == "UPDATE_ROLLBACK_COMPLETE"


def deploy_stack(
    aws: AwsSession,
    *,
    name: str,
    template: dict[str, Any],
    console: Console,
    parameters: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    upload: Callable[[bytes], str] | None = None,
    confirm_cleanup: Callable[[str], bool] = lambda _msg: False,
) -> StackResult:
    """Create or update `name` from `template` through a change set and follow its events.

    upload(body) -> https URL: where templates over CloudFormation's inline limit go (None: inline only).
    confirm_cleanup(message): asked before deleting a stack left in ROLLBACK_COMPLETE."""
    cfn = aws.client("cloudformation")
    existing = stack_status(cfn, name)
    if existing is not None and existing["StackStatus"] == "REVIEW_IN_PROGRESS":
        existing = None  # only a change set that was never executed (an interrupted run): create it
    if existing is not None and existing["StackStatus"].endswith("_IN_PROGRESS"):
        console.print(f"{name} is {existing['StackStatus']}: waiting for that operation to finish")
        existing = _wait_quietly(cfn, name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        reason = first_failed_event(cfn, name)
        message = (
            f"{name} is in ROLLBACK_COMPLETE: its creation failed"
            + (f" ({reason})" if reason else "")
            + " and CloudFormation cannot update it; it has to be deleted before it is created again."
        )
        if not confirm_cleanup(message + " Delete it now?"):
            raise AwsFailure(message + f" Run the command again with --yes, or delete {name} yourself.")
        delete_stack(aws, name=name, console=console)
        existing = None
    body = json.dumps(template, separators=(",", ":"))
    source: dict[str, Any] = {"TemplateBody": body}
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        if upload is None:
            raise AwsFailure(f"the {name} template is {len(body)} bytes, over CloudFormation's inline limit")
        source = {"TemplateURL": upload(body.encode())}
    change_set = f"emd-{int(time.time())}"
    kind = "CREATE" if existing is None else "UPDATE"
    seen = event_ids(cfn, name) if existing is not None else set()
    cfn.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType=kind,
        Capabilities=CAPABILITIES,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        **source,
    )
    described = _wait_change_set(cfn, name, change_set)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
        if "didn't contain changes" in reason or "No updates" in reason:
            console.print(f"{name} is up to date")
            assert existing is not None
            return StackResult(name, existing["StackStatus"], False, outputs_of(existing))
        raise AwsFailure(f"CloudFormation refused the {name} change set: {reason}")
    console.print(
        f"{'Creating' if kind == 'CREATE' else 'Updating'} {name} ({len(described['Changes'])} changes)"
    )
    cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
    stack = follow_stack(cfn, name, console, seen)
    assert stack is not None
    return StackResult(name, stack["StackStatus"], True, outputs_of(stack))


def delete_stack(aws: AwsSession, *, name: str, console: Console) -> bool:
    """Delete `name` and follow its events; False when there was no such stack."""
    cfn = aws.client("cloudformation")
    if stack_status(cfn, name) is None:
        return False
    seen = event_ids(cfn, name)
    console.print(f"Deleting {name}")
    cfn.delete_stack(StackName=name)
    follow_stack(cfn, name, console, seen)
    return True


def _wait_change_set(cfn: Any, name: str, change_set: str) -> dict[str, Any]:
    while True:
        described = cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            changes = list(described.get("Changes", []))
            token = described.get("NextToken")
            while token:  # a large stack's change list is paginated
                more = cfn.describe_change_set(StackName=name, ChangeSetName=change_set, NextToken=token)
                changes += more.get("Changes", [])
                token = more.get("NextToken")
            return {**described, "Changes": changes}
        time.sleep(min(poll_seconds(), 2.0))


def _wait_quietly(cfn: Any, name: str) -> dict[str, Any] | None:
    while True:
        stack = stack_status(cfn, name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(poll_seconds())


def first_failed_event(cfn: Any, name: str) -> str | None:
    """'<resource> (<type>): <reason>' of the stack's first failure (not the rollback's consequences)."""
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except cfn.exceptions.ClientError:
        return None
    for event in reversed(events):
        reason = event.get("ResourceStatusReason") or ""
        if event.get("ResourceStatus", "").endswith("FAILED") and "cancelled" not in reason.lower():
            return f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): {reason}"
    return None
