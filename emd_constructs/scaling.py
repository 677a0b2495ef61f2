"""Autoscaling pieces shared by the SageMaker and ECS model targets."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_applicationautoscaling as appscaling
import aws_cdk.aws_cloudwatch as cw
import aws_cdk.aws_cloudwatch_actions as cw_actions
from constructs import Construct

from model_specs.registry import GATEWAY_METRICS_NAMESPACE, NO_CAPACITY_METRIC, REQUESTS_METRIC

SCALE_IN_COOLDOWN = cdk.Duration.minutes(10)
SCALE_OUT_COOLDOWN = cdk.Duration.minutes(2)
# an ECS deployment with min_capacity 0 stops its last task after this many minutes without a request
IDLE_MINUTES_BEFORE_ZERO = 15


def track_metric(
    target: appscaling.ScalableTarget, policy_id: str, *, target_value: float, **metric: Any
) -> None:
    """Target tracking with EMD's cooldowns: out quickly, in slowly (a cold start costs minutes)."""
    target.scale_to_track_metric(
        policy_id,
        target_value=target_value,
        scale_in_cooldown=SCALE_IN_COOLDOWN,
        scale_out_cooldown=SCALE_OUT_COOLDOWN,
        **metric,
    )


def scale_out_from_zero(
    target: appscaling.ScalableTarget | appscaling.BaseScalableAttribute,
    *,
    namespace: str,
    metric_name: str,
    dimensions: dict[str, str],
    statistic: str,
    steps: list[appscaling.ScalingInterval],
) -> None:
    """Step policy that adds capacity while a 'requests but no capacity' metric is raised: target tracking
    alone cannot leave zero, since a per-instance metric has no instance to measure."""
    target.scale_on_metric(
        "ScaleOutFromZero",
        metric=cw.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=cdk.Duration.minutes(1),
        ),
        scaling_steps=steps,
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown=SCALE_OUT_COOLDOWN,
    )


def scale_with_gateway_traffic(
    scope: Construct, target: appscaling.BaseScalableAttribute, *, route: str
) -> None:
    """Scale to zero and back for a deployment the gateway reaches over HTTP (ECS), on the gateway's EMF
    metrics: out from zero when a request found no running engine, in to zero after IDLE_MINUTES_BEFORE_ZERO
    minutes without a request (no data counts as idle: the gateway writes nothing while nobody calls).
    Target tracking cannot do either: it rounds up, so it never reaches zero, and has nothing to measure at
    zero."""
    dimensions = {"Route": route}
    scale_out_from_zero(
        target,
        namespace=GATEWAY_METRICS_NAMESPACE,
        metric_name=NO_CAPACITY_METRIC,
        dimensions=dimensions,
        statistic="Sum",
        steps=[
            appscaling.ScalingInterval(upper=0, change=0),
            appscaling.ScalingInterval(lower=1, change=1),
        ],
    )
    to_zero = appscaling.StepScalingAction(
        scope,
        "ScaleInToZero",
        # BaseScalableAttribute keeps its ScalableTarget as the child 'Target' (its property is protected)
        scaling_target=target.node.find_child("Target"),
        adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
        cooldown=SCALE_IN_COOLDOWN,
    )
    to_zero.add_adjustment(adjustment=0, upper_bound=0)
    idle = cw.Alarm(
        scope,
        "IdleAlarm",
        metric=cw.Metric(
            namespace=GATEWAY_METRICS_NAMESPACE,
            metric_name=REQUESTS_METRIC,
            dimensions_map=dimensions,
            statistic="Sum",
            period=cdk.Duration.minutes(1),
        ),
        threshold=1,
        comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluation_periods=IDLE_MINUTES_BEFORE_ZERO,
        datapoints_to_alarm=IDLE_MINUTES_BEFORE_ZERO,
        treat_missing_data=cw.TreatMissingData.BREACHING,
        alarm_description=f"{route}: no request through the gateway for {IDLE_MINUTES_BEFORE_ZERO} minutes "
        "(scales the service to zero tasks)",
    )
    idle.add_alarm_action(cw_actions.ApplicationScalingAction(to_zero))
