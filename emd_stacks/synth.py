"""Synthesize in-process: one model stack (`emd plan`, the pipeline bundle) and the shared stacks
(`emd bootstrap`, emd_stacks/shared_synth.py). Templates synthesized here are deployed by plain CloudFormation
(the pipeline's deploy action, `emd bootstrap`'s change sets), so they carry no BootstrapVersion parameter and
no CheckBootstrapVersion rule: those fail in an account that never ran `cdk bootstrap`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
from emd_stacks.context import shipped_context
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError

if TYPE_CHECKING:
    import aws_cdk as cdk


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
    from emd_stacks.model import ModelStack

    app = cloudformation_app(outdir)
    stack = ModelStack(
        app,
        deployment,
        image_uri=image_uri,
        model_data_s3_uri=model_data_s3_uri,
        artifact_parameters=artifact_parameters and not image_uri,
    )
    assembly = app.synth()
    return Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)


def writable_outdir(outdir: str | Path) -> Path:
    """The cloud assembly directory, created. EmdUserError when it cannot be written: the App's node process
    would fail there and leave jsii waiting for it forever."""
    import tempfile

    path = Path(outdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise EmdUserError(
            f"the output folder {str(path)!r} cannot be written ({exc.strerror or exc}): choose another"
        ) from None
    return path


def cloudformation_app(outdir: str | Path) -> cdk.App:
    """A cdk.App with the shipped context (feature flags) whose stacks need no `cdk bootstrap` to deploy."""
    import aws_cdk as cdk

    return cdk.App(
        outdir=str(writable_outdir(outdir)),
        context=shipped_context(),
        default_stack_synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )
