"""The `emd` command (click): list, cost, plan, the lifecycle (deploy, status, invoke, destroy, keys) on its
two targets (targets/), bootstrap and uninstall, gitops. Commands that don't synthesize never import
aws_cdk.

May import: model_specs; emd_stacks lazily, inside commands that synthesize. AWS calls go through emd_cli.aws
(emd_cli.gitops_aws for `emd gitops`, until it moves onto that layer).
"""
