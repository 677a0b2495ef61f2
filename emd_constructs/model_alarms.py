"""CloudWatch alarms on a deployment's errors: SageMaker 5XX and model latency; ECS/EC2 health."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_cloudwatch as cw
from constructs import Construct

# ModelLatency is in microseconds; streaming LLM requests are long, so alarm only on p90 above 2 minutes.
MODEL_LATENCY_P90_MICROSECONDS = 120_000_000
PERIOD = cdk.Duration.minutes(5)


def _alarm(scope: Construct, cid: str, metric: cw.Metric, threshold: float, description: str) -> cw.Alarm:
    return metric.create_alarm(
        scope,
        cid,
        threshold=threshold,
        evaluation_periods=2,
        datapoints_to_alarm=2,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )


class SageMakerAlarms(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, dimensions: dict[str, str], route: str
    ) -> None:
        super().__init__(scope, construct_id)
        def metric(name: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=PERIOD,
            )

        self.errors = _alarm(
            self,
            "Invocation5XXErrors",
            metric("Invocation5XXErrors", "Sum"),
            0,
            f"{route}: the model returned 5XX errors",
        )
        self.latency = _alarm(
            self,
            "ModelLatency",
            metric("ModelLatency", "p90"),
            MODEL_LATENCY_P90_MICROSECONDS,
            f"{route}: p90 model latency above 2 min",
        )


class UnhealthyAlarm(Construct):
    """Fires when fewer healthy engines run than wanted, from a metric the target provides."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        metric: cw.IMetric,
        threshold: float,
        comparison: cw.ComparisonOperator,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm = metric.create_alarm(
            self,
            "Alarm",
            threshold=threshold,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
