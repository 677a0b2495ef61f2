"""The lifecycle contract: what `emd deploy|status|invoke|destroy` need from a target.

Two targets implement it: `emd_cli.targets.local.LocalTarget` (service type `local`: engine adapter + gateway
as processes on this machine, file-backed store under the XDG state dir) and `emd_cli.targets.aws.AwsTarget`
(every other service type: Secrets Manager key, bundle, pipeline, CloudFormation, SSM registry).

The commands resolve and validate the Deployment (no side effect), pick the target from the service type
(`target_for`), and render what the target returns; a target never prints the API key itself: it returns it
once in DeployOutcome and the command shows it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # the commands import this module at start-up: keep it free of pydantic and rich
    from rich.console import Console

    from model_specs.deployment import Deployment

API_KEY_PREFIX = "emd-"


def generate_api_key() -> str:
    """A new API key: 'emd-' + 43 URL-safe characters (256 bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


class TargetError(Exception):
    """A failure after something was started (the engine did not become ready, a process died): the target has
    removed what it created, and the message says why (with a log tail where there is one). Exit code 1."""


class Stage:
    """Where a deployment is in its life (DeploymentStatus.stage)."""

    BUILDING = "building"  # AWS: pipeline Source/Build running
    DEPLOYING = "deploying"  # AWS: CloudFormation in progress
    STARTING = "starting"  # processes/endpoint up, engine not ready yet
    IN_SERVICE = "in service"
    SCALED_TO_ZERO = "scaled to zero"
    FAILED = "failed"  # with DeploymentStatus.reason
    STOPPED = "stopped"  # local: the processes died (reason says which, and the log path)
    DELETING = "deleting"


@dataclass(frozen=True)
class Endpoint:
    """How a client calls one deployment."""

    route: str  # '<model-id>/<tag>'
    target: str  # 'local' | 'aws'
    base_url: str  # OpenAI base URL, ending in /v1 (or the SageMaker endpoint name when there is no gateway)
    model: str  # the value to send as "model"
    model_type: str  # llm | vlm | embedding | rerank | asr
    api_key: str | None  # None for a public deployment; read from the target's store, never printed by it
    via_gateway: bool = True  # False: SageMaker runtime directly (AWS without the gateway stack)
    sagemaker_endpoint_name: str | None = None
    region: str | None = None
    inference_component_name: str | None = None  # SageMaker scale to zero: the component to invoke
    gateway_exposure: str | None = None  # AWS: internal | cloudfront | public-https | public-http
    direct: Endpoint | None = None  # AWS: SageMaker straight, for when an internal gateway is out of reach


@dataclass(frozen=True)
class DeployOutcome:
    endpoint: Endpoint
    api_key_to_show: str | None  # shown once by the command, then never again
    notes: list[str] = field(default_factory=list)
    ready: bool = True  # False: the user detached (Ctrl-C) while it still deploys; `emd status --follow`


@dataclass(frozen=True)
class DeploymentStatus:
    route: str
    target: str  # 'local' | 'aws'
    service_type: str
    engine_type: str
    instance_type: str | None  # None for local (this machine)
    stage: str  # a Stage value
    base_url: str | None
    created_at: datetime | None
    hourly_cost: str | None = None  # formatted with its currency, e.g. '$1.52/h'
    reason: str | None = None  # why it failed or stopped
    details: dict[str, Any] = field(default_factory=dict)  # target-specific (pid, port, uptime, stack …)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "created_at"}
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return data


@dataclass(frozen=True)
class DestroyReport:
    route: str
    removed: list[str]  # what was removed, e.g. 'process 1234 (engine)', 'stack EMD-Model-…'
    left: list[str]  # what could not be removed, each with its reason: the command exits 1 when not empty


class Target(Protocol):
    name: ClassVar[str]  # 'local' | 'aws'

    def deploy(
        self, dep: Deployment, *, api_key: str | None, update: bool, console: Console
    ) -> DeployOutcome:
        """Create (or, with update=True, replace in place) the deployment and wait until it serves.
        api_key: the user's key (service_params.api_key) or None to generate one (ignored when public).
        Raises EmdUserError (exit 2) for a refusal found before anything was created, leaving no state."""
        ...

    def statuses(self, route: str | None = None) -> list[DeploymentStatus]:
        """Every deployment of this target (or just `route`), with a bounded number of calls."""
        ...

    def endpoint(self, route: str) -> Endpoint | None:
        """How to call `route` (key included when the user may read it), or None when it is not deployed."""
        ...

    def destroy(self, route: str, *, console: Console) -> DestroyReport:
        """Remove the deployment and everything created for it (its key included)."""
        ...

    def rotate_key(self, route: str, *, api_key: str | None) -> str:
        """Put a new key in place (given, or generated when None) and return it; the old key is refused once
        the gateway's key cache expires (at most 60 s)."""
        ...
