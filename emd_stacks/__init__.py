"""Deployable units that only compose and wire constructs (bootstrap, gateway, model, gitops), the CDK
context they read (context, model_context) and in-process synthesis (synth, shared_synth, gitops_synth).

May import: emd_constructs (which sets up jsii's node), aws_cdk, cdk_nag, cfn-lint, model_specs. Never
emd_cli.
"""

import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
