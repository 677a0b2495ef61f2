"""The AWS target: every service type but `local`. A deployment is its API key in Secrets Manager, a bundle
in the artifact bucket, one execution of the bootstrap's pipeline (Build: weights and image; Deploy: the
model stack EMD-Model-*), and the registry parameter that stack writes for the gateway.

Reads are bounded: `statuses` makes the same few calls whatever the number of deployments: SSM parameters (1),
DescribeStacks (paginated), one page of pipeline executions and, when one runs or failed, one of action
executions; then, only when needed: SageMaker Search (paginated, when a deployment has an endpoint), ECS
DescribeClusters (100 clusters a call), the key secrets and the bundle versions (paginated, when an execution
ended without a stack).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.console import Console

from emd_cli.targets.base import (
    DeploymentStatus,
    DeployOutcome,
    DestroyReport,
    Endpoint,
    Stage,
    generate_api_key,
)
from model_specs.deployment import STACK_PREFIX, Deployment, deployment_slug
from model_specs.errors import EmdUserError
from model_specs.registry import (
    DEFAULT_TAG,
    PIPELINE_SOURCE_KEY,
    api_key_secret_name,
    registry_parameter_name,
)
from model_specs.schema import ServiceType
from model_specs.weights_cache import WEIGHTS_PARAM_PREFIX, WEIGHTS_PREFIX

GATEWAY_WAIT_SECONDS = 300  # the gateway refreshes its registry on a miss; this covers its cache and the ALB
GATEWAY_TIMEOUT = 5.0
UNREACHABLE_TRIES = 3


def parse_route(route: str) -> tuple[str, str]:
    """'<model-id>/<tag>' -> (model id, tag); a bare model id means the default tag."""
    model_id, _, tag = route.rpartition("/") if "/" in route else (route, "", DEFAULT_TAG)
    if not model_id or not tag:
        raise EmdUserError(
            f"{route!r} is not a deployment: use <model-id>/<tag>, e.g. Qwen2.5-7B-Instruct/dev"
        )
    return model_id, tag


def stack_name_of(route: str) -> str:
    return STACK_PREFIX + deployment_slug(*parse_route(route))


class AwsTarget:
    name: ClassVar[str] = "aws"

    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        from emd_cli.options import default_region

        self.region = default_region(region)
        self.profile = profile
        self._sessions: dict[str, Any] = {}

    def session(self, region: str | None = None) -> Any:
        from emd_cli.aws.session import AwsSession

        region = region or self.region
        if region not in self._sessions:
            self._sessions[region] = AwsSession(region, self.profile)
        return self._sessions[region]

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, dep: Deployment, *, api_key: str | None, update: bool, console: Console
    ) -> DeployOutcome:
        from emd_cli.aws.quotas import check_quota
        from emd_cli.aws.shared_stacks import require_bootstrap

        aws = self.session(dep.region)
        boot = require_bootstrap(aws)
        _warn_if_bootstrap_is_older(aws, console)
        self._refuse_existing(aws, boot, dep, update, console)
        check_quota(aws, dep, warn=lambda text: console.print(f"[yellow]warning:[/] {text}"))

        created_secret, key = self._store_key(aws, dep, api_key)
        try:
            with console.status("Synthesizing the model stack"):
                template = _synth_template(dep)
            execution_id = self._start(aws, boot, dep, template)
        except BaseException:
            if created_secret:  # nothing was started: leave nothing behind
                self._delete_secret(aws, dep.route)
            raise
        console.print(f"Pipeline execution {execution_id} started for {dep.route}")
        endpoint = self._endpoint_for(
            aws, boot, dep.route, key, _deployment_facts(dep), dep.sagemaker_endpoint_name
        )
        try:
            from emd_cli.aws.pipeline import follow_execution

            follow_execution(aws, boot.pipeline, execution_id, console, stack_name=dep.stack_name)
        except KeyboardInterrupt:
            console.print(
                f"\nDetached: the deployment goes on in the pipeline. Follow it again with "
                f"`emd status {dep.route} --follow --region {dep.region}`."
            )
            return DeployOutcome(endpoint, key if created_secret or api_key else None, ready=False)
        notes = self._wait_until_served(endpoint, console)
        return DeployOutcome(endpoint, key if created_secret or api_key else None, notes)

    def _refuse_existing(self, aws: Any, boot: Any, dep: Deployment, update: bool, console: Console) -> None:
        """Refuse a second deployment of the same route (unless updating it), and any route with a running
        pipeline execution; with update, a stack whose creation failed is deleted first."""
        from emd_cli.aws.pipeline import recent_executions
        from emd_cli.aws.stacks import delete_stack, first_failed_event, stack_status

        running = [
            e
            for e in recent_executions(aws, boot.pipeline)
            if e.status in ("InProgress", "Stopping") and (e.deployment or {}).get("route") == dep.route
        ]
        if running:
            raise EmdUserError(
                f"{dep.route} is being deployed right now (pipeline execution {running[0].id}): follow it "
                f"with `emd status {dep.route} --follow`, or stop it with `emd destroy {dep.route}`"
            )
        cfn = aws.client("cloudformation")
        stack = stack_status(cfn, dep.stack_name)
        if stack is None:
            return
        status = stack["StackStatus"]
        if not update:
            failed = status == "ROLLBACK_COMPLETE"
            what = (
                f"a failed deployment of {dep.route} is still there "
                f"({first_failed_event(cfn, dep.stack_name)})"
                if failed
                else f"{dep.route} is already deployed in {dep.region} ({dep.stack_name}, {status})"
            )
            raise EmdUserError(
                f"{what}: deploy it under another tag with --model-tag <tag>, replace it with --update, or "
                f"remove it with `emd destroy {dep.route}`"
            )
        if status == "ROLLBACK_COMPLETE":
            console.print(
                f"{dep.stack_name} failed earlier (ROLLBACK_COMPLETE): deleting it before deploying"
            )
            delete_stack(aws, name=dep.stack_name, console=console)
        elif status.endswith("_IN_PROGRESS"):
            raise EmdUserError(f"{dep.stack_name} is {status}: wait for it, then run the command again")

    def _store_key(self, aws: Any, dep: Deployment, api_key: str | None) -> tuple[bool, str | None]:
        """(created a new secret?, the key clients use). The key goes to Secrets Manager before anything
        else is created; an update without a new key keeps the deployment's key."""
        name = dep.api_key_secret_name
        if name is None:
            return False, None
        sm = aws.client("secretsmanager")
        try:
            existing = sm.get_secret_value(SecretId=name)["SecretString"]
        except sm.exceptions.ResourceNotFoundException:
            existing = None
        if existing is not None and api_key is None:
            return False, existing
        key = api_key or generate_api_key()
        if existing is not None:
            sm.put_secret_value(SecretId=name, SecretString=key)
            return False, key
        sm.create_secret(
            Name=name,
            SecretString=key,
            Description=f"EMD API key of {dep.route} (clients send it as a Bearer token)",
            Tags=[{"Key": "emd:model-id", "Value": dep.model_id}, {"Key": "emd:tag", "Value": dep.model_tag}],
        )
        return True, key

    def _start(self, aws: Any, boot: Any, dep: Deployment, template: dict[str, Any]) -> str:
        from emd_cli.aws.pipeline import start_execution
        from emd_constructs.bundles import model_bundle

        deployment_id = f"emd-{uuid.uuid4()}"
        facts = _deployment_facts(dep)
        return start_execution(
            aws,
            pipeline=boot.pipeline,
            bucket=boot.bucket,
            bundle=model_bundle(template, dep.to_public_dict()),
            variables={
                "deployment_id": deployment_id,
                "model_id": dep.model_id,
                "model_tag": dep.model_tag,
                "stack_name": dep.stack_name,
            },
            summary={
                "route": dep.route,
                "stack": dep.stack_name,
                "deployment_id": deployment_id,
                "service": facts["service_type"],
                "engine": facts["engine_type"],
                "instance": facts["instance_type"],
                "public": facts["public"],
            },
        )

    def _wait_until_served(self, endpoint: Endpoint, console: Console) -> list[str]:
        """Until the gateway's /v1/models lists the route; a note when it does not in time, or soon when the
        gateway cannot be reached from this machine (an internal load balancer, by default)."""
        if not endpoint.via_gateway:
            return []
        import httpx

        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        deadline = time.monotonic() + GATEWAY_WAIT_SECONDS
        last, unreachable = "no answer", 0
        with console.status(f"Waiting for the gateway to list {endpoint.route}"):
            while time.monotonic() < deadline and unreachable < UNREACHABLE_TRIES:
                try:
                    answer = httpx.get(
                        f"{endpoint.base_url}/models", headers=headers, timeout=GATEWAY_TIMEOUT
                    )
                    unreachable = 0
                    ids = {m.get("id") for m in answer.json().get("data", [])} if answer.is_success else set()
                    if endpoint.model in ids:
                        return []
                    last = f"HTTP {answer.status_code}" if not answer.is_success else "route not listed yet"
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    unreachable += 1
                    last = type(exc).__name__
                except (httpx.HTTPError, ValueError) as exc:
                    last = type(exc).__name__
                time.sleep(2)
        if unreachable >= UNREACHABLE_TRIES:
            from emd_cli.exposure import INTERNAL, outside_vpc_advice

            why = "an internal load balancer is reachable from its VPC only"
            if endpoint.gateway_exposure != INTERNAL:
                why = "check the network, and `emd status`"
            realtime = endpoint.sagemaker_endpoint_name is not None or endpoint.direct is not None
            advice = outside_vpc_advice(endpoint.region or self.region, sagemaker_direct=realtime)
            return [
                f"the deployment is in service; the gateway {endpoint.base_url} is not reachable from this "
                f"machine ({last}: {why}). From here: {advice}"
            ]
        return [f"the gateway did not list {endpoint.route} within {GATEWAY_WAIT_SECONDS} s ({last})"]

    # ------------------------------------------------------------------ reads

    def statuses(self, route: str | None = None) -> list[DeploymentStatus]:
        from emd_cli.aws.shared_stacks import read_bootstrap
        from emd_cli.exposure import deployed_exposure

        aws = self.session()
        boot = read_bootstrap(aws)
        if boot is None:
            return []
        wanted = stack_name_of(route) if route else None
        stacks = {
            s["StackName"]: s
            for page in aws.client("cloudformation").get_paginator("describe_stacks").paginate()
            for s in page["Stacks"]
            if s["StackName"].startswith(STACK_PREFIX) and wanted in (None, s["StackName"])
        }
        latest = _latest_executions(aws, boot.pipeline, wanted)
        latest = _without_destroyed(aws, boot, latest, stacks)
        actions = _latest_actions(aws, boot.pipeline, latest)
        running = _capacity(aws, stacks)
        base_url = f"{boot.gateway_url}/v1" if boot.gateway_url else None
        exposure = deployed_exposure(boot.gateway_exposure, boot.gateway_url)
        names = sorted(set(stacks) | set(latest))
        rows = [
            _status(name, stacks.get(name), latest.get(name), actions, running, base_url, aws.region)
            for name in names
        ]
        for row in rows:
            row.details.update(gateway_exposure=exposure, region=aws.region)
        return rows

    def endpoint(self, route: str) -> Endpoint | None:
        """None when nothing of the deployment exists; a deployment still building (or whose build failed)
        has no stack yet but has its key, a running pipeline execution, or (public) its bundle."""
        from emd_cli.aws.shared_stacks import read_bootstrap
        from emd_cli.aws.stacks import outputs_of, stack_status

        aws = self.session()
        boot = read_bootstrap(aws)
        if boot is None:
            return None
        stack = stack_status(aws.client("cloudformation"), stack_name_of(route))
        outputs = outputs_of(stack) if stack else {}
        facts = json.loads(outputs.get("Deployment", "{}"))
        entry = _registry_entry(aws, route)
        key = None if facts.get("public") else self._read_key(aws, _key_secret_name(entry, route))
        if stack is None and key is None:  # building, or a failed first deployment of a public route
            name = stack_name_of(route)
            if not _without_destroyed(aws, boot, _latest_executions(aws, boot.pipeline, name), {}):
                return None
        return self._endpoint_for(
            aws, boot, outputs.get("Route", route), key, facts, outputs.get("EndpointName"), entry=entry
        )

    def _endpoint_for(
        self,
        aws: Any,
        boot: Any,
        route: str,
        key: str | None,
        facts: dict[str, Any],
        endpoint_name: str | None = None,
        *,
        entry: Any = None,
    ) -> Endpoint:
        """How to call `route`: the gateway, or SageMaker straight without one. Behind an internal gateway a
        deployed real-time SageMaker deployment also gets its direct endpoint (for `emd invoke` from outside
        the VPC); entry, the deployment's registry entry (None during `emd deploy`), names its inference
        component."""
        from emd_cli.exposure import INTERNAL, deployed_exposure

        model_type = facts.get("model_type") or _model_type(route)
        if not boot.gateway_url:
            return self._direct_endpoint(aws, route, model_type, key, endpoint_name, entry=entry)
        exposure = deployed_exposure(boot.gateway_exposure, boot.gateway_url)
        realtime = facts.get("service_type") == ServiceType.sagemaker_realtime.value
        direct = (
            self._direct_endpoint(aws, route, model_type, None, endpoint_name, entry=entry)
            if exposure == INTERNAL and realtime
            else None
        )
        return Endpoint(
            route, "aws", f"{boot.gateway_url}/v1", route, model_type, key, region=aws.region,
            gateway_exposure=exposure, direct=direct,
        )  # fmt: skip

    def _direct_endpoint(
        self, aws: Any, route: str, model_type: str, key: str | None, name: str | None, *, entry: Any
    ) -> Endpoint:
        """SageMaker's runtime, signed with the caller's credentials; a scale-to-zero endpoint's inference
        component from the deployment's registry entry."""
        name = name or _sagemaker_endpoint_name(route)
        component = entry.inference_component_name if entry is not None else None
        return Endpoint(
            route, "aws", name, route, model_type, key, via_gateway=False, sagemaker_endpoint_name=name,
            region=aws.region, inference_component_name=component,
        )  # fmt: skip

    def _read_key(self, aws: Any, secret_name: str) -> str | None:
        sm = aws.client("secretsmanager")
        try:
            return str(sm.get_secret_value(SecretId=secret_name)["SecretString"])
        except sm.exceptions.ResourceNotFoundException:
            return None

    def follow(self, route: str, console: Console) -> DeploymentStatus | None:
        """`emd status <route> --follow`: follow its running pipeline execution (if any), then its status."""
        from emd_cli.aws.pipeline import follow_execution
        from emd_cli.aws.shared_stacks import require_bootstrap

        aws = self.session()
        boot = require_bootstrap(aws)
        stack = stack_name_of(route)
        execution = _latest_executions(aws, boot.pipeline, stack).get(stack)
        if execution is not None and execution.status in ("InProgress", "Stopping"):
            follow_execution(aws, boot.pipeline, execution.id, console, stack_name=stack)
        found = self.statuses(route)
        return found[0] if found else None

    # ------------------------------------------------------------------ destroy / keys

    def destroy(self, route: str, *, console: Console, purge_weights: bool = False) -> DestroyReport:
        from emd_cli.aws.pipeline import recent_executions, stop_execution
        from emd_cli.aws.shared_stacks import read_bootstrap
        from emd_cli.aws.stacks import delete_stack, stack_status

        aws = self.session()
        model_id, tag = parse_route(route)
        route = f"{model_id}/{tag}"
        stack = stack_name_of(route)
        boot = read_bootstrap(aws)
        removed: list[str] = []
        left: list[str] = []
        cfn = aws.client("cloudformation")
        bundles: set[str] = set()
        if boot is not None:
            for execution in recent_executions(aws, boot.pipeline):
                if (execution.deployment or {}).get("route") != route:
                    continue
                if execution.bundle_version:
                    bundles.add(execution.bundle_version)
                if execution.status == "InProgress":
                    stop_execution(aws, boot.pipeline, execution.id, reason=f"emd destroy {route}")
                    removed.append(f"pipeline execution {execution.id} (stopped)")
        existing = stack_status(cfn, stack)
        if existing is not None:
            _wait_settled(cfn, stack, console)
            try:
                delete_stack(aws, name=stack, console=console)
                removed.append(f"stack {stack}")
            except Exception as exc:
                left.append(f"stack {stack}: {_reason(exc)}")
        if self._delete_secret(aws, route):
            removed.append(f"secret {api_key_secret_name(model_id, tag)}")
        removed += _orphan_registry_parameter(aws, route)
        if bundles and boot is not None:
            removed += _delete_bundles(aws, boot.bucket, bundles)
        if purge_weights and boot is not None:
            removed, left = _purge_weights(aws, boot.bucket, model_id, route, removed, left, self.statuses())
        if not removed and not left:
            raise EmdUserError(f"there is no deployment {route} in {aws.region}")
        return DestroyReport(route, removed, left)

    def _delete_secret(self, aws: Any, route: str) -> bool:
        sm = aws.client("secretsmanager")
        try:
            sm.delete_secret(
                SecretId=api_key_secret_name(*parse_route(route)), ForceDeleteWithoutRecovery=True
            )
        except sm.exceptions.ResourceNotFoundException:
            return False
        return True

    def rotate_key(self, route: str, *, api_key: str | None) -> str:
        aws = self.session()
        model_id, tag = parse_route(route)
        sm = aws.client("secretsmanager")
        key = api_key or generate_api_key()
        try:
            secret = _key_secret_name(_registry_entry(aws, route), route)
            sm.put_secret_value(SecretId=secret, SecretString=key)
        except sm.exceptions.ResourceNotFoundException:
            raise EmdUserError(
                f"{model_id}/{tag} has no API key in {aws.region} (not deployed there, or public)"
            ) from None
        return key


# ---------------------------------------------------------------------- helpers


def _warn_if_bootstrap_is_older(aws: Any, console: Console) -> None:
    from emd_cli.aws.shared_stacks import BOOTSTRAP_STACK, deployed_version, version_key
    from emd_cli.version import emd_version

    _, deployed = deployed_version(aws, BOOTSTRAP_STACK)
    have, want = version_key(deployed), version_key(emd_version())
    if have is not None and want is not None and have < want:
        console.print(
            f"[yellow]note:[/] {BOOTSTRAP_STACK} in {aws.region} was deployed by emd {deployed}, this is emd "
            f"{emd_version()}: `emd bootstrap --region {aws.region}` upgrades it"
        )


def _synth_template(dep: Deployment) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from emd_stacks.synth import synth_model_stack

    with tempfile.TemporaryDirectory(prefix="emd-synth-") as tmp:
        return dict(json.loads(Path(synth_model_stack(dep, tmp)).read_text()))


def _deployment_facts(dep: Deployment) -> dict[str, Any]:
    return {
        "engine_type": dep.engine_type,
        "instance_type": dep.instance_type,
        "service_type": dep.service_type.value,
        "model_type": dep.model.type.value,
        "public": dep.extra_params.service_params.public,
    }


def _model_type(route: str) -> str:
    from model_specs.catalogue import catalogue

    return catalogue().model(parse_route(route)[0]).type.value


def _registry_entry(aws: Any, route: str) -> Any:
    """The deployment's registry entry (model_specs.registry.RegistryEntry), or None."""
    from model_specs.registry import RegistryEntry

    ssm = aws.client("ssm")
    try:
        value = ssm.get_parameter(Name=registry_parameter_name(*parse_route(route)))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    try:
        return RegistryEntry.model_validate_json(value)
    except ValueError:
        return None


def _key_secret_name(entry: Any, route: str) -> str:
    """The secret holding the deployment's key: the one its registry entry names (a directly deployed stack
    may use an existing secret, `-c api_key_secret_name`), else emd/<model-id>/<tag>/api-key."""
    if entry is not None and entry.api_key_secret_name:
        return str(entry.api_key_secret_name)
    return api_key_secret_name(*parse_route(route))


def _sagemaker_endpoint_name(route: str) -> str:
    return f"emd-{deployment_slug(*parse_route(route))}"[:63].rstrip("-")


def _latest_executions(aws: Any, pipeline: str, wanted: str | None) -> dict[str, Any]:
    """The newest execution of each deployment's stack among the recent ones."""
    from emd_cli.aws.pipeline import recent_executions

    latest: dict[str, Any] = {}
    for execution in recent_executions(aws, pipeline):  # newest first
        stack = (execution.deployment or {}).get("stack")
        if stack and stack not in latest and wanted in (None, stack):
            latest[stack] = execution
    return latest


def _without_destroyed(aws: Any, boot: Any, latest: dict[str, Any], stacks: dict[str, Any]) -> dict[str, Any]:
    """An execution without a stack is a deployment while it runs, and after it ended (a failed first
    deployment) until `emd destroy`: while its key secret exists, or, for a public deployment (no key), while
    its bundle version does (destroy deletes both; the bucket expires old versions after 30 days)."""
    from emd_cli.aws.s3 import versions_of

    settled = [n for n, e in latest.items() if n not in stacks and e.status not in ("InProgress", "Stopping")]
    if not settled:
        return latest
    keyed = _stacks_with_keys(aws)
    public = [n for n in settled if n not in keyed and (latest[n].deployment or {}).get("public")]
    bundles = versions_of(aws, boot.bucket, PIPELINE_SOURCE_KEY) if public else set()
    kept = set(keyed) | {n for n in public if latest[n].bundle_version in bundles}
    return {n: e for n, e in latest.items() if n not in settled or n in kept}


def _stacks_with_keys(aws: Any) -> set[str]:
    """Stack names of the deployments that have an API key secret (emd/<model-id>/<tag>/api-key)."""
    sm = aws.client("secretsmanager")
    names = set()
    for page in sm.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": ["emd/"]}]):
        for secret in page.get("SecretList", []):
            parts = secret["Name"].split("/")
            if len(parts) >= 4 and parts[-1] == "api-key":
                names.add(STACK_PREFIX + deployment_slug("/".join(parts[1:-2]), parts[-2]))
    return names


def _latest_actions(aws: Any, pipeline: str, latest: dict[str, Any]) -> dict[str, Any]:
    """Execution id -> its newest action, from one page of action executions (only when one is needed)."""
    from emd_cli.aws.pipeline import action_view

    needed = {e.id for e in latest.values() if e.status in ("InProgress", "Stopping", "Failed")}
    if not needed:
        return {}
    page = aws.client("codepipeline").list_action_executions(pipelineName=pipeline, maxResults=100)
    found: dict[str, Any] = {}
    for detail in sorted(page.get("actionExecutionDetails", []), key=lambda d: str(d.get("startTime", ""))):
        if detail.get("pipelineExecutionId") in needed:
            found[detail["pipelineExecutionId"]] = action_view(detail)
    return found


@dataclass(frozen=True)
class _Running:
    """What runs behind the deployments (emd_cli.aws.capacity): endpoints and ECS clusters, by name."""

    endpoints: dict[str, dict[str, Any]]
    clusters: dict[str, dict[str, Any]]


def _capacity(aws: Any, stacks: dict[str, Any]) -> _Running:
    """One paginated Search for the SageMaker endpoints and one DescribeClusters per 100 ECS clusters, each
    only when a deployment has one."""
    from emd_cli.aws.capacity import ecs_clusters, sagemaker_endpoints
    from emd_cli.aws.stacks import outputs_of

    outputs = [outputs_of(s) for s in stacks.values()]
    endpoints = {o["EndpointName"] for o in outputs if o.get("EndpointName")}
    clusters = {o["ClusterName"] for o in outputs if o.get("ClusterName")}
    return _Running(sagemaker_endpoints(aws, endpoints), ecs_clusters(aws, clusters))


def _status(
    stack_name: str,
    stack: dict[str, Any] | None,
    execution: Any,
    actions: dict[str, Any],
    running: _Running,
    base_url: str | None,
    region: str,
) -> DeploymentStatus:
    from emd_cli.aws.stacks import outputs_of

    outputs = outputs_of(stack) if stack else {}
    facts = json.loads(outputs.get("Deployment", "{}"))
    summary = (execution.deployment if execution else None) or {}
    route = outputs.get("Route") or summary.get("route") or stack_name
    service = facts.get("service_type") or summary.get("service") or "?"
    instance = facts.get("instance_type") or summary.get("instance")
    stage, reason = _stage(stack, execution, actions.get(execution.id) if execution else None)
    endpoint = running.endpoints.get(outputs.get("EndpointName", ""))
    cluster = running.clusters.get(outputs.get("ClusterName", ""))
    if stage == Stage.IN_SERVICE and endpoint is not None:
        stage, reason = _endpoint_stage(endpoint, reason)
    elif stage == Stage.IN_SERVICE and cluster is not None:
        stage, reason = _cluster_stage(cluster, reason)
    created = (stack or {}).get("CreationTime") or (execution.started if execution else None)
    return DeploymentStatus(
        route=route,
        target="aws",
        service_type=service,
        engine_type=facts.get("engine_type") or summary.get("engine") or "?",
        instance_type=instance,
        stage=stage,
        base_url=base_url if stack else None,
        created_at=created if isinstance(created, datetime) else None,
        hourly_cost=_hourly_cost(region, instance, service) if stack else None,  # no stack: nothing runs
        reason=reason,
        details={
            "uptime_seconds": _age_seconds(created),
            "stack": stack_name,
            "stack_status": (stack or {}).get("StackStatus"),
            "execution": execution.id if execution else None,
            "sagemaker_endpoint": outputs.get("EndpointName"),
        },
    )


def _age_seconds(created: Any) -> int | None:
    if not isinstance(created, datetime):
        return None
    now = datetime.now(created.tzinfo) if created.tzinfo else datetime.now()
    return max(int((now - created).total_seconds()), 0)


def _stage(stack: dict[str, Any] | None, execution: Any, action: Any) -> tuple[str, str | None]:
    if execution is not None and execution.status in ("InProgress", "Stopping"):
        deploying = action is not None and action.stage == "Deploy"
        return (Stage.DEPLOYING if deploying else Stage.BUILDING), None
    failure = None
    if execution is not None and execution.status in ("Failed", "Stopped"):
        where = f"{action.stage} stage: " if action is not None else ""
        detail = (action.error if action is not None else None) or execution.status.lower()
        failure = f"last deployment {execution.status.lower()} in the {where}{detail}"
    if stack is None:
        return Stage.FAILED, failure or "no stack"
    status = stack["StackStatus"]
    if status == "DELETE_IN_PROGRESS":
        return Stage.DELETING, None
    if status.endswith("_IN_PROGRESS") and "ROLLBACK" not in status:
        return Stage.DEPLOYING, None
    if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        return Stage.IN_SERVICE, failure
    return Stage.FAILED, stack.get("StackStatusReason") or failure or status


SCALED_TO_ZERO_REASON = "nothing runs until a request comes; the first one starts {what} (minutes)"


def _endpoint_stage(endpoint: dict[str, Any], reason: str | None) -> tuple[str, str | None]:
    from emd_cli.aws.capacity import instances

    status = endpoint.get("EndpointStatus")
    if status in ("Creating", "Updating", "SystemUpdating"):
        return Stage.DEPLOYING, reason
    if status == "Failed":
        return Stage.FAILED, endpoint.get("FailureReason") or "SageMaker endpoint failed"
    if status == "InService" and instances(endpoint) == 0:
        # an inference component at 0 copies releases its instances; an async endpoint scales to 0 on its own
        return Stage.SCALED_TO_ZERO, reason or SCALED_TO_ZERO_REASON.format(what="an instance")
    return Stage.IN_SERVICE, reason


def _cluster_stage(cluster: dict[str, Any], reason: str | None) -> tuple[str, str | None]:
    """An ECS deployment's cluster with no task running or starting: its service's desired count is 0."""
    from emd_cli.aws.capacity import tasks

    if cluster.get("status") == "ACTIVE" and tasks(cluster) == 0:
        return Stage.SCALED_TO_ZERO, reason or SCALED_TO_ZERO_REASON.format(what="a task on a GPU host")
    return Stage.IN_SERVICE, reason


def _hourly_cost(region: str, instance: str | None, service: str) -> str | None:
    from model_specs.cost import estimate_cost

    if not instance or service == "?":
        return None
    try:
        est = estimate_cost(region=region, instance_type=instance, service_type=service, model_size_gb=0)
    except EmdUserError:
        return None
    hourly = est.target.hourly if est.target else None
    return None if hourly is None else f"{est.symbol}{hourly}/h"


def _wait_settled(cfn: Any, stack: str, console: Console) -> None:
    """A stack still being created (its pipeline execution was just stopped) is left to finish first."""
    from emd_cli.aws.session import poll_seconds
    from emd_cli.aws.stacks import stack_status

    described = stack_status(cfn, stack)
    if described is not None and described["StackStatus"] in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"):
        with console.status(f"{stack} is {described['StackStatus']}: waiting before deleting it"):
            while described is not None and described["StackStatus"].endswith("_IN_PROGRESS"):
                time.sleep(poll_seconds())
                described = stack_status(cfn, stack)


def _delete_bundles(aws: Any, bucket: str, versions: set[str]) -> list[str]:
    """The deployment's bundles (what its pipeline executions ran on): a destroyed deployment leaves none."""
    from emd_cli.aws.s3 import delete_versions, versions_of

    present = versions & versions_of(aws, bucket, PIPELINE_SOURCE_KEY)
    count = delete_versions(aws, bucket, PIPELINE_SOURCE_KEY, present)
    return [f"bundle versions of s3://{bucket}/{PIPELINE_SOURCE_KEY} ({count})"] if count else []


def _orphan_registry_parameter(aws: Any, route: str) -> list[str]:
    """The stack owns the registry parameter; one left behind (a stack deleted by hand) is removed too."""
    ssm = aws.client("ssm")
    name = registry_parameter_name(*parse_route(route))
    try:
        ssm.delete_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return []
    return [f"registry parameter {name}"]


def _purge_weights(
    aws: Any,
    bucket: str,
    model_id: str,
    route: str,
    removed: list[str],
    left: list[str],
    others: list[DeploymentStatus],
) -> tuple[list[str], list[str]]:
    users = sorted(s.route for s in others if s.route.rpartition("/")[0] == model_id and s.route != route)
    if users:
        return removed, [*left, f"cached weights of {model_id} kept: {', '.join(users)} use them"]
    from emd_cli.aws.s3 import delete_prefix

    count = delete_prefix(aws, bucket, f"{WEIGHTS_PREFIX}/{model_id}/")
    removed = [*removed, f"cached weights s3://{bucket}/{WEIGHTS_PREFIX}/{model_id}/ ({count} objects)"]
    pointers = delete_weights_parameters(aws, model_id)
    if pointers:
        removed.append(f"{pointers} weights parameter(s) under {WEIGHTS_PARAM_PREFIX}/{model_id}/")
    return removed, left


def delete_weights_parameters(aws: Any, model_id: str | None = None) -> int:
    """The build's pointers to cached weights folders (model_specs/weights_cache.py), of one model or all."""
    ssm = aws.client("ssm")
    path = f"{WEIGHTS_PARAM_PREFIX}/{model_id}" if model_id else WEIGHTS_PARAM_PREFIX
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    names = [p["Name"] for page in pages for p in page["Parameters"]]
    for start in range(0, len(names), 10):  # DeleteParameters takes 10 names at a time
        ssm.delete_parameters(Names=names[start : start + 10])
    return len(names)


def _reason(exc: Exception) -> str:
    from emd_cli.aws.errors import explain, is_aws_error

    return explain(exc).message if is_aws_error(exc) else str(exc)
