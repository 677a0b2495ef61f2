"""models.yaml: the two forms, defaults and grouping, and one test per kind of mistake, each checking its one
line: file, line, entry, field, message (with the CLI's did-you-mean)."""

from __future__ import annotations

import textwrap

import pytest

from model_specs.deployment import resolve_deployment
from model_specs.errors import EmdUserError
from model_specs.models_file import ModelsFileError, load_models_file

ENTRY = """\
  - model_id: Qwen2.5-0.5B-Instruct
    tag: prod
    instance: g4dn.xlarge
    service: sagemaker_realtime
"""


def load(text: str, **kw: object):  # type: ignore[no-untyped-def]
    return load_models_file("models.yaml", default_region="us-east-1", text=textwrap.dedent(text), **kw)


def problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(ModelsFileError) as info:
        load(text, **kw)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems)  # one line per problem
    return lines


def only_problem(text: str, **kw: object) -> str:
    found = problems(text, **kw)
    assert len(found) == 1, found
    return found[0]


def test_flat_form_defaults_and_the_same_deployment_as_the_cli():
    models = load("deployments:\n" + ENTRY)
    assert models.prune is True
    (entry,) = models.entries
    assert entry.deployment == resolve_deployment(
        model_id="Qwen2.5-0.5B-Instruct",
        instance_type="g4dn.xlarge",
        service_type="sagemaker_realtime",
        region="us-east-1",
        model_tag="prod",
    )
    assert entry.deployment.engine_type == "vllm"  # the model's default engine
    assert entry.line == 2
    assert [e.name for e in models.environments] == ["us-east-1"]


def test_flat_entries_are_grouped_by_account_and_region():
    text = (
        "prune: false\ndeployments:\n"
        + ENTRY
        + "  - {model_id: bge-m3, instance: g4dn.xlarge, service: ecs, region: us-west-2}\n"
        + '  - {model_id: bge-m3, instance: g4dn.xlarge, service: ec2, account: "222222222222", tag: x}\n'
    )
    models = load(text, default_account="111111111111")
    assert models.prune is False
    envs = {e.name: e for e in models.environments}
    assert list(envs) == ["us-east-1", "us-west-2", "us-east-1-222222222222"]
    assert envs["us-east-1"].target.account == "111111111111"
    assert [w.name for w in envs["us-west-2"].waves] == ["wave1"]
    assert envs["us-west-2"].waves[0].entries[0].deployment.region == "us-west-2"


def test_environments_keep_their_order_waves_and_targets():
    models = load(
        """\
        environments:
          staging:
            region: us-west-2
            waves:
              - deployments:
                  - {model_id: Qwen2.5-0.5B-Instruct, tag: stg, instance: g4dn.xlarge, service: ecs}
          prod:
            account: "222222222222"
            waves:
              - name: canary
                deployments:
                  - {model_id: Qwen2.5-0.5B-Instruct, tag: prod, instance: g4dn.xlarge, service: ecs}
              - deployments:
                  - {model_id: bge-m3, tag: prod, instance: g4dn.xlarge, service: ec2}
                  - {model_id: Qwen2.5-0.5B-Instruct, tag: prod2, instance: g4dn.xlarge, service: ecs}
        """
    )
    stages = [(env.stage_name(wave), env.target.label, len(wave.entries)) for env, wave in models.stages()]
    assert stages == [
        ("staging-wave1", "us-west-2", 1),
        ("prod-canary", "222222222222/us-east-1", 1),
        ("prod-wave2", "222222222222/us-east-1", 2),
    ]
    assert [t.label for t in models.targets] == ["us-west-2", "222222222222/us-east-1"]


def test_the_same_route_in_two_accounts_is_fine():
    text = """\
    environments:
      a: {waves: [{deployments: [{model_id: bge-m3, instance: g4dn.xlarge, service: ec2}]}]}
      b:
        account: "222222222222"
        waves: [{deployments: [{model_id: bge-m3, instance: g4dn.xlarge, service: ec2}]}]
    """
    assert len(load(text).entries) == 2


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("model_id", "Qwen2.5-0.5B-Instruc", "unknown model id 'Qwen2.5-0.5B-Instruc'. Did you mean 'Qw"),
        ("instance", "g4dn.xlarg", "instance: unknown instance type 'g4dn.xlarg'. Did you mean 'g4dn.xl"),
        ("engine", "vlm", "engine: unknown engine type 'vlm'. Did you mean 'vllm'"),
        ("service", "sagemaker_realtim", "unknown service type 'sagemaker_realtim'. Did you mean 'sa"),
        ("service", "local", "service: 'local' runs on one machine, not through a pipeline. Accepted: "),
        ("tag", "Prod_1", "tag: invalid model tag 'Prod_1': use 1-31 lowercase letters"),
        ("region", "us-east-9", "region: unknown region 'us-east-9'. Did you mean 'us-east-"),
        ("account", "'1234'", "account: '1234' is not a 12-digit AWS account id"),
    ],
)  # fmt: skip
def test_each_bad_value_names_file_line_entry_and_field(field: str, value: str, expected: str):
    fields = {
        "model_id": "Qwen2.5-0.5B-Instruct",
        "tag": "prod",
        "engine": "vllm",
        "instance": "g4dn.xlarge",
        "service": "ecs",
        "region": "us-east-1",
    }
    fields[field] = value
    if field == "account":
        fields["account"] = value
    lines = [f"    {k}: {v}" for k, v in fields.items()]
    text = "deployments:\n" + "\n".join(lines).replace("    model_id", "  - model_id", 1) + "\n"
    line = only_problem(text)
    number = 2 + list(fields).index(field)
    assert line.startswith(f"models.yaml:{number}: deployments[0] ")
    assert f": {expected}" in line


def test_a_bad_value_points_at_its_own_line():
    text = "deployments:\n" + ENTRY + "  - model_id: bge-m3\n    instance: g5.2xlarg\n    service: ecs\n"
    line = only_problem(text)
    assert line.startswith(
        "models.yaml:7: deployments[1] (bge-m3/dev): instance: unknown instance type 'g5.2xlarg'"
    )
    assert "Did you mean 'g5.2xlarge'" in line


def test_unknown_key_gets_did_you_mean():
    line = only_problem("deployments:\n" + ENTRY + "    instanc: g4dn.xlarge\n")
    assert line == (
        "models.yaml:6: deployments[0] (Qwen2.5-0.5B-Instruct/prod): instanc: unknown key. Did you mean "
        "'instance'? Accepted: model_id, tag, instance, engine, service, extra_params, account, region"
    )


def test_missing_required_field():
    line = only_problem("deployments:\n  - model_id: bge-m3\n    service: ecs\n")
    assert line == "models.yaml:2: deployments[0] (bge-m3/dev): instance: missing (required)"


def test_a_number_where_a_string_is_needed():
    line = only_problem("deployments:\n" + ENTRY.replace("tag: prod", "tag: 2025"))
    assert line == "models.yaml:3: deployments[0]: tag: must be a string (got 2025); quote it"


def test_extra_params_unknown_key_points_at_the_nested_line():
    text = "deployments:\n" + ENTRY + "    extra_params:\n      service_params:\n        min_capcity: 0\n"
    line = only_problem(text)
    assert line.startswith(
        "models.yaml:8: deployments[0] (Qwen2.5-0.5B-Instruct/prod): extra_params: unknown key "
        "'service_params.min_capcity'. Did you mean 'min_capacity'"
    )


def test_extra_params_bad_value():
    text = "deployments:\n" + ENTRY + "    extra_params: {service_params: {max_capacity: 0}}\n"
    line = only_problem(text)
    assert line.startswith("models.yaml:6: deployments[0] (Qwen2.5-0.5B-Instruct/prod): extra_params: ")
    assert "service_params.max_capacity: Input should be greater than or equal to 1 (got 0)" in line


def test_capacity_contradiction_is_reported_on_service_params():
    text = (
        "deployments:\n" + ENTRY + "    extra_params: {service_params: {min_capacity: 3, max_capacity: 2}}\n"
    )
    line = only_problem(text)
    assert (
        "extra_params.service_params: service_params.min_capacity (3) is greater than max_capacity (2)"
        in line
    )


def test_an_api_key_in_the_file_is_refused_without_showing_it():
    text = "deployments:\n" + ENTRY + "    extra_params: {service_params: {api_key: sk-very-secret}}\n"
    line = only_problem(text)
    assert (
        "extra_params.service_params.api_key: a key in models.yaml would be in the repository's history"
        in line
    )
    assert "sk-very-secret" not in line


def test_incompatible_combination_lists_what_fits():
    line = only_problem("deployments:\n" + ENTRY.replace("Qwen2.5-0.5B-Instruct", "Qwen2.5-72B-Instruct"))
    assert line.startswith(
        "models.yaml:4: deployments[0] (Qwen2.5-72B-Instruct/prod): instance: Qwen2.5-72B-Instruct"
    )
    assert "is refused" in line and "Smallest instances that fit" in line


def test_duplicate_route_names_both_lines():
    line = only_problem("deployments:\n" + ENTRY + ENTRY.replace("sagemaker_realtime", "ecs"))
    assert line.startswith("models.yaml:6: deployments[1] (Qwen2.5-0.5B-Instruct/prod): tag: route ")
    assert "already at line 2 (deployments[0]" in line


def test_duplicate_yaml_key():
    line = only_problem("deployments:\n" + ENTRY + "    tag: prod\n")
    assert line == (
        "models.yaml:6: deployments[0]: tag: duplicate key (first at line 3): YAML would keep only "
        "the last one"
    )


def test_invalid_yaml_gives_its_line():
    line = only_problem("deployments:\n  - model_id: [bge-m3\n    service: ecs\n")
    assert line.startswith("models.yaml:3: invalid YAML: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "models.yaml: empty: give 'deployments' or 'environments'"),
        ("prune: true\n", "models.yaml:1: give either 'deployments' (a list) or 'environments' (named, "),
        ("deployments: []\nenvironments: {}\n", "not both"),
        ("deployments: []\nprun: false\n", "models.yaml:2: prun: unknown key. Did you mean 'prune'?"),
        ("deployments: []\nprune: maybe\n", "models.yaml:2: prune: must be true or false (got 'maybe')"),
        ("deployments: {a: 1}\n", "models.yaml:1: deployments: must be a list of entries"),
    ],
)  # fmt: skip
def test_file_level_mistakes(text: str, expected: str):
    assert expected in only_problem(text)


def test_environment_mistakes_each_on_its_line():
    found = problems(
        """\
        environments:
          Prod_env:
            waves:
              - deployments: [{model_id: bge-m3, instance: g4dn.xlarge, service: ecs}]
          staging:
            region: us-west-2
            wave: []
          qa:
            waves:
              - name: one
                deployments: [{model_id: bge-m3, instance: g4dn.xlarge, service: ecs, region: us-west-2}]
              - name: one
                deployments: [{model_id: bge-m3, tag: b, instance: g4dn.xlarge, service: ecs}]
        """
    )
    assert found[0].startswith("models.yaml:2: environments.Prod_env: environment name 'Prod_env' must be")
    assert found[1].startswith("models.yaml:5: environments.staging: waves: needs a list of waves")
    assert found[2] == (
        "models.yaml:7: environments.staging: wave: unknown key. Did you mean 'waves'? "
        "Accepted: account, region, waves"
    )
    assert found[3].startswith(
        "models.yaml:11: environments.qa.waves[0].deployments[0] (bge-m3/dev): region: set account "
        "and region on the environment"
    )
    assert found[4] == "models.yaml:12: environments.qa.waves[1]: name: wave 'one' appears twice in qa"
    assert len(found) == 5


def test_every_problem_is_reported_at_once():
    text = (
        "deployments:\n"
        + ENTRY.replace("g4dn.xlarge", "g4dn.xlarg")
        + ENTRY.replace("prod", "b").replace("sagemaker_realtime", "sagemaker_realtim")
    )
    found = problems(text)
    assert [f.split(": ")[0] for f in found] == ["models.yaml:4", "models.yaml:9"]


def test_missing_file(tmp_path):
    with pytest.raises(EmdUserError) as info:
        load_models_file(tmp_path / "models.yaml", default_region="us-east-1")
    assert str(info.value) == f"{tmp_path / 'models.yaml'}: no such file (`emd gitops init` writes a starter)"


def test_regional_rules_apply_per_entry():
    text = "deployments:\n" + ENTRY.replace("g4dn.xlarge", "g5.xlarge") + "    region: cn-north-1\n"
    line = only_problem(text)
    assert line.startswith("models.yaml:4: deployments[0] (Qwen2.5-0.5B-Instruct/prod): instance: ")
    assert "SageMaker does not offer ml.g5.xlarge in cn-north-1" in line
    assert (
        len(load("deployments:\n" + ENTRY.replace("g4dn.xlarge", "g5.xlarge")).entries) == 1
    )  # fine in us-east-1
