"""EMD-Bootstrap: each property of the issue asserted on the synthesized template; cfn-lint, cdk-nag and
partition checks per region. Each variant is synthesized once (module-scoped fixtures)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk.assertions import Match, Template

from emd_stacks.bootstrap import (
    PARAM_BOUNDARY,
    PARAM_BUCKET,
    PARAM_ECR,
    PARAM_PIPELINE,
    PARAM_PROJECT,
    PARAM_PROJECT_LOGS,
    BootstrapStack,
)
from emd_stacks.context import AppConfig
from tests.unit.stack_fixtures import (
    ROOT,
    as_list,
    china_partition_literals,
    findings,
    make_app,
    policy_statements,
    resources_of,
    synth_stack,
    tags_of,
)

# pinned logical ids of stateful resources: renaming a construct would replace them (and lose the cache)
BUCKET_ID = "ArtifactsBucket88671897"
ACCESS_LOG_BUCKET_ID = "ArtifactsAccessLogs4D97777C"
REPOSITORY_ID = "EngineImagesRepositoryE814E323"


CN_MIRROR = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/hub"


def _synth(tmp_path_factory, region: str, context=None, **config):
    app = make_app(tmp_path_factory.mktemp(f"boot-{region}"), context)
    BootstrapStack(app, config=AppConfig(region=region, **config), env=cdk.Environment(region=region))
    return synth_stack(app, "EMD-Bootstrap")


@pytest.fixture(scope="module")
def us_east(tmp_path_factory):
    return _synth(tmp_path_factory, "us-east-1")


@pytest.fixture(scope="module")
def template(us_east):
    return Template.from_json(us_east.template)


@pytest.fixture(scope="module")
def china(tmp_path_factory):
    return _synth(tmp_path_factory, "cn-north-1", base_image_mirror=CN_MIRROR)


@pytest.fixture(scope="module")
def retained(tmp_path_factory):
    return _synth(
        tmp_path_factory,
        "us-west-2",
        retain_model_cache=True,
        codebuild_compute_type=cdk.aws_codebuild.ComputeType.X2_LARGE,
        codebuild_timeout_minutes=720,
    )


# ------------------------------------------------------------------ artifact bucket


def test_stateful_logical_ids_are_pinned(us_east):
    res = us_east.template["Resources"]
    assert res[BUCKET_ID]["Type"] == "AWS::S3::Bucket"
    assert res[ACCESS_LOG_BUCKET_ID]["Type"] == "AWS::S3::Bucket"
    assert res[REPOSITORY_ID]["Type"] == "AWS::ECR::Repository"


def test_artifact_bucket_is_encrypted_private_versioned_and_logged(us_east):
    props = us_east.template["Resources"][BUCKET_ID]["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": ACCESS_LOG_BUCKET_ID}


def test_every_bucket_enforces_ssl_and_blocks_public_access(us_east):
    buckets = resources_of(us_east.template, "AWS::S3::Bucket")
    policies = resources_of(us_east.template, "AWS::S3::BucketPolicy")
    assert len(buckets) == 2
    for logical_id, bucket in buckets.items():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert "BucketEncryption" in bucket["Properties"]
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logical_id})
        denies = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies, f"{logical_id} does not deny plain HTTP"


def test_artifact_bucket_lifecycle(us_east):
    rules = {
        r["Id"]: r
        for r in us_east.template["Resources"][BUCKET_ID]["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    pipeline_rule = rules["expire-pipeline-artifacts"]
    assert pipeline_rule["Prefix"] == "EMD-Pipeline/" and pipeline_rule["ExpirationInDays"] == 30
    # cached weights (models/) never expire while current
    assert all(r.get("Prefix") != "models/" for r in rules.values())


def test_bucket_is_destroyed_with_the_stack_by_default(us_east):
    res = us_east.template["Resources"]
    assert res[BUCKET_ID]["DeletionPolicy"] == "Delete"
    auto_delete = resources_of(us_east.template, "Custom::S3AutoDeleteObjects")
    assert {json.dumps(r["Properties"]["BucketName"]) for r in auto_delete.values()} >= {
        json.dumps({"Ref": BUCKET_ID})
    }


def test_retain_model_cache_keeps_the_bucket(retained):
    res = retained.template["Resources"]
    assert res[BUCKET_ID]["DeletionPolicy"] == "Retain"
    assert res[BUCKET_ID]["UpdateReplacePolicy"] == "Retain"
    assert not resources_of(retained.template, "Custom::S3AutoDeleteObjects")


# ------------------------------------------------------------------ ECR


def test_engine_repository(template, us_east):
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
            # ECR encrypts at rest with AES-256 by default; no KMS key the model roles would need grants on
            "EncryptionConfiguration": Match.absent(),
        },
    )
    policy = json.loads(
        us_east.template["Resources"][REPOSITORY_ID]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    )
    (rule,) = policy["rules"]
    assert rule["selection"] == {
        "tagStatus": "untagged",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    assert rule["action"] == {"type": "expire"}
    repository = us_east.template["Resources"][REPOSITORY_ID]
    assert repository["DeletionPolicy"] == "Delete"
    assert repository["Properties"]["EmptyOnDelete"] is True  # cdk destroy removes it with its images


# ------------------------------------------------------------------ CodeBuild


def test_build_project_environment(template, us_east):
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like(
                {
                    "PrivilegedMode": True,
                    "Image": "aws/codebuild/standard:7.0",
                    "ComputeType": "BUILD_GENERAL1_LARGE",
                    "Type": "LINUX_CONTAINER",
                }
            ),
            "TimeoutInMinutes": 480,
            "EncryptionKey": {"Fn::GetAtt": [Match.string_like_regexp("^BuildKey"), "Arn"]},
            "Source": Match.object_like({"Type": "S3"}),
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    (project,) = resources_of(us_east.template, "AWS::CodeBuild::Project").values()
    logs = project["Properties"]["LogsConfig"]["CloudWatchLogs"]
    assert logs["Status"] == "ENABLED"
    log_group = us_east.template["Resources"][logs["GroupName"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_build_project_variables_use_url_suffix_not_literals(us_east):
    (project,) = resources_of(us_east.template, "AWS::CodeBuild::Project").values()
    env = {v["Name"]: v for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert set(env) >= {
        "EMD_ARTIFACT_BUCKET",
        "EMD_ECR_REPOSITORY_URI",
        "EMD_URL_SUFFIX",
        "EMD_HF_TOKEN_SECRET",
    }
    assert env["EMD_URL_SUFFIX"]["Value"] == {"Ref": "AWS::URLSuffix"}
    assert env["EMD_HF_TOKEN_SECRET"]["Value"] == "emd/hf-token"  # a name, never a value
    assert all(v.get("Type", "PLAINTEXT") == "PLAINTEXT" for v in env.values())
    assert env["EMD_WEIGHTS_HUB"]["Value"] == "huggingface"


def test_buildspec_is_the_repository_file(us_east):
    (project,) = resources_of(us_east.template, "AWS::CodeBuild::Project").values()
    synthesized = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert synthesized == yaml.safe_load((ROOT / "serving/build/buildspec.yml").read_text())
    commands = [c for phase in synthesized["phases"].values() for c in phase["commands"]]
    assert "python3 -m serving.build.prepare weights" in commands
    assert "python3 -m serving.build.prepare image" in commands
    assert synthesized["artifacts"]["files"] == ["template.json", "parameters.json"]


def test_build_compute_and_timeout_are_configurable(retained):
    t = Template.from_json(retained.template)
    t.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like({"ComputeType": "BUILD_GENERAL1_2XLARGE"}),
            "TimeoutInMinutes": 720,
        },
    )


def test_hf_token_secret_is_readable_only_by_name(us_east):
    reads = [
        s
        for s in policy_statements(us_east.template)
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    resources = json.dumps([s["Resource"] for s in reads])
    assert ":secret:emd/hf-token-??????" in resources


def test_build_publishes_weights_folders_only_under_emd_weights(us_east):
    writes = [s for s in policy_statements(us_east.template) if "ssm:PutParameter" in as_list(s["Action"])]
    build = [s for s in writes if ":parameter/emd/weights/*" in json.dumps(s["Resource"])]
    assert len(build) == 1
    assert set(as_list(build[0]["Action"])) == {"ssm:PutParameter", "ssm:AddTagsToResource"}


# ------------------------------------------------------------------ pipeline


def _pipeline(template_json):
    (pipeline,) = resources_of(template_json, "AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


def test_pipeline_v2_parallel_with_variables(us_east):
    props = _pipeline(us_east.template)
    assert props["PipelineType"] == "V2"
    assert props["ExecutionMode"] == "PARALLEL"
    assert props["Name"] == "EMD-Pipeline"
    assert {v["Name"] for v in props["Variables"]} == {"deployment_id", "model_id", "model_tag", "stack_name"}
    assert [s["Name"] for s in props["Stages"]] == ["Source", "Build", "Deploy"]
    assert props["ArtifactStore"]["Location"] == {"Ref": BUCKET_ID}


def test_source_is_the_s3_bundle_without_polling(us_east):
    (action,) = _pipeline(us_east.template)["Stages"][0]["Actions"]
    assert action["Name"] == "Bundle"
    assert action["ActionTypeId"]["Provider"] == "S3"
    assert action["Configuration"]["S3ObjectKey"] == "pipeline/source.zip"
    assert action["Configuration"]["PollForSourceChanges"] is False


def test_build_action_passes_pipeline_variables(us_east):
    (action,) = _pipeline(us_east.template)["Stages"][1]["Actions"]
    env = json.loads(action["Configuration"]["EnvironmentVariables"])
    assert {e["name"]: e["value"] for e in env} == {
        "EMD_DEPLOYMENT_ID": "#{variables.deployment_id}",
        "EMD_MODEL_ID": "#{variables.model_id}",
        "EMD_MODEL_TAG": "#{variables.model_tag}",
        "EMD_STACK_NAME": "#{variables.stack_name}",
    }


def test_deploy_action_is_cloudformation_create_update_with_dedicated_role(us_east):
    (action,) = _pipeline(us_east.template)["Stages"][2]["Actions"]
    config = action["Configuration"]
    assert action["ActionTypeId"]["Provider"] == "CloudFormation"
    assert config["ActionMode"] == "CREATE_UPDATE"
    assert config["StackName"] == "#{variables.stack_name}"
    assert config["TemplatePath"] == "DeployInputs::template.json"
    assert config["TemplateConfiguration"] == "DeployInputs::parameters.json"
    assert config["Capabilities"] == "CAPABILITY_NAMED_IAM,CAPABILITY_AUTO_EXPAND"
    cfn_role_id = config["RoleArn"]["Fn::GetAtt"][0]
    role = us_east.template["Resources"][cfn_role_id]
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "cloudformation.amazonaws.com"}


def test_no_policy_refers_to_an_unresolved_pipeline_variable(us_east):
    assert "#{" not in json.dumps(policy_statements(us_east.template))


def _role_statements(template_json, role_logical_prefix):
    """Statements of the inline and managed policies attached to the role."""
    out = []
    for cfn_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for res in resources_of(template_json, cfn_type).values():
            roles = json.dumps(res["Properties"].get("Roles", []))
            if role_logical_prefix in roles:
                out += res["Properties"]["PolicyDocument"]["Statement"]
    return out


def _boundary(template_json):
    (boundary_id,) = [
        k
        for k, r in resources_of(template_json, "AWS::IAM::ManagedPolicy").items()
        if "Roles" not in r["Properties"]
    ]
    return boundary_id, template_json["Resources"][boundary_id]["Properties"]["PolicyDocument"]["Statement"]


def test_cloudformation_role_creates_roles_only_with_the_boundary(us_east):
    statements = _role_statements(us_east.template, "DeployCloudFormationRole")
    create = next(s for s in statements if "iam:CreateRole" in as_list(s["Action"]))
    boundary_id, _ = _boundary(us_east.template)
    assert create["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": {"Ref": boundary_id}}}
    assert "role/EMD-Model-*" in json.dumps(create["Resource"])
    for s in statements:
        if s["Effect"] == "Allow" and any(a.startswith("iam:") for a in as_list(s["Action"])):
            assert "EMD-Model-*" in json.dumps(s["Resource"]) or "aws-service-role" in json.dumps(
                s["Resource"]
            )
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Action"] == "iam:DeleteRolePermissionsBoundary"
    registry = next(s for s in statements if "ssm:PutParameter" in as_list(s["Action"]))
    assert "parameter/emd/models/*" in json.dumps(registry["Resource"])
    # no model template contains a Lambda function, a bucket or a secret
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.split(":")[0] in ("lambda", "s3", "secretsmanager")} - {
        "s3:GetObject",
        "s3:GetObjectVersion",
    }


def test_cloudformation_role_passes_roles_only_to_their_services(us_east, china):
    for synth in (us_east, china):
        statements = _role_statements(synth.template, "DeployCloudFormationRole")
        (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
        services = pass_role["Condition"]["StringEquals"]["iam:PassedToService"]
        assert {"sagemaker.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"} <= set(services)
        assert all("EMD-Model-*" in json.dumps(r) or "aws-service-role" in json.dumps(r)
                   for r in pass_role["Resource"])
        assert not any("iam:UpdateAssumeRolePolicy" in as_list(s["Action"]) for s in statements)
    china_pass = next(s for s in _role_statements(china.template, "DeployCloudFormationRole")
                  if "iam:PassRole" in as_list(s["Action"]))
    assert "ec2.amazonaws.com.cn" in china_pass["Condition"]["StringEquals"]["iam:PassedToService"]


def test_cloudformation_role_creates_only_network_isolated_sagemaker_models(us_east):
    statements = _role_statements(us_east.template, "DeployCloudFormationRole")
    (create,) = [s for s in statements if "sagemaker:CreateModel" in as_list(s["Action"])]
    assert create["Condition"]["Bool"] == {"sagemaker:NetworkIsolation": "true"}
    assert create["Condition"]["Null"] == {"aws:RequestTag/emd:model-id": "false"}


def test_deploy_action_role_only_touches_model_stacks(us_east):
    statements = _role_statements(us_east.template, "DeployDeployActionRole")
    cfn = [s for s in statements if any(a.startswith("cloudformation:") for a in as_list(s["Action"]))]
    assert cfn and all("stack/EMD-Model-*/*" in json.dumps(s["Resource"]) for s in cfn)
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("DeployCloudFormationRole")


def test_no_full_access_policies_no_star_actions_no_iam_star(us_east):
    text = json.dumps(us_east.template)
    assert "FullAccess" not in text
    assert "AdministratorAccess" not in text
    for s in policy_statements(us_east.template):
        for action in as_list(s["Action"]):
            assert action != "*", s
            assert not action.startswith("iam:*"), s
            assert action.split(":")[0] != "*", s


def test_permissions_boundary_is_published(us_east, template):
    boundary_id, boundary = _boundary(us_east.template)
    template.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": PARAM_BOUNDARY, "Type": "String", "Value": {"Ref": boundary_id}}
    )
    actions = {a for s in boundary for a in as_list(s["Action"])}
    assert not any(a.startswith("iam:") for a in actions)
    # no model runtime reads an API key or the hub token
    assert not any(a.startswith("secretsmanager:") for a in actions)


def test_boundary_s3_is_the_artifact_weights_and_async_keys(us_east):
    _, boundary = _boundary(us_east.template)
    s3_statements = [s for s in boundary if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    writes = [s for s in s3_statements if "s3:PutObject" in as_list(s["Action"])]
    assert [json.dumps(s["Resource"]) for s in writes] == ['"arn:aws:s3:::*/*emd-async/*"']
    for s in s3_statements:
        resources = json.dumps(s["Resource"])
        if s["Resource"] == "*" or "emd-async" in resources:
            # anything beyond the artifact bucket stays in this account, and is read-only outside emd-async/
            assert s["Condition"] == {"StringEquals": {"aws:ResourceAccount": {"Ref": "AWS::AccountId"}}}
            if s["Resource"] == "*":
                assert set(as_list(s["Action"])) == {"s3:GetObject", "s3:ListBucket"}
        else:
            assert BUCKET_ID in resources and "/models/*" in resources


def test_boundary_logs_only_to_model_log_groups(us_east):
    _, boundary = _boundary(us_east.template)
    (logs,) = [s for s in boundary if "logs:PutLogEvents" in as_list(s["Action"])]
    names = sorted(json.dumps(r).split("log-group:")[1].rstrip('"]}') for r in logs["Resource"])
    assert names == ["/aws/sagemaker/Endpoints/*", "/aws/sagemaker/InferenceComponents/*", "EMD-Model-*"]


def test_ssm_contract_parameters(us_east):
    params = {
        p["Properties"]["Name"]: p["Properties"]
        for p in resources_of(us_east.template, "AWS::SSM::Parameter").values()
    }
    expected = {PARAM_BUCKET, PARAM_ECR, PARAM_BOUNDARY, PARAM_PROJECT, PARAM_PROJECT_LOGS, PARAM_PIPELINE}
    assert set(params) == expected
    assert params[PARAM_BUCKET]["Value"] == {"Ref": BUCKET_ID}
    assert params[PARAM_ECR]["Value"] == {"Ref": REPOSITORY_ID}
    assert params[PARAM_PIPELINE]["Value"] == {"Ref": "DeployPipeline74E14360"}
    groups = resources_of(us_east.template, "AWS::Logs::LogGroup")
    (build_logs,) = [k for k in groups if k.startswith("BuildLogs")]
    assert params[PARAM_PROJECT_LOGS]["Value"] == {"Ref": build_logs}


def test_direct_deploys_build_within_the_boundary_and_the_build_reads_cdk_assets(us_east, china):
    """A directly deployed model stack's build custom resource (emd_constructs/model_build.py): its roles
    carry the model boundary, which allows starting and reading builds of this project only, reading its log,
    and the Provider framework's own calls between EMD-Model-* functions and state machines; the build role
    reads the build inputs from the CDK bootstrap's asset bucket of this account and region."""
    for synth in (us_east, china):
        t = synth.template
        _, statements = _boundary(t)
        by_sid = {s.get("Sid"): s for s in statements}
        (project,) = resources_of(t, "AWS::CodeBuild::Project")
        assert by_sid["DirectDeployBuild"]["Resource"] == {"Fn::GetAtt": [project, "Arn"]}
        assert set(by_sid["DirectDeployBuild"]["Action"]) == {
            "codebuild:StartBuild",
            "codebuild:BatchGetBuilds",
            "codebuild:ListBuildsForProject",
        }
        log = json.dumps(by_sid["DirectDeployBuildLog"]["Resource"])
        assert '{"Ref": "BuildLogs' in log and log.endswith(':log-stream:*"]]}')
        assert ":function:EMD-Model-*" in json.dumps(by_sid["DirectDeployProvider"]["Resource"])
        assert ":stateMachine:EMD-Model-*" in json.dumps(by_sid["DirectDeployWaiter"]["Resource"])
        build_role = _role_statements(t, "BuildProjectRole")
        reads = [s for s in build_role if "s3:GetObject" in as_list(s["Action"]) and "cdk-" in json.dumps(s)]
        (read,) = reads
        assert "cdk-*-assets-" in json.dumps(read["Resource"]) and "AWS::AccountId" in json.dumps(read)
        assert ("arn:aws-cn:s3:::cdk-" if synth is china else "arn:aws:s3:::cdk-") in json.dumps(read)


def test_everything_taggable_is_tagged(us_east):
    for cfn_type in (
        "AWS::S3::Bucket",
        "AWS::ECR::Repository",
        "AWS::CodeBuild::Project",
        "AWS::CodePipeline::Pipeline",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::SSM::Parameter",
        "AWS::Logs::LogGroup",
    ):
        found = resources_of(us_east.template, cfn_type)
        assert found, cfn_type
        for logical_id, res in found.items():
            tags = tags_of(res)
            assert tags.get("emd:model-id") == "_shared", (cfn_type, logical_id)
            assert tags.get("emd:tag") == "_shared" and tags.get("emd:component") == "bootstrap"


def test_every_log_group_has_retention(us_east):
    for res in resources_of(us_east.template, "AWS::Logs::LogGroup").values():
        assert res["Properties"]["RetentionInDays"] > 0


def test_china_uses_modelscope_and_a_pip_mirror(china):
    (project,) = resources_of(china.template, "AWS::CodeBuild::Project").values()
    env = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert env["EMD_WEIGHTS_HUB"] == "modelscope"
    assert env["PIP_INDEX_URL"].startswith("https://")
    assert '"arn:aws-cn:' in json.dumps(china.template) or "aws-cn" in json.dumps(china.template)


def test_base_image_mirror_is_published_for_the_build(china, us_east):
    params = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in resources_of(china.template, "AWS::SSM::Parameter").values()
    }
    assert params["/emd/bootstrap/base-image-mirror"] == CN_MIRROR
    us_params = json.dumps(resources_of(us_east.template, "AWS::SSM::Parameter"))
    assert "/emd/bootstrap/base-image-mirror" not in us_params  # no mirror unless bootstrap is given one
    (project,) = resources_of(china.template, "AWS::CodeBuild::Project").values()
    env = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert env["EMD_BASE_IMAGE_MIRROR_PARAM"] == "/emd/bootstrap/base-image-mirror"
    pulls = [
        st for st in policy_statements(china.template)
        if "ecr:BatchImportUpstreamImage" in as_list(st["Action"])
    ]  # fmt: skip
    assert len(pulls) == 1 and json.dumps(pulls[0]["Resource"]).count("repository/hub/*") == 1


def test_a_bad_base_image_mirror_is_refused(tmp_path_factory):
    from emd_stacks.context import parse_context
    from model_specs.errors import EmdUserError

    context = {"region": "cn-north-1", "base_image_mirror": "https://x"}
    with pytest.raises(EmdUserError, match="context base_image_mirror: 'https://x' is not a registry prefix"):
        parse_context(context.get, {})


# ------------------------------------------------------------------ template checks


@pytest.mark.parametrize(
    ("variant", "region"),
    [
        ("us_east", "us-east-1"),
        pytest.param("retained", "us-west-2", marks=pytest.mark.slow),
        pytest.param("china", "cn-north-1", marks=pytest.mark.slow),
    ],
)
def test_cdk_nag_and_cfn_lint_clean(variant: str, region: str, request) -> None:
    assert findings(request.getfixturevalue(variant), region) == []


@pytest.mark.slow
def test_china_template_has_no_global_partition_literals(china):
    assert china_partition_literals(china.template) == []
    # and the stripping above does not hide a real endpoint literal
    assert china_partition_literals(
        {"Resources": {"X": {"Properties": {"Url": "https://s3.amazonaws.com/x"}}}}
    )
