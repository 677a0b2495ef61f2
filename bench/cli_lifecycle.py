"""Wall time and AWS calls of `emd deploy` (until its pipeline execution starts) and of `emd status` with
1, 10 and 50 AWS deployments, against the AWS double (moto server + pipeline executor: tests/support).

    python bench/cli_lifecycle.py [--runs 3]

Calls are counted by the double per AWS operation. `status` must make the same few calls whatever the number
of deployments (paginated reads only): the last column is the ratio to the 1-deployment row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.aws_double import AwsDouble  # noqa: E402

MODEL = "SmolLM2-135M-Instruct-GGUF"


def cli_env(double: AwsDouble, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EMD_"))}
    env.update(double.env(), XDG_STATE_HOME=str(state), JSII_NODE=str(ROOT / "node_modules/.bin/node"))
    return env


def bootstrap(double: AwsDouble, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "emd_cli", "bootstrap", "--no-gateway", "--yes"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)


def deploy_until_started(double: AwsDouble, env: dict[str, str], tag: str) -> tuple[float, Counter[str]]:
    """Seconds from `emd deploy` to 'Pipeline execution … started', and the AWS calls made until then."""
    double.calls(reset=True)
    args = [
        "deploy",
        "--model-id",
        MODEL,
        "-s",
        "sagemaker_realtime",
        "-i",
        "g4dn.xlarge",
        "--model-tag",
        tag,
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emd_cli", *args, "--skip-confirm"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Pipeline execution" in line and "started" in line:
            break
    else:
        raise RuntimeError(f"emd deploy ended without starting the pipeline (exit {proc.wait()})")
    elapsed = time.perf_counter() - start
    calls = double.calls()
    proc.send_signal(signal.SIGINT)  # detach: the execution stays (the double never runs it: see main)
    proc.wait(60)
    return elapsed, calls


def status(double: AwsDouble, env: dict[str, str]) -> tuple[float, Counter[str], int]:
    double.calls(reset=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "emd_cli", "status", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return elapsed, double.calls(), len(json.loads(done.stdout)["deployments"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emd-bench-") as tmp:
        # executions stop before their Build stage (the bench measures the CLI, not builds)
        double = AwsDouble(Path(tmp) / "double", extra_env={"EMD_DOUBLE_HOLD_BEFORE": "Build"}).start()
        double.hold(True)
        try:
            env = cli_env(double, Path(tmp) / "state")
            bootstrap(double, env)
            rows: list[tuple[str, float, Counter[str]]] = []
            present = 0
            for wanted in (1, 10, 50):
                double.seed_deployments(MODEL, wanted - present, present)
                present = wanted
                samples = [status(double, env) for _ in range(args.runs)]
                listed = samples[-1][2]
                rows.append(
                    (
                        f"status, {listed} deployment" + ("s" if listed > 1 else ""),
                        statistics.median(s[0] for s in samples),
                        samples[-1][1],
                    )
                )
            runs = [deploy_until_started(double, env, f"d{i}") for i in range(args.runs)]
            rows.insert(
                0, ("deploy, until the pipeline starts", statistics.median(r[0] for r in runs), runs[-1][1])
            )
        finally:
            double.stop()
    base = sum(rows[1][2].values())
    print(f"{'command':38} {'wall s':>7} {'AWS calls':>10} {'calls / 1st status':>19}")
    for name, seconds, calls in rows:
        ratio = f"{sum(calls.values()) / base:.2f}" if name.startswith("status") else "-"
        print(f"{name:38} {seconds:7.2f} {sum(calls.values()):10d} {ratio:>19}")
    for name, _, calls in rows:
        print(f"\n{name}: " + ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))


if __name__ == "__main__":
    main()
