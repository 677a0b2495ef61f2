"""Plain aligned-column tables (kubectl style) for commands that must start fast.

rich costs ~27 ms to import and ~0.35 ms per row to render (measured 2026-11 with 54 models), more than the
rest of `emd list-supported-models` together; this prints the same facts with the standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

GAP = "  "
MIN_WIDTH = 120


def terminal_columns() -> int:
    """$COLUMNS, else the terminal's width, else 0 (shutil.get_terminal_size, minus shutil's import cost)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 0


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], fold: int) -> str:
    """The title, a header line and one line per row, columns padded to their widest cell. When the table is
    wider than the terminal (at least MIN_WIDTH), column `fold` wraps onto continuation lines."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    budget = max(terminal_columns(), MIN_WIDTH)
    others = sum(widths) - widths[fold] + len(GAP) * (len(widths) - 1)
    widths[fold] = max(min(widths[fold], budget - others), len(header[fold]), 10)
    lines = [title, ""]
    for cells in (header, *rows):
        wrapped = _wrap(str(cells[fold]), widths[fold])
        for n, part in enumerate(wrapped):
            shown = [str(c) if n == 0 else "" for c in cells]
            shown[fold] = part
            lines.append(GAP.join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    import textwrap  # only when a cell is too wide: most tables never need it

    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]
