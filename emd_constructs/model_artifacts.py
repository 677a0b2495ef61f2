"""Where a model stack's engine image and weights come from, and the grants to read them.

Three modes, decided at synth time:
- given: image_uri / model_data_s3_uri props (or model_params.model_files_s3_path) are used as they are;
- parameters: the template declares the CloudFormation parameters EngineImageUri / ModelDataS3Uri that the
  pipeline's build stage fills in parameters.json (serving/build/contract.py);
- built (direct `cdk deploy -c ...`): whatever is not given comes from the stack's own run of the
  bootstrap's CodeBuild project (emd_constructs/model_build.py), which pushes the engine image to the
  bootstrap's ECR repository and caches the weights in its artifact bucket, so no local Docker is needed and
  nothing is guessed at synth time.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import aws_cdk.aws_ecr as ecr
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from emd_constructs.model_build import ModelBuild
from model_specs.deployment import Deployment
from model_specs.registry import PARAM_ARTIFACT_BUCKET, PARAM_ECR_REPOSITORY, split_s3_uri
from model_specs.weights_cache import WEIGHTS_PREFIX

# serving/build/contract.py (the build stage fills parameters with exactly these names)
PARAM_ENGINE_IMAGE_URI = "EngineImageUri"
PARAM_MODEL_DATA_S3_URI = "ModelDataS3Uri"


@dataclass(frozen=True)
class ArtifactInputs:
    """image_uri / model_data_s3_uri: literal values (given mode); parameters: declare CfnParameters; neither:
    the stack builds what is missing."""

    image_uri: str | None = None
    model_data_s3_uri: str | None = None
    parameters: bool = False


class ModelArtifacts(Construct):
    """Resolves `.image_uri` and `.model_data_s3_uri` (strings or tokens) and grants read access to them;
    `.build` is the stack's own build (None unless something is built)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, inputs: ArtifactInputs
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository.from_repository_name(
            self, "Repository", ssm.StringParameter.value_for_string_parameter(self, PARAM_ECR_REPOSITORY)
        )
        stack = cdk.Stack.of(self)
        user_path = deployment.extra_params.model_params.model_files_s3_path
        given = inputs.model_data_s3_uri or user_path
        self.build: ModelBuild | None = None
        if not inputs.parameters and not (inputs.image_uri and given):
            self.build = ModelBuild(self, "Build", deployment=deployment)

        if inputs.image_uri:
            self.image_uri = inputs.image_uri
        elif inputs.parameters:
            self.image_uri = cdk.CfnParameter(
                stack,
                PARAM_ENGINE_IMAGE_URI,
                type="String",
                description="Engine image URI (filled by the EMD build stage)",
            ).value_as_string
        else:
            assert self.build is not None
            self.image_uri = self.build.image_uri

        self._artifact_bucket: s3.IBucket | None = None
        self._weights_bucket: s3.IBucket | None = None
        self._weights_prefix = ""
        if given:
            bucket_name, key = split_s3_uri(given)
            self.model_data_s3_uri = given if given.endswith("/") else given + "/"
            self._weights_prefix = key if not key or key.endswith("/") else key + "/"
            if not cdk.Token.is_unresolved(bucket_name):
                self._weights_bucket = s3.Bucket.from_bucket_name(self, "WeightsBucket", bucket_name)
        elif inputs.parameters:
            # the build fills the parameter with a folder of this model's cache, models/<model-id>/<commit>/
            self._weights_prefix = f"{WEIGHTS_PREFIX}/{deployment.model_id}/"
            self.model_data_s3_uri = cdk.CfnParameter(
                stack,
                PARAM_MODEL_DATA_S3_URI,
                type="String",
                allowed_pattern=r"^s3://.+/$",
                description="S3 prefix of the model weights (filled by the EMD build stage)",
            ).value_as_string
        else:
            assert self.build is not None
            self._weights_prefix = self.build.weights_prefix
            self.model_data_s3_uri = self.build.model_data_s3_uri

    @property
    def artifact_bucket(self) -> s3.IBucket:
        """The bootstrap's artifact bucket (its SSM parameter is declared only when something uses it)."""
        if self._artifact_bucket is None:
            name = ssm.StringParameter.value_for_string_parameter(self, PARAM_ARTIFACT_BUCKET)
            self._artifact_bucket = s3.Bucket.from_bucket_name(self, "ArtifactBucket", name)
        return self._artifact_bucket

    def weights_statements(self) -> list[iam.PolicyStatement]:
        bucket = self._weights_bucket or self.artifact_bucket
        return [
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{self._weights_prefix}*")]
            ),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
        ]

    def grant_weights(self, grantee: iam.IGrantable) -> None:
        for statement in self.weights_statements():
            grantee.grant_principal.add_to_principal_policy(statement)

    def grant_image(self, grantee: iam.IGrantable) -> None:
        self.repository.grant_pull(grantee)
