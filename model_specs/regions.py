"""Regional facts: partition, URL suffix, console host and currency. No hard-coded 'arn:aws:' elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

CHINA_REGIONS = frozenset({"cn-north-1", "cn-northwest-1"})
KNOWN_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-south-1",
        "me-central-1",
        "cn-north-1",
        "cn-northwest-1",
    }
)


@dataclass(frozen=True)
class RegionInfo:
    name: str
    partition: str
    url_suffix: str
    currency: str

    @property
    def is_china(self) -> bool:
        return self.partition == "aws-cn"

    @property
    def currency_symbol(self) -> str:
        return "¥" if self.currency == "CNY" else "$"

    @property
    def console_host(self) -> str:
        """The AWS Management Console of the region's partition."""
        return "console.amazonaws.cn" if self.is_china else "console.aws.amazon.com"


def region_info(region: str) -> RegionInfo:
    """Facts for a region name; raises EmdUserError for a name that is not an AWS region."""
    from model_specs.errors import unknown_value_error

    if region not in KNOWN_REGIONS:
        raise unknown_value_error("region", region, KNOWN_REGIONS)
    if region in CHINA_REGIONS:
        return RegionInfo(region, "aws-cn", "amazonaws.com.cn", "CNY")
    return RegionInfo(region, "aws", "amazonaws.com", "USD")
