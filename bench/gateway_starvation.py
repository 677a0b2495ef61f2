"""Another tenant's latency while the gateway is under attack, next to its idle latency in the same run.

Starts (all on 127.0.0.1, each in its own process): moto server (registry + API keys), a fake engine (fixed
answers, fixed-pace SSE streams), the SageMaker-runtime stand-in of the integration tests in front of it
(the real event-stream wire format), the gateway, and the attackers. The tenant sends small chat requests,
one at a time at a steady pace, to its own HTTP deployment with its own key; its p50/p99 are measured idle,
then during each attack:

- sagemaker-streams: N concurrent SageMaker streams (each `--events` SSE events, one every `--event-ms`),
  started again as they end. `--phase lockstep` (the default) starts every stream's events on the same beat,
  a burst of N events at once every `--event-ms` (the worst case); `--phase random` delays each stream's first
  event by a random fraction of `--event-ms`, as streams that began at different times arrive
- never-readers: N clients that ask for a long SageMaker stream and never read a byte of it
- multipart: clients each sending a 1 MiB multipart body of repeated `name="model"` lines every
  `--multipart-pace-ms` (0: back to back, which floods the gateway with bytes whatever they hold)

Target: the tenant's p99 during each attack within 2x of its idle p99. "gw CPU" is the gateway process's CPU
time during the measurements under attack, as a share of one core (Linux only).

    .venv/bin/python bench/gateway_starvation.py [--streams 200] [--never-readers 50] [--multipart 4]
    [--nice-others 10]    # the simulated outside world yields the shared cores to the gateway and tenant
    [--gateway-root DIR]   # measure the gateway of another checkout (e.g. the code before a change)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gateway import free_port, start, stop_all, wait  # noqa: E402  (the gateway overhead bench's process helpers)

TENANT_KEY, ATTACKER_KEY = "sk-tenant-0123456789", "sk-attacker-9876543210"
TENANT, STREAMER = "tenant-model", "streaming-model"
ATTACK_SETTLE_SECONDS = 2.0


# ---------------------------------------------------------------- the fake engine (its own process)


def engine_app(events: int, event_ms: float, phase: str = "lockstep") -> web.Application:
    message = {"role": "assistant", "content": "ok"}
    completion = json.dumps(
        {"id": "b", "object": "chat.completion", "model": "served", "created": 0,
         "choices": [{"index": 0, "finish_reason": "stop", "message": message}]}
    ).encode()  # fmt: skip

    def event(content: str) -> bytes:
        chunk = {"id": "b", "object": "chat.completion.chunk", "model": "served",
                 "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}  # fmt: skip
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=completion, content_type="application/json")

    async def invocations(request: web.Request) -> web.StreamResponse:
        """What an adapter streams to SageMaker: fixed-pace events, ten times as many for a long stream."""
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            if phase == "random":
                await asyncio.sleep(random.uniform(0, event_ms) / 1000)
            for i in range(events * (10 if body.get("long") else 1)):
                await asyncio.sleep(event_ms / 1000)
                await resp.write(event(f"t{i} "))
            await resp.write(b"data: [DONE]\n\n")
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/invocations", invocations)
    return app


# ---------------------------------------------------------------- attackers (their own process)


async def stream_forever(session: aiohttp.ClientSession, url: str, stats: Counter[str]) -> None:
    body = {"model": STREAMER, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    while True:
        try:
            async with session.post(url, json=body) as resp:
                stats[f"HTTP {resp.status}"] += 1
                async for _ in resp.content.iter_any():
                    pass
        except aiohttp.ClientError as exc:
            stats[type(exc).__name__] += 1
            await asyncio.sleep(0.1)


async def never_read(url: str, stats: Counter[str]) -> None:
    """A raw connection that asks for a long stream and never reads a byte of the answer."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    body = json.dumps({"model": STREAMER, "stream": True, "long": True, "messages": []}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ATTACKER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    await asyncio.get_running_loop().sock_sendall(sock, head + body)
    stats["connected"] += 1
    await asyncio.sleep(3600)  # holds the socket open, reads nothing


async def multipart_forever(
    session: aiohttp.ClientSession, url: str, stats: Counter[str], pace_ms: float
) -> None:
    """1 MiB of repeated `name="model"` lines (the body that froze the quadratic regex), one every pace_ms."""
    attack = b'name="model"\r\n' * (1024 * 1024 // 14)
    headers = {"Content-Type": "multipart/form-data; boundary=zz"}
    while True:
        await asyncio.sleep(pace_ms / 1000)
        try:
            async with session.post(url, data=attack, headers=headers) as resp:
                stats[f"HTTP {resp.status}"] += 1
                await resp.read()
        except aiohttp.ClientError as exc:
            stats[type(exc).__name__] += 1


async def attack(kind: str, gateway: str, count: int, pace_ms: float) -> None:
    stats: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    headers = {"Authorization": f"Bearer {ATTACKER_KEY}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        if kind == "sagemaker-streams":
            jobs = [stream_forever(session, gateway + "/v1/chat/completions", stats) for _ in range(count)]
        elif kind == "never-readers":
            jobs = [never_read(gateway, stats) for _ in range(count)]
        else:
            url = gateway + "/v1/audio/transcriptions"
            jobs = [multipart_forever(session, url, stats, pace_ms) for _ in range(count)]
        tasks = [asyncio.create_task(j) for j in jobs]

        async def report() -> None:
            while True:
                await asyncio.sleep(1)
                print(json.dumps(dict(stats)), flush=True)

        await asyncio.gather(report(), *tasks)


# ---------------------------------------------------------------- the tenant (this process)


async def tenant_latencies(gateway: str, requests: int, pace_ms: float) -> tuple[list[float], Counter[int]]:
    body = json.dumps({"model": TENANT, "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Authorization": f"Bearer {TENANT_KEY}", "Content-Type": "application/json"}
    latencies, statuses = [], Counter[int]()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        for _ in range(requests):
            start = time.perf_counter()
            try:
                async with session.post(gateway + "/v1/chat/completions", data=body) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(pace_ms / 1000)
    return latencies, statuses


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


# ---------------------------------------------------------------- setup


def register(moto_url: str, engine_url: str) -> None:
    import boto3

    from model_specs.registry import RegistryEntry, api_key_secret_name, registry_parameter_name

    kw = {"endpoint_url": moto_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}  # fmt: skip
    ssm, secrets = boto3.client("ssm", **kw), boto3.client("secretsmanager", **kw)
    tenant = RegistryEntry(model_id=TENANT, model_type="llm", service_type="ecs", backend="http",
                           base_url=engine_url,
                           api_key_secret_name=api_key_secret_name(TENANT, "dev"))  # fmt: skip
    streamer = RegistryEntry(model_id=STREAMER, model_type="llm", service_type="sagemaker_realtime",
                             backend="sagemaker", endpoint_name="emd-streamer",
                             api_key_secret_name=api_key_secret_name(STREAMER, "dev"))  # fmt: skip
    for entry, key in ((tenant, TENANT_KEY), (streamer, ATTACKER_KEY)):
        ssm.put_parameter(Name=registry_parameter_name(entry.model_id, entry.model_tag),
                          Value=entry.model_dump_json(), Type="String", Overwrite=True)  # fmt: skip
        secrets.create_secret(Name=entry.api_key_secret_name, SecretString=key)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200, help="concurrent SageMaker streams")
    parser.add_argument("--never-readers", type=int, default=50, help="clients that never read")
    parser.add_argument("--multipart", type=int, default=4, help="concurrent multipart attackers")
    parser.add_argument(
        "--multipart-pace-ms", type=float, default=100.0,
        help="pause between two bodies of one multipart attacker (0: back to back, a bandwidth flood)",
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=50, help="SSE events per SageMaker stream")
    parser.add_argument("--event-ms", type=float, default=100.0, help="time between two events of a stream")
    parser.add_argument(
        "--phase", choices=("lockstep", "random"), default="lockstep",
        help="SageMaker streams' events on one beat (a burst every --event-ms), or each stream on its own",
    )  # fmt: skip
    parser.add_argument("--tenant-requests", type=int, default=300, help="tenant requests per measurement")
    parser.add_argument("--tenant-pace-ms", type=float, default=10.0, help="pause between tenant requests")
    parser.add_argument("--rounds", type=int, default=3, help="idle + attack measurements per attack")
    parser.add_argument(
        "--nice-others", type=int, default=0,
        help="niceness of the attackers, the SageMaker stand-in, its engine and moto (what runs outside the "
        "gateway's host in production), so that they take less of the shared cores from gateway and tenant",
    )  # fmt: skip
    parser.add_argument("--gateway-root", type=Path, default=ROOT, help="checkout whose gateway is measured")
    parser.add_argument("--gateway-env", action="append", default=[], help="KEY=VALUE for the gateway")
    parser.add_argument("--gateway-log", default=os.devnull, help="file for the gateway's output")
    parser.add_argument("--serve-engine", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-sagemaker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine-url", help=argparse.SUPPRESS)
    parser.add_argument("--attack", help=argparse.SUPPRESS)
    parser.add_argument("--gateway-url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_engine:
        app = engine_app(args.events, args.event_ms, args.phase)
        web.run_app(app, host="127.0.0.1", port=args.serve_engine, access_log=None, print=None)
        return
    if args.serve_sagemaker:
        from tests.integration.conftest import fake_sagemaker_runtime

        web.run_app(fake_sagemaker_runtime(args.engine_url), host="127.0.0.1", port=args.serve_sagemaker,
                    access_log=None, print=None)  # fmt: skip
        return
    if args.attack:
        asyncio.run(attack(args.attack, args.gateway_url, args.count, args.multipart_pace_ms))
        return

    procs: list[subprocess.Popen] = []
    me = [sys.executable, __file__, "--events", str(args.events), "--event-ms", str(args.event_ms),
          "--phase", args.phase]  # fmt: skip
    try:
        moto_port, engine_port, streamer_port, sm_port, gw_port = (free_port() for _ in range(5))
        moto_url, engine_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{engine_port}"
        streamer_url = f"http://127.0.0.1:{streamer_port}"
        sm_url, gateway = f"http://127.0.0.1:{sm_port}", f"http://127.0.0.1:{gw_port}"
        outside = ["nice", "-n", str(args.nice_others)] if args.nice_others else []
        moto = str(Path(sys.executable).parent / "moto_server")
        procs.append(start([*outside, moto, "-H", "127.0.0.1", "-p", str(moto_port)]))
        procs.append(start([*me, "--serve-engine", str(engine_port)]))  # the tenant's engine
        procs.append(start([*outside, *me, "--serve-engine", str(streamer_port)]))  # the SageMaker endpoint's
        procs.append(start([*outside, *me, "--serve-sagemaker", str(sm_port), "--engine-url", streamer_url]))
        wait(moto_url + "/moto-api/")
        for url in (engine_url, streamer_url, sm_url):
            wait(url + "/health")
        register(moto_url, engine_url)
        env = {**os.environ, "PYTHONPATH": str(args.gateway_root), "AWS_ENDPOINT_URL": moto_url,
               "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sm_url, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "EMD_GATEWAY_HOST": "127.0.0.1", "EMD_GATEWAY_PORT": str(gw_port),
               "EMD_KEY_CACHE_TTL": "1", **dict(kv.split("=", 1) for kv in args.gateway_env)}  # fmt: skip
        with open(args.gateway_log, "ab") as log:
            gateway_proc = subprocess.Popen([sys.executable, "-m", "serving.gateway"], cwd=args.gateway_root,
                                            env=env, stdout=log, stderr=log)  # fmt: skip
            procs.append(gateway_proc)
        wait(gateway + "/health")
        asyncio.run(tenant_latencies(gateway, 20, 0))  # warm-up: connections, registry, keys

        print(
            f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} nice-others={args.nice_others} "
            f"gateway={args.gateway_root}\ntenant: "
            f"{args.rounds} x {args.tenant_requests} sequential requests idle and as many under each attack, "
            f"one every {args.tenant_pace_ms:.0f} ms; SageMaker streams: {args.events} events, one every "
            f"{args.event_ms:.0f} ms, {args.phase}"
        )
        header = ("attack", "attackers", "idle p50", "idle p99", "p50 ms", "p99 ms", "p99/idle", "target",
                  "gw CPU")  # fmt: skip
        print("{:<18} {:>9} {:>8} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7}  tenant statuses".format(*header))
        verdicts = []
        for kind, count in (("sagemaker-streams", args.streams), ("never-readers", args.never_readers),
                            ("multipart", args.multipart)):  # fmt: skip
            if count <= 0:
                continue
            idle: list[float] = []
            during: list[float] = []
            statuses: Counter[int] = Counter()
            report: list[str] = []
            busy, elapsed = 0.0, 0.0  # the gateway's CPU time while the tenant is measured under attack
            for _ in range(args.rounds):  # idle and attack measured back to back, so the machine's own load
                lat, _ = asyncio.run(tenant_latencies(gateway, args.tenant_requests, args.tenant_pace_ms))
                idle += lat  # drifts alike for both
                attacker = subprocess.Popen(
                    [*outside, *me, "--attack", kind, "--gateway-url", gateway, "--count", str(count),
                     "--multipart-pace-ms", str(args.multipart_pace_ms)],
                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(ATTACK_SETTLE_SECONDS)  # the attack is under way before the tenant is measured
                cpu_before, started = cpu_seconds(gateway_proc.pid), time.monotonic()
                lat, got = asyncio.run(tenant_latencies(gateway, args.tenant_requests, args.tenant_pace_ms))
                cpu_after = cpu_seconds(gateway_proc.pid)
                if cpu_before is not None and cpu_after is not None:
                    busy, elapsed = busy + cpu_after - cpu_before, elapsed + time.monotonic() - started
                during += lat
                statuses.update(got)
                if attacker.poll() is not None:
                    raise SystemExit(f"the {kind} attacker stopped: {attacker.communicate()[1][-2000:]}")
                attacker.terminate()
                report = (attacker.communicate(timeout=10)[0] or "").strip().splitlines() or report
                time.sleep(1)
            idle_p99, p99 = percentile(idle, 0.99), percentile(during, 0.99)
            ratio = p99 / idle_p99
            met = ratio <= 2.0 and set(statuses) == {200}
            verdicts.append(met)
            verdict = "met" if met else "NOT met"
            cpu = f"{100 * busy / elapsed:.0f}%" if elapsed else "-"
            print(f"{kind:<18} {count:>9} {percentile(idle, 0.5):>8.2f} {idle_p99:>9.2f} "
                  f"{percentile(during, 0.5):>8.2f} {p99:>8.2f} {ratio:>9.2f} {verdict:>8} {cpu:>7}  "
                  f"{dict(statuses)}  attackers: {report[-1] if report else '-'}")  # fmt: skip
        print(f"\ntenant p99 within 2x of idle under every attack: {'met' if all(verdicts) else 'NOT met'}")
    finally:
        stop_all(procs)


if __name__ == "__main__":
    main()
