"""Deployment and hosting cost estimate from model_specs/data/prices.yaml. Pure computation, no CLI, no AWS.

Every amount is computed from the price book's unit prices with Decimal arithmetic and rounded to cents
only for display, so a 5 GB model, a 10-minute build and a 2 GB image in cn-north-1 give the reference's
¥0.80 + ¥0.84/month exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from model_specs.catalogue import Catalogue, catalogue
from model_specs.errors import EmdUserError, unknown_value_error
from model_specs.regions import CHINA_REGIONS, region_info
from model_specs.schema import RegionPrices, ServiceType

if TYPE_CHECKING:
    from model_specs.deployment import Deployment

DEFAULT_COMPUTE_TYPE = "BUILD_GENERAL1_LARGE"
DEFAULT_IMAGE_SIZE_GB = 2.0
DEFAULT_BUILD_MINUTES = 10.0
DAYS_PER_MONTH = 30
CENT = Decimal("0.01")
NOT_INCLUDED = (
    "data transfer out",
    "the shared EMD gateway (ALB + Fargate tasks)",
    "NAT gateway hours and traffic",
    "CloudWatch logs and metrics",
    "EBS volumes and S3 requests",
)


def dec(value: float | int | str | Decimal) -> Decimal:
    """Decimal from the printed form of a number (0.08 -> Decimal('0.08'), not its binary expansion)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CostLine:
    service: str
    usage: str
    one_time: Decimal
    monthly: Decimal
    unit_price: str
    recurring: bool = False  # shown as '/month' in the table


@dataclass(frozen=True)
class TargetCost:
    label: str  # e.g. "SageMaker ml.g4dn.xlarge"
    hourly: Decimal | None  # None when the price book has no price for it
    hours_per_day: Decimal
    monthly: Decimal | None


@dataclass(frozen=True)
class CostEstimate:
    region: str
    price_region: str  # the price book region the unit prices came from
    currency: str
    symbol: str
    deployment: tuple[CostLine, ...]
    target: TargetCost | None
    secrets_manager_monthly: Decimal
    notes: tuple[str, ...] = field(default=())
    not_included: tuple[str, ...] = NOT_INCLUDED

    @property
    def one_time_total(self) -> Decimal:
        return sum((line.one_time for line in self.deployment), Decimal(0))

    @property
    def deployment_monthly_total(self) -> Decimal:
        return sum((line.monthly for line in self.deployment), Decimal(0))

    @property
    def hourly(self) -> Decimal | None:
        """The target instance's hourly price; None for local or when the price book has none."""
        return self.target.hourly if self.target is not None else None

    @property
    def monthly_total(self) -> Decimal | None:
        """Everything that recurs: storage, the target at hours-per-day x 30, the API key secret."""
        if self.target is not None and self.target.monthly is None:
            return None
        target = self.target.monthly if self.target is not None else Decimal(0)
        return self.deployment_monthly_total + target + self.secrets_manager_monthly

    def fmt(self, amount: Decimal | None) -> str:
        return "n/a" if amount is None else f"{self.symbol}{money(amount)}"

    def to_dict(self) -> dict[str, object]:
        """JSON-able, amounts as strings rounded to cents (stable keys)."""

        def m(x: Decimal | None) -> str | None:
            return None if x is None else str(money(x))

        return {
            "region": self.region,
            "price_region": self.price_region,
            "currency": self.currency,
            "deployment": [
                {
                    "service": ln.service,
                    "usage": ln.usage,
                    "one_time": m(ln.one_time),
                    "monthly": m(ln.monthly),
                    "unit_price": ln.unit_price,
                    "recurring": ln.recurring,
                }
                for ln in self.deployment
            ],
            "one_time_total": m(self.one_time_total),
            "deployment_monthly_total": m(self.deployment_monthly_total),
            "target": None
            if self.target is None
            else {
                "label": self.target.label,
                "hourly": None if self.target.hourly is None else str(self.target.hourly),
                "hours_per_day": plain(self.target.hours_per_day),
                "monthly": m(self.target.monthly),
            },
            "secrets_manager_monthly": m(self.secrets_manager_monthly),
            "monthly_total": m(self.monthly_total),
            "notes": list(self.notes),
            "not_included": list(self.not_included),
        }


def price_region_for(region: str, cat: Catalogue) -> tuple[str, RegionPrices, list[str]]:
    """The price book entry for a region, or the nearest one in the same currency (with a note)."""
    book = cat.prices.regions
    if region in book:
        return region, book[region], []
    china = region in CHINA_REGIONS
    fallback = next((r for r in book if (r in CHINA_REGIONS) == china), None)
    if fallback is None:
        raise EmdUserError(f"no prices for {region} in the price book (it has: {', '.join(sorted(book))})")
    return (
        fallback,
        book[fallback],
        [f"unit prices for {region} are not in the price book; {fallback}'s are used"],
    )


def estimate_cost(
    *,
    region: str,
    instance_type: str,
    service_type: str | ServiceType,
    model_size_gb: float,
    image_size_gb: float = DEFAULT_IMAGE_SIZE_GB,
    build_minutes: float = DEFAULT_BUILD_MINUTES,
    hours_per_day: float = 24,
    compute_type: str = DEFAULT_COMPUTE_TYPE,
    other_pipelines: int = 0,
    api_key_secret: bool = True,
    cat: Catalogue | None = None,
) -> CostEstimate:
    """One-time build cost + monthly storage (the reference table), then the target instance cost.

    other_pipelines: active pipelines the account already has (the first pipeline is free).
    """
    cat = cat or catalogue()
    info = region_info(region)
    try:
        service = ServiceType(service_type)
    except ValueError:
        raise unknown_value_error("service type", str(service_type), [s.value for s in ServiceType]) from None
    instance = cat.instance(instance_type)
    for name, value in (
        ("model size", model_size_gb),
        ("image size", image_size_gb),
        ("build minutes", build_minutes),
        ("other pipelines", other_pipelines),
    ):
        if value < 0:
            raise EmdUserError(f"{name} must not be negative (got {value})")
    if not 0 <= hours_per_day <= 24:
        raise EmdUserError(f"hours per day must be between 0 and 24 (got {hours_per_day})")
    if service is ServiceType.local:
        return CostEstimate(
            region=info.name,
            price_region=info.name,
            currency=info.currency,
            symbol=info.currency_symbol,
            deployment=(),
            target=None,
            secrets_manager_monthly=Decimal(0),
            notes=("service type local runs on this machine: no AWS charges",),
            not_included=(),
        )
    price_region, p, notes = price_region_for(info.name, cat)
    if compute_type not in p.codebuild_per_minute:
        raise unknown_value_error("CodeBuild compute type", compute_type, p.codebuild_per_minute)
    s = info.currency_symbol

    model_gb, image_gb, minutes = dec(model_size_gb), dec(image_size_gb), dec(build_minutes)
    billable_s3 = max(model_gb - dec(p.s3_free_tier_gb), Decimal(0))
    build_rate = dec(p.codebuild_per_minute[compute_type])
    paid_pipelines = max(other_pipelines + 1 - p.codepipeline_free_pipelines, 0)
    lines = (
        CostLine(
            "S3 Storage",
            f"{plain(model_gb)} GB model file",
            Decimal(0),
            billable_s3 * dec(p.s3_gb_month),
            f"{s}{p.s3_gb_month} per GB-month; free tier {plain(dec(p.s3_free_tier_gb))} GB for 12 months",
            recurring=True,
        ),
        CostLine(
            "CodeBuild",
            f"{compute_type} for {plain(minutes)} minutes",
            minutes * build_rate,
            Decimal(0),
            f"{s}{build_rate} per build-minute",
        ),
        CostLine(
            "CodePipeline",
            "1 pipeline",
            Decimal(0),
            paid_pipelines * dec(p.codepipeline_per_pipeline_month),
            f"first {p.codepipeline_free_pipelines} free, then {s}{p.codepipeline_per_pipeline_month:.2f} "
            "per active pipeline/month",
            recurring=paid_pipelines > 0,
        ),
        CostLine("CloudFormation", "stack creation", Decimal(0), Decimal(0), "no charge"),
        CostLine(
            "ECR",
            f"~{plain(image_gb)} GB Docker image",
            Decimal(0),
            image_gb * dec(p.ecr_gb_month),
            f"{s}{p.ecr_gb_month} per GB-month",
            recurring=True,
        ),
    )

    sagemaker = service in (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async)
    table = p.sagemaker_hourly if sagemaker else p.ec2_hourly
    label = f"SageMaker ml.{instance.name}" if sagemaker else f"EC2 {instance.name}"
    hourly = dec(table[instance.name]) if instance.name in table else None
    hpd = dec(hours_per_day)
    source = cat.prices.source(price_region, instance.name, sagemaker)
    if hourly is None:
        notes.append(f"no {label} price for {price_region} in the price book")
    elif source is not None and source.estimated:
        notes.append(f"the {label} price is an estimate ({source.source}; {source.taken_on})")
    if service is ServiceType.ecs:
        notes.append("ECS on GPU EC2 capacity is billed at the EC2 instance price")
    if service is ServiceType.sagemaker_async:
        notes.append("SageMaker async scales to zero on an empty queue: hours-per-day is the busy time")
    target = TargetCost(label, hourly, hpd, None if hourly is None else hourly * hpd * DAYS_PER_MONTH)
    secret = dec(p.secrets_manager_secret_month) if api_key_secret else Decimal(0)
    return CostEstimate(
        region=info.name,
        price_region=price_region,
        currency=p.currency,
        symbol=s,
        deployment=lines,
        target=target,
        secrets_manager_monthly=secret,
        notes=tuple(notes),
    )


def deployment_cost(dep: Deployment, *, hours_per_day: float = 24) -> CostEstimate:
    """The estimate for a resolved deployment: its catalogue weights in S3, its API key's secret."""
    return estimate_cost(
        region=dep.region,
        instance_type=dep.instance_type,
        service_type=dep.service_type,
        model_size_gb=round(dep.model.weights_gib, 2),
        hours_per_day=hours_per_day,
        api_key_secret=dep.api_key_secret_name is not None,
    )


def plain(x: Decimal) -> str:
    """5 -> '5', 2.50 -> '2.5', 15.23 -> '15.23'."""
    text = f"{x.quantize(CENT, rounding=ROUND_HALF_UP):f}".rstrip("0").rstrip(".")
    return text or "0"
