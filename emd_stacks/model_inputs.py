"""Deterministic artifact keys for direct `cdk deploy -c model_id=...`: the same ECR tag the bootstrap's build
project computes (model_specs.images: engine name + content hash of serving/engine, the catalogue's engine
entry and the base image), so the build can prepare the image and weights that the stack expects."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from model_specs.catalogue import catalogue
from model_specs.deployment import Deployment
from model_specs.images import engine_image

REPO_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=32)
def _engine_image_tag(engine_name: str, dockerfile: str | None) -> str:
    engine = catalogue().engine(engine_name)
    params = {"dockerfile": dockerfile} if dockerfile else None
    return engine_image(REPO_ROOT, engine.model_dump(mode="json"), engine.base_image, params).tag


def engine_image_tag(deployment: Deployment) -> str:
    """The adapter image's tag, or the custom tag when the deployment brings a Dockerfile."""
    return _engine_image_tag(deployment.engine_type, deployment.extra_params.engine_params.dockerfile)
