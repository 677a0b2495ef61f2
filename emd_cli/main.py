"""`emd`: the click application. A command's module is imported only when that command runs (or for --help),
and command modules import the catalogue and rich lazily; nothing here imports aws_cdk or boto3 (plan imports
emd_stacks only to synthesize)."""

from __future__ import annotations

import importlib
import sys

import click

from emd_cli.errors import UserError

# command -> "module:attribute". Imported on first use, so one command's imports (the lifecycle's rich,
# secrets, openai …) never slow down another: `emd list-supported-models` loads only its own module.
COMMANDS = {
    "list-supported-models": "emd_cli.list_models:list_supported_models",
    "cost": "emd_cli.cost_cmd:cost",
    "plan": "emd_cli.plan:plan",
    "deploy": "emd_cli.deploy:deploy",
    "status": "emd_cli.status:status",
    "invoke": "emd_cli.invoke:invoke",
    "destroy": "emd_cli.destroy:destroy",
    "keys": "emd_cli.keys:keys",
    "bootstrap": "emd_cli.bootstrap:bootstrap",
    "uninstall": "emd_cli.uninstall:uninstall",
    "gitops": "emd_cli.gitops:gitops",
}


class EmdGroup(click.Group):
    """Turns EmdUserError (a user mistake found in model_specs) into exit code 2 with its message, and
    TargetError (a deployment that failed after it started; already cleaned up) into exit code 1, and
    botocore errors into one line (emd_cli.aws.errors: 2 for the user's setup, 1 for AWS failures)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from model_specs.errors import CatalogueError, EmdUserError

        try:
            return super().invoke(ctx)
        except EmdUserError as exc:
            raise UserError(str(exc)) from None
        except CatalogueError as exc:
            raise click.ClickException(f"the packaged catalogue is invalid (a bug in EMD): {exc}") from None
        except Exception as exc:
            from emd_cli.aws.errors import explain, is_aws_error
            from emd_cli.targets.base import TargetError  # the error path only: it imports secrets (OpenSSL)

            if isinstance(exc, TargetError):
                raise click.ClickException(str(exc)) from None
            if is_aws_error(exc):  # botocore/boto3: one line, never a traceback
                raise explain(exc).as_click() from None
            raise


@click.group(
    cls=EmdGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Examples:
  emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local
  emd invoke SmolLM2-135M-Instruct-GGUF/dev
  emd status
  emd destroy SmolLM2-135M-Instruct-GGUF/dev
  emd list-supported-models --type llm --region cn-north-1
  emd cost --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s sagemaker_realtime
  emd plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -e vllm -s sagemaker_realtime
""",
)
# the version is looked up only when asked: importlib.metadata costs every other command ~15 ms
@click.version_option(
    None, "--version", "-V", package_name="emd", prog_name="emd", message="%(prog)s %(version)s"
)
def cli() -> None:
    """EMD deploys open models to AWS behind an OpenAI-compatible, API-key-protected endpoint."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (for `python -m emd_cli` and tests)."""
    try:
        cli.main(args=argv, prog_name="emd", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
