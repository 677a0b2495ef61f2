"""The SSM parameters a shared stack publishes (/emd/bootstrap/*, /emd/gateway/*): how the CLI and the model
stacks find its resources, instead of CloudFormation exports (which would pin the stacks to each other)."""

from __future__ import annotations

import aws_cdk.aws_ssm as ssm
from constructs import Construct


def publish(scope: Construct, **parameters: tuple[str, str]) -> None:
    """One String parameter per keyword: construct id=(parameter name, value)."""
    for construct_id, (name, value) in parameters.items():
        ssm.StringParameter(scope, construct_id, parameter_name=name, string_value=value)
