"""What runs behind the deployments, in calls that do not grow with their number (one paginated list per
service): SageMaker endpoints through Search (status, failure reason and instances per variant, 100 a page;
ListEndpoints has no counts) and the clusters of ECS deployments through DescribeClusters (running and pending
tasks, 100 clusters a call). `emd status` reads stages from them ("scaled to zero"); the quota check counts
the instances in use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emd_cli.aws.session import AwsSession

SEARCH_PAGE = 100
CLUSTERS_PER_CALL = 100  # DescribeClusters' limit
HOLDING_INSTANCES = ("InService", "Creating", "Updating", "SystemUpdating", "RollingBack")


def all_sagemaker_endpoints(aws: AwsSession) -> Iterator[dict[str, Any]]:
    """Every SageMaker endpoint of the account and region, as Search describes it (ProductionVariants with
    CurrentInstanceCount, EndpointConfigName, EndpointStatus, FailureReason)."""
    pages = (
        aws.client("sagemaker")
        .get_paginator("search")
        .paginate(Resource="Endpoint", PaginationConfig={"PageSize": SEARCH_PAGE})
    )
    for page in pages:
        for record in page.get("Results", []):
            if record.get("Endpoint"):
                yield record["Endpoint"]


def sagemaker_endpoints(aws: AwsSession, names: set[str]) -> dict[str, dict[str, Any]]:
    """The endpoints named, by name (no call when there are none)."""
    if not names:
        return {}
    return {e["EndpointName"]: e for e in all_sagemaker_endpoints(aws) if e.get("EndpointName") in names}


def instances(endpoint: dict[str, Any]) -> int | None:
    """Instances behind an endpoint now (all variants); None when no variant reports a count yet."""
    variants = endpoint.get("ProductionVariants", [])
    counts = [v["CurrentInstanceCount"] for v in variants if "CurrentInstanceCount" in v]
    return sum(counts) if counts else None


def ecs_clusters(aws: AwsSession, names: set[str]) -> dict[str, dict[str, Any]]:
    """The clusters named (DescribeClusters: status, runningTasksCount, pendingTasksCount), by name."""
    ecs = aws.client("ecs")
    ordered = sorted(names)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ordered), CLUSTERS_PER_CALL):
        for cluster in ecs.describe_clusters(clusters=ordered[start : start + CLUSTERS_PER_CALL])["clusters"]:
            found[cluster["clusterName"]] = cluster
    return found


def tasks(cluster: dict[str, Any]) -> int:
    """Tasks running or starting in a cluster (an ECS deployment's cluster holds its one service)."""
    return int(cluster.get("runningTasksCount", 0)) + int(cluster.get("pendingTasksCount", 0))
