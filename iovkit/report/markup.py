"""Small HTML builders shared by the sections; every text goes through escape()."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any


def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {e(kind)}">{e(text)}</span>'


def absent(text: str) -> str:
    """The line a section shows when its data was not given: what is missing and how to get it."""
    return f'<p class="absent">{e(text)}</p>'


def num(v: Any, fmt: str = "{:,.1f}") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return fmt.format(v)
    return e(v)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    table_id: str | None = None,
    row_attrs: Sequence[str] | None = None,
    widths: Sequence[str] | None = None,
) -> str:
    """Cells are HTML already (escape text with e()); `numeric` columns align right; `widths` (CSS, one per
    column) fix the layout so a long command cannot squeeze the other columns."""
    tid = f' id="{e(table_id)}"' if table_id else ""
    if widths:
        tid += ' class="fixed"'
    cols = "<colgroup>" + "".join(f'<col style="width:{e(w)}">' for w in widths) + "</colgroup>" if widths else ""
    head = "".join(
        f'<th class="num">{e(h)}</th>' if i in numeric else f"<th>{e(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for n, row in enumerate(rows):
        attrs = f" {row_attrs[n]}" if row_attrs else ""
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f"<table{tid}>{cols}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv(data: dict[str, Any] | None, limit: int = 12) -> str:
    """Evidence as `key: value` lines (nested values as compact JSON), at most `limit` of them."""
    if not data:
        return ""
    lines = []
    for k, v in list(data.items())[:limit]:
        text = v if isinstance(v, str) else json.dumps(v, default=str, separators=(", ", ": "))
        if len(text) > 160:
            text = text[:157] + "..."
        lines.append(f"{e(k)}: {e(text)}")
    more = f"<br>... {len(data) - limit} more" if len(data) > limit else ""
    return '<div class="ev">' + "<br>".join(lines) + more + "</div>"


def code(text: str | None) -> str:
    return f"<code>{e(text)}</code>" if text else ""


def section(anchor: str, title: str, body: str) -> str:
    return f'<section class="part" id="{e(anchor)}"><h2>{e(title)}</h2>{body}</section>'


def when(ts: float | None, offset_s: float | None = None) -> str:
    """An epoch time as UTC, and as the host's local time when its offset is known (operators read both)."""
    if ts is None:
        return "–"
    utc = datetime.fromtimestamp(ts, UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    if offset_s is not None:
        from datetime import timedelta, timezone

        local = utc.astimezone(timezone(timedelta(seconds=offset_s)))
        text = local.strftime("%H:%M:%S local (UTC%z), ") + text
    return text
