"""moto in server mode, plus what EMD's lifecycle needs from AWS that moto does not do.

    python -m tests.support.aws_double -H 127.0.0.1 -p 5000     # then AWS_ENDPOINT_URL=http://127.0.0.1:5000

What it adds to moto 5.x, all in this process (the CLI under test only ever sees AWS's own APIs):
- CloudFormation models for AWS::CodeBuild::Project, AWS::CodePipeline::Pipeline,
  AWS::ServiceDiscovery::PrivateDnsNamespace and AWS::SecretsManager::Secret (with its generated value)
  (moto's CloudFormation skips them, and a GetAtt on one is an error), created in moto's own backends; and for
  AWS::CloudFront::Distribution and
  AWS::CloudFront::VpcOrigin, which moto's CloudFront cannot hold (a VPC origin), as ids and a
  *.cloudfront.net domain name only, so a gateway behind CloudFront (`emd bootstrap`'s default) deploys and
  publishes its https URL;
- seven moto bugs fixed: generated ECR repository names keep upper-case letters (ECR refuses them), KMS keys
  and SSM parameters from CloudFormation take their tags in the wrong shape, an S3 bucket's
  VersioningConfiguration from CloudFormation is ignored, a stack created or updated through a change set
  has no (or stale) outputs, a CREATE change set for a stack left in REVIEW_IN_PROGRESS (a change set
  never executed) makes a second stack of that name instead of using that one, and DescribeInstances filter
  values take no wildcards (EC2's take * and ?);
- deleting a stack's VPC removes its route tables first, and deleting a role detaches its managed policies
  first, as CloudFormation does (moto refuses both deletions);
- a stack whose resource fails to create ends in ROLLBACK_COMPLETE with the resource's CREATE_FAILED event and
  its reason, as CloudFormation reports it (moto raises from CreateStack and leaves CREATE_IN_PROGRESS);
- the pipeline executor (tests/support/pipeline_double.py): StartPipelineExecution and StartBuild run the
  real build steps and deploy the model stack into moto's CloudFormation, and the executions move through
  real states; StopPipelineExecution and ListActionExecutions, which moto lacks, answer from it;
- Service Quotas for sagemaker and ec2 (moto knows only vpc), read from the JSON file named by
  EMD_DOUBLE_QUOTAS on every call, so a test can shrink a quota while the server runs;
- ECS runs no task in moto: DescribeClusters counts each active service's desired tasks as running, so
  UpdateService(desiredCount=0) scales a deployment to zero as ECS would;
- request counts per operation (the executor's own calls excluded): GET /_emd/calls (DELETE resets).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import threading
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.core.common_models import CloudFormationModel

DEFAULT_QUOTAS: dict[str, list[dict[str, Any]]] = {
    "sagemaker": [
        {"QuotaCode": f"L-EMD{n:05d}", "QuotaName": f"ml.{name} for endpoint usage", "Value": 2.0}
        for n, name in enumerate(("g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g5.2xlarge", "m5.xlarge"))
    ],
    "ec2": [
        {"QuotaCode": "L-DB2E81BA", "QuotaName": "Running On-Demand G and VT instances", "Value": 64.0},
        {"QuotaCode": "L-417A185B", "QuotaName": "Running On-Demand P instances", "Value": 0.0},
        {"QuotaCode": "L-1945791B", "QuotaName": "Running On-Demand Inf instances", "Value": 64.0},
        {
            "QuotaCode": "L-1216C47A",
            "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
            "Value": 256.0,
        },
    ],
}


# ---------------------------------------------------------------- CloudFormation models moto lacks


def _camel(value: Any, keep: tuple[str, ...] = ("Configuration",)) -> Any:
    """CloudFormation's PascalCase properties in the API's camelCase (maps under `keep` stay as they are)."""
    if isinstance(value, list):
        return [_camel(v, keep) for v in value]
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: (v if k in keep else _camel(v, keep)) for k, v in value.items()}
    return value


class _Typed:
    """What the models below share: one CloudFormation type and a few attributes. (Each model subclasses
    CloudFormationModel directly: moto finds them as its direct subclasses.)"""

    cfn_type = ""
    cfn_attributes: tuple[str, ...] = ()

    @classmethod
    def cloudformation_type(cls) -> str:  # type: ignore[override]
        return cls.cfn_type

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.cfn_attributes


class _Named(_Typed):
    """The three models of moto backends below: addressed by their Name."""

    name = ""

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"


class CodeBuildProjectModel(_Named, CloudFormationModel):
    __module__ = "moto.codebuild.models"  # moto files models by service, from their module name
    cfn_type, cfn_attributes = "AWS::CodeBuild::Project", ("Arn",)

    def __init__(self, name: str, arn: str, region: str, account_id: str) -> None:
        self.name, self.arn, self.region, self.account_id = name, arn, region, account_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> CodeBuildProjectModel:  # fmt: skip
        from moto.codebuild.models import codebuild_backends

        props = _camel(cloudformation_json["Properties"])
        source = props.get("source", {})
        if "buildSpec" in source:  # the API spells it buildspec
            source["buildspec"] = source.pop("buildSpec")
        backend = codebuild_backends[account_id][region_name]
        name = props.get("name") or resource_name
        meta = backend.create_project(
            project_name=name,
            description=props.get("description"),
            project_source=props.get("source", {}),
            artifacts=props.get("artifacts", {}),
            environment=props.get("environment", {}),
            service_role=props.get("serviceRole", "role"),
            tags=props.get("tags"),
            cache=props.get("cache"),
            timeout=props.get("timeoutInMinutes"),
            queued_timeout=None,
            source_version=None,
            logs_config=props.get("logsConfig"),
            vpc_config=None,
        )
        return cls(name, meta["arn"], region_name, account_id)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.codebuild.models import codebuild_backends

        codebuild_backends[account_id][region_name].delete_project(resource_name)


class CodePipelineModel(_Named, CloudFormationModel):
    __module__ = "moto.codepipeline.models"
    cfn_type, cfn_attributes = "AWS::CodePipeline::Pipeline", ("Version",)

    def __init__(self, name: str, arn: str) -> None:
        self.name, self.arn = name, arn

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return "1"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> CodePipelineModel:  # fmt: skip
        from moto.codepipeline.models import codepipeline_backends

        props = _camel(cloudformation_json["Properties"])
        props.pop("restartExecutionOnUpdate", None)
        props.pop("tags", None)
        props.setdefault("name", resource_name)
        backend = codepipeline_backends[account_id][region_name]
        backend.create_pipeline(props, None)
        return cls(props["name"], backend.pipelines[props["name"]].metadata["pipelineArn"])

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.codepipeline.models import codepipeline_backends

        codepipeline_backends[account_id][region_name].pipelines.pop(resource_name, None)


class PrivateDnsNamespaceModel(_Named, CloudFormationModel):
    __module__ = "moto.servicediscovery.models"
    cfn_type, cfn_attributes = "AWS::ServiceDiscovery::PrivateDnsNamespace", ("Id", "Arn", "HostedZoneId")

    def __init__(self, namespace: Any) -> None:
        self.namespace = namespace
        self.name = str(namespace.id)  # Ref gives the namespace id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "HostedZoneId":
            return str(self.namespace.dns_properties.get("HostedZoneId"))
        return str(self.namespace.id if attribute_name == "Id" else self.namespace.arn)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> PrivateDnsNamespaceModel:  # fmt: skip
        from moto.servicediscovery.models import servicediscovery_backends

        props = cloudformation_json["Properties"]
        backend = servicediscovery_backends[account_id][region_name]
        name = props.get("Name") or resource_name
        backend.create_private_dns_namespace(
            name, "emd-double", props.get("Description", ""), props["Vpc"], [], props.get("Properties", {})
        )
        return cls(next(ns for ns in backend.namespaces.values() if ns.name == name))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.servicediscovery.models import servicediscovery_backends

        backend = servicediscovery_backends[account_id][region_name]
        backend.namespaces.pop(resource_name, None)


class SecretModel(_Typed, CloudFormationModel):
    """AWS::SecretsManager::Secret with GenerateSecretString, as a directly deployed model stack declares its
    API key: Secrets Manager generates the value; deleting the stack deletes the secret."""

    __module__ = "moto.secretsmanager.models"
    cfn_type, cfn_attributes = "AWS::SecretsManager::Secret", ("Id",)

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:  # Ref gives the secret's ARN
        return self.arn

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> SecretModel:  # fmt: skip
        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        generate = props.get("GenerateSecretString")
        value = props.get("SecretString")
        if generate is not None:
            value = backend.get_random_password(
                password_length=int(generate.get("PasswordLength", 32)),
                exclude_characters=generate.get("ExcludeCharacters", ""),
                exclude_numbers=bool(generate.get("ExcludeNumbers", False)),
                exclude_punctuation=bool(generate.get("ExcludePunctuation", False)),
                exclude_uppercase=bool(generate.get("ExcludeUppercase", False)),
                exclude_lowercase=bool(generate.get("ExcludeLowercase", False)),
                include_space=bool(generate.get("IncludeSpace", False)),
                require_each_included_type=bool(generate.get("RequireEachIncludedType", True)),
            )
            value = json.loads(value)["RandomPassword"] if value.startswith("{") else value
        backend.create_secret(
            name=props.get("Name") or resource_name,
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=None,
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        return cls(backend.describe_secret(props.get("Name") or resource_name).arn)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        name = (cloudformation_json.get("Properties") or {}).get("Name") or resource_name
        secretsmanager_backends[account_id][region_name].delete_secret(name, None, True)


class _CloudFrontResource(_Typed):
    """A CloudFront resource as CloudFormation reports it: an id and attributes, no backend behind it."""

    def __init__(self, resource_id: str, account_id: str) -> None:
        self.id, self.account_id = resource_id, account_id

    @property
    def physical_resource_id(self) -> str:
        return self.id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> _CloudFrontResource:  # fmt: skip
        import uuid

        return cls(uuid.uuid4().hex[:14].upper(), account_id)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        return None


class CloudFrontDistributionModel(_CloudFrontResource, CloudFormationModel):
    __module__ = "moto.cloudfront.models"
    cfn_type, cfn_attributes = "AWS::CloudFront::Distribution", ("DomainName", "Id")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return f"d{self.id.lower()}.cloudfront.net" if attribute_name == "DomainName" else self.id


class CloudFrontVpcOriginModel(_CloudFrontResource, CloudFormationModel):
    __module__ = "moto.cloudfront.models"
    cfn_type, cfn_attributes = "AWS::CloudFront::VpcOrigin", ("Id", "Arn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return f"arn:aws:cloudfront::{self.account_id}:vpcorigin/{self.id}"
        return self.id


# ---------------------------------------------------------------- moto bugs


def _change_set(backend: Any, name: str, stack_name: str | None) -> Any:
    """A change set by ARN, or by name on a stack that still exists (the latest: a deleted stack's change set
    of the same name may remain)."""
    if name in backend.change_sets:
        return backend.change_sets[name]
    found = [
        c
        for c in backend.change_sets.values()
        if c.change_set_name == name and c.stack_id in backend.stacks and stack_name in (None, c.stack_name)
    ]
    return found[-1] if found else None


def fix_moto() -> None:
    import fnmatch

    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.models.vpcs import VPC
    from moto.iam.models import Role
    from moto.kms.models import Key
    from moto.s3.models import FakeBucket
    from moto.ssm.models import Parameter

    generate = parsing.generate_resource_name

    def resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        name = generate(resource_type, stack_name, logical_id)
        return name.lower() if resource_type == "AWS::ECR::Repository" else name  # as CloudFormation does

    parsing.generate_resource_name = resource_name
    create_key = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def key_from_template(cls, resource_name, cloudformation_json, account_id, region_name, **kw):  # type: ignore[no-untyped-def]
        props = cloudformation_json["Properties"]
        props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])]
        return create_key(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    Key.create_from_cloudformation_json = classmethod(key_from_template)  # type: ignore[method-assign]
    create_parameter = Parameter.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def parameter_from_template(cls, resource_name, cloudformation_json, account_id, region_name, **kw):  # type: ignore[no-untyped-def]
        props = cloudformation_json["Properties"]
        if isinstance(props.get("Tags"), dict):  # AWS::SSM::Parameter's Tags is a map
            props["Tags"] = [{"Key": k, "Value": v} for k, v in props["Tags"].items()]
        return create_parameter(cls, resource_name, cloudformation_json, account_id, region_name, **kw)

    Parameter.create_from_cloudformation_json = classmethod(parameter_from_template)  # type: ignore[method-assign]
    create_bucket = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def bucket_from_template(cls, resource_name, cloudformation_json, account_id, region_name, **kw):  # type: ignore[no-untyped-def]
        bucket = create_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        versioning = cloudformation_json.get("Properties", {}).get("VersioningConfiguration", {})
        if versioning.get("Status"):
            bucket.versioning_status = versioning["Status"]
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(bucket_from_template)  # type: ignore[method-assign]
    delete_vpc = VPC.delete_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def vpc_with_its_route_tables(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def]
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[account_id][region_name]
        for table in list(ec2.route_tables.values()):
            if table.vpc_id == resource_name and table.main_association_id is None:
                table._associations.clear()
                ec2.delete_route_table(table.id)
        return delete_vpc(cls, resource_name, cloudformation_json, account_id, region_name)

    VPC.delete_from_cloudformation_json = classmethod(vpc_with_its_route_tables)  # type: ignore[method-assign]
    delete_role = Role.delete_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def role_with_its_attachments(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[no-untyped-def]
        from moto.iam.models import iam_backends
        from moto.utilities.utils import get_partition

        iam = iam_backends[account_id][get_partition(region_name)]
        for role in list(iam.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    iam.detach_role_policy(arn, resource_name)
        return delete_role(cls, resource_name, cloudformation_json, account_id, region_name)

    Role.delete_from_cloudformation_json = classmethod(role_with_its_attachments)  # type: ignore[method-assign]
    execute = CloudFormationBackend.execute_change_set

    def execute_with_outputs(self, change_set_name, stack_name=None):  # type: ignore[no-untyped-def]
        execute(self, change_set_name, stack_name)
        change_set = _change_set(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()  # moto keeps the template (and outputs) the stack was created with: {}
        stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute_with_outputs  # type: ignore[method-assign]
    create_change_set = CloudFormationBackend.create_change_set

    def change_set_on_the_waiting_stack(self, stack_name, change_set_name, template, parameters, description,  # type: ignore[no-untyped-def]
                                        change_set_type, *args, **kwargs):  # fmt: skip
        waiting = next(
            (s for s in self.stacks.values() if s.name == stack_name and s.status == "REVIEW_IN_PROGRESS"),
            None,
        )
        change_set_id, stack_id = create_change_set(
            self,
            stack_name,
            change_set_name,
            template,
            parameters,
            description,
            change_set_type,
            *args,
            **kwargs,
        )
        if waiting is None or change_set_type != "CREATE":
            return change_set_id, stack_id
        self.stacks.pop(stack_id)
        change_set = self.change_sets[change_set_id]
        change_set.stack, change_set.stack_id = waiting, waiting.stack_id
        return change_set_id, waiting.stack_id

    CloudFormationBackend.create_change_set = change_set_on_the_waiting_stack  # type: ignore[method-assign]
    exact = ec2_utils.instance_value_in_filter_values

    def with_wildcards(instance_value: Any, filter_values: Any) -> bool:
        if isinstance(instance_value, str) and any("*" in v or "?" in v for v in filter_values):
            return any(fnmatch.fnmatchcase(instance_value, v) for v in filter_values)
        return bool(exact(instance_value, filter_values))

    ec2_utils.instance_value_in_filter_values = with_wildcards


def roll_back_failed_creations() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend, Event, Stack

    create_resource = parsing.parse_and_create_resource

    def tracked(logical_id, resource_json, resources_map, account_id, region_name):  # type: ignore[no-untyped-def]
        try:
            return create_resource(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            if not hasattr(exc, "emd_failed"):
                exc.emd_failed = (logical_id, resource_json.get("Type", "?"))  # type: ignore[attr-defined]
            raise

    def roll_back(stack: Stack, exc: Exception) -> None:
        logical_id, kind = getattr(exc, "emd_failed", (stack.name, "AWS::CloudFormation::Stack"))
        reason = str(exc)[:1000]
        stack.events.append(
            Event(stack.stack_id, stack.name, logical_id, "", kind, "CREATE_FAILED", reason, None)
        )
        stack._add_stack_event(
            "ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to create: [{logical_id}]."
        )
        with contextlib.suppress(Exception):
            stack.resource_map.delete()
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"

    parsing.parse_and_create_resource = tracked
    create_resources = Stack.create_resources

    def create_or_roll_back(self: Stack) -> None:  # CreateStack
        try:
            create_resources(self)
        except Exception as exc:
            roll_back(self, exc)

    execute = CloudFormationBackend.execute_change_set

    def execute_or_roll_back(
        self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        change_set = _change_set(self, change_set_name, stack_name)
        try:
            execute(self, change_set_name, stack_name)
        except Exception as exc:
            if change_set is None or change_set.change_set_type != "CREATE" or not hasattr(exc, "emd_failed"):
                raise
            change_set.execution_status = "EXECUTE_FAILED"
            roll_back(self.stacks[change_set.stack_id], exc)

    Stack.create_resources = create_or_roll_back  # type: ignore[method-assign]
    CloudFormationBackend.execute_change_set = execute_or_roll_back  # type: ignore[method-assign]


# ---------------------------------------------------------------- Service Quotas


def _quotas(service_code: str) -> list[dict[str, Any]]:
    path = os.environ.get("EMD_DOUBLE_QUOTAS")
    data = json.loads(Path(path).read_text()) if path and Path(path).exists() else DEFAULT_QUOTAS
    return [{**q, "ServiceCode": service_code, "Unit": "None"} for q in data.get(service_code, [])]


def add_quotas() -> None:
    from moto.servicequotas.exceptions import NoSuchResource
    from moto.servicequotas.responses import ServiceQuotasResponse

    def get_service_quota(self: ServiceQuotasResponse) -> str:
        params = json.loads(self.body)
        for quota in _quotas(params["ServiceCode"]):
            if quota["QuotaCode"] == params["QuotaCode"]:
                return json.dumps({"Quota": quota})
        raise NoSuchResource

    def list_service_quotas(self: ServiceQuotasResponse) -> str:
        params = json.loads(self.body)
        quotas = _quotas(params["ServiceCode"])
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or 2)  # small pages: the client must paginate
        page = quotas[start : start + size]
        more = start + size < len(quotas)
        return json.dumps({"Quotas": page, **({"NextToken": str(start + size)} if more else {})})

    ServiceQuotasResponse.get_service_quota = get_service_quota  # type: ignore[method-assign]
    ServiceQuotasResponse.list_service_quotas = list_service_quotas  # type: ignore[attr-defined]


# ---------------------------------------------------------------- ECS tasks


def count_service_tasks() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    describe = EC2ContainerServiceBackend.describe_clusters

    def with_tasks(self, cluster_names):  # type: ignore[no-untyped-def]
        clusters, failures = describe(self, cluster_names)
        for cluster in clusters:
            services = [
                s for s in self.services.values() if s.cluster_arn == cluster.arn and s.status == "ACTIVE"
            ]
            cluster.running_tasks_count = sum(int(s.desired_count or 0) for s in services)
            cluster.pending_tasks_count = 0
            cluster.active_services_count = len(services)
        return clusters, failures

    EC2ContainerServiceBackend.describe_clusters = with_tasks  # type: ignore[method-assign]


# ---------------------------------------------------------------- request counts

CALLS: Counter[str] = Counter()
_CALLS_LOCK = threading.Lock()
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


def _operation(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    service = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    name = service.group(1) if service else "?"
    if target:
        return f"{name}.{target.rsplit('.', 1)[-1]}"
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("Action", [None])[0]
    if action is None and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode()).get("Action", [None])[0]
    return f"{name}.{action or environ.get('REQUEST_METHOD', '?')}"


def count_calls() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from tests.support.pipeline_double import EXECUTOR_KEY_ID

    serve = DomainDispatcherApplication.__call__

    def counted(self, environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") == "/_emd/calls":
            with _CALLS_LOCK:
                body = json.dumps(dict(CALLS)).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    CALLS.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth and EXECUTOR_KEY_ID not in auth:  # the executor's own calls are not the client's
            op = _operation(environ)
            with _CALLS_LOCK:
                CALLS[op] += 1
        return serve(self, environ, start_response)

    DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    from tests.support.pipeline_double import install_executor

    fix_moto()
    roll_back_failed_creations()
    add_quotas()
    count_service_tasks()
    count_calls()
    install_executor()
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])


# ---------------------------------------------------------------- the test side: start, talk to, stop


class AwsDouble:
    """Starts the double on 127.0.0.1 in a subprocess; `env()` is what a CLI subprocess needs to use it."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        from tests.support.servers import free_port

        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.quotas_file = self.workdir / "quotas.json"
        self.hold_file = self.workdir / "hold"
        self.hold_builds_file = self.workdir / "hold-builds"
        self._extra_env = dict(extra_env or {})
        self._proc: Any = None

    def start(self) -> AwsDouble:
        import subprocess
        import time
        import urllib.request

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.set_quotas(DEFAULT_QUOTAS)
        env = {
            **os.environ,
            **self._extra_env,
            "AWS_DEFAULT_REGION": "us-east-1",
            "EMD_DOUBLE_QUOTAS": str(self.quotas_file),
            "EMD_DOUBLE_HOLD": str(self.hold_file),
            "EMD_DOUBLE_HOLD_BUILDS": str(self.hold_builds_file),
        }
        root = Path(__file__).resolve().parents[2]
        with open(self.workdir / "double.log", "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.aws_double", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=root,
                env=env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the AWS double exited: see {self.workdir / 'double.log'}")
            try:
                urllib.request.urlopen(self.url + "/_emd/calls", timeout=2)
                return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("the AWS double did not start")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "EMD_POLL_SECONDS": "0.2",
        }

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def calls(self, reset: bool = False) -> Counter[str]:
        import urllib.request

        request = urllib.request.Request(self.url + "/_emd/calls", method="DELETE" if reset else "GET")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Counter(json.loads(answer.read()))

    def set_quotas(self, quotas: dict[str, list[dict[str, Any]]]) -> None:
        self.quotas_file.write_text(json.dumps(quotas))

    def hold(self, on: bool) -> None:
        """While on, pipeline executions wait before their Deploy stage (EMD_DOUBLE_HOLD_BEFORE: another)."""
        if on:
            self.hold_file.write_text("hold")
        else:
            self.hold_file.unlink(missing_ok=True)

    def seed_deployments(self, model_id: str, count: int, start: int = 0) -> list[str]:
        """`count` deployments as `emd deploy` leaves them, faster: a key secret, a bundle version named by
        its revision summary, a pipeline execution of it, and, for every other one, a model stack with the
        outputs `emd status` reads. Routes <model_id>/b<n>; returns them."""
        from model_specs.deployment import STACK_PREFIX, deployment_slug

        cfn, sm, s3 = self.client("cloudformation"), self.client("secretsmanager"), self.client("s3")
        cp, ssm = self.client("codepipeline"), self.client("ssm")
        bucket = ssm.get_parameter(Name="/emd/bootstrap/artifact-bucket-name")["Parameter"]["Value"]
        routes = []
        for n in range(start, start + count):
            tag = f"b{n}"
            route, stack = f"{model_id}/{tag}", STACK_PREFIX + deployment_slug(model_id, tag)
            facts = {
                "service_type": "sagemaker_realtime",
                "engine_type": "llama.cpp",
                "instance_type": "g4dn.xlarge",
            }
            summary = {"route": route, "stack": stack, "deployment_id": f"seed-{n}", "service":
                       "sagemaker_realtime", "engine": "llama.cpp", "instance": "g4dn.xlarge"}  # fmt: skip
            sm.create_secret(Name=f"emd/{route}/api-key", SecretString=f"emd-seeded-{n}")
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as zf:
                zf.writestr("deployment.json", json.dumps(summary))
            version = s3.put_object(
                Bucket=bucket,
                Key="pipeline/source.zip",
                Body=buffer.getvalue(),
                Metadata={"codepipeline-artifact-revision-summary": json.dumps(summary)},
            )["VersionId"]
            cp.start_pipeline_execution(
                name="EMD-Pipeline",
                variables=[{"name": "model_id", "value": model_id}, {"name": "model_tag", "value": tag}],
                sourceRevisions=[
                    {"actionName": "Bundle", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": version}
                ],
            )
            if n % 2 == 0:
                outputs = {
                    "Route": {"Value": route},
                    "EndpointName": {"Value": f"emd-{deployment_slug(model_id, tag)}"[:63]},
                    "Deployment": {"Value": json.dumps({**facts, "model_type": "llm", "public": False})},
                }
                registry = {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/emd/models/{route}",
                            "Type": "String", "Value": "{}"}}  # fmt: skip
                template = {"Resources": {"Registry": registry}, "Outputs": outputs}
                cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
            routes.append(route)
        return routes
