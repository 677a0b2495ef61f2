#!/usr/bin/env python3
"""CDK entry point (thin): read context, build Deployment objects, instantiate stacks. `npx cdk` starts it
through cdk_launcher.py, which picks the Python that has EMD's dependencies.

npx cdk synth                                   # EMD-Bootstrap + EMD-Gateway
npx cdk deploy EMD-Bootstrap -c region=us-west-2
npx cdk deploy EMD-Gateway -c certificate_arn=arn:... -c allowed_cidrs=203.0.113.0/24
npx cdk synth -c gateway=false                  # SageMaker-only: no ALB, no VPC
npx cdk deploy -c model_id=Qwen2.5-7B-Instruct -c instance_type=g5.2xlarge -c engine_type=vllm \
    -c service_type=sagemaker_realtime [-c model_tag=dev] [-c extra_params='{...}']   # one model stack only,
    # which runs the bootstrap's build and creates its API key secret (or -c api_key_secret_name=<existing>)
"""

from __future__ import annotations

import sys

# isort: off
import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
import aws_cdk as cdk

# isort: on
from emd_stacks.context import APP_CONTEXT_KEYS, parse_context, refuse_unknown_context, shipped_context
from emd_stacks.model_context import MODEL_CONTEXT_KEYS, model_context
from model_specs.errors import EmdUserError


def main() -> None:
    shipped = shipped_context()
    app = cdk.App(context=shipped)  # the feature flags `emd plan` uses too; -c values override them
    try:
        known = (*APP_CONTEXT_KEYS, *MODEL_CONTEXT_KEYS, *shipped)
        refuse_unknown_context(app.node.get_all_context(), known)
        config = parse_context(app.node.try_get_context)
        env = cdk.Environment(account=config.account, region=config.region)

        # --- model stack (emd_stacks.model) ---
        # -c model_id=... synthesizes exactly one model stack and nothing else
        model = model_context(app.node.try_get_context, region=config.region)
        if model is not None:
            from emd_stacks.model import ModelStack

            ModelStack(
                app,
                model.deployment,
                image_uri=model.image_uri,
                model_data_s3_uri=model.model_data_s3_uri,
                own_api_key=True,
                api_key_secret_name=model.api_key_secret_name,
            )
        # --- end model stack ---
        else:
            from emd_stacks.bootstrap import BootstrapStack
            from emd_stacks.gateway import GatewayStack

            BootstrapStack(app, config=config, env=env)
            if config.gateway:
                GatewayStack(app, config=config, env=env)
    except EmdUserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
