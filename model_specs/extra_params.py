"""Schema of --extra-params / -c extra_params: unknown keys are refused with a 'did you mean'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from model_specs.errors import EmdUserError, did_you_mean


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceParams(_Section):
    api_key: SecretStr | None = Field(default=None, description="stored in Secrets Manager by the CLI only")
    public: bool = Field(default=False, description="serve without an API key (explicit opt-in)")
    min_capacity: int | None = Field(default=None, ge=0, le=100, description="0 allows scale to zero")
    max_capacity: int | None = Field(default=None, ge=1, le=100)
    desired_capacity: int | None = Field(default=None, ge=0, le=100)
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: list[str] | None = None
    sagemaker_endpoint_name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    s3_output_path: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, v: list[str] | None) -> list[str] | None:
        import re

        for s in v or []:
            if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", s):
                raise ValueError(f"{s!r} is not a subnet id (subnet-0123abcd…)")
        return v


DOCKERFILE_MAX_BYTES = 64 * 1024
IMAGE_REF = r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[\w.-]{1,128}|@sha256:[0-9a-f]{64})"


class EngineParams(_Section):
    cli_args: str = Field(default="", description="appended to the catalogue's engine arguments")
    environment: dict[str, str] = Field(default_factory=dict)
    image_uri: str | None = Field(
        default=None, description="run this image as it is (it must serve the EMD engine contract); no build"
    )
    dockerfile: str | None = Field(
        default=None,
        max_length=DOCKERFILE_MAX_BYTES,
        description="Dockerfile text built on top of the EMD engine image (--dockerfile-local-path)",
    )

    @field_validator("image_uri")
    @classmethod
    def _image_uri(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(IMAGE_REF, v):
            raise ValueError("not an image reference: use registry/repository:tag or …@sha256:<digest>")
        return v

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile(cls, v: str | None) -> str | None:
        from model_specs.images import custom_dockerfile

        if v is not None:
            custom_dockerfile(v)  # raises ValueError naming the bad FROM
        return v

    @model_validator(mode="after")
    def _one_image_source(self) -> EngineParams:
        if self.image_uri and self.dockerfile:
            raise ValueError("give image_uri (an image used as is) or dockerfile (built on EMD's), not both")
        return self


class ModelParams(_Section):
    model_files_s3_path: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
    )
    model_files_local_path: str | None = Field(
        default=None, min_length=1, description="-s local: a folder (or a .gguf file) on this machine"
    )
    revision: str | None = Field(default=None, pattern=r"^[\w.\-/]{1,100}$")


class FrameworkParams(_Section):
    limit_concurrency: int | None = Field(default=None, ge=1, le=10000)
    timeout_keep_alive: int | None = Field(default=None, ge=1, le=3600)
    log_level: str | None = Field(default=None, pattern=r"^(debug|info|warning|error)$")


class ExtraParams(_Section):
    service_params: ServiceParams = Field(default_factory=ServiceParams)
    engine_params: EngineParams = Field(default_factory=EngineParams)
    model_params: ModelParams = Field(default_factory=ModelParams)
    framework_params: FrameworkParams = Field(default_factory=FrameworkParams)

    def without_secrets(self) -> dict[str, Any]:
        """JSON-able form with the api key removed: safe for templates, artifacts and logs."""
        data = self.model_dump(mode="json", exclude_none=True)
        data.get("service_params", {}).pop("api_key", None)
        return data


def _section_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = ExtraParams
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return list(model.model_fields)


def parse_extra_params(value: str | dict[str, Any] | None, source: str = "--extra-params") -> ExtraParams:
    """Parse JSON text, '@path/to/file.json' or a dict; raise EmdUserError naming `source` (where the user
    wrote them: the CLI flag, or the CDK context key) and each bad key."""
    if value is None or value == "":
        return ExtraParams()
    raw: Any = value
    if isinstance(value, str):
        text = value
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise EmdUserError(f"{source} file {str(path)!r} does not exist")
            text = path.read_text(encoding="utf-8")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EmdUserError(
                f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                'expected e.g. \'{"service_params": {"min_capacity": 0}}\''
            ) from None
    if not isinstance(raw, dict):
        raise EmdUserError(
            f"{source} must be a JSON object with keys {', '.join(ExtraParams.model_fields)}, "
            f"not {type(raw).__name__}"
        )
    try:
        return ExtraParams.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(describe_error(err) for err in exc.errors())
        raise EmdUserError(f"invalid {source}: {problems}") from None


def describe_error(err: Any) -> str:
    """One pydantic error of ExtraParams as text: the key path, what is wrong, what is accepted (an api_key's
    value is never shown)."""
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        accepted = _section_fields(loc)
        hint = did_you_mean(str(loc[-1]), accepted)
        return f"unknown key {where!r}.{hint} Accepted here: {', '.join(accepted)}"
    shown = "***" if "api_key" in where else repr(err.get("input"))
    return f"{where}: {err['msg']} (got {shown})"
