"""The local target (`-s local`): each deployment is an engine adapter (`python -m serving.engine`, which
starts the engine) on a free loopback port; one gateway (`python -m serving.gateway` over the file-backed
store, EMD_STORE=file) serves every local deployment with the API-key check, like the gateway on AWS. It is
started by the first deploy, reused by the next ones and stopped by the destroy of the last one.

Processes run detached from the terminal; their state, keys and logs live under LocalStore's folder."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.console import Console

from emd_cli import state
from emd_cli.targets.base import (
    DeploymentStatus,
    DeployOutcome,
    DestroyReport,
    Endpoint,
    Stage,
    TargetError,
    generate_api_key,
)
from emd_cli.targets.local_store import ENGINE_LOG, LocalStore
from emd_cli.targets.local_weights import local_model_path
from emd_cli.targets.processes import (
    LOOPBACK,
    ProcessRef,
    free_port,
    log_tail,
    port_free,
    port_owner,
    spawn,
    stop,
    wait_port_free,
)
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError, did_you_mean
from model_specs.machine import engine_search_path
from model_specs.registry import RegistryEntry, api_key_secret_name

DEFAULT_PORT = 8080
READY_TIMEOUT = 600.0
GATEWAY_TIMEOUT = 30.0
# the gateway re-reads the registry and key digests this often: a rotated key works (and the old one stops
# working) within this many seconds; a new route is found at once (the gateway refreshes on a miss)
GATEWAY_CACHE_SECONDS = "2"
PROBE_TIMEOUT = httpx.Timeout(1.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ref(data: Any) -> ProcessRef | None:
    return ProcessRef.from_json(data) if isinstance(data, dict) else None


def _get(url: str, key: str | None = None) -> httpx.Response | None:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    try:
        return httpx.get(url, timeout=PROBE_TIMEOUT, headers=headers)
    except httpx.HTTPError:
        return None


class LocalTarget:
    name: ClassVar[str] = "local"

    def __init__(
        self,
        *,
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
        store: LocalStore | None = None,
    ) -> None:
        self.port = port  # the gateway's port for the first deploy; None: DEFAULT_PORT, or the running one
        self.ready_timeout = ready_timeout
        self.store = store or LocalStore()

    # ---------------------------------------------------------------- deploy

    def deploy(
        self, dep: Deployment, *, api_key: str | None, update: bool, console: Console
    ) -> DeployOutcome:
        route = dep.route
        model_path = local_model_path(dep)
        public = dep.extra_params.service_params.public
        notes: list[str] = []
        record: dict[str, Any] | None = None
        gateway_started = False
        try:
            with self.store.locked():
                existing = self.store.record(route)
                if existing is not None:
                    if not update:
                        raise EmdUserError(self._already_deployed(route, existing))
                    if api_key is None and not public:
                        api_key = self.store.read_key(route)  # clients keep working after the update
                    self._teardown(route, existing, stop_gateway=False)
                    notes.append(f"replaced the previous deployment of {route}")
                gateway, gateway_started = self._ensure_gateway()
                record, proc = self._start_adapter(dep, model_path)
            log = self.store.deployment_dir(route) / ENGINE_LOG
            self._wait(
                console,
                f"Starting {dep.engine_type} with {dep.model_id} (log: {log})",
                lambda: _ready(f"http://{LOOPBACK}:{record['adapter_port']}/ping"),
                lambda: (
                    None if proc.poll() is None else f"the engine adapter exited with code {proc.returncode}"
                ),
                self.ready_timeout,
                log,
            )
            gateway_url = f"http://{LOOPBACK}:{gateway['port']}"
            gateway_proc = ProcessRef.from_json(gateway["process"])
            self._wait(
                console,
                f"Starting the local gateway on {gateway_url}",
                lambda: _ready(gateway_url + "/health"),
                lambda: None if gateway_proc.alive() else "the local gateway exited",
                GATEWAY_TIMEOUT,
                self.store.gateway_log,
            )
            with self.store.locked():
                key = None if public else (api_key or generate_api_key())
                if key is not None:
                    self.store.put_key(route, api_key_secret_name(dep.model_id, dep.model_tag), key)
                self.store.put_entry(self._registry_entry(dep, record["adapter_port"]))
                record.update(
                    stage="running",
                    owner=None,
                    engine=[r.to_json() for r in ProcessRef.from_json(record["adapter"]).children()],
                )
                self.store.write_record(record)
            self._wait(
                console,
                f"Routing {route} through the gateway",
                lambda: _routed(gateway_url, route, key),
                lambda: None if gateway_proc.alive() else "the local gateway exited",
                GATEWAY_TIMEOUT,
                self.store.gateway_log,
            )
        except BaseException:
            if record is not None or gateway_started:  # a refusal before anything started leaves all as is
                with self.store.locked():
                    self._teardown(route, self.store.record(route) or record or {}, stop_gateway=True)
            raise
        if gateway_started:
            notes.append(f"started the local gateway on {gateway_url} (log: {self.store.gateway_log})")
        endpoint = self.endpoint(route)
        assert endpoint is not None
        shown = key if key is not None and key != api_key else None
        return DeployOutcome(endpoint=endpoint, api_key_to_show=shown, notes=notes)

    def _already_deployed(self, route: str, record: dict[str, Any]) -> str:
        status = self._status(record, self.store.gateway())
        if status.stage == Stage.IN_SERVICE:
            what = f"already runs here ({status.base_url})"
        elif status.stage == Stage.STARTING:
            what = f"is being started ({status.reason})" if status.reason else "is starting"
        else:
            what = f"is deployed here but {status.stage}: {status.reason}"
        return (
            f"{route} {what}. Replace it with --update, deploy it again under another --model-tag, or "
            f"remove it with `emd destroy {route}`"
        )

    def _start_adapter(self, dep: Deployment, model_path: Path) -> tuple[dict[str, Any], Any]:
        """Spawn the engine adapter on free loopback ports; record it as starting. Called under the lock."""
        adapter_port, engine_port = free_port(), free_port()
        while engine_port == adapter_port:
            engine_port = free_port()
        log = self.store.deployment_dir(dep.route) / ENGINE_LOG
        proc = spawn(
            [sys.executable, "-m", "serving.engine"],
            self._adapter_env(dep, model_path, adapter_port, engine_port),
            log,
        )
        record = {
            "route": dep.route,
            "model_id": dep.model_id,
            "model_tag": dep.model_tag,
            "model_type": dep.model.type.value,
            "engine_type": dep.engine_type,
            "model_path": str(model_path),
            "public": dep.extra_params.service_params.public,
            "stage": "starting",
            "owner": ProcessRef.of(os.getpid()).to_json(),
            "adapter": ProcessRef.of(proc.pid).to_json(),
            "engine": [],
            "adapter_port": adapter_port,
            "engine_port": engine_port,
            "created_at": _now(),
        }
        self.store.write_record(record)
        return record, proc

    def _adapter_env(self, dep: Deployment, model_path: Path, port: int, engine_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMD_")}
        env.update(dep.engine_environment())
        env.update(
            PATH=engine_search_path(),
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",  # the weights are on disk already
            EMD_ENGINE=dep.engine_type,
            EMD_MODEL_ID=dep.model_id,
            EMD_SERVED_MODEL_NAME=dep.model_id,
            EMD_MODEL_DIR=str(model_path),
            EMD_ENGINE_ARGS=dep.engine_cli_args(),
            EMD_TENSOR_PARALLEL=str(dep.tensor_parallel_degree),
            EMD_HOST=LOOPBACK,
            EMD_PORT=str(port),
            EMD_ENGINE_PORT=str(engine_port),
            EMD_ENGINE_READY_TIMEOUT=str(self.ready_timeout),
            EMD_DRAIN_SECONDS="5",
            EMD_ENGINE_STOP_SECONDS="10",
        )
        return env

    def _registry_entry(self, dep: Deployment, adapter_port: int) -> RegistryEntry:
        public = dep.extra_params.service_params.public
        return RegistryEntry(
            model_id=dep.model_id,
            model_tag=dep.model_tag,
            model_type=dep.model.type.value,
            service_type="local",
            backend="http",
            base_url=f"http://{LOOPBACK}:{adapter_port}",
            api_key_secret_name=None if public else api_key_secret_name(dep.model_id, dep.model_tag),
            public=public,
        )

    def _ensure_gateway(self) -> tuple[dict[str, Any], bool]:
        """The running local gateway, or a new one on --port (default 8080). Called under the lock."""
        gateway = self.store.gateway()
        ref = _ref(gateway.get("process")) if gateway else None
        if gateway is not None and ref is not None and ref.alive():
            if self.port is not None and self.port != gateway["port"]:
                raise EmdUserError(
                    f"the local gateway already runs on {LOOPBACK}:{gateway['port']} and every local "
                    f"deployment shares it: drop --port {self.port}, or destroy the local deployments first"
                )
            return gateway, False
        port = self.port or DEFAULT_PORT
        if not port_free(port):
            owner = port_owner(port)
            raise EmdUserError(
                f"port {port} on {LOOPBACK} is in use by another program{f' ({owner})' if owner else ''}: "
                "choose a free one with --port"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMD_")}
        env.update(
            PYTHONUNBUFFERED="1",
            EMD_STORE="file",
            EMD_STATE_DIR=str(self.store.root),
            EMD_GATEWAY_HOST=LOOPBACK,
            EMD_GATEWAY_PORT=str(port),
            EMD_REGISTRY_TTL=GATEWAY_CACHE_SECONDS,
            EMD_KEY_CACHE_TTL=GATEWAY_CACHE_SECONDS,
        )
        proc = spawn([sys.executable, "-m", "serving.gateway"], env, self.store.gateway_log)
        gateway = {"port": port, "process": ProcessRef.of(proc.pid).to_json(), "created_at": _now()}
        state.write_json(self.store.gateway_file, gateway)
        return gateway, True

    def _wait(
        self,
        console: Console,
        what: str,
        ready: Callable[[], bool],
        failed: Callable[[], str | None],
        timeout: float,
        log: Path,
    ) -> None:
        """Poll until ready, with a spinner; TargetError with the log's tail on failure or timeout."""
        started = time.monotonic()
        with console.status(what) as spinner:
            while True:
                if ready():
                    return
                reason = failed()
                elapsed = time.monotonic() - started
                if reason is None and elapsed > timeout:
                    reason = f"not ready after {timeout:.0f} s"
                if reason is not None:
                    tail = log_tail(log)
                    raise TargetError(
                        f"{what.split(' (log')[0]}: {reason}. Nothing was left running. "
                        f"Last lines of {log}:\n{tail or '(empty)'}"
                    )
                spinner.update(f"{what} … {elapsed:.0f} s")
                time.sleep(0.25)

    # ---------------------------------------------------------------- status, endpoint

    def statuses(self, route: str | None = None) -> list[DeploymentStatus]:
        gateway = self.store.gateway()
        records = self.store.records()
        return [self._status(r, gateway) for k, r in records.items() if route is None or k == route]

    def _status(self, record: dict[str, Any], gateway: dict[str, Any] | None) -> DeploymentStatus:
        stage, reason = self._stage(record, gateway)
        created = datetime.fromisoformat(record["created_at"]) if record.get("created_at") else None
        adapter = _ref(record.get("adapter"))
        gw_ref = _ref(gateway.get("process")) if gateway else None
        details = {
            "pids": {
                "adapter": adapter.pid if adapter else None,
                "engine": [r["pid"] for r in record.get("engine") or []],
                "gateway": gw_ref.pid if gw_ref else None,
            },
            "ports": {
                "gateway": gateway.get("port") if gateway else None,
                "adapter": record.get("adapter_port"),
                "engine": record.get("engine_port"),
            },
            "uptime_seconds": int((datetime.now(UTC) - created).total_seconds()) if created else None,
            "model_path": record.get("model_path"),
            "public": bool(record.get("public")),
            "log": str(self.store.deployment_dir(record["route"]) / ENGINE_LOG),
        }
        return DeploymentStatus(
            route=record["route"],
            target=self.name,
            service_type="local",
            engine_type=record.get("engine_type", "?"),
            instance_type=None,
            stage=stage,
            base_url=_base_url(gateway),
            created_at=created,
            hourly_cost=None,
            reason=reason,
            details=details,
        )

    def _stage(self, record: dict[str, Any], gateway: dict[str, Any] | None) -> tuple[str, str | None]:
        log = self.store.deployment_dir(record["route"]) / ENGINE_LOG
        owner = _ref(record.get("owner"))
        if record.get("stage") == "starting":
            if owner is not None and owner.alive():
                return Stage.STARTING, f"emd deploy (pid {owner.pid}) is starting it"
            return Stage.FAILED, "the emd deploy that started it stopped before it was ready"
        adapter = _ref(record.get("adapter"))
        liveness = adapter.liveness() if adapter else "dead"
        if liveness == "reused":
            return (
                Stage.STOPPED,
                f"its engine adapter (pid {adapter.pid}) is gone; the PID is now another program's",
            )
        if liveness == "dead":
            return (
                Stage.STOPPED,
                f"its engine adapter (pid {adapter.pid if adapter else '?'}) exited; see {log}",
            )
        dead_engine = [r for r in map(_ref, record.get("engine") or []) if r is not None and not r.alive()]
        if dead_engine:
            return Stage.STOPPED, f"its engine (pid {dead_engine[0].pid}) exited; see {log}"
        gw_ref = _ref(gateway.get("process")) if gateway else None
        if gw_ref is None or not gw_ref.alive():
            return Stage.STOPPED, f"the local gateway is not running; see {self.store.gateway_log}"
        ping = _get(f"http://{LOOPBACK}:{record.get('adapter_port')}/ping")
        if ping is not None and ping.status_code == 200:
            return Stage.IN_SERVICE, None
        if ping is not None and "failed" in ping.text:
            return Stage.FAILED, f"the engine failed; see {log}"
        return Stage.STARTING, "the engine adapter does not answer /ping yet"

    def endpoint(self, route: str) -> Endpoint | None:
        record = self.store.record(route)
        if record is None:
            return None
        base = _base_url(self.store.gateway()) or f"http://{LOOPBACK}:{self.port or DEFAULT_PORT}/v1"
        return Endpoint(
            route=route,
            target=self.name,
            base_url=base,
            model=route,
            model_type=record.get("model_type", "llm"),
            api_key=None if record.get("public") else self.store.read_key(route),
        )

    # ---------------------------------------------------------------- destroy, keys

    def destroy(self, route: str, *, console: Console) -> DestroyReport:
        with self.store.locked():
            record = self._existing(route)
            with console.status(f"Stopping {route}"):
                removed, left = self._teardown(route, record, stop_gateway=True)
        return DestroyReport(route=route, removed=removed, left=left)

    def rotate_key(self, route: str, *, api_key: str | None) -> str:
        with self.store.locked():
            record = self._existing(route)
            if record.get("public"):
                raise EmdUserError(f"{route} is public: it has no API key to rotate")
            key = api_key or generate_api_key()
            model_id, _, tag = route.partition("/")
            self.store.put_key(route, api_key_secret_name(model_id, tag), key)
        return key

    def _existing(self, route: str) -> dict[str, Any]:
        record = self.store.record(route)
        if record is None:
            raise EmdUserError(self.not_found_message(route, f"no local deployment {route!r}"))
        return record

    def not_found_message(self, route: str, first: str) -> str:
        """'<first>. Did you mean …? Local deployments: …'"""
        routes = sorted(self.store.records())
        listed = ", ".join(routes) if routes else "none"
        return f"{first}.{did_you_mean(route, routes)} Local deployments: {listed}"

    def _teardown(
        self, route: str, record: dict[str, Any], *, stop_gateway: bool
    ) -> tuple[list[str], list[str]]:
        """Stop the deployment's processes and remove everything kept for it; with stop_gateway, the gateway
        too when no local deployment is left. Called under the lock. (removed, left) in words."""
        removed: list[str] = []
        left: list[str] = []
        processes = [("engine adapter", _ref(record.get("adapter")))] + [
            ("engine", _ref(r)) for r in record.get("engine") or []
        ]
        running = {ref for _, ref in processes if ref is not None and ref.alive()}
        for label, ref in processes:
            if ref is None:
                continue
            if stop(ref):
                if ref in running:
                    removed.append(f"{label} (pid {ref.pid}) stopped")
            else:
                left.append(f"{label} (pid {ref.pid}) did not stop: kill it with `kill -9 {ref.pid}`")
        for port_key in ("adapter_port", "engine_port"):
            port = record.get(port_key)
            if isinstance(port, int) and not wait_port_free(port):
                left.append(
                    f"port {port} is still in use{f' by {port_owner(port)}' if port_owner(port) else ''}"
                )
        if self.store.drop_entry(route):
            removed.append("gateway route")
        model_id, _, tag = route.partition("/")
        if self.store.drop_key(route, api_key_secret_name(model_id, tag)):
            removed.append("API key (digest and 0600 file)")
        self.store.remove_deployment(route)
        removed.append(f"state and log ({self.store.deployment_dir(route)})")
        if stop_gateway and not self.store.records():
            removed_gw, left_gw = self._stop_gateway()
            removed += removed_gw
            left += left_gw
        return removed, left

    def _stop_gateway(self) -> tuple[list[str], list[str]]:
        gateway = self.store.gateway()
        if gateway is None:
            return [], []
        ref = _ref(gateway.get("process"))
        if ref is not None and ref.alive():
            if not stop(ref):
                return [], [
                    f"the local gateway (pid {ref.pid}) did not stop: kill it with `kill -9 {ref.pid}`"
                ]
            wait_port_free(int(gateway["port"]))
            done = [
                f"local gateway (pid {ref.pid}, port {gateway['port']}) stopped: no local deployment left"
            ]
        else:
            done = []
        state.remove(self.store.gateway_file)
        return done, []


def _base_url(gateway: dict[str, Any] | None) -> str | None:
    return f"http://{LOOPBACK}:{gateway['port']}/v1" if gateway and gateway.get("port") else None


def _ready(url: str) -> bool:
    resp = _get(url)
    return resp is not None and resp.status_code == 200


def _routed(gateway_url: str, route: str, key: str | None) -> bool:
    """The gateway lists the route for this key (it has read the new registry entry and key digest)."""
    resp = _get(gateway_url + "/v1/models", key)
    if resp is None or resp.status_code != 200:
        return False
    try:
        return any(m.get("id") == route for m in resp.json().get("data", []))
    except (ValueError, AttributeError):
        return False
