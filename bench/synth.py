"""Time to synthesize 1, 10 and 50 model stacks in one CDK App, and the cost of each extra stack.

    .venv/bin/python bench/synth.py [--targets sagemaker_realtime,ecs] [--sizes 1,10,50]

Stacks cycle through the four targets (SageMaker real-time, async, ECS, EC2) with distinct model tags. The
first App in the process pays jsii's start-up; it is timed separately ("import + first stack") and excluded
from the per-stack figures. No cdk-nag/cfn-lint here: only construct + synth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ("sagemaker_realtime", "sagemaker_async", "ecs", "ec2")


def build_and_synth(n: int, targets: tuple[str, ...]) -> float:
    import aws_cdk as cdk

    from emd_stacks.model import ModelStack
    from model_specs.deployment import resolve_deployment

    deployments = [
        resolve_deployment(
            model_id="Qwen2.5-7B-Instruct",
            instance_type="g5.2xlarge",
            engine_type="vllm",
            service_type=targets[i % len(targets)],
            region="us-east-1",
            model_tag=f"b{i}",
        )
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        app = cdk.App(outdir=out)
        for d in deployments:
            ModelStack(app, d)
        app.synth()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--sizes", default="1,10,50")
    args = parser.parse_args()
    targets = tuple(args.targets.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]

    start = time.perf_counter()
    import emd_constructs  # noqa: F401, I001  (node 22 for jsii, before aws_cdk)
    import aws_cdk  # noqa: F401

    first = build_and_synth(1, targets)
    cold = time.perf_counter() - start
    print(f"import aws_cdk + first one-stack synth: {cold:.2f} s (of which synth {first:.2f} s)")

    results = {n: build_and_synth(n, targets) for n in sizes}
    for n, seconds in results.items():
        print(f"{n:>3} stacks in one App: {seconds:6.2f} s   ({seconds / n:.3f} s per stack)")
    lo, hi = min(sizes), max(sizes)
    if hi > lo:
        extra = (results[hi] - results[lo]) / (hi - lo)
        print(f"cost per extra stack ({lo}->{hi}): {extra:.3f} s")
        print(
            f"ratio {hi} stacks / {lo} stack: {results[hi] / results[lo]:.1f}x for {hi / lo:.0f}x the stacks"
        )
        separate = hi * cold
        together = cold - first + results[hi]
        print(
            f"{hi} separate processes (import + one stack each, {separate:.0f} s) vs one {hi}-stack App "
            f"({together:.1f} s): {separate / together:.1f}x"
        )


if __name__ == "__main__":
    main()
