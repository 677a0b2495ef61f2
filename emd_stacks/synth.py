"""Synthesize one model stack in-process (used by `emd plan` and the pipeline bundle)."""

from __future__ import annotations

from pathlib import Path

import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
from emd_stacks.context import shipped_context
from model_specs.deployment import Deployment


def synth_model_stack(
    deployment: Deployment,
    outdir: str | Path,
    *,
    artifact_parameters: bool = True,
    image_uri: str | None = None,
    model_data_s3_uri: str | None = None,
) -> Path:
    """Return the path of the synthesized template. By default the template declares EngineImageUri /
    ModelDataS3Uri for the build stage to fill (parameters.json)."""
    import aws_cdk as cdk

    from emd_stacks.model import ModelStack

    outdir = Path(outdir)
    app = cdk.App(outdir=str(outdir), context=shipped_context())
    stack = ModelStack(
        app,
        deployment,
        image_uri=image_uri,
        model_data_s3_uri=model_data_s3_uri,
        artifact_parameters=artifact_parameters and not image_uri,
    )
    assembly = app.synth()
    return Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
