"""How clients reach the gateway's load balancer (decided at synth time from context):

- INTERNAL (the default): an internal ALB, reachable only from inside the VPC (or `allowed_cidrs` over a
  VPN or Direct Connect); HTTP, or HTTPS with `certificate_arn`.
- CLOUDFRONT (`cloudfront=true`): HTTPS on the distribution's own *.cloudfront.net name, no domain needed;
  the ALB stays internal and CloudFront reaches it through a VPC origin. Not in the China regions, where
  CloudFront serves only ICP-registered domains of the user's own.
- PUBLIC_HTTPS (`certificate_arn`): an internet-facing ALB with an HTTPS listener only.
- PUBLIC_HTTP (`allow_insecure_http=true`): an internet-facing plain-HTTP listener; API keys cross the
  network in clear text, so it is never the default.

Each front gives up on a silent response after its own timeout: the ALB after its idle timeout (600 s),
CloudFront after its origin read timeout (120 s). The gateway holds requests without sending a byte (a cold
start from zero, an async answer awaited in S3, a silent engine), so `gateway_waits` sizes those waits below
the front's timeout: a client then gets the gateway's own 503 or 504 with its reason, never the front's bare
504.
"""

from __future__ import annotations

from enum import Enum

import aws_cdk as cdk
import aws_cdk.aws_cloudfront as cloudfront
import aws_cdk.aws_cloudfront_origins as origins
import aws_cdk.aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from emd_constructs.nag import acknowledge

# CloudFront waits this long for the first byte and between two bytes of a response (VPC origins allow up to
# 120 s): streamed completions send tokens well within it; a non-streamed answer must finish inside it.
ORIGIN_READ_TIMEOUT = cdk.Duration.seconds(120)
ORIGIN_KEEPALIVE = cdk.Duration.seconds(60)
# the ALB closes a connection on which nothing was sent for this long (long streamed completions pause)
ALB_IDLE_TIMEOUT = cdk.Duration.seconds(600)
# a wait ends at this share of the front's timeout, leaving time for the gateway's answer to reach the client
WAIT_SHARE = 0.9
# the gateway's default silence tolerated from a backend between two bytes (serving/gateway/config.py)
GATEWAY_READ_TIMEOUT_SECONDS = 300


class Exposure(Enum):
    INTERNAL = "internal"
    CLOUDFRONT = "cloudfront"
    PUBLIC_HTTPS = "public-https"
    PUBLIC_HTTP = "public-http"

    @property
    def internet_facing_alb(self) -> bool:
        return self in (Exposure.PUBLIC_HTTPS, Exposure.PUBLIC_HTTP)

    @property
    def front_timeout(self) -> cdk.Duration:
        """How long the client's side of the gateway waits for a byte of the response before giving up."""
        return ORIGIN_READ_TIMEOUT if self is Exposure.CLOUDFRONT else ALB_IDLE_TIMEOUT


def gateway_waits(exposure: Exposure) -> dict[str, str]:
    """The gateway's environment for the waits that send nothing to the client, each below the front's
    timeout: the cold start of a deployment scaled to zero (EMD_COLD_START_WAIT), a SageMaker async answer
    (EMD_ASYNC_WAIT_SECONDS) and a backend's silence (EMD_UPSTREAM_READ_TIMEOUT)."""
    wait = int(exposure.front_timeout.to_seconds() * WAIT_SHARE)
    return {
        "EMD_COLD_START_WAIT": str(wait),
        "EMD_ASYNC_WAIT_SECONDS": str(wait),
        "EMD_UPSTREAM_READ_TIMEOUT": str(min(wait, GATEWAY_READ_TIMEOUT_SECONDS)),
    }


class CloudFrontEdge(Construct):
    """A CloudFront distribution in front of an internal ALB (VPC origin): HTTPS only (plain HTTP is refused,
    not redirected, so a key is never sent in clear), every method, nothing cached, every viewer header but
    Host forwarded (Authorization included: allowed because caching is disabled), no compression (it would
    buffer streamed tokens)."""

    def __init__(self, scope: Construct, construct_id: str, *, alb: elbv2.IApplicationLoadBalancer) -> None:
        super().__init__(scope, construct_id)
        origin = origins.VpcOrigin.with_application_load_balancer(
            alb,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            read_timeout=ORIGIN_READ_TIMEOUT,
            keepalive_timeout=ORIGIN_KEEPALIVE,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="EMD gateway",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress=False,
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        for rule, reason in {
            "AwsSolutions-CFR1": "An API for any client location; API keys, not geography, decide access.",
            "AwsSolutions-CFR2": "WAF is optional (a web ACL costs a monthly fee plus per request): every "
            "route needs an API key and the gateway bounds request sizes and rates.",
            "AwsSolutions-CFR3": "The ALB behind it logs every request to S3 and the gateway writes its own "
            "access log; CloudFront standard logs would need an ACL-enabled bucket for the same records.",
            "AwsSolutions-CFR4": "No custom domain: the *.cloudfront.net certificate is CloudFront's own, "
            "which fixes the minimum protocol; clients negotiate TLS 1.2/1.3.",
        }.items():
            acknowledge(self.distribution, rule, reason)
