"""The `emd` command (click): list, cost, plan, the lifecycle (deploy, status, invoke, destroy, keys) on its
two targets (targets/), bootstrap and uninstall, gitops. Commands that don't synthesize never import
aws_cdk.

May import: model_specs; emd_stacks lazily, inside commands that synthesize. boto3 and botocore only inside
emd_cli.aws, the one layer every AWS call goes through (tests/unit/test_layering.py).
"""
