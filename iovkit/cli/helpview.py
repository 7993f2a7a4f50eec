"""Help pages drawn with rich directly, in typer's layout, without importing typer.rich_utils.

Why: typer.rich_utils imports rich.markdown (with markdown_it) and rich.traceback (with pygments) when it loads,
about 60 ms of a `--help` that otherwise needs only rich's console, table and panel (bench/startup.py). iovkit
writes its help in rich markup, never markdown, so those modules are never used for a help page. The page keeps
typer's look: usage, the help text, one panel per `rich_help_panel` (arguments, options, commands), the epilog
(each command's exit codes), typer's styles and its environment switches (TERMINAL_WIDTH, FORCE_COLOR...).
Commands built with another markup mode fall back to typer's own renderer.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import Any, Literal

import typer
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import DefaultPlaceholder

# typer's help styles (typer/rich_utils.py), so a page looks as it did.
_THEME = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}
_ALIGN: Literal["left"] = "left"


def _console() -> Any:
    from rich.console import Console
    from rich.theme import Theme

    width = os.environ.get("TERMINAL_WIDTH")
    force = (
        True
        if os.environ.get("GITHUB_ACTIONS") or os.environ.get("FORCE_COLOR") or os.environ.get("PY_COLORS")
        else None
    )
    if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(
        theme=Theme(_THEME),
        highlighter=_highlighters()[0],
        color_system="auto",
        force_terminal=force,
        width=int(width) if width else None,
    )


_HIGHLIGHTERS: list[Any] = []


def _highlighters() -> list[Any]:
    """The option, negative-option and type highlighters (rich imported on first help page only)."""
    if not _HIGHLIGHTERS:
        from rich.highlighter import RegexHighlighter

        class Options(RegexHighlighter):
            highlights = [  # noqa: RUF012  (rich declares a list)
                r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
                r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
                r"(?P<types>\<[^\>]+\>)",
                r"(?P<usage>Usage: )",
            ]

        class Negatives(RegexHighlighter):
            highlights = [  # noqa: RUF012  (rich declares a list)
                r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
                r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
            ]

        class Types(RegexHighlighter):
            highlights = [  # noqa: RUF012  (rich declares a list)
                r"^(?P<types_sep>(\[|<))",
                r"(?P<types_sep>\|)",
                r"(?P<types_sep>(\]|>))(\.\.\.)?$",
            ]

        _HIGHLIGHTERS.extend((Options(), Negatives(), Types()))
    return _HIGHLIGHTERS


def _text(text: str, style: str = "") -> Any:
    """Help prose in rich markup (ANSI passed through), options highlighted."""
    from rich.text import Text

    text = inspect.cleandoc(text)
    made = Text.from_ansi(text, style=style) if "\033[" in text else Text.from_markup(text, style=style)
    return _highlighters()[0](made)


def _help_text(cmd: _click.Command) -> Iterable[Any]:
    from rich.text import Text

    if cmd.deprecated:
        yield Text("(deprecated) ", style="red")
    first, *rest = inspect.cleandoc(cmd.help or "").partition("\f")[0].split("\n\n")
    if not first.startswith("\b"):
        first = first.replace("\n", " ")
    yield _text(first.strip())
    if rest:
        yield Text("")
        yield _text("\n\n".join(rest), style="dim")


def _param_help(param: _click.Parameter, ctx: _click.Context) -> Any:
    from rich.columns import Columns
    from rich.text import Text

    items: list[Any] = []
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
        items.append(Text(f"[env var: {shown}]", style="dim yellow"))
    if isinstance(param, (TyperOption, TyperArgument)):
        default = param._extract_default_help_str(ctx=ctx)
        as_str = isinstance(param.show_default, str)
        if as_str or (default is not None and (param.show_default or ctx.show_default)):
            shown = param._get_default_string(ctx=ctx, show_default_is_str=as_str, default_value=default)
            if shown:
                items.append(Text(f"[default: {shown}]", style="dim"))
    if param.required:
        items.append(Text("[required]", style="dim red"))
    return _Cell(items[0]) if len(items) == 1 else Columns(items)


class _Cell:
    """One help text in a table cell, laid out as rich's Columns lays out a single item (same width claim, same
    wrapping) without Columns' inner grid: most options have no default to show, and the grid per row is most of
    the drawing time."""

    def __init__(self, text: Any) -> None:
        self.text = text

    def __rich_console__(self, console: Any, options: Any) -> Iterable[Any]:
        yield self.text


def _params_panel(name: str, params: list[Any], ctx: _click.Context, page: list[Any]) -> None:
    if not params:
        return
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    options, negatives, types = _highlighters()
    rows: list[list[Any]] = []
    required: list[Any] = []
    for param in params:
        label = None
        if isinstance(param, TyperArgument):
            label = param.display_name_raw + ("..." if param.metavar is None and param.nargs != 1 else "")
        long = [o for o in param.opts if "--" in o]
        short = [label or o for o in param.opts if "--" not in o]
        neg_long = [o for o in param.secondary_opts if "--" in o]
        neg_short = [label or o for o in param.secondary_opts if "--" not in o]
        kind = Text(style="bold yellow", overflow="fold")
        shown = param.display_type_rich(ctx=ctx)
        if shown is not None:
            kind.append(shown)
        span = param._get_number_range_help_str()
        if span:
            kind.append(f" [{span}]")
        required.append(Text("*", style="red") if param.required else "")
        rows.append(
            [
                options(",".join(long)),
                options(",".join(short)),
                negatives(",".join(neg_long)),
                negatives(",".join(neg_short)),
                types(kind),
                _param_help(param, ctx),
            ]
        )
    table = Table(highlight=True, show_header=False, expand=True, box=None, leading=0, pad_edge=False, padding=(0, 1))
    for mark, row in zip(required, rows, strict=True):
        table.add_row(*([mark, *row] if any(required) else row))
    page.append(Panel(table, border_style="dim", title=name, title_align=_ALIGN))


def _commands_panel(name: str, commands: list[_click.Command], width: int, page: list[Any]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table(highlight=False, show_header=False, expand=True, box=None, leading=0, pad_edge=False, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True, width=width)
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    deprecated = any(c.deprecated for c in commands)
    for c in commands:
        first = inspect.cleandoc(c.short_help or c.help or "").split("\n\n")[0]
        if first.startswith("\b"):
            first = first.replace("\b\n", "")
        row = [Text(c.name or "", style="dim" if c.deprecated else ""), _text(first.strip())]
        if deprecated:
            row.append(Text("(deprecated) ", style="red") if c.deprecated else None)
        table.add_row(*row)
    if table.row_count:
        page.append(Panel(table, border_style="dim", title=name, title_align=_ALIGN))


def render_help(cmd: _click.Command, ctx: _click.Context) -> None:
    """Print `cmd`'s help page (typer's rich layout, rich markup) to standard output."""
    from rich.align import Align
    from rich.console import Group
    from rich.padding import Padding
    from rich.styled import Styled

    page: list[Any] = [Styled(Padding(_highlighters()[0](cmd.get_usage(ctx)), 1), "bold")]
    if cmd.help:
        page.append(Padding(Align(Group(*_help_text(cmd)), pad=False), (0, 1, 1, 1)))
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
            _params_panel(name, params, ctx, page)
    if isinstance(cmd, TyperGroup):
        commands: dict[str, list[_click.Command]] = {"Commands": []}
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                commands.setdefault(getattr(sub, "rich_help_panel", None) or "Commands", []).append(sub)
        width = max((len(c.name or "") for cs in commands.values() for c in cs), default=0)
        for name, cs in commands.items():
            _commands_panel(name, cs, width, page)
    if cmd.epilog:
        page.append(Padding(Align(_text("\n\n".join(cmd.epilog.split("\n\n"))), pad=False), 1))
    _console().print(Group(*page))  # one print: the width is looked up and the output written once


class HelpCommand(TyperCommand):
    """A typer command whose help page is drawn by render_help."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        if self.rich_markup_mode != "rich":
            return super().format_help(ctx, formatter)
        render_help(self, ctx)
        return None


class HelpGroup(TyperGroup):
    """A typer group whose help page is drawn by render_help."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        if self.rich_markup_mode != "rich":
            return super().format_help(ctx, formatter)
        render_help(self, ctx)
        return None


def use_help_view(app: typer.Typer) -> None:
    """Draw the help of `app`, its commands and its sub-apps (all levels) with render_help."""
    if _unset(app.info.cls) or app.info.cls is TyperGroup:
        app.info.cls = HelpGroup
    for info in app.registered_commands:
        if _unset(info.cls) or info.cls is TyperCommand:
            info.cls = HelpCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_help_view(group.typer_instance)
        if group.cls is TyperGroup:
            group.cls = HelpGroup


def _unset(value: object) -> bool:
    return value is None or isinstance(value, DefaultPlaceholder)
