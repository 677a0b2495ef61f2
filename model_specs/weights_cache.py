"""Where the build stage caches a model's weights, and how a model stack deployed directly finds them.

The build (serving/build/weights.py) copies a revision into the artifact bucket at
`models/<model-id>/<commit>[-<pattern hash>]/`: a branch such as `main` is resolved to its commit, and an
engine that takes one file of the repository (a GGUF quantization) gets a folder of its own. A stack
synthesized without the pipeline cannot know that commit without asking the hub, so the build publishes the
folder, after its completion marker, in the SSM parameter
`/emd/weights/<model-id>/<revision asked>[/<pattern hash>]`, and the stack reads that parameter at deploy
time (emd_constructs/model_artifacts.py). Both sides take the names from here.
"""

from __future__ import annotations

import hashlib
import re

from model_specs.schema import ModelSpec

WEIGHTS_PREFIX = "models"
WEIGHTS_PARAM_PREFIX = "/emd/weights"
# no model_params.revision: the hub's default branch (main on Hugging Face, master on ModelScope)
DEFAULT_REVISION_LABEL = "default"
_NOT_IN_SSM_NAMES = re.compile(r"[^A-Za-z0-9_.\-/]")


def file_pattern(model: ModelSpec, engine_type: str) -> str | None:
    """The files of the repository the engine loads (its model_file, e.g. one GGUF), or None for all."""
    engine = model.engines.get(engine_type)
    return engine.model_file if engine else None


def _pattern_hash(pattern: str) -> str:
    return hashlib.sha256(pattern.encode()).hexdigest()[:8]


def weights_prefix(model_id: str, revision: str, pattern: str | None = None) -> str:
    """The cache folder (key prefix, trailing slash) of a resolved revision in the artifact bucket."""
    folder = revision.replace("/", "_")
    if pattern:
        folder += "-" + _pattern_hash(pattern)
    return f"{WEIGHTS_PREFIX}/{model_id}/{folder}/"


def weights_parameter_name(model_id: str, revision: str | None, pattern: str | None = None) -> str:
    """The SSM parameter holding the cache folder of `revision` as the deployment asks for it (None: the hub's
    default branch), for the engine's file pattern."""
    label = re.sub("/+", "/", _NOT_IN_SSM_NAMES.sub("_", revision)).strip("/") if revision else ""
    name = f"{WEIGHTS_PARAM_PREFIX}/{model_id}/{label or DEFAULT_REVISION_LABEL}"
    return f"{name}/{_pattern_hash(pattern)}" if pattern else name
