"""Every relative link in README.md and docs/*.md points at a file inside the repository (a clone has
nothing beside it: no ../shared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|#)", re.I)


def broken_links(doc: Path, root: Path = ROOT) -> list[str]:
    """The relative link targets of `doc` that are not a file or folder inside `root`."""
    text = INLINE_CODE.sub("", FENCED.sub("", doc.read_text(encoding="utf-8")))
    targets = LINK.findall(text) + REFERENCE.findall(text)
    broken = []
    for target in targets:
        if EXTERNAL.match(target):
            continue
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(root.resolve()) or not path.exists():
            broken.append(target)
    return broken


def test_the_docs_exist() -> None:
    assert (ROOT / "docs/architecture.md").is_file()
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_stay_inside_the_repository(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_check_sees_links_outside_or_missing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs/a.md").write_text("x")
    doc = repo / "README.md"
    doc.write_text(
        "[design](../shared/DESIGN.md) [a](docs/a.md#part) [gone](docs/b.md) ![img](docs/c.png)\n"
        "[web](https://example.com) [top](#top) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[ref]: docs/missing.md\n"
    )
    assert broken_links(doc, repo) == ["../shared/DESIGN.md", "docs/b.md", "docs/c.png", "docs/missing.md"]
