"""L3 constructs, one concern per module (artifacts, pipeline, gateway service, model targets, registry).

May import: aws_cdk, constructs, cdk_nag, model_specs. Never emd_stacks or emd_cli.
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
