"""What CloudFormation may do while it deploys a model stack (the pipeline's deploy role).

The actions are those of the CloudFormation registry handlers (create/read/update/delete) of the resource
types that model stacks contain, minus NOT_GRANTED (handler actions for properties model stacks never set),
plus BEYOND_HANDLERS (what a stack deployment needs besides its resources' handlers).
tests/unit/test_deploy_role_census.py derives the types from every synthesized model template and the
handler actions from the registry schemas, and checks the Resource/Condition of each statement against the
Service Authorization Reference.

Scoping, per the reference's resource types and condition keys:
- by name where CloudFormation generates it from the stack name (EMD-Model-*: alarms, Auto Scaling groups,
  log groups, topics, IAM roles and instance profiles; ECS task families EMDModel*) or where EMD names it
  (registry parameters /emd/models/*);
- by the emd:model-id tag elsewhere: aws:RequestTag on the calls that create (and tag) a resource,
  aws:ResourceTag on those that change or delete one. Reads are scoped by ARN only: a tag condition on a
  Describe call fails as AccessDenied instead of NotFound once the resource is gone, which breaks deletes;
- Resource "*" remains only for actions without resource types (Describe*/List* of EC2, Auto Scaling,
  Application Auto Scaling, CloudWatch Logs, ECS task definitions, Cloud Map listing/tagging).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3

from emd_constructs.model_names import TASK_FAMILY_PREFIX, arn, model_log_groups
from emd_constructs.regional import SERVICE_NAME_SUFFIX, aws_service
from emd_constructs.tagging import MODEL_ID_KEY
from model_specs.deployment import STACK_PREFIX
from model_specs.registry import REGISTRY_PREFIX

TAGGED_REQUEST = {"Null": {f"aws:RequestTag/{MODEL_ID_KEY}": "false"}}
TAGGED_RESOURCE = {"Null": {f"aws:ResourceTag/{MODEL_ID_KEY}": "false"}}
SSM_MANAGED_INSTANCE_CORE = "AmazonSSMManagedInstanceCore"
# services the model roles are passed to (SageMaker models, ECS tasks, EC2 instances/launch templates and the
# role aws-cdk-lib creates for SageMaker scalable targets)
PASSED_TO = ("sagemaker", "ecs-tasks", "ec2", "application-autoscaling")
SERVICE_LINKED_ROLES = tuple(
    aws_service(s)
    for s in (
        "sagemaker",
        "ecs",
        "autoscaling",
        "ecs.application-autoscaling",
        "sagemaker.application-autoscaling",
    )
)

NOT_GRANTED: dict[str, str] = {
    "application-autoscaling:PutScheduledAction": "no scheduled scaling actions",
    "application-autoscaling:DeleteScheduledAction": "no scheduled scaling actions",
    "lambda:*ProvisionedConcurrencyConfig": "scalable targets are SageMaker and ECS, never Lambda",
    "cloudwatch:GetMetricData": "predictive scaling only; policies are target tracking and step scaling",
    "autoscaling:Attach*": "the ECS hosts' Auto Scaling group has no load balancer or traffic source",
    "autoscaling:Detach*": "the ECS hosts' Auto Scaling group has no load balancer or traffic source",
    "elasticloadbalancing:Describe*": "no load balancer attached to the Auto Scaling group",
    "managed-fleets:*": "no managed fleets (and no such service in the Service Authorization Reference)",
    "vpc-lattice:*": "no VPC Lattice target groups",
    "ssm:Get*": "only ssm:GetParameters, on the named paths the templates' parameters read",
    "ec2:Get*": "no attribute-based instance selection (mixed instances policy)",
    "ec2:AttachVolume": "no extra volumes besides the root volume",
    "ec2:DetachVolume": "no extra volumes besides the root volume",
    "ssm:CreateAssociation": "no SSM associations on the EC2 instance",
    "ssm:DeleteAssociation": "no SSM associations on the EC2 instance",
    "ecs:PutAccountSetting": "account-wide ECS settings are never changed by a model stack",
    "ecs:PutAccountSettingDefault": "account-wide ECS settings are never changed by a model stack",
    "iam:UpdateAssumeRolePolicy": "a model role's trust policy never changes in place (a new principal "
    "means a new role); it would let a template make a role assumable from elsewhere",
    "iam:DeleteRolePermissionsBoundary": "denied: a model role never loses the permissions boundary",
    "iam:*GroupPolicy": "model stacks create no IAM groups",
    "iam:*UserPolicy": "model stacks create no IAM users",
    "servicediscovery:UntagResource": "Cloud Map service tags never change after creation",
    "logs:AssociateKmsKey": "log groups use CloudWatch Logs' own encryption",
    "logs:DisassociateKmsKey": "log groups use CloudWatch Logs' own encryption",
    **{
        f"logs:{verb}{kind}Policy": "no data-protection, index or resource policies on model log groups"
        for verb in ("Put", "Delete")
        for kind in ("DataProtection", "Index", "Resource")
    },
    "logs:CreateLogDelivery": "no vended-log deliveries",
    "logs:PutBearerTokenAuthentication": "no bearer-token ingestion",
    "logs:PutLogGroupDeletionProtection": "log groups are deleted with their stack",
    "firehose:TagDeliveryStream": "no Firehose delivery",
    "s3:REST.PUT.OBJECT": "no log export to S3",
    "sns:Subscribe": "the async topics get no subscription from the template",
    "sns:Unsubscribe": "the async topics get no subscription from the template",
    "sns:PutDataProtectionPolicy": "no SNS data-protection policy",
}

BEYOND_HANDLERS: dict[str, str] = {
    "s3:GetObject": "reads the template and parameters.json from the pipeline's artifacts",
    "s3:GetObjectVersion": "reads the template and parameters.json from the pipeline's artifacts",
    "kms:CreateGrant": "RunInstances with an encrypted root volume when the account's default EBS key is a "
    "customer managed key (only through EC2: kms:ViaService)",
    "kms:Decrypt": "as kms:CreateGrant",
    "kms:GenerateDataKeyWithoutPlaintext": "as kms:CreateGrant",
    "kms:ReEncryptFrom": "as kms:CreateGrant",
    "kms:ReEncryptTo": "as kms:CreateGrant",
}


def _allow(
    sid: str, actions: list[str], resources: list[str], conditions: dict[str, Any] | None = None
) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)


def model_stack_statements(
    stack: cdk.Stack,
    *,
    bucket: s3.IBucket,
    artifact_prefix: str,
    boundary: iam.IManagedPolicy,
    china: bool,
) -> dict[str, list[iam.PolicyStatement]]:
    """The deploy role's statements in groups that each fit one managed policy (6,144 characters);
    `artifact_prefix` is where the pipeline keeps its artifacts."""
    return {
        "SageMaker": [*_sagemaker(stack), *_scaling_and_alarms(stack)],
        "Ecs": _ecs(stack),
        "Ec2": _ec2(stack),
        "Iam": _iam(stack, boundary, china),
        "LogsTopicsParameters": [
            *_logs_topics_parameters(stack),
            *_artifacts_and_keys(stack, bucket, artifact_prefix),
        ],
    }


def _artifacts_and_keys(
    stack: cdk.Stack, bucket: s3.IBucket, artifact_prefix: str
) -> list[iam.PolicyStatement]:
    return [
        _allow(
            "ReadPipelineArtifacts",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [bucket.arn_for_objects(f"{artifact_prefix}*")],
        ),
        # read handlers (ECS clusters, endpoint configs) describe a customer key when one is set: none is
        _allow("DescribeKeys", ["kms:DescribeKey"], [arn(stack, "kms", "key", "*")]),
        _allow(
            "EncryptedVolumesThroughEc2Only",
            [
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            # the account's default EBS key is not known in advance: any key of this account and region,
            # used only through EC2
            [arn(stack, "kms", "key", "*")],
            {"StringEquals": {"kms:ViaService": f"ec2.{stack.region}.{cdk.Aws.URL_SUFFIX}"}},
        ),
    ]


def _sagemaker(stack: cdk.Stack) -> list[iam.PolicyStatement]:
    kinds = ("model", "endpoint-config", "endpoint", "inference-component")
    resources = [arn(stack, "sagemaker", kind, "*") for kind in kinds]
    return [
        _allow(
            "SageMakerCreateTagged",
            [
                "sagemaker:CreateEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:CreateInferenceComponent",
                "sagemaker:AddTags",
            ],
            resources,
            TAGGED_REQUEST,
        ),
        # no model without network isolation (its engine gets no network at all)
        _allow(
            "SageMakerCreateIsolatedModel",
            ["sagemaker:CreateModel"],
            [arn(stack, "sagemaker", "model", "*")],
            {**TAGGED_REQUEST, "Bool": {"sagemaker:NetworkIsolation": "true"}},
        ),
        _allow(
            "SageMakerChangeTagged",
            [
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DeleteModel",
                "sagemaker:UpdateInferenceComponent",
                "sagemaker:UpdateInferenceComponentRuntimeConfig",
                "sagemaker:DeleteInferenceComponent",
                "sagemaker:DeleteTags",
            ],
            resources,
            TAGGED_RESOURCE,
        ),
        _allow(
            "SageMakerRead",
            [
                "sagemaker:DescribeModel",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeInferenceComponent",
                "sagemaker:ListTags",
            ],
            resources,
        ),
    ]


def _scaling_and_alarms(stack: cdk.Stack) -> list[iam.PolicyStatement]:
    targets = [arn(stack, "application-autoscaling", "scalable-target", "*")]
    alarms = arn(stack, "cloudwatch", "alarm", f"{STACK_PREFIX}*", colon=True)
    return [
        _allow(
            "ScalingOfSageMakerAndEcsOnly",
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
            ],
            targets,
            {"StringEquals": {"application-autoscaling:service-namespace": ["sagemaker", "ecs"]}},
        ),
        _allow(
            "ScalableTargetTags",
            [
                "application-autoscaling:TagResource",
                "application-autoscaling:UntagResource",
                "application-autoscaling:ListTagsForResource",
            ],
            targets,
        ),
        # no resource types
        _allow(
            "ScalingRead",
            [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DescribeScheduledActions",
            ],
            ["*"],
        ),
        _allow(
            "ModelAlarms",
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            [alarms],
        ),
        _allow(
            "AlarmsRead",
            ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"],
            [arn(stack, "cloudwatch", "alarm", "*", colon=True)],
        ),
    ]


def _ecs(stack: cdk.Stack) -> list[iam.PolicyStatement]:
    ecs = [
        arn(stack, "ecs", "cluster", "*"),
        arn(stack, "ecs", "capacity-provider", "*"),
        arn(stack, "ecs", "service", "*/*"),
        arn(stack, "ecs", "service-deployment", "*/*/*"),
    ]
    families = arn(stack, "ecs", "task-definition", f"{TASK_FAMILY_PREFIX}*:*")
    discovery = [arn(stack, "servicediscovery", kind, "*") for kind in ("namespace", "service")]
    groups = arn(
        stack, "autoscaling", "autoScalingGroup", f"*:autoScalingGroupName/{STACK_PREFIX}*", colon=True
    )
    return [
        _allow(
            "EcsCreateTagged",
            [
                "ecs:CreateCluster",
                "ecs:CreateCapacityProvider",
                "ecs:CreateService",
                "ecs:RegisterTaskDefinition",
                "ecs:TagResource",
            ],
            [*ecs, families],
            TAGGED_REQUEST,
        ),
        _allow(
            "EcsChangeTagged",
            [
                "ecs:UpdateCluster",
                "ecs:UpdateClusterSettings",
                "ecs:PutClusterCapacityProviders",
                "ecs:DeleteCluster",
                "ecs:UpdateCapacityProvider",
                "ecs:DeleteCapacityProvider",
                "ecs:UpdateService",
                "ecs:DeleteService",
                "ecs:UntagResource",
            ],
            [*ecs, families],
            TAGGED_RESOURCE,
        ),
        # a rollback stops a service deployment, whose own tags ECS does not promise
        _allow(
            "EcsReadAndStopDeployments",
            [
                "ecs:DescribeClusters",
                "ecs:DescribeCapacityProviders",
                "ecs:DescribeServices",
                "ecs:DescribeServiceDeployments",
                "ecs:ListServiceDeployments",
                "ecs:StopServiceDeployment",
                "ecs:ListTagsForResource",
            ],
            [*ecs, families],
        ),
        # no resource types
        _allow(
            "EcsTaskDefinitionRevisions",
            ["ecs:DescribeTaskDefinition", "ecs:DeregisterTaskDefinition"],
            ["*"],
        ),
        _allow("CloudMapCreateTagged", ["servicediscovery:CreateService"], discovery, TAGGED_REQUEST),
        _allow(
            "CloudMapChangeTagged",
            [
                "servicediscovery:UpdateService",
                "servicediscovery:DeleteService",
                "servicediscovery:UpdateServiceAttributes",
                "servicediscovery:DeleteServiceAttributes",
            ],
            discovery,
            TAGGED_RESOURCE,
        ),
        _allow(
            "CloudMapRead",
            [
                "servicediscovery:GetService",
                "servicediscovery:GetServiceAttributes",
                "servicediscovery:GetNamespace",
                "servicediscovery:GetOperation",
            ],
            discovery,
        ),
        # no resource types; tagging still needs the emd:model-id tag in the request
        _allow("CloudMapTagging", ["servicediscovery:TagResource"], ["*"], TAGGED_REQUEST),
        _allow(
            "CloudMapListing",
            ["servicediscovery:ListServices", "servicediscovery:ListTagsForResource"],
            ["*"],
        ),
        _allow(
            "HostGroups",
            [
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
                "autoscaling:SuspendProcesses",
                "autoscaling:ResumeProcesses",
                "autoscaling:EnableMetricsCollection",
                "autoscaling:DisableMetricsCollection",
                "autoscaling:PutLifecycleHook",
                "autoscaling:DeleteLifecycleHook",
                "autoscaling:PutNotificationConfiguration",
                "autoscaling:DeleteNotificationConfiguration",
                "autoscaling:StartInstanceRefresh",
                "autoscaling:CancelInstanceRefresh",
            ],
            [groups],
        ),
        _allow("HostGroupsRead", ["autoscaling:Describe*"], ["*"]),  # no resource types
    ]


def _ec2(stack: cdk.Stack) -> list[iam.PolicyStatement]:
    def ec2(kind: str) -> str:
        return arn(stack, "ec2", kind, "*")

    kinds = ("instance", "volume", "network-interface", "security-group", "security-group-rule")
    taggable = [ec2(k) for k in (*kinds, "launch-template")]

    return [
        # CloudFormation may tag an instance after RunInstances, so the launch itself is scoped by ARN; the
        # image comes from the ECS-optimized AMI parameter (owned by AWS: no account in its ARN)
        _allow(
            "LaunchInstances",
            ["ec2:RunInstances", "ec2:MonitorInstances", "ec2:UnmonitorInstances"],
            [
                *(ec2(k) for k in ("instance", "volume", "network-interface", "security-group", "subnet")),
                ec2("launch-template"),
                stack.format_arn(service="ec2", resource="image", resource_name="*", account=""),
            ],
        ),
        _allow(
            "InstancesTagged",
            [
                "ec2:TerminateInstances",
                "ec2:StartInstances",
                "ec2:StopInstances",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifyInstanceMetadataOptions",
                "ec2:ModifyInstanceCreditSpecification",
                "ec2:ModifyInstanceMaintenanceOptions",
                "ec2:ModifyInstancePlacement",
                "ec2:ModifyPrivateDnsNameOptions",
                "ec2:AssociateIamInstanceProfile",
                "ec2:DisassociateIamInstanceProfile",
                "ec2:ReplaceIamInstanceProfileAssociation",
            ],
            [ec2("instance")],
            TAGGED_RESOURCE,
        ),
        # CloudFormation may tag these after creating them: creation is scoped by ARN
        _allow(
            "CreateGroupsAndTemplates",
            ["ec2:CreateSecurityGroup", "ec2:CreateLaunchTemplate"],
            [ec2("security-group"), ec2("vpc"), ec2("launch-template")],
        ),
        # only on EMD's own (tagged) security groups and launch templates
        _allow(
            "GroupsAndTemplatesTagged",
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
                "ec2:DeleteSecurityGroup",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:DeleteLaunchTemplate",
            ],
            [ec2("security-group"), ec2("launch-template")],
            TAGGED_RESOURCE,
        ),
        # the rule objects an authorization creates carry no tag of their own
        _allow(
            "SecurityGroupRules",
            ["ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"],
            [ec2("security-group-rule")],
        ),
        _allow("TagOnlyWithModelId", ["ec2:CreateTags"], taggable, TAGGED_REQUEST),
        _allow("UntagTagged", ["ec2:DeleteTags"], taggable, TAGGED_RESOURCE),
        # the Auto Scaling group's handler asks for ec2:Describe* as such; most take no resource ARN, all
        # take the region condition
        _allow("Ec2Read", ["ec2:Describe*"], ["*"], {"StringEquals": {"ec2:Region": stack.region}}),
        # the instance handler reads the SSM associations it would manage (none)
        _allow(
            "InstanceAssociationsRead", ["ssm:DescribeAssociation"], [arn(stack, "ssm", "association", "*")]
        ),
        _allow("InstanceAssociationsList", ["ssm:ListAssociations"], ["*"]),  # no resource types
    ]


def _iam(stack: cdk.Stack, boundary: iam.IManagedPolicy, china: bool) -> list[iam.PolicyStatement]:
    roles = arn(stack, "iam", "role", f"{STACK_PREFIX}*", region=False)
    profiles = arn(stack, "iam", "instance-profile", f"{STACK_PREFIX}*", region=False)
    with_boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary.managed_policy_arn}}
    # iam:PassedToService: the China regions' older '.cn' names are accepted too
    suffixes = [SERVICE_NAME_SUFFIX, f"{SERVICE_NAME_SUFFIX}.cn"] if china else [SERVICE_NAME_SUFFIX]
    passed_to = [f"{service}.{suffix}" for service in PASSED_TO for suffix in suffixes]
    ecs_scaling_role = arn(
        stack,
        "iam",
        "role",
        f"aws-service-role/{aws_service('ecs.application-autoscaling')}/"
        "AWSServiceRoleForApplicationAutoScaling_ECSService",
        region=False,
    )
    return [
        _allow(
            "CreateRolesOnlyWithBoundary",
            [
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ],
            [roles],
            with_boundary,
        ),
        # the EC2 target's Session Manager policy is the only managed policy a model role carries
        _allow(
            "AttachOnlySessionManagerPolicy",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [roles],
            {
                **with_boundary,
                "ArnEquals": {
                    "iam:PolicyARN": stack.format_arn(
                        service="iam",
                        region="",
                        account="aws",
                        resource="policy",
                        resource_name=SSM_MANAGED_INSTANCE_CORE,
                    )
                },
            },
        ),
        _allow(
            "ManageModelRoles",
            [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:DeleteRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ],
            [roles],
        ),
        _allow(
            "PassModelRolesToTheirServices",
            ["iam:PassRole"],
            [roles, ecs_scaling_role],
            {"StringEquals": {"iam:PassedToService": passed_to}},
        ),
        _allow(
            "ModelInstanceProfiles",
            [
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
            ],
            [profiles],
        ),
        _allow(
            "ServiceLinkedRoles",
            ["iam:CreateServiceLinkedRole"],
            [arn(stack, "iam", "role", "aws-service-role/*", region=False)],
            {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
        ),
        iam.PolicyStatement(
            sid="NeverRemoveTheBoundary",
            effect=iam.Effect.DENY,
            actions=["iam:DeleteRolePermissionsBoundary"],
            resources=["*"],
        ),
    ]


def _logs_topics_parameters(stack: cdk.Stack) -> list[iam.PolicyStatement]:
    registry = REGISTRY_PREFIX.lstrip("/")

    def parameter(path: str, account: bool = True) -> str:
        return arn(stack, "ssm", "parameter", path, account=account)

    return [
        _allow(
            "ModelLogGroups",
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:ListTagsForResource",
                "logs:GetDataProtectionPolicy",
            ],
            model_log_groups(stack),
        ),
        _allow(  # no resource types
            "LogGroupsRead",
            ["logs:DescribeLogGroups", "logs:DescribeIndexPolicies", "logs:DescribeResourcePolicies"],
            ["*"],
        ),
        _allow(
            "AsyncTopics",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:ListSubscriptionsByTopic",
                "sns:TagResource",
                "sns:UntagResource",
                "sns:ListTagsForResource",
                "sns:GetDataProtectionPolicy",
            ],
            [arn(stack, "sns", f"{STACK_PREFIX}*")],
        ),
        _allow(
            "RegistryParameters",
            [
                "ssm:PutParameter",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
                "ssm:RemoveTagsFromResource",
                "ssm:ListTagsForResource",
            ],
            [parameter(f"{registry}/*")],
        ),
        # the registry entry, and the template's SSM-typed parameters: the bootstrap's and the gateway's
        # published names, and the public ECS-optimized AMI ids
        _allow(
            "TemplateParameters",
            ["ssm:GetParameters"],
            [
                parameter(f"{registry}/*"),
                parameter("emd/bootstrap/*"),
                parameter("emd/gateway/*"),
                parameter("aws/service/ecs/optimized-ami/*", account=False),
            ],
        ),
    ]
