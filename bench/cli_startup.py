"""Wall time of light `emd` commands (median of N runs) and the ratio to `python -c pass`.

    python bench/cli_startup.py [--runs 7]

`emd --help`, `emd list-supported-models` and `emd cost` must stay free of aws_cdk; for contrast the last
row times `import aws_cdk` alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMD = [sys.executable, "-m", "emd_cli"]
CASES: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("emd --help", [*EMD, "--help"]),
    ("emd --version", [*EMD, "--version"]),
    ("emd list-supported-models", [*EMD, "list-supported-models"]),
    ("emd list-supported-models --json", [*EMD, "list-supported-models", "--json"]),
    (
        "emd cost",
        [*EMD, "cost", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-s", "sagemaker_realtime"],
    ),
    (
        "emd plan --no-synth",
        [*EMD, "plan", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-s", "ec2", "--no-synth"],
    ),
    ("python -c 'import aws_cdk'", [sys.executable, "-c", "import aws_cdk"]),
]


def median_seconds(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "JSII_NODE": str(ROOT / "node_modules/.bin/node"),
    }
    env.pop("AWS_REGION", None)
    baseline = None
    print(f"{'command':40} {'median s':>9} {'x python -c pass':>17}")
    for name, cmd in CASES:
        t = median_seconds(cmd, args.runs, env)
        baseline = baseline or t
        print(f"{name:40} {t:9.3f} {t / baseline:17.1f}")


if __name__ == "__main__":
    main()
