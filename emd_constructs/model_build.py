"""A directly deployed model stack's own build (`cdk deploy -c model_id=…`): its build inputs (the
model bundle of emd_constructs/bundles.py: deployment.json and what serving/build/buildspec.yml runs) travel
as a CDK asset, and a custom resource (Custom::EmdModelBuild, handler serving/build_resource) runs the
bootstrap's CodeBuild project on them, the pipeline's own build steps, so cached weights and images are
reused. It waits through the Provider framework's is-complete polling (CloudFormation allows a custom
resource one hour) and hands the build's engine image URI and weights folder to the model resources (GetAtt).

The asset's key is the hash of the build inputs: a redeploy with the same inputs changes no property, so
CloudFormation starts no build. The handler may only start and read builds of the bootstrap's project and
read that project's log; every role carries the stack's permissions boundary, which allows exactly that
(emd_constructs/permissions_boundary.py)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_lambda as lambda_
import aws_cdk.aws_s3_assets as s3_assets
import aws_cdk.aws_ssm as ssm
import aws_cdk.aws_stepfunctions as sfn
import aws_cdk.custom_resources as cr
from constructs import Construct

from emd_constructs.bundles import PACKAGES_ROOT, direct_build_bundle
from emd_constructs.hygiene import keep_only_policy_dependency
from emd_constructs.log_groups import log_group
from emd_constructs.model_names import arn
from emd_constructs.nag import acknowledge, acknowledge_wildcards, default_policy
from model_specs.deployment import Deployment
from model_specs.registry import PARAM_CODEBUILD_LOG_GROUP, PARAM_CODEBUILD_PROJECT

HANDLER_DIR = PACKAGES_ROOT / "serving" / "build_resource"
RESOURCE_TYPE = "Custom::EmdModelBuild"
RUNTIME = lambda_.Runtime.PYTHON_3_12
QUERY_INTERVAL = cdk.Duration.seconds(30)
# the Provider framework's maximum, CloudFormation's limit for a custom resource
TOTAL_TIMEOUT = cdk.Duration.hours(1)
# the handler gives up a little before the framework would, with a message that says what to do
WAIT_SECONDS = TOTAL_TIMEOUT.to_seconds() - 5 * 60
WAITER_SUFFIX = "-BuildWaiter"
BUILD_ACTIONS = ("codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject")


def project_arn(scope: Construct, project_name: str) -> str:
    return arn(cdk.Stack.of(scope), "codebuild", "project", project_name)


def build_log_arn(scope: Construct, log_group_name: str) -> str:
    return arn(cdk.Stack.of(scope), "logs", "log-group", f"{log_group_name}:log-stream:*", colon=True)


def staged_inputs(bundle: bytes) -> Path:
    """The bundle as a file named by its hash (the asset's source; CDK copies it into the cloud assembly)."""
    folder = Path(tempfile.gettempdir()) / "emd-build-inputs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(bundle).hexdigest()}.zip"
    if not path.exists() or path.read_bytes() != bundle:
        partial = path.with_suffix(".part")
        partial.write_bytes(bundle)
        partial.replace(path)
    return path


class ModelBuild(Construct):
    """`.image_uri`, `.model_data_s3_uri` (s3://<artifact bucket>/<folder>/) and `.weights_prefix` are the
    build's outputs (tokens)."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment) -> None:
        super().__init__(scope, construct_id)
        d = deployment
        project = ssm.StringParameter.value_for_string_parameter(self, PARAM_CODEBUILD_PROJECT)
        build_log = ssm.StringParameter.value_for_string_parameter(self, PARAM_CODEBUILD_LOG_GROUP)
        self.inputs = s3_assets.Asset(
            self, "Inputs", path=str(staged_inputs(direct_build_bundle(d.to_public_dict())))
        )

        logs = log_group(self, "Logs")
        role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"EMD build custom resource of {d.route}: runs the bootstrap's build project",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(BUILD_ACTIONS), resources=[project_arn(self, project)])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[build_log_arn(self, build_log)])
        )
        logs.grant_write(role)
        code = lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"])
        functions = {
            name: lambda_.Function(
                self,
                name,
                runtime=RUNTIME,
                code=code,
                handler=f"handler.{entry}",
                role=role,
                timeout=cdk.Duration.minutes(1),
                memory_size=256,
                log_group=logs,
                environment={"EMD_WAIT_SECONDS": str(int(WAIT_SECONDS))},
                description=f"EMD build custom resource of {d.route} ({entry})",
            )
            for name, entry in (("OnEvent", "on_event"), ("IsComplete", "is_complete"))
        }
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=functions["OnEvent"],
            is_complete_handler=functions["IsComplete"],
            query_interval=QUERY_INTERVAL,
            total_timeout=TOTAL_TIMEOUT,
            log_group=logs,
            disable_waiter_state_machine_logging=True,
        )
        _name_waiter(self.provider, d.stack_name)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "ProjectName": project,
                "SourceBucket": self.inputs.s3_bucket_name,
                "SourceKey": self.inputs.s3_object_key,
                "Environment": {
                    "EMD_DEPLOYMENT_ID": "cdk-deploy",
                    "EMD_MODEL_ID": d.model_id,
                    "EMD_MODEL_TAG": d.model_tag,
                    "EMD_STACK_NAME": d.stack_name,
                },
            },
        )
        self.image_uri = self.resource.get_att_string("ImageUri")
        self.model_data_s3_uri = self.resource.get_att_string("ModelDataS3Uri")
        self.weights_prefix = self.resource.get_att_string("WeightsPrefix")
        self.build_id = self.resource.get_att_string("BuildId")
        self._tidy()

    def _tidy(self) -> None:
        """cfn-lint's W3005 (a DependsOn on the role a GetAtt already orders) and cdk-nag's findings, each
        with its reason."""
        for node in self.node.find_all():
            if isinstance(node, lambda_.Function) and isinstance(node.role, iam.Role):
                keep_only_policy_dependency(node, node.role)
            if isinstance(node, sfn.CfnStateMachine):
                waiter = node.node.scope
                assert waiter is not None
                role = waiter.node.find_child("Role")
                assert isinstance(role, iam.Role)
                keep_only_policy_dependency(waiter, role)
                acknowledge(
                    node,
                    "AwsSolutions-SF1",
                    "The Provider framework's waiter only calls the is-complete handler, whose log group has "
                    "each poll's outcome; execution logging would need log-delivery permissions on every "
                    "log group (Resource *).",
                )
                acknowledge(
                    node,
                    "AwsSolutions-SF2",
                    "The waiter makes one Lambda call per poll: a trace would show nothing the handler's log "
                    "does not.",
                )
            if isinstance(node, iam.Role):
                acknowledge_wildcards(
                    default_policy(node),
                    "The Provider framework's functions and waiter invoke each other's versions "
                    "(<function ARN>:*); the handler reads the streams of the bootstrap build's one log "
                    "group (<group>:log-stream:*). The permissions boundary caps every role.",
                )
        for node in self.provider.node.find_all():
            if isinstance(node, iam.Role):
                acknowledge(
                    node,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "aws-cdk-lib's Provider framework functions use AWSLambdaBasicExecutionRole (CloudWatch "
                    "Logs only), capped by the permissions boundary to this stack's log groups.",
                )
        for function in (self.node.find_child("OnEvent"), self.node.find_child("IsComplete")):
            acknowledge(
                function,
                "AwsSolutions-L1",
                f"{RUNTIME.name} runs in every region EMD supports, the China regions included; the handler "
                "uses boto3 only.",
            )


def waiter_name(stack_name: str) -> str:
    """The Provider's waiter state machine under the stack's name (the permissions boundary allows starting
    EMD-Model-* state machines only); at most 80 characters, the stack name's hash suffix kept."""
    fits = len(stack_name) <= 80 - len(WAITER_SUFFIX)
    base = stack_name if fits else f"{stack_name[:59]}-{stack_name[-8:]}"
    return base + WAITER_SUFFIX


def _name_waiter(provider: cr.Provider, stack_name: str) -> None:
    (machine,) = [c for c in provider.node.find_all() if isinstance(c, sfn.CfnStateMachine)]
    machine.state_machine_name = waiter_name(stack_name)
