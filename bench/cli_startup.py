"""Wall time of light `emd` commands (median of N runs) and the ratio to `python -c pass`, side by side.

    python bench/cli_startup.py [--runs 7]

Target (issue 8, "the first five minutes"): `emd list-supported-models` at most 3x `python -c pass`, i.e. a
quarter of EMD 0.9.47's 0.64 s, with today's catalogue and with one twice its size (a copy of every model
under another id), so that the speed does not rest on the catalogue staying small. Those runs read the
compiled catalogue from a warm cache; the first run after an install or a catalogue change (empty cache) is
shown too. `emd --help`, `emd list-supported-models` and `emd cost` must stay free of aws_cdk; for contrast
the last row times `import aws_cdk` alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EMD = [sys.executable, "-m", "emd_cli"]
TARGET_RATIO = 3.0
LIST = "emd list-supported-models"
DOUBLED = f"{LIST} (catalogue x2)"
TARGET_ROWS = (LIST, DOUBLED)


def median_seconds(
    cmd: list[str], runs: int, env: dict[str, str], cwd: Path, before: Callable[[], None] | None = None
) -> float:
    """Median wall time of `runs` runs after one untimed warm-up run; `before` runs ahead of each."""
    times = []
    for i in range(runs + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        subprocess.run(
            cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def doubled_catalogue(workdir: Path) -> Path:
    """A copy of model_specs whose catalogue holds every model twice (the copy's id ends in -x2). Running
    `python -m emd_cli` from the returned folder imports this model_specs instead of the real one."""
    from model_specs.catalogue import catalogue

    target = workdir / "doubled"
    shutil.copytree(
        ROOT / "model_specs", target / "model_specs", ignore=shutil.ignore_patterns("__pycache__")
    )
    copies = [{**m.model_dump(mode="json"), "id": f"{m.id}-x2"} for m in catalogue().models.values()]
    (target / "model_specs/data/models/zz_bench_copies.yaml").write_text(yaml.safe_dump(copies))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="emd-bench-"))
    cold_cache = workdir / "cold-cache"
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "JSII_NODE": str(ROOT / "node_modules/.bin/node"),
        "EMD_CACHE_DIR": str(workdir / "cache"),
    }
    for var in ("AWS_REGION", "PYTHONPATH"):
        env.pop(var, None)
    doubled = doubled_catalogue(workdir)
    cases: list[tuple[str, list[str], dict[str, str], Path, Callable[[], None] | None]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], env, ROOT, None),
        ("emd --help", [*EMD, "--help"], env, ROOT, None),
        ("emd --version", [*EMD, "--version"], env, ROOT, None),
        (LIST, [*EMD, "list-supported-models"], env, ROOT, None),
        (f"{LIST} --json", [*EMD, "list-supported-models", "--json"], env, ROOT, None),
        (DOUBLED, [*EMD, "list-supported-models"], env, doubled, None),
        (
            f"{LIST} (first run: empty cache)",
            [*EMD, "list-supported-models"],
            {**env, "EMD_CACHE_DIR": str(cold_cache)},
            ROOT,
            lambda: shutil.rmtree(cold_cache, ignore_errors=True),
        ),
        (
            "emd cost",
            [
                *EMD,
                "cost",
                "--model-id",
                "Qwen2.5-7B-Instruct",
                "-i",
                "g5.2xlarge",
                "-s",
                "sagemaker_realtime",
            ],
            env,
            ROOT,
            None,
        ),
        (
            "emd plan --no-synth",
            [
                *EMD,
                "plan",
                "--model-id",
                "Qwen2.5-7B-Instruct",
                "-i",
                "g5.2xlarge",
                "-s",
                "ec2",
                "--no-synth",
            ],
            env,
            ROOT,
            None,
        ),
        ("python -c 'import aws_cdk'", [sys.executable, "-c", "import aws_cdk"], env, ROOT, None),
    ]
    baseline = None
    ratios: dict[str, float] = {}
    print(f"{'command':52} {'median s':>9} {'x python -c pass':>17}")
    try:
        for name, cmd, case_env, cwd, before in cases:
            t = median_seconds(cmd, args.runs, case_env, cwd, before)
            baseline = baseline or t
            ratios[name] = t / baseline
            print(f"{name:52} {t:9.3f} {ratios[name]:17.1f}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    worst = max(ratios[n] for n in TARGET_ROWS)
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    print(
        f"\ntarget: {LIST} <= {TARGET_RATIO:g}x python -c pass (today's catalogue and twice its size): "
        f"worst {worst:.1f}x, {verdict}"
    )


if __name__ == "__main__":
    main()
