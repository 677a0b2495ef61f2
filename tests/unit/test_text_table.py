"""emd_cli.text_table: aligned columns; the fold columns wrap, widest first, when the table is wider than the
terminal."""

from __future__ import annotations

import pytest

from emd_cli.text_table import MIN_WIDTH, format_table


def test_columns_align_and_fit() -> None:
    out = format_table("T", ("A", "LONG HEADER"), [("x", "1"), ("wide cell", "22")], fold=[1]).splitlines()
    assert out[:2] == ["T", ""]
    assert out[2:] == ["A          LONG HEADER", "x          1", "wide cell  22"]


def test_the_fold_column_wraps_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # narrower than MIN_WIDTH: the table still gets MIN_WIDTH
    engines = ", ".join(f"engine{i}" for i in range(40))
    size = "70.6B bf16 (131.5 GiB), 80 layers, ctx 131072, reasoning " * 2
    rows = [("m", size, engines, "yes"), ("n", "1B", "vllm", "no")]
    out = format_table("T", ("MODEL", "SIZE", "ENGINES", "CHINA"), rows, fold=[1, 2]).splitlines()
    assert max(len(line) for line in out) <= MIN_WIDTH
    assert out[3].startswith("m  ") and out[3].endswith("yes") and len(out) > 5
    assert out[-1].split() == ["n", "1B", "vllm", "no"]
    body = " ".join(out[3:-1])
    assert body.count("engine") == 40 and body.count("131072,") == 2  # no word cut in two


def test_a_word_longer_than_the_budget_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    word = "x" * 150
    out = format_table("T", ("A", "B"), [("a", word)], fold=[1]).splitlines()
    assert out[3] == "a  " + word
