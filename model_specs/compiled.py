"""The compiled catalogue: what `emd list-supported-models` shows, read without YAML or pydantic.

A JSON file in the user's cache dir holds a summary of every model and, per region, the smallest instance
of each (model, engine) pair asked for so far, computed by model_specs.compat on first use and kept. The file
is named by a fingerprint of every file of the model_specs package (data and code): a changed catalogue or
rule is a miss, so the file is never stale. An unreadable or unwritable cache dir only costs time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
PACKAGE_DIR = Path(__file__).parent
FINGERPRINTED_SUFFIXES = (".py", ".yaml", ".yml", ".json")
FILE_PREFIX = "catalogue-"
KEEP_FILES = 8  # the most recently written; older fingerprints are removed when a new file is written

# model id -> engine -> smallest instance name (None: nothing fits)
Smallest = dict[str, dict[str, str | None]]


def cache_dir() -> Path:
    """$EMD_CACHE_DIR, else $XDG_CACHE_HOME/emd, else ~/.cache/emd."""
    base = os.environ.get("EMD_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "emd")
    return Path(base)


def cache_path(fingerprint: str) -> Path:
    """One file per fingerprint: two installations (a source tree and a wheel, two versions) used in turn
    each keep theirs instead of overwriting each other's."""
    return cache_dir() / f"{FILE_PREFIX}{fingerprint[:16]}.json"


def fingerprint(root: Path = PACKAGE_DIR) -> str:
    """sha256 over the relative path and content of every data file and module under `root`."""
    digest = hashlib.sha256(f"format {FORMAT}\0".encode())
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += [os.path.join(folder, n) for n in names if n.endswith(FINGERPRINTED_SUFFIXES)]
    for path in sorted(files):
        content = Path(path).read_bytes()
        name = os.path.relpath(path, root).replace(os.sep, "/").encode()
        digest.update(b"%d:%s%d:" % (len(name), name, len(content)))
        digest.update(content)
    return digest.hexdigest()


@dataclass
class CompiledCatalogue:
    fingerprint: str
    models: list[dict[str, Any]]  # one summary per model, sorted by (type, id)
    engines: list[str]
    smallest: dict[str, Smallest] = field(default_factory=dict)  # by region
    path: Path | None = None

    def smallest_instances(
        self, region: str, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """Smallest instance name (or None) per (model id, engine) in `region`; computes and stores the ones
        not yet in the file."""
        pairs = list(pairs)
        known = self.smallest.setdefault(region, {})
        missing = [(m, e) for m, e in pairs if e not in known.get(m, {})]
        if missing:
            for (model_id, engine), name in _compute_smallest(region, missing).items():
                known.setdefault(model_id, {})[engine] = name
            self.save()
        return {(m, e): known[m][e] for m, e in pairs}

    def save(self) -> None:
        """Write atomically (a reader never sees half a file); an unwritable cache dir is not an error."""
        if self.path is None:
            return
        data = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "models": self.models,
            "engines": self.engines,
            "smallest": self.smallest,
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return
        _prune(self.path.parent)


def _prune(folder: Path) -> None:
    with contextlib.suppress(OSError):
        files = sorted(folder.glob(f"{FILE_PREFIX}*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_FILES:]:
            old.unlink(missing_ok=True)


def _read(path: Path, expected: str) -> CompiledCatalogue | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("fingerprint") != expected:
            return None
        compiled = CompiledCatalogue(expected, data["models"], data["engines"], data["smallest"], path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, unreadable, truncated or foreign: rebuilt
    if not (isinstance(compiled.models, list) and isinstance(compiled.smallest, dict)):
        return None
    return compiled


def _summary(model: Any) -> dict[str, Any]:
    """The listing's facts about one ModelSpec (everything but the region-dependent smallest instance)."""
    return {
        "model_id": model.id,
        "type": model.type.value,
        "params_b": model.params_b,
        "active_params_b": model.active_params_b,
        "experts": None if model.num_experts is None else f"{model.experts_per_token}/{model.num_experts}",
        "architecture": model.architecture,
        "num_layers": model.num_layers,
        "num_attention_heads": model.num_attention_heads,
        "num_kv_heads": model.num_kv_heads,
        "hidden_size": model.hidden_size,
        "reasoning": model.reasoning,
        "dtype": model.dtype,
        "weights_gib": round(model.weights_gib, 2),
        "context_length": model.context_length,
        "engines": list(model.engines),
        "default_engine": model.default_engine,
        "allow_china_region": model.allow_china_region,
        "hf_id": model.hf_id,
        "modelscope_id": model.modelscope_id,
        "description": model.description,
    }


def _build(expected: str, path: Path | None) -> CompiledCatalogue:
    from model_specs.catalogue import catalogue

    cat = catalogue()
    models = sorted(cat.models.values(), key=lambda m: (m.type.value, m.id.lower()))
    return CompiledCatalogue(expected, [_summary(m) for m in models], list(cat.engines), {}, path)


def _compute_smallest(region: str, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """The rules themselves (model_specs.compat): the default engine's smallest instance as `emd plan` sees
    it, else the cheapest fit on SageMaker real-time, else on EC2."""
    from model_specs import compat
    from model_specs.catalogue import catalogue
    from model_specs.schema import ServiceType

    cat = catalogue()
    out: dict[tuple[str, str], str | None] = {}
    for model_id, engine_name in pairs:
        model = cat.model(model_id)
        if engine_name == model.default_engine:
            found = compat.smallest_instance(cat, model, region)
        else:
            engine = cat.engine(engine_name)
            found = next(
                (
                    fits[0]
                    for svc in (ServiceType.sagemaker_realtime, ServiceType.ec2)
                    if (fits := compat.fitting_instances(cat, model, engine, svc, region))
                ),
                None,
            )
        out[(model_id, engine_name)] = found.name if found else None
    return out


@functools.cache
def compiled() -> CompiledCatalogue:
    """The packaged catalogue's compiled form: read from the cache file when its fingerprint matches, else
    built from model_specs.catalogue (validating every file) and written."""
    expected = fingerprint()
    path = cache_path(expected)
    found = _read(path, expected)
    if found is None:
        found = _build(expected, path)
        found.save()
    return found
