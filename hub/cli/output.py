"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hub.platform.db import json_default


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def emit_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(data, default=json_default, indent=2, ensure_ascii=False) + "\n")


def _cell(value: Any, width: int | None) -> str:
    text = "-" if value is None else str(value)
    text = " ".join(text.split())
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO | None = None,
          max_width: int = 70, empty: str = "(none)") -> None:
    out = out or sys.stdout
    if not rows:
        out.write(empty + "\n")
        return
    cells = [[_cell(r.get(c), max_width) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
