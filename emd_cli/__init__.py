"""The `emd` command (click). Commands that don't synthesize must not import aws_cdk
(see bench/cli_startup.py).

May import: model_specs, emd_stacks (lazily, inside commands that synthesize), boto3 through emd_cli.aws.
"""
