"""Help pages: iovkit.cli.helplayout draws every page as typer's rich renderer draws it, without importing rich.

The comparison is what a reader sees: each character of each line and the attributes it is shown with (bold,
dim, colour). How many escape sequences draw a run of equal style is not compared: rich writes one per span,
helplayout one per run.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer import rich_utils

from iovkit.cli import helppage, helpview
from iovkit.cli.helplayout import Text, Unsupported, terminal, text_lines
from iovkit.cli.main import app

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _cells(out: str) -> list[list[tuple[str, frozenset[str]]]]:
    """Each line as (character, SGR attributes it is drawn with)."""
    lines = []
    for raw in out.split("\n"):
        state: frozenset[str] = frozenset()
        row, pos = [], 0
        for m in _SGR.finditer(raw):
            row += [(ch, state) for ch in raw[pos : m.start()]]
            state = frozenset() if m.group(1) in ("0", "") else frozenset(m.group(1).split(";"))
            pos = m.end()
        row += [(ch, state) for ch in raw[pos:]]
        lines.append(row)
    return lines


def _pages(tree: typer.Typer = app) -> list[tuple[Any, Any]]:
    root = typer.main.get_group(tree)
    pages = [(root, root.context_class(root, info_name="iovkit", **root.context_settings))]
    for cmd, ctx in pages:  # grows while walked: every group's commands
        for name in cmd.list_commands(ctx) if isinstance(cmd, typer.core.TyperGroup) else []:
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            pages.append((sub, sub.context_class(sub, info_name=name, parent=ctx)))
    return pages


def _typers(capsys: pytest.CaptureFixture[str], cmd: Any, ctx: Any) -> str:
    rich_utils.rich_format_help(obj=cmd, ctx=ctx, markup_mode="rich")
    return capsys.readouterr().out


def _ours(capsys: pytest.CaptureFixture[str], cmd: Any, ctx: Any) -> str:
    helpview.render_help(cmd, ctx)
    return capsys.readouterr().out


@pytest.fixture
def colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", True)  # typer read its copy of FORCE_COLOR on import


@pytest.mark.usefixtures("colours")
@pytest.mark.parametrize("columns", [20, 33, 40, 57, 80, 101, 120, 200])
def test_every_page_looks_as_typers_renderer_draws_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    """Panels, wrapping, folded types, defaults beside or under the help, ellipses, colours: at any width."""
    monkeypatch.setenv("COLUMNS", str(columns))
    pages = _pages()
    assert len(pages) > 20
    for cmd, ctx in pages:
        theirs = _typers(capsys, cmd, ctx)
        helppage.page(cmd, ctx, terminal().width)  # raises Unsupported if a page would take the slow path
        ours = _ours(capsys, cmd, ctx)
        assert _cells(ours) == _cells(theirs), ctx.command_path


@pytest.mark.parametrize("columns", ["80", "44"])
def test_without_a_terminal_the_page_is_typers_byte_for_byte(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """Piped or redirected (`iovkit check --help > f`), no escape codes: the same bytes, trailing spaces and all."""
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr(rich_utils, "FORCE_TERMINAL", None)
    for cmd, ctx in _pages():
        theirs, ours = _typers(capsys, cmd, ctx), _ours(capsys, cmd, ctx)
        assert "\x1b" not in ours
        assert ours == theirs, ctx.command_path


@pytest.mark.usefixtures("colours")
def test_no_color_keeps_bold_and_dim_and_drops_colours(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    cmd, ctx = next((c, x) for c, x in _pages() if x.command_path == "iovkit check")
    theirs, ours = _typers(capsys, cmd, ctx), _ours(capsys, cmd, ctx)
    codes = {code for m in _SGR.finditer(ours) for code in m.group(1).split(";")}
    assert {"1", "2"} <= codes and not codes & {str(c) for c in range(30, 38)}
    assert _cells(ours) == _cells(theirs)


def _tiny(help_text: str) -> tuple[Any, Any]:
    tiny = typer.Typer(add_completion=False)

    @tiny.command(help=help_text)
    def one(flag: bool = typer.Option(False, "--flag", help=help_text)) -> None:
        """Unused."""

    @tiny.command()
    def two() -> None:
        """Unused."""

    helpview.use_help_view(tiny)
    return next((c, x) for c, x in _pages(tiny) if x.info_name == "one")


@pytest.mark.usefixtures("colours")
@pytest.mark.parametrize(
    ("help_text", "columns", "shown"),
    [
        ("Say it [bold]loudly[/bold]", "80", "Say it loudly"),  # rich markup: rich reads the tags
        ("Thumbs :thumbs_up: up", "80", "Thumbs 👍 up"),  # an emoji code
        ("Wide 漢字 text", "80", "Wide 漢字 text"),  # double-width characters
        ("Plain words", "12", "Plain"),  # too narrow for helplayout's rules
    ],
)
def test_what_helplayout_cannot_draw_is_drawn_by_typers_renderer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, help_text: str, columns: str, shown: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    cmd, ctx = _tiny(help_text)
    with pytest.raises(Unsupported):
        helppage.page(cmd, ctx, terminal().width)
    theirs, ours = _typers(capsys, cmd, ctx), _ours(capsys, cmd, ctx)
    assert ours == theirs
    assert shown in _SGR.sub("", ours)


_words = st.lists(
    st.tuples(st.sampled_from(["", " ", "  ", "\n"]), st.text("ab-|<>[]x", min_size=1, max_size=14)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    words=_words,
    width=st.integers(1, 30),
    justify=st.sampled_from([None, "left"]),
    overflow=st.sampled_from(["fold", "ellipsis", "crop"]),
    no_wrap=st.booleans(),
)
def test_wrapping_matches_rich(
    words: list[tuple[str, str]], width: int, justify: str | None, overflow: str, no_wrap: bool
) -> None:
    """The word wrap every cell goes through, against rich's own Text at the same width and settings."""
    from rich.console import Console
    from rich.text import Text as RichText

    plain = "".join(space + word for space, word in words)
    console = Console(width=200, force_terminal=False, color_system=None)
    theirs = RichText(plain).wrap(console, width, justify=justify, overflow=overflow, no_wrap=no_wrap)
    ours = text_lines(Text(plain), width, justify, overflow, no_wrap)
    assert [line[0].rstrip() for line in ours] == [t.plain.rstrip() for t in theirs]
    assert all(len(line[0]) == width for line in ours)


def test_a_run_that_prints_no_help_does_not_load_the_layout() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from iovkit.cli.main import main; rc = main(['collect', '--list-examples']); "
        "print(rc, sorted(m for m in sys.modules if m.startswith(('iovkit.cli.help', 'rich.table'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "hyperv-ready" in r.stdout and r.stdout.splitlines()[-1] == "0 ['iovkit.cli.helpview']"
