"""Per-deployment CloudWatch metrics, written as Embedded Metric Format lines on stdout: the gateway's awslogs
driver ships them and CloudWatch turns them into metrics, with no PutMetricData call and no extra permission.

Namespace EMD/Gateway, dimension Route ('<model-id>/<tag>'):
- Requests: every request routed to a deployment (after auth: unknown models and bad keys create no
  metric); an ECS deployment with min_capacity 0 scales in to zero after a quiet period on it.
- NoCapacity: requests that found no running engine; that deployment scales out from zero on it, as
  SageMaker's scale to zero does on its own NoCapacityInvocationFailures.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from model_specs.registry import GATEWAY_METRICS_NAMESPACE, NO_CAPACITY_METRIC, REQUESTS_METRIC

metrics_log = logging.getLogger("emd.gateway.metrics")


def with_metric(
    record: dict[str, Any], route: str, name: str, value: float, unit: str = "Count"
) -> dict[str, Any]:
    """record plus the EMF fields that make CloudWatch count value as metric name for route."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": GATEWAY_METRICS_NAMESPACE,
                    "Dimensions": [["Route"]],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            ],
        },
        **record,
        "Route": route,
        name: value,
    }


def record_no_capacity(route: str) -> None:
    metrics_log.info(json.dumps(with_metric({}, route, NO_CAPACITY_METRIC, 1), separators=(",", ":")))


def access_record(record: dict[str, Any], routed_to: str | None) -> str:
    """The access log line; for a request that reached a deployment, an EMF line counting it."""
    if routed_to is not None:
        record = with_metric(record, routed_to, REQUESTS_METRIC, 1)
    return json.dumps(record, separators=(",", ":"))
