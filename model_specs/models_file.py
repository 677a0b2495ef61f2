"""models.yaml: the desired state of the deployments a GitOps pipeline keeps (EMD-GitOps, `emd gitops …`).

    prune: true                 # delete model stacks this pipeline created that left the file (default)
    deployments:                # form 1: a list; optional account and region per entry
      - model_id: Qwen2.5-7B-Instruct
        tag: prod               # default dev; clients call "<model_id>/<tag>"
        instance: g5.2xlarge
        engine: vllm            # default: the model's default engine
        service: sagemaker_realtime
        extra_params: {service_params: {max_capacity: 2}}
    environments:               # form 2: named environments deployed in order, each in waves
      staging:
        account: "111111111111" # default: the pipeline's account
        region: us-west-2       # default: the pipeline's region
        waves:
          - deployments: [...]  # wave1, then its smoke test, then the next wave
          - name: rest
            deployments: [...]

Each entry is checked with the CLI's rules (resolve_deployment). Every problem is reported, one line each:
'<file>:<line>: <entry>: <field>: <message>' (ModelsFileError); YAML node marks give the lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from model_specs.catalogue import Catalogue, catalogue
from model_specs.deployment import Deployment, resolve_deployment, validate_tag
from model_specs.errors import EmdUserError, did_you_mean
from model_specs.extra_params import ExtraParams, describe_error
from model_specs.regions import region_info
from model_specs.registry import DEFAULT_TAG, api_key_secret_name
from model_specs.schema import ServiceType

TOP_KEYS = ("prune", "deployments", "environments")
ENTRY_KEYS = ("model_id", "tag", "instance", "engine", "service", "extra_params", "account", "region")
REQUIRED_ENTRY_KEYS = ("model_id", "instance", "service")
ENVIRONMENT_KEYS = ("account", "region", "waves")
WAVE_KEYS = ("name", "deployments")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$")
NAME_MAX = 40
ACCOUNT = re.compile(r"^\d{12}$")

PathPart = str | int


@dataclass(frozen=True)
class Problem:
    line: int  # 0: the file as a whole
    where: str  # the entry (or section) the problem is in
    field: str | None
    message: str

    def render(self, filename: str) -> str:
        head = f"{filename}:{self.line}" if self.line else filename
        parts = [head, self.where, self.field, self.message]
        return ": ".join(p for p in parts if p)


class ModelsFileError(EmdUserError):
    """An invalid models.yaml: str() is one line per problem."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(p.render(filename) for p in self.problems))


@dataclass(frozen=True)
class Target:
    """Where a stage deploys: an account (None: the pipeline's own) and a region."""

    account: str | None
    region: str

    @property
    def label(self) -> str:
        return f"{self.account}/{self.region}" if self.account else self.region


@dataclass(frozen=True)
class Entry:
    deployment: Deployment
    target: Target
    line: int
    where: str

    @property
    def route(self) -> str:
        return self.deployment.route


@dataclass(frozen=True)
class Wave:
    name: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Environment:
    name: str
    target: Target
    waves: tuple[Wave, ...]

    def stage_name(self, wave: Wave) -> str:
        """The pipeline stage that deploys one wave of this environment."""
        return f"{self.name}-{wave.name}"


@dataclass(frozen=True)
class ModelsFile:
    path: str
    prune: bool
    environments: tuple[Environment, ...]

    @property
    def entries(self) -> list[Entry]:
        return [e for env in self.environments for wave in env.waves for e in wave.entries]

    @property
    def targets(self) -> list[Target]:
        seen: dict[Target, None] = {}
        for env in self.environments:
            seen.setdefault(env.target)
        return list(seen)

    def stages(self) -> Iterator[tuple[Environment, Wave]]:
        for env in self.environments:
            for wave in env.waves:
                yield env, wave


# ---------------------------------------------------------------- YAML with line numbers


def _pairs(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def node_line(root: yaml.Node, path: tuple[PathPart, ...]) -> int:
    """1-based line of the deepest node on `path` (a mapping key's own line for the last key found)."""
    node, line = root, root.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicate_keys(node: yaml.Node, path: tuple[PathPart, ...] = ()) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.value in first:
                yield Problem(
                    line,
                    _path_text(path),
                    key.value,
                    f"duplicate key (first at line {first[key.value]}): YAML would keep only the last one",
                )
            elif isinstance(key, yaml.ScalarNode):
                first[key.value] = line
            yield from _duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i))


def _path_text(path: tuple[PathPart, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# ---------------------------------------------------------------- the loader


@dataclass
class _Loader:
    filename: str
    root: yaml.Node
    default_region: str
    default_account: str | None
    cat: Catalogue
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: tuple[PathPart, ...], where: str, fld: str | None, message: str) -> None:
        self.problems.append(Problem(node_line(self.root, path), where, fld, message))

    def unknown_keys(
        self, raw: dict[Any, Any], accepted: tuple[str, ...], path: tuple[PathPart, ...], where: str
    ) -> None:
        for key in raw:
            if key not in accepted:
                hint = did_you_mean(str(key), accepted)
                self.problem(
                    (*path, key), where, str(key), f"unknown key.{hint} Accepted: {', '.join(accepted)}"
                )

    # -- top level

    def load(self, data: Any) -> tuple[bool, tuple[Environment, ...]]:
        if not isinstance(data, dict):
            self.problem(
                (), "", None, "expected a mapping with 'deployments' or 'environments' (and 'prune')"
            )
            return True, ()
        self.unknown_keys(data, TOP_KEYS, (), "")
        prune = data.get("prune", True)
        if not isinstance(prune, bool):
            self.problem(("prune",), "", "prune", f"must be true or false (got {prune!r})")
        has_flat, has_envs = "deployments" in data, "environments" in data
        if has_flat == has_envs:
            self.problem(
                (),
                "",
                None,
                "give either 'deployments' (a list) or 'environments' (named, with waves), not "
                + ("both" if has_flat else "neither"),
            )
            return bool(prune), ()
        if has_flat:
            return bool(prune), self.flat(data["deployments"])
        return bool(prune), self.environments(data["environments"])

    def flat(self, raw: Any) -> tuple[Environment, ...]:
        path: tuple[PathPart, ...] = ("deployments",)
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            self.problem(path, "deployments", None, "must be a list of entries")
            return ()
        by_target: dict[Target, list[Entry]] = {}
        for i, item in enumerate(raw):
            entry = self.entry(item, (*path, i), target=None)
            if entry is not None:
                by_target.setdefault(entry.target, []).append(entry)
        return tuple(
            Environment(
                name=t.region if t.account in (None, self.default_account) else f"{t.region}-{t.account}",
                target=t,
                waves=(Wave("wave1", tuple(entries)),),
            )
            for t, entries in by_target.items()
        )

    def environments(self, raw: Any) -> tuple[Environment, ...]:
        path: tuple[PathPart, ...] = ("environments",)
        if not isinstance(raw, dict) or not raw:
            self.problem(path, "environments", None, "must map environment names to {account, region, waves}")
            return ()
        envs = []
        for name, spec in raw.items():
            env = self.environment(name, spec, (*path, name))
            if env is not None:
                envs.append(env)
        return tuple(envs)

    def environment(self, name: Any, spec: Any, path: tuple[PathPart, ...]) -> Environment | None:
        where = f"environments.{name}"
        ok = self.name_ok(name, path, where, "environment name")
        if not isinstance(spec, dict):
            self.problem(path, where, None, "must be a mapping with waves (and optional account, region)")
            return None
        self.unknown_keys(spec, ENVIRONMENT_KEYS, path, where)
        target = self.target(spec, path, where, inherited=None)
        waves_raw = spec.get("waves")
        if not isinstance(waves_raw, list) or not waves_raw:
            self.problem((*path, "waves"), where, "waves", "needs a list of waves, each with deployments")
            return None
        waves, names = [], set()
        for wi, wave_raw in enumerate(waves_raw):
            wpath = (*path, "waves", wi)
            wwhere = f"{where}.waves[{wi}]"
            if not isinstance(wave_raw, dict):
                self.problem(
                    wpath, wwhere, None, "a wave is a mapping with deployments (and an optional name)"
                )
                continue
            self.unknown_keys(wave_raw, WAVE_KEYS, wpath, wwhere)
            wname = wave_raw.get("name", f"wave{wi + 1}")
            if self.name_ok(wname, (*wpath, "name"), wwhere, "wave name", fld="name"):
                if wname in names:
                    self.problem((*wpath, "name"), wwhere, "name", f"wave {wname!r} appears twice in {name}")
                names.add(wname)
            items = wave_raw.get("deployments")
            if not isinstance(items, list) or not items:
                self.problem((*wpath, "deployments"), wwhere, "deployments", "needs a list of entries")
                continue
            entries = [self.entry(item, (*wpath, "deployments", di), target) for di, item in enumerate(items)]
            waves.append(Wave(str(wname), tuple(e for e in entries if e is not None)))
        if not ok or target is None:
            return None
        return Environment(str(name), target, tuple(waves))

    def name_ok(
        self, name: Any, path: tuple[PathPart, ...], where: str, kind: str, fld: str | None = None
    ) -> bool:
        if isinstance(name, str) and NAME.fullmatch(name) and len(name) <= NAME_MAX:
            return True
        self.problem(
            path,
            where,
            fld,
            f"{kind} {name!r} must be 1-{NAME_MAX} letters, digits and single '-', starting with a letter "
            "(it names a pipeline stage)",
        )
        return False

    def target(
        self, spec: dict[str, Any], path: tuple[PathPart, ...], where: str, inherited: Target | None
    ) -> Target | None:
        account = spec.get("account", inherited.account if inherited else self.default_account)
        region = spec.get("region", inherited.region if inherited else self.default_region)
        ok = True
        if "account" in spec and not (isinstance(account, str) and ACCOUNT.fullmatch(account)):
            hint = " written as a quoted string" if isinstance(account, int) else ""
            self.problem(
                (*path, "account"), where, "account", f"{account!r} is not a 12-digit AWS account id{hint}"
            )
            ok = False
        if not isinstance(region, str):
            self.problem((*path, "region"), where, "region", f"must be a region name (got {region!r})")
            return None
        try:
            region_info(region)
        except EmdUserError as exc:
            self.problem((*path, "region"), where, "region", str(exc))
            ok = False
        return Target(account, region) if ok else None

    # -- one entry

    def entry(self, raw: Any, path: tuple[PathPart, ...], target: Target | None) -> Entry | None:
        where = _path_text(path)
        if not isinstance(raw, dict):
            self.problem(path, where, None, "an entry is a mapping with model_id, instance and service")
            return None
        model_id, tag = raw.get("model_id"), raw.get("tag", DEFAULT_TAG)
        if isinstance(model_id, str) and isinstance(tag, str):
            where += f" ({model_id}/{tag})"
        before = len(self.problems)
        self.unknown_keys(raw, ENTRY_KEYS, path, where)
        for key in REQUIRED_ENTRY_KEYS:
            if key not in raw:
                self.problem(path, where, key, "missing (required)")
        for key in ("model_id", "tag", "instance", "engine", "service"):
            value = raw.get(key)
            if key in raw and not isinstance(value, str):
                self.problem((*path, key), where, key, f"must be a string (got {value!r}); quote it")
        if target is None:
            target = self.target(raw, path, where, inherited=None)
        else:
            for key in ("account", "region"):
                if key in raw:
                    self.problem(
                        (*path, key), where, key, "set account and region on the environment, not per entry"
                    )
        checks = (
            ("model_id", self.cat.model),
            ("engine", self.cat.engine),
            ("instance", self.cat.instance),
            ("service", _service),
            ("tag", validate_tag),
        )
        for key, check in checks:
            if isinstance(raw.get(key), str):
                try:
                    check(raw[key])
                except EmdUserError as exc:
                    self.problem((*path, key), where, key, str(exc))
        params = self.extra_params(raw.get("extra_params"), (*path, "extra_params"), where)
        if len(self.problems) > before or target is None or params is None:
            return None
        try:
            deployment = resolve_deployment(
                model_id=raw["model_id"],
                instance_type=raw["instance"],
                engine_type=raw.get("engine"),
                service_type=raw["service"],
                region=target.region,
                model_tag=tag,
                extra_params=params,
                cat=self.cat,
            )
        except EmdUserError as exc:
            text = str(exc)
            fld = "extra_params.service_params" if "service_params" in text else "instance"
            self.problem((*path, fld.split(".")[0]), where, fld, text)
            return None
        return Entry(deployment, target, node_line(self.root, path), where)

    def extra_params(self, raw: Any, path: tuple[PathPart, ...], where: str) -> ExtraParams | None:
        if raw is None:
            return ExtraParams()
        if not isinstance(raw, dict):
            self.problem(path, where, "extra_params", f"must be a mapping (got {type(raw).__name__})")
            return None
        api_key = (
            (raw.get("service_params") or {}).get("api_key")
            if isinstance(raw.get("service_params"), dict)
            else None
        )
        if api_key is not None:
            self.problem(
                (*path, "service_params", "api_key"),
                where,
                "extra_params.service_params.api_key",
                "a key in models.yaml would be in the repository's history: remove it; the pipeline creates "
                "the deployment's secret with a generated key",
            )
            return None
        try:
            return ExtraParams.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                self.problem((*path, *loc), where, "extra_params", describe_error(err))
            return None

    def duplicate_routes(self, environments: tuple[Environment, ...]) -> None:
        first: dict[tuple[str | None, str, str], Entry] = {}
        for env in environments:
            for wave in env.waves:
                for e in wave.entries:
                    key = (e.target.account, e.target.region, e.route)
                    if key in first:
                        other = first[key]
                        self.problems.append(
                            Problem(
                                e.line,
                                e.where,
                                "tag",
                                f"route {e.route} in {e.target.label} is already at line {other.line} "
                                f"({other.where}): one stack per route; give one of them another tag",
                            )
                        )
                    else:
                        first[key] = e


def _service(name: str) -> ServiceType:
    from model_specs.errors import unknown_value_error

    accepted = [s.value for s in ServiceType if s is not ServiceType.local]
    if name == ServiceType.local.value:
        raise EmdUserError(
            f"'local' runs on one machine, not through a pipeline. Accepted: {', '.join(accepted)}"
        )
    if name not in accepted:
        raise unknown_value_error("service type", name, accepted)
    return ServiceType(name)


def load_models_file(
    path: str | Path,
    *,
    default_region: str,
    default_account: str | None = None,
    text: str | None = None,
    cat: Catalogue | None = None,
) -> ModelsFile:
    """Read and validate models.yaml; ModelsFileError lists every problem. `default_region` /
    `default_account`: the pipeline's, for entries and environments that name none."""
    filename = str(path)
    if text is None:
        p = Path(path)
        if not p.is_file():
            raise ModelsFileError(
                filename, [Problem(0, "", None, "no such file (`emd gitops init` writes a starter)")]
            )
        text = p.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise ModelsFileError(filename, [Problem(line, "", None, f"invalid YAML: {exc.problem}")]) from None
    if root is None:
        raise ModelsFileError(filename, [Problem(0, "", None, "empty: give 'deployments' or 'environments'")])
    loader = _Loader(filename, root, default_region, default_account, cat or catalogue())
    loader.problems += list(_duplicate_keys(root))
    data = yaml.SafeLoader("").construct_document(root)
    prune, environments = loader.load(data)
    loader.duplicate_routes(environments)
    if loader.problems:
        raise ModelsFileError(filename, loader.problems)
    return ModelsFile(filename, prune, environments)


def secret_names(models: ModelsFile) -> list[str]:
    """API key secrets the pipeline keeps (public deployments have none)."""
    return [
        api_key_secret_name(e.deployment.model_id, e.deployment.model_tag)
        for e in models.entries
        if e.deployment.api_key_secret_name
    ]
