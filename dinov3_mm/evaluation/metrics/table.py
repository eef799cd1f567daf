"""Plain-text tables of per-class results, as the metrics log them."""
from typing import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Render rows as a plain-text table with aligned columns.

    Args:
        header (Sequence[str]): Column names.
        rows (Sequence[Sequence]): One sequence of cells per row; floats are
            shown with two decimals, the first column left-aligned and the
            others right-aligned.

    Returns:
        str: The table, with a dashed line under the header.
    """
    cells = [[str(h) for h in header]] + [[
        f'{v:.2f}' if isinstance(v, float) else str(v) for v in row
    ] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(r, widths))) for r in cells
    ]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)
