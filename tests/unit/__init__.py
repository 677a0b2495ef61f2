"""Tests that run in-process: templates synthesized and asserted (cfn-lint, cdk-nag, checkov, IAM census),
the CLI through CliRunner, the gateway and adapter on loopback servers. May import every package and
tests.support."""
