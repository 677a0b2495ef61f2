"""The deployment registry contract shared by model stacks (writers) and the gateway (reader).

Choice: one SSM String parameter per deployment at /emd/models/<model-id>/<tag>, created by the model
stack itself (AWS::SSM::Parameter), so a deployment appears and disappears with its CloudFormation stack
without a custom resource; standard parameters cost nothing; the gateway lists them with
GetParametersByPath (paginated) and caches the result for a few seconds. A DynamoDB table would need a
custom resource to write items from CloudFormation and one more stateful resource to clean up.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

REGISTRY_PREFIX = "/emd/models"
SECRET_PREFIX = "emd"
DEFAULT_TAG = "dev"

# SSM parameters the shared stacks publish (instead of CloudFormation exports) for model stacks and the CLI.
BOOTSTRAP_PARAM_PREFIX = "/emd/bootstrap"
PARAM_ARTIFACT_BUCKET = f"{BOOTSTRAP_PARAM_PREFIX}/artifact-bucket-name"
PARAM_ECR_REPOSITORY = f"{BOOTSTRAP_PARAM_PREFIX}/ecr-repository-name"
PARAM_BOUNDARY_ARN = f"{BOOTSTRAP_PARAM_PREFIX}/model-permissions-boundary-arn"
PARAM_CODEBUILD_PROJECT = f"{BOOTSTRAP_PARAM_PREFIX}/codebuild-project-name"
PARAM_CODEBUILD_LOG_GROUP = f"{BOOTSTRAP_PARAM_PREFIX}/codebuild-log-group-name"
PARAM_PIPELINE = f"{BOOTSTRAP_PARAM_PREFIX}/pipeline-name"
# optional: where the build pulls engine base images from (China regions reach no public registry)
PARAM_BASE_IMAGE_MIRROR = f"{BOOTSTRAP_PARAM_PREFIX}/base-image-mirror"
GATEWAY_PARAM_PREFIX = "/emd/gateway"
PARAM_GATEWAY_VPC_ID = f"{GATEWAY_PARAM_PREFIX}/vpc-id"
PARAM_GATEWAY_SUBNETS = f"{GATEWAY_PARAM_PREFIX}/private-subnet-ids"
PARAM_GATEWAY_SECURITY_GROUP = f"{GATEWAY_PARAM_PREFIX}/security-group-id"
PARAM_GATEWAY_NAMESPACE_ID = f"{GATEWAY_PARAM_PREFIX}/namespace-id"
PARAM_GATEWAY_NAMESPACE_NAME = f"{GATEWAY_PARAM_PREFIX}/namespace-name"
PARAM_GATEWAY_NAMESPACE_ARN = f"{GATEWAY_PARAM_PREFIX}/namespace-arn"
PARAM_GATEWAY_URL = f"{GATEWAY_PARAM_PREFIX}/url"
# how clients reach it: internal | cloudfront | public-https | public-http (gateway_edge.Exposure)
PARAM_GATEWAY_EXPOSURE = f"{GATEWAY_PARAM_PREFIX}/exposure"
# the client CIDR blocks the load balancer admits, comma-separated, or ALLOWED_CIDRS_ANY: a rerun of
# `emd bootstrap` keeps them instead of opening the gateway up
PARAM_GATEWAY_ALLOWED_CIDRS = f"{GATEWAY_PARAM_PREFIX}/allowed-cidrs"
ALLOWED_CIDRS_ANY = "any"

# the deployment pipeline's contract with the CLI: emd_constructs/pipeline.py builds the pipeline, `emd
# deploy` uploads the bundle to the source key and starts an execution with these variables and its version
PIPELINE_SOURCE_KEY = "pipeline/source.zip"
PIPELINE_SOURCE_ACTION = "Bundle"
PIPELINE_VARIABLES = ("deployment_id", "model_id", "model_tag", "stack_name")


def registry_parameter_name(model_id: str, model_tag: str) -> str:
    return f"{REGISTRY_PREFIX}/{model_id}/{model_tag}"


# CloudWatch metrics the gateway writes (EMF, dimension Route): requests routed to a deployment, and those
# that found no running engine; ECS deployments with min_capacity 0 scale in to zero and out from zero on them
GATEWAY_METRICS_NAMESPACE = "EMD/Gateway"
REQUESTS_METRIC = "Requests"
NO_CAPACITY_METRIC = "NoCapacity"

# key prefix of SageMaker async inputs, outputs and failures (in the artifact bucket or the user's
# s3_output_path): the gateway may read and write objects only under it
ASYNC_IO_PREFIX = "emd-async"


# the local target's file-backed store (a directory the CLI writes and the gateway reads, EMD_STORE=file):
# {"entries": {"<model-id>/<tag>": RegistryEntry JSON}} and {"<secret name>": "<sha256 hex of the key>"}
LOCAL_REGISTRY_FILE = "registry.json"
LOCAL_KEY_DIGESTS_FILE = "key-digests.json"


API_KEY_SECRET_SUFFIX = "api-key"


def api_key_secret_name(model_id: str, model_tag: str) -> str:
    """Secrets Manager name of a deployment's API key (created by the CLI, never by a template)."""
    return f"{SECRET_PREFIX}/{model_id}/{model_tag}/{API_KEY_SECRET_SUFFIX}"


# every deployment's API key and nothing else under emd/ (not emd/hf-token): an IAM resource-name pattern;
# Secrets Manager appends '-' and 6 random characters to each secret's ARN
API_KEY_SECRETS_ARN_NAME = f"{SECRET_PREFIX}/*/{API_KEY_SECRET_SUFFIX}-??????"


class RegistryEntry(BaseModel):
    """JSON value of a registry parameter: where the gateway sends requests for <model_id>/<model_tag>."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_id: str
    model_tag: str = DEFAULT_TAG
    model_type: str = Field(description="llm | vlm | embedding | rerank | asr")
    service_type: str
    backend: Literal["sagemaker", "sagemaker_async", "http"]
    endpoint_name: str | None = Field(default=None, description="SageMaker endpoint (sagemaker backends)")
    base_url: str | None = Field(default=None, description="engine URL incl. /v1 prefix root (http backend)")
    api_key_secret_name: str | None = Field(default=None, description="None only when public is true")
    inference_component_name: str | None = Field(
        default=None, description="scale-to-zero real-time endpoints: the inference component to invoke"
    )
    s3_input_path: str | None = Field(default=None, description="sagemaker_async: where request inputs go")
    public: bool = False
    region: str | None = None
    stack_name: str | None = None

    @property
    def route(self) -> str:
        return f"{self.model_id}/{self.model_tag}"


_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key); the key may be empty."""
    m = _S3_URI.match(uri)
    if not m:
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return m.group(1), m.group(2)
