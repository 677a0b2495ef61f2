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


def format_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], fold: Sequence[int]
) -> str:
    """The title, a header line and one line per row, columns padded to their widest cell. When the table is
    wider than the terminal (at least MIN_WIDTH), the `fold` columns narrow, widest first, down to their
    longest word, and their cells wrap onto continuation lines."""
    columns = list(zip(header, *rows, strict=True))
    widths = [max(len(str(c)) for c in col) for col in columns]
    floors = {i: max(len(word) for cell in columns[i] for word in str(cell).split() or [""]) for i in fold}
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - max(terminal_columns(), MIN_WIDTH)
    while excess > 0:
        narrowable = [i for i in fold if widths[i] > floors[i]]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    lines = [title, ""]
    for cells in (header, *rows):
        parts = [
            _wrap(str(c), w) if i in floors else [str(c)]
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        for n in range(max(len(p) for p in parts)):
            shown = (p[n] if n < len(p) else "" for p in parts)
            lines.append(GAP.join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    import textwrap  # only when a cell is too wide: most tables never need it

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
