"""emd_cli.text_table: aligned columns; the fold column wraps when the table is wider than the terminal."""

from __future__ import annotations

import pytest

from emd_cli.text_table import MIN_WIDTH, format_table


def test_columns_align_and_fit() -> None:
    out = format_table("T", ("A", "LONG HEADER"), [("x", "1"), ("wide cell", "22")], fold=1).splitlines()
    assert out[:2] == ["T", ""]
    assert out[2:] == ["A          LONG HEADER", "x          1", "wide cell  22"]


def test_the_fold_column_wraps_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # narrower than MIN_WIDTH: the table still gets MIN_WIDTH
    engines = ", ".join(f"engine{i}" for i in range(40))
    out = format_table("T", ("MODEL", "ENGINES", "CHINA"), [("m", engines, "yes")], fold=1).splitlines()
    assert max(len(line) for line in out) <= MIN_WIDTH
    assert out[3].startswith("m  ") and out[3].endswith("yes") and len(out) > 4
    assert "".join(out[3:]).replace(" ", "").count("engine") == 40
