"""The checkov findings EMD accepts, each with its reason (tests/unit/test_checkov.py fails on any other
finding, and on an acknowledgement that no longer matches anything). A finding matches when its check id
and resource type are equal, its logical id matches `logical_id` and its template file name `template`."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Acknowledged:
    check: str
    resource_type: str
    reason: str
    logical_id: str = ".*"
    template: str = ".*"

    def matches(self, check: str, resource: str, template: str) -> bool:
        resource_type, _, logical_id = resource.partition(".")
        return (
            check == self.check
            and resource_type == self.resource_type
            and re.fullmatch(self.logical_id, logical_id) is not None
            and re.fullmatch(self.template, template) is not None
        )


LOG_BUCKETS = r"ArtifactsAccessLogs.*|GatewayAlbAccessLogs.*"
CDK_PROVIDER_HANDLERS = r"Custom.*CustomResourceProviderHandler.*"
HTTP_LISTENER = r"GatewayAlbHttp.*"
CLOUDFRONT = r"GatewayEdgeDistribution.*"
DIRECT_BUILD_FUNCTIONS = r"ArtifactsBuild(OnEvent|IsComplete|Providerframework).*"
DIRECT = r".*__direct\.template\.json"

ACKNOWLEDGED = [
    Acknowledged(
        "CKV_AWS_158",
        "AWS::Logs::LogGroup",
        "CloudWatch Logs encrypts every log group at rest; a customer KMS key would need a key policy for "
        "the logs service in each region and per-request charges, and no secret ever reaches an EMD log.",
    ),
    Acknowledged(
        "CKV_AWS_136",
        "AWS::ECR::Repository",
        "ECR encrypts images at rest (AES-256); the engine images hold public code, and a KMS key would need "
        "grants for every model role, SageMaker and the build.",
    ),
    *(
        Acknowledged(
            check,
            "AWS::Lambda::Function",
            "aws-cdk-lib's custom-resource handlers (bucket auto-delete, default security group "
            "restriction) run once per deployment or deletion: no concurrency limit, dead-letter queue or "
            "VPC applies.",
            logical_id=CDK_PROVIDER_HANDLERS,
        )
        for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117")
    ),
    Acknowledged(
        "CKV_AWS_18",
        "AWS::S3::Bucket",
        "These are the access-log target buckets: logging them again would loop or duplicate the records.",
        logical_id=LOG_BUCKETS,
    ),
    Acknowledged(
        "CKV_AWS_21",
        "AWS::S3::Bucket",
        "Access-log buckets expire their objects by lifecycle rule; versions would keep expired logs.",
        logical_id=LOG_BUCKETS,
    ),
    *(
        Acknowledged(
            check,
            "AWS::ElasticLoadBalancingV2::Listener",
            "Plain HTTP only where no key crosses the internet in clear: the internal ALB (reachable from "
            "the VPC only; with cloudfront=true CloudFront terminates TLS and reaches it through its VPC "
            "origin), or the internet-facing listener that allow_insecure_http=true explicitly asks for.",
            logical_id=HTTP_LISTENER,
            template=r".*gateway-(internal|cloudfront|insecure)\.template\.json",
        )
        for check in ("CKV_AWS_2", "CKV_AWS_103")
    ),
    Acknowledged(
        "CKV_AWS_260",
        "AWS::EC2::SecurityGroup",
        "allow_insecure_http=true asks for exactly this: an internet-facing HTTP listener.",
        logical_id=r"GatewayAlbSecurityGroup.*",
        template=r".*gateway-insecure\.template\.json",
    ),
    Acknowledged(
        "CKV_AWS_68",
        "AWS::CloudFront::Distribution",
        "WAF is optional (a web ACL costs a monthly fee plus per request): every route needs an API key and "
        "the gateway bounds request sizes and rates.",
        logical_id=CLOUDFRONT,
    ),
    Acknowledged(
        "CKV_AWS_86",
        "AWS::CloudFront::Distribution",
        "The ALB behind the distribution logs every request to S3 and the gateway writes its own access log; "
        "CloudFront standard logs would need an ACL-enabled bucket for the same records.",
        logical_id=CLOUDFRONT,
    ),
    Acknowledged(
        "CKV_AWS_174",
        "AWS::CloudFront::Distribution",
        "No custom domain: the *.cloudfront.net certificate is CloudFront's own, which fixes the minimum "
        "protocol; clients negotiate TLS 1.2/1.3.",
        logical_id=CLOUDFRONT,
    ),
    *(
        Acknowledged(
            check,
            "AWS::Lambda::Function",
            "The build custom resource's handler and aws-cdk-lib's Provider framework functions "
            "(emd_constructs/model_build.py) run during a stack deployment only, a few calls a minute: "
            "no concurrency limit or dead-letter queue applies (CloudFormation reports a failure), they "
            "call only AWS APIs (no VPC), and their environment holds a wait time, no secret.",
            logical_id=DIRECT_BUILD_FUNCTIONS,
            template=DIRECT,
        )
        for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173")
    ),
    Acknowledged(
        "CKV_AWS_149",
        "AWS::SecretsManager::Secret",
        "A directly deployed model's API key uses Secrets Manager's AWS-managed key, like the keys `emd "
        "deploy` creates: the gateway reads every key secret with one grant; a customer key would need a key "
        "policy per deployment.",
        logical_id=r"ApiKeySecret.*",
        template=DIRECT,
    ),
]
