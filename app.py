#!/usr/bin/env python3
"""CDK entry point (thin): read context, build Deployment objects, instantiate stacks.

npx cdk synth                                   # EMD-Bootstrap + EMD-Gateway
npx cdk deploy EMD-Bootstrap -c region=us-west-2
npx cdk deploy EMD-Gateway -c certificate_arn=arn:... -c allowed_cidrs=203.0.113.0/24
npx cdk synth -c gateway=false                  # SageMaker-only: no ALB, no VPC
"""

from __future__ import annotations

import sys

# isort: off
import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
import aws_cdk as cdk

# isort: on
from emd_stacks.context import parse_context
from model_specs.errors import EmdUserError


def main() -> None:
    app = cdk.App()
    try:
        config = parse_context(app.node.try_get_context)
        env = cdk.Environment(account=config.account, region=config.region)

        from emd_stacks.bootstrap import BootstrapStack
        from emd_stacks.gateway import GatewayStack

        BootstrapStack(app, config=config, env=env)
        if config.gateway:
            GatewayStack(app, config=config, env=env)

        # --- model stack (emd_stacks.model) ---
        # (the model-stack engineer adds the block that resolves a Deployment from -c model_id=... here)
        # --- end model stack ---
    except EmdUserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
