"""The text layout of a help page (wrapped text, tables, panels, colours), drawn without importing rich.

Why: a `--help` that imports rich's console, table and panel modules and lays the page out through them spends
about 30 ms there, more than the rest of the start-up (bench/startup.py). A help page needs a small part of that
machinery: plain text with styled spans, word wrapping, tables without borders, rounded panels with a title,
padding, and SGR colour codes. This module does that part with rich's layout rules (its wrapping, column widths
and panel geometry), so a page looks exactly as typer's renderer draws it: tests/test_help_pages.py compares every
page with the installed typer and rich, character by character and style by style, at many widths, so a rich or
typer upgrade that lays pages out differently fails there.

Anything outside that part raises `Unsupported` (markup tags, emoji codes, ANSI text, wide or control
characters, an unknown style word, a non-UTF-8 or Windows console), and the caller draws the page with typer's
own renderer instead.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# A style is (attribute bits, foreground SGR code or None); a line is its characters and one style each.
Style = tuple[int, "int | None"]
NULL: Style = (0, None)
Line = tuple[str, list[Style]]

_ATTRS = {"bold": 1, "b": 1, "dim": 2, "d": 2, "italic": 4, "i": 4, "underline": 8, "u": 8}
_SGR_ATTRS = ((1, "1"), (2, "2"), (4, "3"), (8, "4"))
_BASIC = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_COLORS = {name: 30 + n for n, name in enumerate(_BASIC)} | {f"bright_{c}": 90 + n for n, c in enumerate(_BASIC)}
_COLORS["default"] = 39

# rich's markup tag and emoji code patterns: text holding either is drawn by rich itself.
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_EMOJI = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


class Unsupported(Exception):
    """This page holds something the layout here does not draw as rich would."""


def parse_style(spec: str) -> Style:
    """`bold cyan`, `dim`, `red`... (the words typer's help styles use)."""
    attrs, color = 0, None
    for word in spec.lower().split():
        if word in _ATTRS:
            attrs |= _ATTRS[word]
        elif word in _COLORS:
            color = _COLORS[word]
        else:
            raise Unsupported(f"style word {word!r}")
    return attrs, color


def over(under: Style, top: Style) -> Style:
    """`top` drawn over `under`: attributes add up, the top colour wins."""
    return under[0] | top[0], top[1] if top[1] is not None else under[1]


def _check(plain: str) -> None:
    for ch in plain:
        if ch == "\n" or " " <= ch <= "~":
            continue
        if unicodedata.category(ch)[0] in "CMZ" or unicodedata.east_asian_width(ch) in "WF":
            raise Unsupported(f"character {ch!r}")


@dataclass
class Text:
    """Plain text with a base style and styled spans (later spans drawn over earlier ones)."""

    plain: str
    style: Style = NULL
    spans: list[tuple[int, int, Style]] = field(default_factory=list)
    overflow: str | None = None
    no_wrap: bool | None = None  # None: the column decides

    def __post_init__(self) -> None:
        _check(self.plain)

    @classmethod
    def markup(cls, text: str, style: Style = NULL) -> Text:
        """Help prose: rich would read markup tags and emoji codes in it, so text holding them is not ours."""
        if "[" in text and _TAG.search(text):
            raise Unsupported("markup tag")
        if ":" in text and any(m.group(2) for m in _EMOJI.finditer(text)):
            from rich._emoji_codes import EMOJI  # only for text that has a :name: at all

            if any(m.group(2).lower() in EMOJI for m in _EMOJI.finditer(text)):
                raise Unsupported("emoji code")
        if "\033" in text:
            raise Unsupported("ANSI codes")
        return cls(text, style)

    def highlight(self, patterns: Sequence[re.Pattern[str]], theme: dict[str, Style]) -> Text:
        """A copy with a span for every named group each pattern matches (rich's RegexHighlighter)."""
        spans = list(self.spans)
        for pattern in patterns:
            for m in pattern.finditer(self.plain):
                for name in m.groupdict():
                    start, end = m.span(name)
                    if start > -1 and end > start:
                        spans.append((start, end, theme[name]))
        return Text(self.plain, self.style, spans, self.overflow, self.no_wrap)

    def styles(self) -> list[Style]:
        out = [self.style] * len(self.plain)
        for start, end, style in self.spans:
            for i in range(start, min(end, len(out))):
                out[i] = over(out[i], style)
        return out

    def measure(self) -> tuple[int, int]:
        """(longest word, longest line), as rich measures text."""
        lines = self.plain.splitlines()
        widest = max((len(line) for line in lines), default=0)
        words = self.plain.split()
        return (max(len(w) for w in words) if words else widest), widest


def _breaks(text: str, width: int, fold: bool) -> list[int]:
    """Where a line of text breaks to fit `width` (rich's greedy word wrap, folding over-long words or not)."""
    breaks: list[int] = []
    offset = 0
    for m in _WORD.finditer(text):
        start, word = m.start(), m.group(0)
        need = len(word.rstrip())
        if width - offset >= need:
            offset += len(word)
        elif need > width:
            if fold:
                chunks = [word[i : i + width] for i in range(0, len(word), width)]
                for n, chunk in enumerate(chunks):
                    if start:
                        breaks.append(start)
                    if n == len(chunks) - 1:
                        offset = len(chunk)
                    else:
                        start += len(chunk)
            else:
                if start:
                    breaks.append(start)
                offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


def text_lines(
    text: Text, width: int, justify: str | None = None, overflow: str | None = None, no_wrap: bool = False
) -> list[Line]:
    """`text` wrapped into lines of exactly `width` cells (short lines padded with unstyled spaces)."""
    how = text.overflow or overflow or "fold"
    no_wrap = text.no_wrap if text.no_wrap is not None else no_wrap
    styles = text.styles()
    out: list[Line] = []
    at = 0
    for raw in text.plain.split("\n"):
        mine = styles[at : at + len(raw)]
        at += len(raw) + 1
        cuts = [0, *([] if no_wrap else _breaks(raw, width, how == "fold")), len(raw)]
        for a, b in itertools.pairwise(cuts):
            chars, st = raw[a:b], mine[a:b]
            if not no_wrap and len(chars) > width:  # whitespace past the edge goes
                m = _TRAILING_SPACE.search(chars)
                if m is not None:
                    cut = min(len(m.group(0)), len(chars) - width)
                    chars, st = chars[: len(chars) - cut], st[: len(st) - cut]
            if len(chars) > width:
                if how == "ellipsis":
                    chars, st = chars[: width - 1] + "…", [*st[: width - 1], st[width - 1]]
                else:
                    chars, st = chars[:width], st[:width]
            if justify == "left" and len(chars) < width:
                st = st + [text.style] * (width - len(chars))
                chars = chars.ljust(width)
            out.append((chars.ljust(width), st + [NULL] * (width - len(chars))))
    return out


def pad_line(line: Line, left: int, right: int, style: Style = NULL) -> Line:
    return " " * left + line[0] + " " * right, [style] * left + line[1] + [style] * right


def blank(width: int, style: Style = NULL) -> Line:
    return " " * width, [style] * width


def under(lines: list[Line], style: Style) -> list[Line]:
    """Draw every character over `style` (a cell's or a column's style beneath its content)."""
    if style == NULL:
        return lines
    return [(chars, [over(style, s) for s in st]) for chars, st in lines]


# --- tables (rich's grid rules: padding (0, 1), no padding at the edges, no borders) ---------------------------

Measure = tuple[int, int]


@dataclass
class Column:
    width: int | None = None  # fixed content width
    ratio: int | None = None
    no_wrap: bool = False
    style: Style = NULL
    justify: str = "left"
    overflow: str = "ellipsis"


class Cell:
    """Something a table cell holds: it says how wide it wants to be and draws itself at a width."""

    def measure(self, width: int) -> Measure:
        raise NotImplementedError

    def lines(self, width: int, column: Column) -> list[Line]:
        raise NotImplementedError


class TextCell(Cell):
    def __init__(self, text: Text) -> None:
        self.text = text

    def measure(self, width: int) -> Measure:
        return _clean(self.text.measure(), width)

    def lines(self, width: int, column: Column) -> list[Line]:
        return text_lines(self.text, width, column.justify, column.overflow, column.no_wrap)


class FlowCell(Cell):
    """One or more texts laid side by side where they fit, else one under another (rich's Columns).

    Like rich's Columns it claims all the width it is offered, so a help column takes what the others leave."""

    def __init__(self, texts: list[Text]) -> None:
        self.texts = texts

    def measure(self, width: int) -> Measure:
        return (0, width) if width >= 1 else (0, 0)

    def lines(self, width: int, column: Column) -> list[Line]:
        if len(self.texts) == 1:
            return text_lines(self.texts[0], width, column.justify, column.overflow, column.no_wrap)
        wants = [_clean(t.measure(), width)[1] for t in self.texts]
        count = len(self.texts)
        while count > 1:
            widths: dict[int, int] = {}
            col, fits = 0, True
            for w in wants + [0] * ((count - len(wants) % count) % count):
                widths[col] = max(widths.get(col, 0), w)
                if sum(widths.values()) + (len(widths) - 1) > width:
                    count, fits = len(widths) - 1, False
                    break
                col = (col + 1) % count
            if fits:
                break
        cells: list[Cell] = [TextCell(t) for t in self.texts]
        cells += [TextCell(Text(""))] * ((count - len(cells) % count) % count)
        rows = [cells[i : i + count] for i in range(0, len(cells), count)]
        grid = table_lines(rows, [Column() for _ in range(count)], width, expand=False, collapse=True)
        return [(c.ljust(width), st + [NULL] * (width - len(c))) for c, st in grid]


def _clean(m: Measure, width: int) -> Measure:
    """rich's Measurement.get: normalised, capped at the width, nothing if under one cell."""
    if width < 1:
        return 0, 0
    low, high = m
    low = min(max(0, low), high)
    low, high = max(0, low), max(0, max(low, high))
    low, high = min(low, width), min(high, width)
    if high < 1:
        return 0, 0
    low = min(max(0, low), high)
    return max(0, low), max(0, max(low, high))


def _pads(index: int, count: int, collapse: bool) -> tuple[int, int]:
    """(left, right) padding of a column's cells."""
    left = 0 if (collapse or index == 0) else 1
    right = 0 if index == count - 1 else 1
    return left, right


def _measure_column(column: Column, cells: list[Cell], pads: tuple[int, int], width: int) -> Measure:
    if width < 1:
        return 0, 0
    extra = sum(pads)
    if column.width is not None:
        return min(column.width + extra, width), min(column.width + extra, width)
    lows, highs = [], []
    for cell in cells:
        if width - extra < 1:
            m = (width, width)
        else:
            low, high = cell.measure(width)
            m = min(low + extra, width), min(high + extra, width)
        low, high = _clean(m, width)
        lows.append(low)
        highs.append(high)
    return min(max(lows) if lows else 1, width), min(max(highs) if highs else width, width)


def _reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """Take `total` off `values` in proportion to `ratios`, no more than `maximums` each (rich's ratio_reduce)."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    left_ratio = sum(ratios)
    if not left_ratio:
        return values[:]
    remaining, out = total, []
    for r, most, v in zip(ratios, maximums, values, strict=True):
        if r and left_ratio > 0:
            cut = min(most, round(r * remaining / left_ratio))
            out.append(v - cut)
            remaining -= cut
            left_ratio -= r
        else:
            out.append(v)
    return out


def _distribute(total: int, ratios: list[int], minimums: list[int] | None = None) -> list[int]:
    """Share `total` out in proportion to `ratios`, rounding up (rich's ratio_distribute)."""
    if minimums:
        ratios = [r if m else 0 for r, m in zip(ratios, minimums, strict=True)]
    left_ratio = sum(ratios)
    remaining, out = total, []
    for r, low in zip(ratios, minimums or [0] * len(ratios), strict=True):
        share = max(low, math.ceil(r * remaining / left_ratio)) if left_ratio > 0 else remaining
        out.append(share)
        left_ratio -= r
        remaining -= share
    return out


def _collapse(widths: list[int], wrapable: list[bool], most: int) -> list[int]:
    """Narrow the widest wrapable columns first until the table fits (rich's column collapsing)."""
    total = sum(widths)
    excess = total - most
    if any(wrapable):
        while total and excess > 0:
            top = max(w for w, ok in zip(widths, wrapable, strict=True) if ok)
            second = max(w if ok and w != top else 0 for w, ok in zip(widths, wrapable, strict=True))
            ratios = [1 if (w == top and ok) else 0 for w, ok in zip(widths, wrapable, strict=True)]
            if not any(ratios) or not top - second:
                break
            widths = _reduce(excess, ratios, [min(excess, top - second)] * len(widths), widths)
            total = sum(widths)
            excess = total - most
    return widths


def column_widths(rows: list[list[Cell]], columns: list[Column], most: int, expand: bool, collapse: bool) -> list[int]:
    """Each column's width, padding included (rich's Table._calculate_column_widths for these tables)."""
    n = len(columns)
    pads = [_pads(i, n, collapse) for i in range(n)]
    cells = [[row[i] for row in rows] for i in range(n)]
    ranges = [_measure_column(c, cells[i], pads[i], most) for i, c in enumerate(columns)]
    widths = [high or 1 for _, high in ranges]
    if expand:
        ratios = [c.ratio or 0 for c in columns if c.ratio]
        if any(ratios):
            fixed = [0 if c.ratio else high for (_, high), c in zip(ranges, columns, strict=True)]
            minimum = [(c.width or 1) + sum(pads[i]) for i, c in enumerate(columns) if c.ratio]
            flex = iter(_distribute(most - sum(fixed), ratios, minimum))
            widths = [fixed[i] + next(flex) if c.ratio else widths[i] for i, c in enumerate(columns)]
    total = sum(widths)
    if total > most:
        widths = _collapse(widths, [c.width is None and not c.no_wrap for c in columns], most)
        total = sum(widths)
        if total > most:
            widths = _reduce(total - most, [1] * n, widths, widths)
            total = sum(widths)
        widths = [
            _measure_column(c, cells[i], pads[i], w)[1] or 0
            for i, (c, w) in enumerate(zip(columns, widths, strict=False))
        ]
    if total < most and expand:
        widths = [w + extra for w, extra in zip(widths, _distribute(most - total, widths), strict=True)]
    return widths


def table_lines(
    rows: list[list[Cell]], columns: list[Column], most: int, *, expand: bool, collapse: bool
) -> list[Line]:
    """A borderless table of `rows`, columns one space apart, at most `most` cells wide."""
    widths = column_widths(rows, columns, most, expand, collapse)
    n = len(columns)
    out: list[Line] = []
    for row in rows:
        drawn: list[list[Line]] = []
        for i, (cell, column, width) in enumerate(zip(row, columns, widths, strict=True)):
            left, right = _pads(i, n, collapse)
            inner = width - left - right
            lines = cell.lines(inner, column) if inner > 0 else [("", [])]
            lines = [pad_line((c[:inner], st[:inner]), left, right) for c, st in lines]
            drawn.append(under(lines, column.style))
        height = max(len(d) for d in drawn)
        for i, d in enumerate(drawn):
            d += [blank(widths[i], columns[i].style)] * (height - len(d))
        for k in range(height):
            out.append(("".join(d[k][0] for d in drawn), [s for d in drawn for s in d[k][1]]))
    return out


# --- the page ---------------------------------------------------------------------------------------------------


def padded(lines: list[Line], width: int, top: int, right: int, bottom: int, left: int) -> list[Line]:
    """Lines of `width - left - right` cells inside blank margins, `width` cells in all (rich's Padding)."""
    body = [pad_line(line, left, right) for line in lines]
    return [blank(width)] * top + body + [blank(width)] * bottom


def panel(title: str, body: Callable[[int], list[Line]], width: int, border: Style) -> list[Line]:
    """A rounded box `width` wide, `title` at its top left, `body(width - 4)` inside one space from the edge."""
    inner = width - 4
    head = f" {title} "[:inner]
    top = "╭─" + head + "─" * (inner - len(head)) + "─╮"
    out: list[Line] = [(top, [border] * len(top))]
    for chars, st in body(inner):
        out.append(("│ " + chars + " │", [border, NULL, *st, NULL, border]))
    bottom = "╰" + "─" * (width - 2) + "╯"
    out.append((bottom, [border] * len(bottom)))
    return out


@dataclass
class Terminal:
    """What rich's Console would find: the width, whether to colour, whether colours are dropped (NO_COLOR)."""

    width: int
    colour: bool
    no_color: bool


def terminal(environ: dict[str, str] | os._Environ[str] = os.environ, stream: object = None) -> Terminal:
    """The console as typer sets it up for help (its TERMINAL_WIDTH and FORCE_COLOR switches) and rich reads it."""
    stream = sys.stdout if stream is None else stream
    if sys.platform == "win32":
        raise Unsupported("Windows console")  # legacy console APIs: rich handles them
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    if not encoding.startswith("utf"):
        raise Unsupported(f"{encoding} output")  # rich would draw ASCII boxes
    force: bool | None = None
    if environ.get("GITHUB_ACTIONS") or environ.get("FORCE_COLOR") or environ.get("PY_COLORS"):
        force = True
    if environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    if force is None:
        compatible = environ.get("TTY_COMPATIBLE", "")
        if compatible in ("0", "1"):
            force = compatible == "1"
        elif environ.get("FORCE_COLOR") is not None:
            force = environ.get("FORCE_COLOR") != ""
        else:
            isatty = getattr(stream, "isatty", None)
            try:
                force = bool(isatty()) if isatty is not None else False
            except ValueError:
                force = False
    dumb = force and environ.get("TERM", "").lower() in ("dumb", "unknown")
    width: int | None = None
    asked = environ.get("TERMINAL_WIDTH") or None
    columns = environ.get("COLUMNS")
    if asked is not None:
        try:
            width = int(asked)
        except ValueError:
            raise Unsupported(f"TERMINAL_WIDTH={asked!r}") from None
    elif columns is not None and columns.isdigit():
        width = int(columns)
    lines = environ.get("LINES")
    if dumb and not (width is not None and lines is not None and lines.isdigit()):
        width = 80
    if width is None:
        for fd in (0, 1, 2):
            try:
                width = os.get_terminal_size(fd).columns
                break
            except (AttributeError, ValueError, OSError):
                continue
        width = width or 80
    if width < 20:
        raise Unsupported(f"{width} columns")  # rich's layout degenerates below this; let it draw its own
    return Terminal(width, bool(force) and not dumb, environ.get("NO_COLOR", "") != "")


def write(lines: list[Line], term: Terminal, out: Callable[[str], object]) -> None:
    """The lines with SGR codes where a style shows (one code per run of equal style), as one write."""
    parts: list[str] = []
    for chars, st in lines:
        if not term.colour:
            parts.append(chars + "\n")
            continue
        i = 0
        while i < len(chars):
            j = i + 1
            while j < len(chars) and st[j] == st[i]:
                j += 1
            attrs, colour = st[i]
            if term.no_color:
                colour = None
            codes = [code for bit, code in _SGR_ATTRS if attrs & bit] + ([str(colour)] if colour is not None else [])
            parts.append(f"\x1b[{';'.join(codes)}m{chars[i:j]}\x1b[0m" if codes else chars[i:j])
            i = j
        parts.append("\n")
    out("".join(parts))
