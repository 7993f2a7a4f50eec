"""Help pages in typer's rich layout, laid out by iovkit.cli.helplayout without importing rich or typer.rich_utils.

Why: typer.rich_utils imports rich.markdown (with markdown_it) and rich.traceback (with pygments) when it loads,
and drawing a page through rich's console, table and panel costs about 30 ms more; a `--help` is mostly that
(bench/startup.py). The page keeps typer's look: usage, the help text, one panel per `rich_help_panel`
(arguments, options, commands), the epilog (each command's exit codes), typer's styles and its environment
switches (TERMINAL_WIDTH, FORCE_COLOR...). What helplayout cannot draw as rich would (markup tags, emoji codes,
wide characters, a Windows or non-UTF-8 console, under 20 columns) and commands built with another markup mode
are drawn by typer's own renderer.
"""

from __future__ import annotations

import sys

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder


def render_help(cmd: _click.Command, ctx: _click.Context) -> None:
    """Print `cmd`'s help page (typer's rich layout) to standard output; typer's renderer draws what
    helplayout cannot draw the way rich would (see its docstring)."""
    from iovkit.cli.helplayout import Unsupported, terminal, write
    from iovkit.cli.helppage import page

    try:
        term = terminal()
        lines = page(cmd, ctx, term.width)
    except Unsupported:
        from typer import rich_utils

        rich_utils.rich_format_help(obj=cmd, ctx=ctx, markup_mode="rich")
        return
    write(lines, term, sys.stdout.write)


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
