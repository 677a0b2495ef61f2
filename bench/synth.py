"""Time to synthesize 1, 10 and 50 model stacks in one CDK App, and the cost of each extra stack; then the
GitOps case: the same 20 deployments as a models.yaml of 2 environments (EMD-GitOps pipeline, its target
stacks and 20 model stacks in one App) against 20 single stacks, timed in turns in the same run.

    .venv/bin/python bench/synth.py [--targets sagemaker_realtime,ecs] [--sizes 1,10,50] [--gitops 20]

Stacks cycle through the four targets (SageMaker real-time, async, ECS, EC2) with distinct model tags. The
first App in the process pays jsii's start-up; it is timed separately ("import + first stack") and excluded
from the per-stack figures. No cdk-nag/cfn-lint here: only construct + synth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ("sagemaker_realtime", "sagemaker_async", "ecs", "ec2")
ACCOUNT = "111111111111"


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


def gitops_models(n: int, targets: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The same n deployments as build_and_synth, half in 'staging' (the pipeline's account, us-east-1) and
    half in 'prod' (another account, us-west-2), each environment in two waves."""
    from model_specs.models_file import load_models_file

    def entry(i: int) -> str:
        return (
            f"          - {{model_id: Qwen2.5-7B-Instruct, tag: b{i}, instance: g5.2xlarge, engine: vllm, "
            f"service: {targets[i % len(targets)]}}}\n"
        )

    def waves(lo: int, hi: int) -> str:
        mid = (lo + hi) // 2
        return "".join(
            "      - deployments:\n" + "".join(entry(i) for i in range(a, b))
            for a, b in ((lo, mid), (mid, hi))
        )

    half = n // 2
    text = (
        "environments:\n  staging:\n    waves:\n"
        + waves(0, half)
        + '  prod:\n    account: "222222222222"\n    region: us-west-2\n    waves:\n'
        + waves(half, n)
    )
    return load_models_file(
        "bench-models.yaml", default_region="us-east-1", default_account=ACCOUNT, text=text
    )


def gitops_synth(models) -> float:  # type: ignore[no-untyped-def]
    import aws_cdk as cdk

    from emd_stacks.gitops import build_gitops_app
    from model_specs.gitops import pipeline_settings

    settings = pipeline_settings(region="us-east-1", account=ACCOUNT, source="s3", emd_install="emd")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        app = cdk.App(outdir=out)
        build_gitops_app(app, settings=settings, models=models)
        app.synth()
        return time.perf_counter() - start


def gitops_case(n: int, targets: tuple[str, ...], repeat: int) -> None:
    models = gitops_models(n, targets)
    single, gitops = [], []
    for _ in range(repeat):  # in turns, so a change in machine load touches both alike
        single.append(build_and_synth(n, targets))
        gitops.append(gitops_synth(models))
    s, g = statistics.median(single), statistics.median(gitops)
    stacks = len(models.entries)
    print(f"{n} single model stacks in one App: {s:6.2f} s (median of {repeat})")
    waves, targets_n = sum(1 for _ in models.stages()), len(models.targets)
    print(
        f"GitOps, {stacks} entries in {len(models.environments)} environments ({waves} waves; pipeline + "
        f"{targets_n} target stacks + {stacks} model stacks): {g:6.2f} s (median of {repeat})"
    )
    print(f"ratio GitOps / single stacks: {g / s:.2f}x (target: under 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--gitops", type=int, default=20, help="entries of the GitOps case (0: skip it)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side of the GitOps case")
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
    if args.gitops:
        gitops_case(args.gitops, targets, args.repeat)


if __name__ == "__main__":
    main()
