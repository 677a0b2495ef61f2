"""The GitOps contract: names shared by the EMD-GitOps stack (emd_stacks.gitops), the steps it runs in
CodeBuild (serving.gitops) and `emd gitops` (emd_cli.gitops); the pipeline's settings; plan.json.

The settings are what `emd gitops init` was given (source, branch, region, how to install EMD). The pipeline
carries them into its own synth step (environment variable EMD_GITOPS_SETTINGS), so every self-mutation
rebuilds the same pipeline around the models.yaml of the commit it runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from model_specs.errors import EmdUserError

DEFAULT_PIPELINE_NAME = "EMD-GitOps"
SETTINGS_ENV = "EMD_GITOPS_SETTINGS"
# stack tag on every model stack a GitOps pipeline deploys: the prune step deletes only stacks carrying it
GITOPS_TAG_KEY = "emd:gitops"
# template metadata of those stacks: the Deployment they were synthesized from (no secret), for `emd gitops
# plan`
DEPLOYMENT_METADATA_KEY = "EMD::Deployment"
# the build's outputs, read by the model stack's EngineImageUri / ModelDataS3Uri parameters at deploy time
ARTIFACT_PARAMETER_PREFIX = "/emd/gitops/artifacts"
# inside the synth step's output (the cloud assembly): what the later steps read
PLAN_FILE = "emd-gitops/plan.json"
SOURCE_DIR = "emd-gitops/src"  # serving/ and model_specs/ of the EMD that synthesized the pipeline
MODELS_FILE = "models.yaml"

PIPELINE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,39}$"
_GITHUB = re.compile(r"^github:([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
_CODECOMMIT = re.compile(r"^codecommit:([\w.-]{1,100})$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[\w-]+$"
)


def artifact_parameter_name(model_id: str, model_tag: str, parameter: str) -> str:
    """SSM parameter the build writes and the model stack's CloudFormation parameter `parameter` reads."""
    return f"{ARTIFACT_PARAMETER_PREFIX}/{model_id}/{model_tag}/{parameter}"


def targets_parameter_name(pipeline: str) -> str:
    """SSM parameter (pipeline account) listing every target the pipeline deployed to, for the prune step."""
    return f"/emd/gitops/pipelines/{pipeline}/targets"


def target_role_name(pipeline: str, region: str) -> str:
    """The role EMD-GitOps-Target creates in each target account and region for the pipeline's steps."""
    return f"{pipeline}-target-{region}"


def target_stack_name(pipeline: str) -> str:
    return f"{pipeline}-Target"


def smoke_project_name(pipeline: str) -> str:
    """The smoke-test CodeBuild project EMD-GitOps-Target creates in the gateway's VPC."""
    return f"{pipeline}-smoke"


class PipelineSettings(BaseModel):
    """What `emd gitops init` was given. `source`: github:<owner>/<repo> (with connection_arn),
    codecommit:<repo> or s3 (a bucket the stack creates). `emd_install`: what the synth step passes to
    pip (a requirement such as 'emd @ git+https://…@v0.1.0') or an s3:// URI of an EMD wheel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default=DEFAULT_PIPELINE_NAME, pattern=PIPELINE_NAME_PATTERN)
    region: str
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    source: str = "s3"
    branch: str = Field(default="main", pattern=r"^[\w./-]{1,200}$")
    connection_arn: str | None = None
    emd_install: str = Field(min_length=1)

    @model_validator(mode="after")
    def _source(self) -> PipelineSettings:
        from model_specs.regions import region_info

        region_info(self.region)
        if self.source == "s3" or _CODECOMMIT.fullmatch(self.source):
            if self.connection_arn:
                raise ValueError("--connection-arn goes with --source github:<owner>/<repo> only")
        elif _GITHUB.fullmatch(self.source):
            if not self.connection_arn:
                raise ValueError(
                    "--source github:… needs --connection-arn (a CodeConnections/CodeStar connection to "
                    "GitHub, created in the console: Developer Tools > Settings > Connections)"
                )
            if not _CONNECTION_ARN.fullmatch(self.connection_arn):
                raise ValueError(
                    f"--connection-arn {self.connection_arn!r} is not a connection ARN "
                    "(arn:<partition>:codeconnections:<region>:<account>:connection/<id>)"
                )
        else:
            raise ValueError(
                f"--source {self.source!r} is not one of github:<owner>/<repo>, codecommit:<repo>, s3"
            )
        return self

    @property
    def source_kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def github_repo(self) -> str:
        """'owner/repo' of a github: source."""
        return self.source.split(":", 1)[1]

    @property
    def codecommit_repo(self) -> str:
        return self.source.split(":", 1)[1]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def pipeline_settings(**values: Any) -> PipelineSettings:
    """PipelineSettings or one EmdUserError line per problem."""
    try:
        return PipelineSettings(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}: {msg}" if field else msg)
        raise EmdUserError("; ".join(problems)) from None


def settings_from_json(text: str) -> PipelineSettings:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EmdUserError(f"{SETTINGS_ENV} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise EmdUserError(f"{SETTINGS_ENV} must be a JSON object")
    return pipeline_settings(**data)


# ---------------------------------------------------------------- plan.json: what the pipeline's steps do


class PlanEntry(BaseModel):
    """One deployment of a stage, as the Build and SmokeTest steps need it (no secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str
    stack_name: str
    model_type: str
    api_key_secret_name: str | None  # None: a public deployment
    deployment: dict[str, Any]  # Deployment.to_public_dict(): the build bundle's deployment.json
    template: str  # the model stack's template, relative to the cloud assembly root


class PlanTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str | None  # None: the pipeline's own account
    region: str
    role_name: str

    def role_arn(self, account: str) -> str:
        """The target role's ARN in `account` (this target's, or the pipeline's when it names none)."""
        from model_specs.regions import region_info

        return f"arn:{region_info(self.region).partition}:iam::{account}:role/{self.role_name}"


class PlanStage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    environment: str
    wave: str
    target: PlanTarget
    entries: list[PlanEntry]


class GitOpsPlan(BaseModel):
    """Written by `emd gitops synth` into the cloud assembly (PLAN_FILE); read by serving.gitops."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str
    pipeline_account: str | None
    pipeline_region: str
    prune: bool
    targets: list[PlanTarget]
    stages: list[PlanStage]

    def stage(self, name: str) -> PlanStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r} in the plan (stages: {', '.join(s.name for s in self.stages)})")
