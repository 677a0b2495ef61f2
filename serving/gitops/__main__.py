"""`python3 -m serving.gitops <step>`: what the EMD-GitOps pipeline's CodeBuild steps run.

    build --plan P --stage S    API key secrets, then the bootstrap's build of each deployment of stage S
    smoke --plan P --stage S    the smoke test of stage S (starts the target's smoke-test project)
    prune --plan P              delete this pipeline's model stacks that left models.yaml
    check --routes routes.json  inside the smoke-test project: /v1/models and one request per route

P is emd-gitops/plan.json in the cloud assembly of the synth step; the steps run from emd-gitops/src.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model_specs.gitops import GitOpsPlan

SRC = Path(__file__).resolve().parents[2]


def load_plan(path: Path) -> tuple[GitOpsPlan, Path]:
    """The plan and the cloud assembly root it sits in (<root>/emd-gitops/plan.json)."""
    return GitOpsPlan.model_validate_json(path.read_text()), path.resolve().parents[1]


def run(args: argparse.Namespace) -> None:
    import boto3

    from serving.gitops.builds import build_entries, log, read_bootstrap
    from serving.gitops.keys import ensure_api_keys
    from serving.gitops.prune import prune
    from serving.gitops.smoke import main_check, run_smoke_test
    from serving.gitops.targets import target_session

    if args.step == "check":
        main_check(Path(args.routes))
        return
    plan, assembly = load_plan(Path(args.plan))
    run_id = os.environ.get("CODEBUILD_BUILD_ID", "local")
    if args.step == "prune":
        prune(plan, boto3.Session(region_name=plan.pipeline_region), target_session)
        return
    stage = plan.stage(args.stage)
    session, _ = target_session(stage.target)
    if args.step == "build":
        created = ensure_api_keys(session.client("secretsmanager"), stage.entries, plan.pipeline)
        for name in created:
            log(
                f"API key secret {name} created (read it with: aws secretsmanager get-secret-value "
                f"--secret-id {name} --region {stage.target.region} --query SecretString --output text)"
            )
        build_entries(
            session, stage.target.region, stage.entries, pipeline=plan.pipeline, assembly=assembly, src=SRC,
            run_id=run_id,
        )  # fmt: skip
    else:
        boot = read_bootstrap(session.client("ssm"), stage.target.region)
        run_smoke_test(
            session, stage.name, stage.entries, pipeline=plan.pipeline, bucket=boot.bucket, src=SRC
        )


def main(argv: list[str] | None = None) -> int:
    from serving.gitops.builds import StepError
    from serving.gitops.smoke import SmokeFailure

    parser = argparse.ArgumentParser(prog="python3 -m serving.gitops", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["build", "smoke", "prune", "check"])
    parser.add_argument("--plan", help="emd-gitops/plan.json")
    parser.add_argument("--stage", help="stage name (build, smoke)")
    parser.add_argument("--routes", help="routes.json (check)")
    args = parser.parse_args(argv)
    needs = {"build": ("plan", "stage"), "smoke": ("plan", "stage"), "prune": ("plan",), "check": ("routes",)}
    missing = [f"--{n}" for n in needs[args.step] if not getattr(args, n)]
    if missing:
        parser.error(f"{args.step} needs {' '.join(missing)}")
    try:
        run(args)
    except (StepError, SmokeFailure, KeyError) as exc:
        print(f"[emd-gitops] error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
