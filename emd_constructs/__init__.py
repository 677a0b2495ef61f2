"""L3 constructs, one concern per module: the bootstrap's artifacts, build and pipeline (with the deploy
role's policy and the model permissions boundary), the gateway (network, service, edge), the model targets
(SageMaker real-time/async, ECS, EC2) and their registration, GitOps pipeline steps and target roles, and the
hygiene every stack shares (tags, log groups, SSM parameters, cdk-nag acknowledgements, regional facts).

May import: aws_cdk, constructs, model_specs. Never emd_stacks or emd_cli.
"""

import os as _os
from pathlib import Path as _Path

# jsii spawns node when aws_cdk is first imported: prefer the node 22 that package.json pins (node 20 is
# end-of-life for jsii and would print a banner on every synth).
_node = _Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "node"
if _node.exists():
    _os.environ.setdefault("JSII_NODE", str(_node))
else:
    _os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
