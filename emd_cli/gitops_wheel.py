"""A wheel of the running EMD, for the GitOps pipeline's synth step to `pip install`: the same code that
`emd gitops init` synthesized the pipeline with, whether EMD was installed from a wheel or runs from a
source tree (editable). Built from the package folders and the installed metadata; byte-for-byte the same for
the same code (fixed timestamps, sorted entries), so re-running init with unchanged code changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import zipfile
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

DIST = "emd"
PACKAGES = ("model_specs", "emd_constructs", "emd_stacks", "emd_cli", "serving")
# what pyproject.toml ships besides Python files ([tool.setuptools.package-data])
DATA_PATTERNS = ("*.py", "*.yaml", "*.yml", "*.json", "*.sh", "Dockerfile*", "*.txt")
EPOCH = (1980, 1, 1, 0, 0, 0)
DEFAULT_ENTRY_POINTS = "[console_scripts]\nemd = emd_cli.main:cli\n"


def package_files() -> list[tuple[str, Path]]:
    """(path in the wheel, file) for every shipped file of EMD's packages."""
    out = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"EMD package {package} is not importable")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and any(fnmatch(path.name, p) for p in DATA_PATTERNS)
            ):
                out.append((f"{package}/{path.relative_to(root).as_posix()}", path))
    return out


def _metadata_text(dist: metadata.Distribution) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {DIST}", f"Version: {dist.version}"]
    requires_python = dist.metadata.get("Requires-Python")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    extras = sorted({e for e in dist.metadata.get_all("Provides-Extra") or []})
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"Requires-Dist: {r}" for r in dist.requires or []]
    return "\n".join(lines) + "\n"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_name(version: str) -> str:
    return f"{DIST}-{version}-py3-none-any.whl"


def build_wheel(dest: Path) -> Path:
    """Write the wheel into `dest`; return its path."""
    dist = metadata.distribution(DIST)
    info = f"{DIST}-{dist.version}.dist-info"
    entries: list[tuple[str, bytes]] = [(name, path.read_bytes()) for name, path in package_files()]
    entries += [
        (f"{info}/METADATA", _metadata_text(dist).encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: emd-gitops\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{info}/entry_points.txt", (dist.read_text("entry_points.txt") or DEFAULT_ENTRY_POINTS).encode()),
    ]
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in entries) + f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode()))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / wheel_name(dist.version)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            item = zipfile.ZipInfo(name, EPOCH)
            item.compress_type = zipfile.ZIP_DEFLATED
            item.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            zf.writestr(item, data)
    return path


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
