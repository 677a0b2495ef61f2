"""Load and query the catalogue files in model_specs/data/ (validated once, cached)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from model_specs.errors import CatalogueError, unknown_value_error
from model_specs.regions import CHINA_REGIONS, KNOWN_REGIONS
from model_specs.schema import EngineSpec, InstanceSpec, ModelSpec, PriceBook, ServiceSpec

DATA_DIR = Path(__file__).parent / "data"
# libyaml's parser when PyYAML was built with it (the PyPI wheels are): ~7x faster than pure Python
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Catalogue:
    models: dict[str, ModelSpec]
    engines: dict[str, EngineSpec]
    instances: dict[str, InstanceSpec]
    services: dict[str, ServiceSpec]
    prices: PriceBook

    def model(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            raise unknown_value_error("model id", model_id, self.models) from None

    def engine(self, name: str) -> EngineSpec:
        try:
            return self.engines[name]
        except KeyError:
            raise unknown_value_error("engine type", name, self.engines) from None

    def instance(self, name: str) -> InstanceSpec:
        bare = name.removeprefix("ml.")
        try:
            return self.instances[bare]
        except KeyError:
            raise unknown_value_error("instance type", name, self.instances) from None

    def service(self, name: str) -> ServiceSpec:
        try:
            return self.services[name]
        except KeyError:
            raise unknown_value_error("service type", name, self.services) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc


def _validate(cls: type[T], raw: Any, path: Path, entry: str) -> T:
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc']) or '<entry>'}: {err['msg']}" for err in exc.errors()
        )
        raise CatalogueError(f"{path.name}: entry {entry!r}: {problems}") from exc


def _entries(raw: Any, path: Path) -> list[Any]:
    """A file is a list of entries, or a mapping holding that list under the file's stem (other keys must
    start with 'x-': they only hold YAML anchors such as shared region lists)."""
    if isinstance(raw, dict):
        extra = sorted(k for k in raw if k != path.stem and not str(k).startswith("x-"))
        if extra:
            raise CatalogueError(
                f"{path.name}: unexpected top-level key(s) {extra}; entries go under {path.stem!r}"
            )
        raw = raw.get(path.stem)
    if not isinstance(raw, list):
        raise CatalogueError(f"{path.name}: expected a list of entries (top level, or under {path.stem!r})")
    return raw


def _load_list(cls: type[T], path: Path, key: str) -> dict[str, T]:
    raw = _entries(_read_yaml(path), path)
    out: dict[str, T] = {}
    for i, item in enumerate(raw):
        name = item.get(key, f"#{i}") if isinstance(item, dict) else f"#{i}"
        spec = _validate(cls, item, path, str(name))
        ident = getattr(spec, key)
        if ident in out:
            raise CatalogueError(f"{path.name}: entry {ident!r}: duplicate {key}")
        out[ident] = spec
    return out


def load_catalogue(data_dir: Path = DATA_DIR) -> Catalogue:
    """Read every catalogue file and check cross-references; raises CatalogueError naming file/entry/field."""
    models: dict[str, ModelSpec] = {}
    model_file: dict[str, str] = {}
    for path in sorted((data_dir / "models").glob("*.yaml")):
        for ident, spec in _load_list(ModelSpec, path, "id").items():
            if ident in models:
                raise CatalogueError(
                    f"models/{path.name}: entry {ident!r}: model id already defined in "
                    f"models/{model_file[ident]}"
                )
            models[ident] = spec
            model_file[ident] = path.name
    engines = _load_list(EngineSpec, data_dir / "engines.yaml", "name")
    instances = _load_list(InstanceSpec, data_dir / "instances.yaml", "name")
    services = {str(k): v for k, v in _load_list(ServiceSpec, data_dir / "services.yaml", "name").items()}
    prices = _validate(PriceBook, _read_yaml(data_dir / "prices.yaml"), data_dir / "prices.yaml", "prices")
    _check_references(models, model_file, engines, instances, services, prices)
    return Catalogue(models=models, engines=engines, instances=instances, services=services, prices=prices)


def _check_references(
    models: dict[str, ModelSpec],
    model_file: dict[str, str],
    engines: dict[str, EngineSpec],
    instances: dict[str, InstanceSpec],
    services: dict[str, ServiceSpec],
    prices: PriceBook,
) -> None:
    for m in models.values():
        where = f"models/{model_file[m.id]}: entry {m.id!r}"
        if m.base_model is not None and m.base_model not in models:
            raise CatalogueError(f"{where}: field base_model: {m.base_model!r} is not a catalogue model id")
        for e in m.engines:
            if e not in engines:
                raise CatalogueError(
                    f"{where}: field engines: unknown engine {e!r} (known: {', '.join(engines)})"
                )
            if m.type not in engines[e].model_types:
                raise CatalogueError(
                    f"{where}: field engines.{e}: engine {e} does not serve {m.type.value} models"
                )
    for inst in instances.values():
        for field, regions in (("regions", inst.regions), ("sagemaker_regions", inst.sagemaker_regions)):
            unknown = sorted(set(regions) - KNOWN_REGIONS)
            if unknown:
                raise CatalogueError(
                    f"instances.yaml: entry {inst.name!r}: field {field}: unknown region(s) {unknown}"
                )
    for svc in services.values():
        unknown = sorted(set(svc.regions) - KNOWN_REGIONS - {"*"})
        if unknown:
            raise CatalogueError(
                f"services.yaml: entry {svc.name.value!r}: field regions: unknown region(s) {unknown}"
            )
    for region, rp in prices.regions.items():
        if region not in KNOWN_REGIONS:
            raise CatalogueError(f"prices.yaml: entry {region!r}: unknown region")
        expected = "CNY" if region in CHINA_REGIONS else "USD"
        if rp.currency != expected:
            raise CatalogueError(
                f"prices.yaml: entry {region!r}: field currency: {rp.currency}, expected {expected}"
            )
        for field, table, attr in (
            ("ec2", rp.ec2_hourly, "regions"),
            ("sagemaker", rp.sagemaker_hourly, "sagemaker_regions"),
        ):
            for name in table:
                if name not in instances:
                    raise CatalogueError(
                        f"prices.yaml: entry {region!r}: field {field}: unknown instance {name!r}"
                    )
                if region not in getattr(instances[name], attr):
                    raise CatalogueError(
                        f"prices.yaml: entry {region!r}: field {field}: {name} is priced but "
                        f"instances.yaml does not offer it there ({attr})"
                    )


@functools.cache
def catalogue() -> Catalogue:
    """The packaged catalogue, loaded once per process."""
    return load_catalogue()
