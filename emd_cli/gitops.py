"""`emd gitops`: a models.yaml in your repository is the desired state of your deployments.

    emd gitops init      write a starter models.yaml and deploy the EMD-GitOps pipeline (CDK Pipelines)
    emd gitops validate  check models.yaml with the rules of `emd deploy` (no AWS call)
    emd gitops plan      compare models.yaml with what is deployed: add, change, remove, untouched, cost
    emd gitops synth     what the pipeline's synth step runs: validate, synthesize, cfn-lint, cdk-nag

aws_cdk is imported only by init and synth; AWS calls go through the CLI's boto3 layer (emd_cli.aws), and its
errors reach the user as one line like every other command's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from emd_cli.options import default_region, json_option, region_option

MODELS_ARG = click.argument("models_path", metavar="[MODELS_FILE]", default="models.yaml", type=Path)
profile_option = click.option("--profile", metavar="PROFILE", help="AWS named profile.")
name_option = click.option(
    "--name", default="EMD-GitOps", show_default=True, help="Pipeline (and its stack) name."
)
SOURCE_HELP = (
    "github:<owner>/<repo> (with --connection-arn), codecommit:<repo>, or s3 (a bucket the stack creates: "
    "upload a zip of the repository as source.zip)."
)


@click.group("gitops", short_help="Deployments from a models.yaml in a repository (CDK Pipelines).")
def gitops() -> None:
    """A models.yaml in your repository is the desired state of your model deployments: the EMD-GitOps
    pipeline validates it, builds what changed and deploys it in waves, each followed by a smoke test, then
    removes what left the file.

    \b
    Examples:
      emd gitops init --source github:my-org/models --connection-arn arn:aws:codeconnections:…
      emd gitops validate
      emd gitops plan --region us-east-1
    """


# ---------------------------------------------------------------- validate


@gitops.command("validate", short_help="Check models.yaml (no AWS call).")
@MODELS_ARG
@region_option
@click.option("--account", metavar="ACCOUNT", help="The pipeline's account (for entries that name none).")
def validate(models_path: Path, region: str | None, account: str | None) -> None:
    """Check every entry of MODELS_FILE (default models.yaml) with the rules of `emd deploy`; print each
    problem on its own line (file:line: entry: field: message) and exit 2, or summarize the stages.

    \b
    Examples:
      emd gitops validate
      emd gitops validate deploy/models.yaml --region cn-north-1
    """
    from model_specs.models_file import load_models_file

    models = load_models_file(models_path, default_region=default_region(region), default_account=account)
    click.echo(
        f"{models_path}: valid, {len(models.entries)} deployment(s), prune {str(models.prune).lower()}"
    )
    for env, wave in models.stages():
        routes = ", ".join(e.route for e in wave.entries)
        click.echo(f"  stage {env.stage_name(wave)} ({env.target.label}): {routes}")


# ---------------------------------------------------------------- synth


@gitops.command("synth", short_help="Synthesize and check the pipeline and its model stacks.")
@MODELS_ARG
@click.option(
    "--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("cdk.out"), show_default=True
)
@click.option("--source", default="s3", show_default=True, help=SOURCE_HELP)
@click.option("--connection-arn", metavar="ARN", help="CodeConnections connection to GitHub.")
@click.option("--branch", default="main", show_default=True)
@region_option
@click.option("--account", metavar="ACCOUNT", help="The pipeline's account.")
@name_option
@click.option("--emd-requirement", default="emd", show_default=True, help="What the synth step pip-installs.")
@click.option("--checks/--no-checks", default=True, show_default=True, help="cdk-nag and cfn-lint.")
def synth(
    models_path: Path,
    outdir: Path,
    source: str,
    connection_arn: str | None,
    branch: str,
    region: str | None,
    account: str | None,
    name: str,
    emd_requirement: str,
    checks: bool,
) -> None:
    """Validate MODELS_FILE, synthesize the EMD-GitOps pipeline and one model stack per entry into --outdir,
    run cdk-nag and cfn-lint on every template (China templates: no aws-only literal); exit non-zero on any
    problem. In the pipeline the settings come from EMD_GITOPS_SETTINGS (what `emd gitops init` was given);
    otherwise from the options.

    \b
    Example:
      emd gitops synth --region us-east-1 --account 111111111111
    """
    from model_specs.gitops import SETTINGS_ENV, pipeline_settings, settings_from_json

    env = os.environ.get(SETTINGS_ENV)
    if env:
        settings = settings_from_json(env)
    else:
        settings = pipeline_settings(
            name=name,
            region=default_region(region),
            account=account,
            source=source,
            branch=branch,
            connection_arn=connection_arn,
            emd_install=emd_requirement,
        )
    from emd_stacks.gitops_synth import synth_gitops

    result = synth_gitops(models_path, settings, outdir, checks=checks)
    checked = "cdk-nag and cfn-lint clean" if checks else "not checked (--no-checks)"
    click.echo(
        f"{len(result.templates)} templates in {result.outdir} ({checked}, {result.seconds:.1f} s); "
        f"stages: {', '.join(s.name for s in result.plan.stages) or '(none)'}"
    )


# ---------------------------------------------------------------- init


@gitops.command("init", short_help="Write a starter models.yaml and deploy the EMD-GitOps pipeline.")
@click.option("--source", default="s3", show_default=True, help=SOURCE_HELP)
@click.option("--connection-arn", metavar="ARN", help="CodeConnections (CodeStar) connection to GitHub.")
@click.option("--branch", default="main", show_default=True, help="Branch the pipeline follows.")
@region_option
@profile_option
@name_option
@click.option(
    "--emd-requirement",
    metavar="SPEC",
    help="pip requirement the pipeline installs EMD from (e.g. 'emd @ git+https://…@v0.1.0'); default: a "
    "wheel of this EMD uploaded to the CDK staging bucket.",
)
@click.option(
    "--models",
    "models_path",
    type=Path,
    default=Path("models.yaml"),
    show_default=True,
    help="Written when missing (a valid, commented starter); kept when it exists.",
)
def init(
    source: str,
    connection_arn: str | None,
    branch: str,
    region: str | None,
    profile: str | None,
    name: str,
    emd_requirement: str | None,
    models_path: Path,
) -> None:
    """Write a starter models.yaml (when there is none) and deploy the EMD-GitOps stack: a self-mutating CDK
    Pipelines pipeline on your repository. Needs `cdk bootstrap` in this account and region, and EMD's
    shared stacks (emd bootstrap) in every account and region models.yaml deploys to.

    \b
    Examples:
      emd gitops init --source github:my-org/models \\
                      --connection-arn arn:aws:codeconnections:us-east-1:111111111111:connection/abc
      emd gitops init --source codecommit:models --region eu-west-1
      emd gitops init --source s3
    """
    from emd_cli.aws import gitops as aws_gitops
    from emd_cli.aws.session import AwsSession
    from emd_cli.gitops_starter import starter_models_yaml
    from model_specs.gitops import pipeline_settings
    from model_specs.models_file import load_models_file

    region = default_region(region)
    given = {
        "name": name,
        "region": region,
        "source": source,
        "branch": branch,
        "connection_arn": connection_arn,
    }
    pipeline_settings(
        **given, emd_install=emd_requirement or "checked-later"
    )  # bad flags: exit 2, no AWS call
    if not models_path.exists():
        models_path.write_text(
            starter_models_yaml(region=region, pipeline=name, source=source, branch=branch)
        )
        click.echo(f"wrote {models_path} (a starter: review it, then commit it to {source} {branch})")
    else:
        load_models_file(models_path, default_region=region)
        click.echo(f"kept {models_path}")
    aws = AwsSession(region, profile)
    account = aws.account_id
    models = load_models_file(models_path, default_region=region, default_account=account)
    for target_region in sorted(
        {region} | {t.region for t in models.targets if t.account in (None, account)}
    ):
        aws_gitops.require_cdk_bootstrap(aws.in_region(target_region))
    settings_given = pipeline_settings(
        **given, account=account, emd_install=emd_requirement or "checked-later"
    )
    if settings_given.source_kind == "codecommit":
        aws_gitops.require_codecommit_repository(aws, settings_given.codecommit_repo)
    emd_install = emd_requirement or _upload_wheel(aws)
    settings = pipeline_settings(**given, account=account, emd_install=emd_install)

    from emd_cli.aws.assembly import deploy_assembly
    from emd_cli.render import console
    from emd_stacks.gitops_synth import synth_gitops

    with tempfile.TemporaryDirectory(prefix="emd-gitops-") as tmp:
        result = synth_gitops(models_path, settings, Path(tmp) / "cdk.out", models=models)
        click.echo(f"synthesized and checked {len(result.templates)} templates in {result.seconds:.1f} s")
        deployed = deploy_assembly(aws, result.outdir, console())
    for stack in deployed:
        click.echo(f"{stack.name}: {stack.status.lower().replace('_', ' ')}")
    _next_steps(settings, next((s.outputs for s in deployed if s.name == name), {}))


def _upload_wheel(aws: Any) -> str:
    from emd_cli.aws.gitops import staging_bucket
    from emd_cli.aws.s3 import upload
    from emd_cli.gitops_wheel import build_wheel, content_hash

    with tempfile.TemporaryDirectory(prefix="emd-wheel-") as tmp:
        wheel = build_wheel(Path(tmp))
        key = f"emd-gitops/{content_hash(wheel)}/{wheel.name}"
        uri = upload(aws, staging_bucket(aws), key, wheel.read_bytes())
    click.echo(f"uploaded this EMD as {uri} (the pipeline's synth step installs it)")
    return uri


def _next_steps(settings: Any, outputs: dict[str, str]) -> None:
    click.echo("")
    if settings.source_kind == "github":
        click.echo(
            "Next: make sure the connection is AVAILABLE (console: Developer Tools > Settings > "
            "Connections), "
            f"then push models.yaml to {settings.github_repo} ({settings.branch})."
        )
    elif settings.source_kind == "codecommit":
        click.echo(
            f"Next: push models.yaml to the CodeCommit repository {settings.codecommit_repo} "
            f"({settings.branch})."
        )
    else:
        bucket = outputs.get("SourceBucketName", "<the SourceBucketName output>")
        click.echo(f"Next: zip -r source.zip models.yaml && aws s3 cp source.zip s3://{bucket}/source.zip")
    click.echo(
        "Every target account also needs `cdk bootstrap --trust <this account>` and `emd bootstrap` "
        "(README: GitOps)."
    )


# ---------------------------------------------------------------- plan


@gitops.command("plan", short_help="What the pipeline would add, change, remove (and the hourly cost).")
@MODELS_ARG
@region_option
@profile_option
@name_option
@json_option
def plan(models_path: Path, region: str | None, profile: str | None, name: str, as_json: bool) -> None:
    """Compare MODELS_FILE with the model stacks deployed in every account and region it names (and those
    the pipeline deployed before): to add, to change (which property, in place or replacing), to remove,
    untouched, with the hourly cost before and after. Changes nothing. Stacks not created by this pipeline are
    never removed.

    \b
    Examples:
      emd gitops plan
      emd gitops plan deploy/models.yaml --region eu-west-1 --json
    """
    from emd_cli.aws import gitops as aws_gitops
    from emd_cli.aws.session import AwsSession
    from model_specs.gitops_state import compare, desired_stacks
    from model_specs.models_file import load_models_file

    region = default_region(region)
    load_models_file(models_path, default_region=region)  # a bad file: exit 2 before any AWS call
    aws = AwsSession(region, profile)
    account = aws.account_id
    models = load_models_file(models_path, default_region=region, default_account=account)
    desired = desired_stacks(models.entries, account)
    targets = {(t.account or account, t.region) for t in models.targets}
    targets |= {(t.account or account, t.region) for t in aws_gitops.recorded_targets(aws, name)}
    deployed = []
    for target_account, target_region in sorted(targets):
        target = aws_gitops.plan_target(target_account, target_region, name)
        names = {d.stack_name for d in desired if (d.account, d.region) == (target_account, target_region)}
        deployed += aws_gitops.deployed_stacks(
            aws_gitops.target_session(aws, target), target_account, pipeline=name, desired_names=names
        )
    items = compare(desired, deployed, pipeline=name)
    if as_json:
        click.echo(json.dumps(plan_json(items), indent=2, default=str))
    else:
        _print_plan(items, name)


def plan_json(items: list[Any]) -> dict[str, Any]:
    from model_specs.gitops_state import total_hourly

    before, after = _costs(items, total_hourly)
    return {
        "items": [
            {
                "kind": i.kind,
                "route": i.route,
                "stack_name": i.stack_name,
                "account": i.account,
                "region": i.region,
                "adopted": i.adopted,
                "replacing": i.replacing,
                "changes": [
                    {"field": c.field, "before": c.before, "after": c.after, "replacing": c.replacing}
                    for c in i.changes
                ],
            }
            for i in items
        ],
        "hourly_before": {k: str(v) for k, v in before.items()},
        "hourly_after": {k: str(v) for k, v in after.items()},
    }


def _costs(items: list[Any], total: Any) -> tuple[Any, Any]:
    before = total([i.deployed for i in items if i.kind != "add"])
    after = total([i.desired for i in items if i.kind != "remove"])
    return before, after


def _print_plan(items: list[Any], pipeline: str) -> None:
    from rich.table import Table

    from emd_cli.render import console
    from model_specs.gitops_state import total_hourly

    out = console()
    table = Table(title=f"GitOps plan for {pipeline}")
    for column in ("", "route", "where", "stack", "what changes"):
        table.add_column(column, overflow="fold")
    symbols = {"add": "+ add", "change": "~ change", "remove": "- remove", "untouched": "= untouched"}
    order = {"add": 0, "change": 1, "remove": 2, "untouched": 3}
    for item in sorted(items, key=lambda i: (order[i.kind], i.route)):
        details = []
        if item.adopted:
            details.append("not created by this pipeline: it takes the stack over")
        for c in item.changes:
            how = f"replacing: {c.replacing}" if c.replacing else "in place"
            details.append(f"{c.field}: {c.before!r} -> {c.after!r} ({how})")
        if item.kind == "change" and not item.changes and not item.adopted:
            details.append("redeploys (the stack is in a failed state or has no recorded spec)")
        table.add_row(
            symbols[item.kind],
            item.route,
            f"{item.account}/{item.region}",
            item.stack_name,
            "\n".join(details),
        )
    out.print(table)
    counts = {k: sum(1 for i in items if i.kind == k) for k in order}
    before, after = _costs(items, total_hourly)
    out.print(
        f"{counts['add']} to add, {counts['change']} to change, {counts['remove']} to remove, "
        f"{counts['untouched']} untouched. Hourly cost (instances at minimum capacity): "
        f"{_money(before)} now -> {_money(after)} after."
    )


def _money(totals: dict[str, Any]) -> str:
    return " + ".join(f"{symbol}{amount:.2f}" for symbol, amount in sorted(totals.items())) or "0.00"
