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
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EMD = [sys.executable, "-m", "emd_cli"]
TARGET_RATIO = 3.0
LIST = "emd list-supported-models"
DOUBLED = f"{LIST} (catalogue x2)"
TARGET_ROWS = (LIST, DOUBLED)


@dataclass(frozen=True)
class Case:
    name: str
    cmd: list[str]
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)  # on top of the bench's environment
    before: Callable[[], None] | None = None  # runs ahead of each timed run


def emd(args: str) -> list[str]:
    return [*EMD, *args.split()]


def seconds(case: Case, env: dict[str, str]) -> float:
    if case.before is not None:
        case.before()
    start = time.perf_counter()
    subprocess.run(
        case.cmd, cwd=case.cwd, env={**env, **case.env}, check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def median_seconds(cases: list[Case], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time per case. The cases take turns (one run each per round, after one untimed warm-up
    round), so a change in the machine's load touches them all alike."""
    times: dict[str, list[float]] = {case.name: [] for case in cases}
    for round_ in range(runs + 1):
        for case in cases:
            t = seconds(case, env)
            if round_:
                times[case.name].append(t)
    return {name: statistics.median(ts) for name, ts in times.items()}


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
    cases = [
        Case("python -c pass", [sys.executable, "-c", "pass"]),
        Case("emd --help", emd("--help")),
        Case("emd --version", emd("--version")),
        Case(LIST, emd("list-supported-models")),
        Case(f"{LIST} --json", emd("list-supported-models --json")),
        Case(DOUBLED, emd("list-supported-models"), cwd=doubled),
        Case(
            f"{LIST} (first run: empty cache)",
            emd("list-supported-models"),
            env={"EMD_CACHE_DIR": str(cold_cache)},
            before=lambda: shutil.rmtree(cold_cache, ignore_errors=True),
        ),
        Case("emd cost", emd("cost --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s sagemaker_realtime")),
        Case(
            "emd plan --no-synth", emd("plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s ec2 --no-synth")
        ),
        Case("python -c 'import aws_cdk'", [sys.executable, "-c", "import aws_cdk"]),
    ]
    try:
        medians = median_seconds(cases, args.runs, env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    baseline = medians[cases[0].name]
    ratios = {name: t / baseline for name, t in medians.items()}
    print(f"{'command':52} {'median s':>9} {'x python -c pass':>17}")
    for name, t in medians.items():
        print(f"{name:52} {t:9.3f} {ratios[name]:17.1f}")
    worst = max(ratios[n] for n in TARGET_ROWS)
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    print(
        f"\ntarget: {LIST} <= {TARGET_RATIO:g}x python -c pass (today's catalogue and twice its size): "
        f"worst {worst:.1f}x, {verdict}"
    )


if __name__ == "__main__":
    main()
