"""The pipeline executor of the AWS double (tests/support/aws_double.py): runs what CodePipeline and CodeBuild
would, inside the moto server process, against moto's own APIs.

For each StartPipelineExecution it walks the pipeline's stages as moto stored them (from the bootstrap
template): the S3 source action reads the bundle version named by sourceRevisions (and its revision summary
from the object's metadata, as CodePipeline does); a CodeBuild action runs the project's buildspec phases in a
shell on the unpacked bundle with the project's and the action's environment; a CloudFormation action
creates or updates the stack in moto from the build's template.json + parameters.json. The execution and each
action move through InProgress, then Succeeded, Failed or Stopped, as CodePipeline reports them.

StartBuild runs the same build runner (the bootstrap's gateway-image build), with its overrides.

The build environment is CodeBuild's except for two things, both at the process boundary: the install phase
is skipped (the test venv already has the build's requirements), and `docker` is the stand-in in
tests/support/fake_build_tools (no Docker daemon here): `docker push` records the image in moto's ECR.
Hugging Face variables (HF_ENDPOINT, …) reach the build from this process's environment.

Knobs (environment of the double): EMD_DOUBLE_STEP_SECONDS pauses between actions (default 0.3) so a client
sees each state; while the file named by EMD_DOUBLE_HOLD exists, executions wait before their Deploy stage
(or the stage named by EMD_DOUBLE_HOLD_BEFORE); while the file named by EMD_DOUBLE_HOLD_BUILDS exists, builds
started with StartBuild stay IN_PROGRESS before their first phase.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
FAKE_TOOLS = Path(__file__).resolve().parent / "fake_build_tools"
PHASES = ("PRE_BUILD", "BUILD", "POST_BUILD")
EXECUTOR_KEY_ID = "emd-double-executor"
_lock = threading.Lock()


def _client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=EXECUTOR_KEY_ID,  # the double's own calls are not counted as the client's
        aws_secret_access_key="testing",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _pause() -> None:
    time.sleep(float(os.environ.get("EMD_DOUBLE_STEP_SECONDS", "0.3")))


class Stopped(Exception):
    pass


# ---------------------------------------------------------------- builds (CodeBuild)


@dataclass
class Build:
    id: str
    project: str
    log_group: str
    status: str = "IN_PROGRESS"
    current_phase: str = "SUBMITTED"
    phases: list[dict[str, Any]] = field(default_factory=list)
    started: datetime = field(default_factory=_now)
    ended: datetime | None = None
    proc: subprocess.Popen[bytes] | None = None
    stop: bool = False
    source_location: str | None = None
    environment: list[dict[str, str]] = field(default_factory=list)
    exported: dict[str, str] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return self.id.split(":", 1)[1]

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "arn": f"arn:aws:codebuild:us-east-1:123456789012:build/{self.id}",
            "projectName": self.project,
            "buildStatus": self.status,
            "currentPhase": self.current_phase,
            "buildComplete": self.status != "IN_PROGRESS",
            "startTime": _iso(self.started),
            "endTime": _iso(self.ended),
            "phases": self.phases,
            "logs": {"groupName": self.log_group, "streamName": self.stream},
            "source": {"type": "S3", "location": self.source_location},
            "environment": {"environmentVariables": self.environment},
            "exportedEnvironmentVariables": [{"name": k, "value": v} for k, v in self.exported.items()],
        }


BUILDS: dict[str, Build] = {}


def _project(name: str) -> dict[str, Any]:
    from moto.codebuild.models import codebuild_backends

    backend = codebuild_backends["123456789012"][os.environ.get("AWS_DEFAULT_REGION", "us-east-1")]
    return backend.codebuild_projects[name].project_metadata


def _log_lines(build: Build, lines: list[str]) -> None:
    lines = [line for line in lines if line.strip()]  # CloudWatch Logs refuses empty messages
    if not lines:
        return
    logs = _client("logs")
    stamp = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=build.log_group,
        logStreamName=build.stream,
        logEvents=[{"timestamp": stamp, "message": line} for line in lines],
    )


def run_build(build: Build, source: Path, buildspec: dict[str, Any], env: dict[str, str]) -> bool:
    """The buildspec's phases as CodeBuild runs them (install skipped): a failed pre_build ends the build, a
    failed build still runs post_build with CODEBUILD_BUILD_SUCCEEDING=0. Output goes to CloudWatch Logs.
    Buildspec 0.2 runs every command in one shell environment: what a command exports of the buildspec's
    env.exported-variables reaches the next commands and, at the end, the build's exported variables."""
    logs = _client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=build.log_group)
    logs.create_log_stream(logGroupName=build.log_group, logStreamName=build.stream)
    variables = {k: str(v) for k, v in (buildspec.get("env", {}).get("variables") or {}).items()}
    exported_names = list(buildspec.get("env", {}).get("exported-variables") or [])
    exports = source / ".emd-double-exports"
    full_env = {
        **os.environ,
        **variables,
        **env,
        "PATH": f"{FAKE_TOOLS}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "CODEBUILD_SRC_DIR": str(source),
        "CODEBUILD_BUILD_ID": build.id,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
        # the build role's credentials, as CodeBuild provides them
        "AWS_ACCESS_KEY_ID": EXECUTOR_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "PYTHONPATH": str(source),
        "HF_HUB_ENABLE_HF_TRANSFER": "0",  # hf_transfer comes with the skipped install phase
    }
    succeeding = True
    for phase in PHASES:
        commands = (buildspec.get("phases", {}).get(phase.lower()) or {}).get("commands") or []
        if phase == "BUILD" and not succeeding:
            continue
        if phase == "POST_BUILD" and not succeeding and build.current_phase == "PRE_BUILD":
            break
        build.current_phase = phase
        record: dict[str, Any] = {"phaseType": phase, "startTime": _iso(_now())}
        build.phases.append(record)
        full_env["CODEBUILD_BUILD_SUCCEEDING"] = "1" if succeeding else "0"
        _log_lines(build, [f"[Container] Entering phase {phase}"])
        failed = None
        for command in commands:
            if build.stop:
                raise Stopped
            _log_lines(build, [f"[Container] Running command {command}"])
            capture = "".join(f'printf "%s=%s\\0" {n} "${{{n}-}}"; ' for n in exported_names)
            script = f'{command}\n__rc=$?; {{ {capture}}} > "{exports}"; exit $__rc' if capture else command
            build.proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=source,
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            out, _ = build.proc.communicate()
            _log_lines(build, out.decode(errors="replace").splitlines())
            if exports.exists():
                for item in exports.read_text().split("\0"):
                    name, _, value = item.partition("=")
                    if name and value:
                        full_env[name] = build.exported[name] = value
                exports.unlink()
            if build.stop:
                raise Stopped
            if build.proc.returncode != 0:
                failed = (
                    f"Error while executing command: {command}. Reason: exit status {build.proc.returncode}"
                )
                break
        record.update(endTime=_iso(_now()), phaseStatus="FAILED" if failed else "SUCCEEDED")
        if failed:
            record["contexts"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": failed}]
            succeeding = False
        _log_lines(build, [f"[Container] Phase complete: {phase} State: {record['phaseStatus']}"])
    build.ended = _now()
    build.current_phase = "COMPLETED"
    build.status = "SUCCEEDED" if succeeding else "FAILED"
    return succeeding


def _download_source(location: str, version: str | None, dest: Path) -> None:
    bucket, key = location.split("/", 1)
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    body = _client("s3").get_object(**args)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        zf.extractall(dest)


def _buildspec(project: dict[str, Any], source: Path, override: str | None) -> dict[str, Any]:
    text = override or project["source"].get("buildspec") or project["source"].get("buildSpec") or ""
    if text and "\n" not in text and (source / text).is_file():
        text = (source / text).read_text()
    return yaml.safe_load(text)


def _project_env(project: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: str(v["value"]) for v in project["environment"].get("environmentVariables", [])}


def new_build(project_name: str) -> Build:
    project = _project(project_name)
    group = (project.get("logsConfig") or {}).get("cloudWatchLogs", {}).get("groupName")
    build = Build(
        id=f"{project_name}:{uuid.uuid4()}",
        project=project_name,
        log_group=group or f"/aws/codebuild/{project_name}",
    )
    with _lock:
        BUILDS[build.id] = build
    return build


def start_build(params: dict[str, Any]) -> Build:
    """StartBuild with its overrides (source location/version, buildspec, environment variables)."""
    name = params["projectName"]
    project = _project(name)
    build = new_build(name)
    overrides = {v["name"]: str(v["value"]) for v in params.get("environmentVariablesOverride") or []}
    build.source_location = params.get("sourceLocationOverride") or project["source"]["location"]
    variables = {**_project_env(project), **overrides}
    build.environment = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()]

    def work() -> None:
        workdir = Path(tempfile.mkdtemp(prefix="emd-build-"))
        hold = os.environ.get("EMD_DOUBLE_HOLD_BUILDS")
        while hold and Path(hold).exists() and not build.stop:
            time.sleep(0.1)
        try:
            _download_source(build.source_location or "", params.get("sourceVersion"), workdir)
            spec = _buildspec(project, workdir, params.get("buildspecOverride"))
            run_build(build, workdir, spec, {**_project_env(project), **overrides})
        except Stopped:
            build.status, build.ended = "STOPPED", _now()
        except Exception as exc:  # a bug in the double or a bad source: a failed build, with the reason
            _log_lines(build, [f"[double] {type(exc).__name__}: {exc}"])
            build.status, build.ended = "FAULT", _now()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    threading.Thread(target=work, daemon=True).start()
    return build


# ---------------------------------------------------------------- pipeline executions (CodePipeline)


@dataclass
class ActionRun:
    execution_id: str
    stage: str
    action: dict[str, Any]
    status: str = "InProgress"
    started: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    external_id: str | None = None
    summary: str | None = None
    error: dict[str, str] | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_api(self, resolved: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.external_id:
            result["externalExecutionId"] = self.external_id
        if self.summary:
            result["externalExecutionSummary"] = self.summary
        if self.error:
            result["errorDetails"] = self.error
        return {
            "pipelineExecutionId": self.execution_id,
            "actionExecutionId": self.id,
            "pipelineVersion": 1,
            "stageName": self.stage,
            "actionName": self.action["name"],
            "startTime": _iso(self.started),
            "lastUpdateTime": _iso(self.updated),
            "status": self.status,
            "input": {
                "actionTypeId": self.action["actionTypeId"],
                "configuration": self.action.get("configuration", {}),
                "resolvedConfiguration": resolved,
            },
            "output": {"executionResult": result},
        }


@dataclass
class Run:
    pipeline: str
    execution: Any  # moto's PipelineExecution
    variables: dict[str, str]
    revisions: list[dict[str, Any]]
    actions: list[ActionRun] = field(default_factory=list)
    stop: bool = False
    build: Build | None = None

    def resolve(self, text: str) -> str:
        for name, value in self.variables.items():
            text = text.replace(f"#{{variables.{name}}}", value)
        return text

    def resolved(self, action: dict[str, Any]) -> dict[str, str]:
        return {k: self.resolve(str(v)) for k, v in action.get("configuration", {}).items()}


RUNS: dict[str, Run] = {}


def _set(run: Run, status: str, summary: str | None = None) -> None:
    run.execution.status = status
    run.execution.status_summary = summary
    run.execution.last_update_time = _now()


def _source_action(run: Run, action: dict[str, Any], ar: ActionRun, workdir: Path) -> None:
    config = run.resolved(action)
    revision = next((r for r in run.revisions if r.get("actionName") == action["name"]), None)
    version = revision["revisionValue"] if revision else None
    s3 = _client("s3")
    args: dict[str, Any] = {"Bucket": config["S3Bucket"], "Key": config["S3ObjectKey"]}
    if version:
        args["VersionId"] = version
    head = s3.head_object(**args)
    summary = head.get("Metadata", {}).get("codepipeline-artifact-revision-summary")
    run.execution.source_revisions = [
        {"actionName": action["name"], "revisionId": head.get("VersionId"), "revisionSummary": summary}
    ]
    ar.external_id, ar.summary = head.get("VersionId"), summary
    _download_source(f"{config['S3Bucket']}/{config['S3ObjectKey']}", version, workdir)


def _build_action(run: Run, action: dict[str, Any], ar: ActionRun, workdir: Path) -> None:
    config = run.resolved(action)
    project = _project(config["ProjectName"])
    build = new_build(config["ProjectName"])
    run.build, ar.external_id = build, build.id
    action_env = {v["name"]: v["value"] for v in json.loads(config.get("EnvironmentVariables", "[]"))}
    try:
        ok = run_build(
            build, workdir, _buildspec(project, workdir, None), {**_project_env(project), **action_env}
        )
    except Stopped:
        build.status, build.ended = "STOPPED", _now()
        raise
    except Exception as exc:  # a fault of the build environment, not of the build's commands
        _log_lines(build, [f"[double] {type(exc).__name__}: {exc}"])
        build.status, build.ended = "FAULT", _now()
        raise
    if not ok:
        failed = next((p for p in build.phases if p.get("phaseStatus") == "FAILED"), {})
        context = (failed.get("contexts") or [{}])[0].get("message", "")
        raise RuntimeError(
            f"Build terminated with state: FAILED. Phase: {failed.get('phaseType')}, Code: "
            f"COMMAND_EXECUTION_ERROR, Message: {context}"
        )


def _deploy_action(run: Run, action: dict[str, Any], ar: ActionRun, workdir: Path) -> None:
    config = run.resolved(action)
    stack = config["StackName"]
    template = (workdir / config["TemplatePath"].split("::", 1)[1]).read_text()
    tc = json.loads((workdir / config["TemplateConfiguration"].split("::", 1)[1]).read_text())
    cfn = _client("cloudformation")
    args = {
        "StackName": stack,
        "TemplateBody": template,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in tc.get("Parameters", {}).items()],
        "Tags": [{"Key": k, "Value": v} for k, v in tc.get("Tags", {}).items()],
        "Capabilities": config.get("Capabilities", "").split(","),
    }
    ar.external_id = stack
    try:
        existing = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError:
        existing = None
    try:
        if existing is None or existing == "REVIEW_IN_PROGRESS":
            cfn.create_stack(**args)
        else:
            cfn.update_stack(**args)
    except cfn.exceptions.ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return
        raise RuntimeError(f"CloudFormation refused stack {stack}: {exc}") from None
    while True:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(0.2)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"Stack {stack} is in state {status}")


ACTIONS = {"S3": _source_action, "CodeBuild": _build_action, "CloudFormation": _deploy_action}


def execute(run: Run) -> None:
    from moto.codepipeline.models import codepipeline_backends

    backend = codepipeline_backends["123456789012"][os.environ.get("AWS_DEFAULT_REGION", "us-east-1")]
    pipeline = backend.pipelines[run.pipeline].pipeline
    workdir = Path(tempfile.mkdtemp(prefix="emd-pipeline-"))
    try:
        _set(run, "InProgress")
        for stage in pipeline["stages"]:
            if stage["name"] == os.environ.get("EMD_DOUBLE_HOLD_BEFORE", "Deploy"):
                hold = os.environ.get("EMD_DOUBLE_HOLD")
                while hold and Path(hold).exists() and not run.stop:
                    time.sleep(0.1)
            for action in stage["actions"]:
                if run.stop:
                    raise Stopped
                ar = ActionRun(run.execution.pipeline_execution_id, stage["name"], action)
                run.actions.append(ar)
                _pause()
                try:
                    ACTIONS[action["actionTypeId"]["provider"]](run, action, ar, workdir)
                except Stopped:
                    ar.status, ar.updated = "Abandoned", _now()
                    raise
                except Exception as exc:
                    ar.status, ar.updated = "Failed", _now()
                    ar.error = {"code": "JobFailed", "message": str(exc)[:1500]}
                    _set(run, "Failed", f"{stage['name']} failed: {str(exc)[:200]}")
                    return
                ar.status, ar.updated = "Succeeded", _now()
        _set(run, "Succeeded")
    except Stopped:
        _set(run, "Stopped", "stopped by StopPipelineExecution")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def start_execution(
    pipeline: str, execution: Any, variables: list[dict[str, str]], revisions: list[dict[str, Any]]
) -> None:
    run = Run(pipeline, execution, {v["name"]: v["value"] for v in variables or []}, revisions or [])
    execution.source_revisions = []
    with _lock:
        RUNS[execution.pipeline_execution_id] = run
    _set(run, "InProgress")
    threading.Thread(target=execute, args=(run,), daemon=True).start()


# ---------------------------------------------------------------- moto patches


def install_executor() -> None:
    from moto.codebuild.responses import CodeBuildResponse
    from moto.codepipeline.exceptions import PipelineExecutionNotFoundException
    from moto.codepipeline.models import PipelineExecution
    from moto.codepipeline.responses import CodePipelineResponse
    from moto.core.responses import ActionResult

    summary = PipelineExecution.to_summary_dict

    def to_summary_dict(self: Any) -> dict[str, Any]:
        data = summary(self)
        data["sourceRevisions"] = getattr(self, "source_revisions", [])
        data["startTime"] = self.start_time.timestamp()
        data["lastUpdateTime"] = self.last_update_time.timestamp()
        return data

    PipelineExecution.to_summary_dict = to_summary_dict  # type: ignore[method-assign]

    def start_pipeline_execution(self: CodePipelineResponse) -> str:
        name = self._get_param("name")
        variables = self._get_param("variables") or []
        execution_id = self.codepipeline_backend.start_pipeline_execution(name, variables)
        execution = self.codepipeline_backend.pipelines[name].executions[execution_id]
        start_execution(name, execution, variables, self._get_param("sourceRevisions") or [])
        return json.dumps({"pipelineExecutionId": execution_id})

    def stop_pipeline_execution(self: CodePipelineResponse) -> str:
        execution_id = self._get_param("pipelineExecutionId")
        run = RUNS.get(execution_id)
        if run is None:
            raise PipelineExecutionNotFoundException(f"no execution {execution_id}")
        run.stop = True
        if run.build is not None:
            run.build.stop = True
            if run.build.proc is not None and run.build.proc.poll() is None:
                run.build.proc.terminate()
        _set(run, "Stopping")
        return json.dumps({"pipelineExecutionId": execution_id})

    def list_action_executions(self: CodePipelineResponse) -> str:
        wanted = (self._get_param("filter") or {}).get("pipelineExecutionId")
        runs = [r for r in RUNS.values() if r.pipeline == self._get_param("pipelineName")]
        details = [
            ar.to_api(run.resolved(ar.action))
            for run in runs
            if wanted in (None, run.execution.pipeline_execution_id)
            for ar in run.actions
        ]
        details.sort(key=lambda d: d["startTime"], reverse=True)
        return json.dumps({"actionExecutionDetails": details})

    CodePipelineResponse.start_pipeline_execution = start_pipeline_execution  # type: ignore[method-assign]
    CodePipelineResponse.stop_pipeline_execution = stop_pipeline_execution  # type: ignore[attr-defined]
    CodePipelineResponse.list_action_executions = list_action_executions  # type: ignore[attr-defined]

    def cb_start_build(self: CodeBuildResponse) -> ActionResult:
        params = json.loads(self.body)
        return ActionResult({"build": start_build(params).to_api()})

    def cb_batch_get_builds(self: CodeBuildResponse) -> ActionResult:
        ids = json.loads(self.body).get("ids", [])
        return ActionResult({"builds": [BUILDS[i].to_api() for i in ids if i in BUILDS]})

    def cb_list_builds_for_project(self: CodeBuildResponse) -> ActionResult:
        name = json.loads(self.body).get("projectName")
        mine = [b for b in BUILDS.values() if b.project == name]
        return ActionResult({"ids": [b.id for b in sorted(mine, key=lambda b: b.started, reverse=True)]})

    CodeBuildResponse.start_build = cb_start_build  # type: ignore[method-assign]
    CodeBuildResponse.list_builds_for_project = cb_list_builds_for_project  # type: ignore[method-assign]
    CodeBuildResponse.batch_get_builds = cb_batch_get_builds  # type: ignore[method-assign]
