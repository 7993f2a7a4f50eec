"""The content of a help page, from typer's click objects, in typer's rich layout (iovkit.cli.helplayout draws it).

Imported by iovkit.cli.helpview only when a page is drawn, so a run that prints no help does not load the layout.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from typer import _click
from typer.core import TyperArgument, TyperGroup, TyperOption

from iovkit.cli.helplayout import (
    NULL,
    Cell,
    Column,
    FlowCell,
    Line,
    Style,
    Text,
    TextCell,
    padded,
    panel,
    parse_style,
    table_lines,
    text_lines,
    under,
)

# typer's help styles (typer/rich_utils.py), so a page looks as it did.
_THEME_SPECS = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}
# typer's highlighters: options and usage, negative options, the type column.
_OPTIONS = (
    r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
    r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    r"(?P<types>\<[^\>]+\>)",
    r"(?P<usage>Usage: )",
)
_NEGATIVES = (
    r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
    r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
)
_TYPES = (r"^(?P<types_sep>(\[|<))", r"(?P<types_sep>\|)", r"(?P<types_sep>(\]|>))(\.\.\.)?$")


class _Look:
    """Styles and compiled highlighters, made on the first page drawn."""

    def __init__(self) -> None:
        self.theme = {name: parse_style(spec) for name, spec in _THEME_SPECS.items()}
        self.options = [re.compile(p) for p in _OPTIONS]
        self.negatives = [re.compile(p) for p in _NEGATIVES]
        self.types = [re.compile(p) for p in _TYPES]
        self.red, self.dim = parse_style("red"), parse_style("dim")
        self.dim_red, self.dim_yellow = parse_style("dim red"), parse_style("dim yellow")
        self.bold, self.bold_yellow, self.bold_cyan = (
            parse_style("bold"),
            parse_style("bold yellow"),
            parse_style("bold cyan"),
        )

    def opts(self, text: str | Text) -> Text:
        return (Text(text) if isinstance(text, str) else text).highlight(self.options, self.theme)

    def negs(self, text: str) -> Text:
        return Text(text).highlight(self.negatives, self.theme)


_LOOK: list[_Look] = []


def _look() -> _Look:
    if not _LOOK:
        _LOOK.append(_Look())
    return _LOOK[0]


def _text(text: str, style: Style = NULL) -> Text:
    """Help prose (rich markup in typer's reading, which this layout draws only when it has no tags), options
    highlighted."""
    return _look().opts(Text.markup(inspect.cleandoc(text), style))


def _help_text(cmd: _click.Command) -> list[Text]:
    look = _look()
    texts = [Text("(deprecated) ", look.red)] if cmd.deprecated else []
    first, *rest = inspect.cleandoc(cmd.help or "").partition("\f")[0].split("\n\n")
    if not first.startswith("\b"):
        first = first.replace("\n", " ")
    texts.append(_text(first.strip()))
    if rest:
        texts.append(Text(""))
        texts.append(_text("\n\n".join(rest), style=look.dim))
    return texts


def _param_help(param: _click.Parameter, ctx: _click.Context) -> Cell:
    look = _look()
    items: list[Text] = []
    envvar = getattr(param, "envvar", None)
    if envvar is None and getattr(param, "allow_from_autoenv", None) and ctx.auto_envvar_prefix and param.name:
        envvar = f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    help_value: str | None = getattr(param, "help", None)
    if help_value:
        paragraphs = [
            p.replace("\n", " ").strip() if not p.startswith("\b") else "{}\n".format(p.strip("\b\n"))
            for p in help_value.split("\n\n")
        ]
        items.append(_text("\n".join(paragraphs).strip()))
    if envvar and getattr(param, "show_envvar", None):
        shown = envvar if isinstance(envvar, str) else ", ".join(str(d) for d in envvar)
        items.append(Text(f"[env var: {shown}]", look.dim_yellow))
    if isinstance(param, (TyperOption, TyperArgument)):
        default = param._extract_default_help_str(ctx=ctx)
        as_str = isinstance(param.show_default, str)
        if as_str or (default is not None and (param.show_default or ctx.show_default)):
            shown = param._get_default_string(ctx=ctx, show_default_is_str=as_str, default_value=default)
            if shown:
                items.append(Text(f"[default: {shown}]", look.dim))
    if param.required:
        items.append(Text("[required]", look.dim_red))
    return FlowCell(items)


def _params_panel(name: str, params: list[Any], ctx: _click.Context, page: list[Line], width: int) -> None:
    if not params:
        return
    look = _look()
    rows: list[list[Cell]] = []
    required: list[Text] = []
    for param in params:
        label = None
        if isinstance(param, TyperArgument):
            label = param.display_name_raw + ("..." if param.metavar is None and param.nargs != 1 else "")
        long = [o for o in param.opts if "--" in o]
        short = [label or o for o in param.opts if "--" not in o]
        neg_long = [o for o in param.secondary_opts if "--" in o]
        neg_short = [label or o for o in param.secondary_opts if "--" not in o]
        kind = param.display_type_rich(ctx=ctx) or ""
        span = param._get_number_range_help_str()
        if span:
            kind += f" [{span}]"
        required.append(Text("*", look.red) if param.required else Text(""))
        rows.append(
            [
                TextCell(look.opts(",".join(long))),
                TextCell(look.opts(",".join(short))),
                TextCell(look.negs(",".join(neg_long))),
                TextCell(look.negs(",".join(neg_short))),
                TextCell(Text(kind, look.bold_yellow, overflow="fold").highlight(look.types, look.theme)),
                _param_help(param, ctx),
            ]
        )
    if any(r.plain for r in required):
        rows = [[TextCell(mark), *row] for mark, row in zip(required, rows, strict=True)]
    columns = [Column() for _ in rows[0]]
    page += panel(
        Text.markup(name).plain,
        lambda inner: table_lines(rows, columns, inner, expand=True, collapse=False),
        width,
        look.dim,
    )


def _commands_panel(name: str, commands: list[_click.Command], first_width: int, page: list[Line], width: int) -> None:
    look = _look()
    columns = [Column(style=look.bold_cyan, no_wrap=True, width=first_width), Column(ratio=10)]
    deprecated = any(c.deprecated for c in commands)
    if deprecated:
        columns.append(Column())
    rows: list[list[Cell]] = []
    for c in commands:
        first = inspect.cleandoc(c.short_help or c.help or "").split("\n\n")[0]
        if first.startswith("\b"):
            first = first.replace("\b\n", "")
        row: list[Cell] = [
            TextCell(Text(c.name or "", look.dim if c.deprecated else NULL)),
            TextCell(_text(first.strip())),
        ]
        if deprecated:
            row.append(TextCell(Text("(deprecated) ", look.red) if c.deprecated else Text("")))
        rows.append(row)
    if rows:
        page += panel(
            Text.markup(name).plain,
            lambda inner: table_lines(rows, columns, inner, expand=True, collapse=False),
            width,
            look.dim,
        )


def page(cmd: _click.Command, ctx: _click.Context, width: int) -> list[Line]:
    """The page's lines: usage, help text, argument/option/command panels, epilog (typer's rich layout)."""
    look = _look()
    usage = text_lines(look.opts(cmd.get_usage(ctx)), width - 2)
    page = under(padded(usage, width, 1, 1, 1, 1), look.bold)
    if cmd.help:
        texts = [line for t in _help_text(cmd) for line in text_lines(t, width - 2)]
        page += padded(texts, width, 0, 1, 1, 1)
    arguments: dict[str, list[Any]] = {"Arguments": []}
    options: dict[str, list[Any]] = {"Options": []}
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, TyperArgument):
            arguments.setdefault(getattr(param, "rich_help_panel", None) or "Arguments", []).append(param)
        elif isinstance(param, TyperOption):
            options.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(param)
    for panels in (arguments, options):
        for name, params in panels.items():
            _params_panel(name, params, ctx, page, width)
    if isinstance(cmd, TyperGroup):
        commands: dict[str, list[_click.Command]] = {"Commands": []}
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                commands.setdefault(getattr(sub, "rich_help_panel", None) or "Commands", []).append(sub)
        first = max((len(c.name or "") for cs in commands.values() for c in cs), default=0)
        for name, cs in commands.items():
            _commands_panel(name, cs, first, page, width)
    if cmd.epilog:
        page += padded(text_lines(_text("\n\n".join(cmd.epilog.split("\n\n"))), width - 2), width, 1, 1, 1, 1)
    return page
