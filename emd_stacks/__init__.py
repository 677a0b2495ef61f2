"""Deployable units that only compose and wire constructs: bootstrap, gateway, model (one per deployment).

May import: emd_constructs (which sets up jsii's node), aws_cdk, model_specs. Never emd_cli.
"""

import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
