"""API key secrets of GitOps deployments: the Build step creates each missing `emd/<id>/<tag>/api-key` with a
generated value before the wave's stacks deploy (the gateway refuses a route without its key). The value is
never printed, logged or returned: users read it with `aws secretsmanager get-secret-value`. A secret that
exists (created earlier, or by `emd deploy`) is left as it is; secrets the pipeline created carry the tag
emd:gitops=<pipeline>, and only those are deleted with a pruned deployment."""

from __future__ import annotations

import secrets
from typing import Any

from model_specs.gitops import GITOPS_TAG_KEY, PlanEntry

API_KEY_PREFIX = "emd-"  # the same form as the CLI's keys (emd_cli.targets.base.generate_api_key)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def secret_exists(client: Any, name: str) -> bool:
    """True when the secret exists; one scheduled for deletion (a deployment pruned and added back within its
    recovery window) is restored with its key."""
    try:
        described = client.describe_secret(SecretId=name)
    except client.exceptions.ResourceNotFoundException:
        return False
    if described.get("DeletedDate"):
        client.restore_secret(SecretId=name)
    return True


def ensure_api_keys(client: Any, entries: list[PlanEntry], pipeline: str) -> list[str]:
    """Create the missing secrets; return their names."""
    created = []
    for entry in entries:
        name = entry.api_key_secret_name
        if name is None or secret_exists(client, name):
            continue
        model_id, tag = entry.deployment["model_id"], entry.deployment["model_tag"]
        client.create_secret(
            Name=name,
            Description=f"API key of EMD deployment {entry.route} (created by GitOps pipeline {pipeline})",
            SecretString=new_api_key(),
            Tags=[
                {"Key": "emd:model-id", "Value": model_id},
                {"Key": "emd:tag", "Value": tag},
                {"Key": GITOPS_TAG_KEY, "Value": pipeline},
            ],
        )
        created.append(name)
    return created


def delete_own_api_key(client: Any, name: str, pipeline: str) -> bool:
    """Delete the secret only when this pipeline created it (its emd:gitops tag); True when deleted."""
    try:
        tags = {t["Key"]: t["Value"] for t in client.describe_secret(SecretId=name).get("Tags", [])}
    except client.exceptions.ResourceNotFoundException:
        return False
    if tags.get(GITOPS_TAG_KEY) != pipeline:
        return False
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    return True
