"""`emd gitops synth`: models.yaml -> the EMD-GitOps cloud assembly, checked. What the pipeline's synth step
runs (and what `emd gitops init` deploys from).

1. models.yaml is validated (every problem, one line each);
2. the pipeline stack and one model stack per entry are synthesized in one App, with cdk-nag AwsSolutions;
3. cfn-lint runs on every template for its region, and China templates are checked for aws-only literals;
4. the assembly gets emd-gitops/plan.json and emd-gitops/src (serving/ and model_specs/ of this EMD), which
   the pipeline's later steps run.
Any problem raises GitOpsCheckError listing them all: the synth step fails and nothing deploys.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import emd_constructs  # noqa: F401  (sets JSII_NODE before aws_cdk is imported)
from emd_stacks.context import shipped_context
from model_specs.errors import EmdUserError
from model_specs.gitops import (
    PLAN_FILE,
    SOURCE_DIR,
    GitOpsPlan,
    PipelineSettings,
    PlanEntry,
    PlanStage,
    PlanTarget,
    target_role_name,
)
from model_specs.models_file import ModelsFile, Target, load_models_file
from model_specs.regions import region_info

SOURCE_PACKAGES = ("serving", "model_specs")


class GitOpsCheckError(EmdUserError):
    """cdk-nag, cfn-lint or partition findings: one per line."""


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    plan: GitOpsPlan
    templates: dict[str, dict[str, Any]]  # stack path in the assembly -> template
    seconds: float


def synth_gitops(
    models_path: str | Path,
    settings: PipelineSettings,
    outdir: str | Path,
    *,
    checks: bool = True,
    models: ModelsFile | None = None,
) -> SynthResult:
    import aws_cdk as cdk

    from emd_stacks.gitops import build_gitops_app
    from emd_stacks.template_checks import nag_violations, templates_of

    started = time.perf_counter()
    outdir = Path(outdir).resolve()
    if outdir.exists():
        shutil.rmtree(outdir)
    models = models or load_models_file(
        models_path, default_region=settings.region, default_account=settings.account
    )
    app = cdk.App(outdir=str(outdir), context=shipped_context())
    stack = build_gitops_app(app, settings=settings, models=models)
    findings: list[str] = []
    if checks:
        findings += [f"cdk-nag: {f}" for f in nag_violations(app)]
    else:
        app.synth()
    templates = templates_of(outdir)
    if checks:
        findings += template_findings(templates, _template_regions(outdir, settings.region))
    if findings:
        raise GitOpsCheckError(
            f"{len(findings)} problem(s) in the synthesized templates:\n" + "\n".join(findings)
        )
    plan = build_plan(settings, models, stack, outdir)
    (outdir / PLAN_FILE).parent.mkdir(parents=True, exist_ok=True)
    (outdir / PLAN_FILE).write_text(plan.model_dump_json(indent=2))
    copy_sources(outdir / SOURCE_DIR)
    return SynthResult(outdir, plan, templates, time.perf_counter() - started)


def template_findings(templates: dict[str, dict[str, Any]], regions: dict[str, str]) -> list[str]:
    from emd_stacks.template_checks import cfn_lint_findings, china_partition_literals

    out = []
    for path, template in templates.items():
        region = regions.get(path, "us-east-1")
        out += [f"cfn-lint {path} ({region}): {f}" for f in cfn_lint_findings(template, [region])]
        if region_info(region).is_china:
            out += [f"aws-cn {path}: {literal}" for literal in china_partition_literals(template)]
    return out


def _template_regions(outdir: Path, default: str) -> dict[str, str]:
    """Each stack's region from the assembly manifests ('aws://account/region')."""
    out: dict[str, str] = {}

    def walk(directory: Path, prefix: str) -> None:
        manifest = json.loads((directory / "manifest.json").read_text())
        for name, artifact in manifest.get("artifacts", {}).items():
            if artifact.get("type") == "aws:cloudformation:stack":
                region = artifact.get("environment", "").rsplit("/", 1)[-1]
                stack_name = artifact["properties"].get("stackName", name)
                out[prefix + stack_name] = region if region and region != "unknown-region" else default
            elif artifact.get("type") == "cdk:cloud-assembly":
                walk(directory / artifact["properties"]["directoryName"], f"{prefix}{name}/")

    walk(outdir, "")
    return out


def build_plan(settings: PipelineSettings, models: ModelsFile, stack: Any, outdir: Path) -> GitOpsPlan:
    def target(t: Target) -> PlanTarget:
        return PlanTarget(
            account=t.account, region=t.region, role_name=target_role_name(settings.name, t.region)
        )

    stages = []
    for deployed in stack.stages:
        env, wave, stage = deployed.environment, deployed.wave, deployed.stage
        entries = []
        for entry, model_stack in zip(wave.entries, stage.stacks, strict=True):
            d = entry.deployment
            template = Path(stage.outdir) / model_stack.template_file
            entries.append(
                PlanEntry(
                    route=d.route,
                    stack_name=d.stack_name,
                    model_type=d.model.type.value,
                    api_key_secret_name=d.api_key_secret_name,
                    deployment=d.to_public_dict(),
                    template=template.relative_to(outdir.resolve()).as_posix(),
                )
            )
        stages.append(
            PlanStage(
                name=env.stage_name(wave), environment=env.name, wave=wave.name, target=target(env.target),
                entries=entries,
            )
        )  # fmt: skip
    return GitOpsPlan(
        pipeline=settings.name,
        pipeline_account=settings.account,
        pipeline_region=settings.region,
        prune=models.prune,
        targets=[target(t) for t in models.targets],
        stages=stages,
    )


def copy_sources(dest: Path) -> None:
    """serving/ and model_specs/ of the running EMD (installed or source tree), without byte code."""
    for package in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {package} not found")
        src = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(
            src, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
        )
