"""Every log EMD's templates make is kept 30 days, never forever: across every kind of template (the shared
stacks as `npx cdk deploy` synthesizes them, with aws-cdk-lib's custom-resource Lambdas, and model stacks of
every service type). The GitOps stack's own check is in test_gitops_stack.py."""

from __future__ import annotations

from tests.unit.stack_fixtures import unbounded_logs


def test_no_log_is_kept_forever(all_templates) -> None:
    lambdas = 0
    for name, synthesized in all_templates.items():
        assert unbounded_logs(synthesized.template) == [], name
        lambdas += sum(
            r["Type"] == "AWS::Lambda::Function" for r in synthesized.template["Resources"].values()
        )
    assert lambdas > 0  # the custom-resource Lambdas (auto-delete, default security group) were checked
