"""`emd`: the click application. Command modules import the catalogue and rich lazily, so `emd --help` stays
cheap; nothing here imports aws_cdk or boto3 (plan imports emd_stacks only to synthesize)."""

from __future__ import annotations

import sys

import click

from emd_cli.bootstrap import bootstrap
from emd_cli.cost_cmd import cost
from emd_cli.deploy import deploy
from emd_cli.destroy import destroy
from emd_cli.errors import UserError
from emd_cli.invoke import invoke
from emd_cli.keys import keys
from emd_cli.list_models import list_supported_models
from emd_cli.plan import plan
from emd_cli.status import status
from emd_cli.uninstall import uninstall
from emd_cli.version import emd_version


class EmdGroup(click.Group):
    """Turns EmdUserError (a user mistake found in model_specs) into exit code 2 with its message, and
    TargetError (a deployment that failed after it started; already cleaned up) into exit code 1, and
    botocore errors into one line (emd_cli.aws.errors: 2 for the user's setup, 1 for AWS failures)."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from emd_cli.targets.base import TargetError
        from model_specs.errors import CatalogueError, EmdUserError

        try:
            return super().invoke(ctx)
        except EmdUserError as exc:
            raise UserError(str(exc)) from None
        except TargetError as exc:
            raise click.ClickException(str(exc)) from None
        except CatalogueError as exc:
            raise click.ClickException(f"the packaged catalogue is invalid (a bug in EMD): {exc}") from None
        except Exception as exc:
            from emd_cli.aws.errors import explain, is_aws_error

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
@click.version_option(emd_version(), "--version", "-V", prog_name="emd", message="%(prog)s %(version)s")
def cli() -> None:
    """EMD deploys open models to AWS behind an OpenAI-compatible, API-key-protected endpoint."""


cli.add_command(list_supported_models)
cli.add_command(cost)
cli.add_command(plan)
cli.add_command(deploy)
cli.add_command(status)
cli.add_command(invoke)
cli.add_command(destroy)
cli.add_command(keys)
cli.add_command(bootstrap)
cli.add_command(uninstall)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (for `python -m emd_cli` and tests)."""
    try:
        cli.main(args=argv, prog_name="emd", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
