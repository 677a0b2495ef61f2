"""The installed EMD version (recorded on the shared stacks by `emd bootstrap`)."""

from __future__ import annotations

from importlib import metadata


def emd_version() -> str:
    try:
        return metadata.version("emd")
    except metadata.PackageNotFoundError:
        return "0+unknown"
