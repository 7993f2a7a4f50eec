"""iovkit.cli.coerce converts plain parameter values without pydantic and must answer exactly as typer does.

It leans on typer internals (typer._coercion's RuntimeParam, a parameter's `_runtime_param`): these tests walk
every parameter of every command and a few of other shapes through both paths, with valid, invalid and edge
values, so a typer upgrade that changes a conversion or a message fails here, not in a user's terminal.
"""

from __future__ import annotations

import datetime
import enum
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer._click import Command, Context
from typer._click.exceptions import ClickException
from typer._coercion import build_runtime_param
from typer.core import TyperGroup, _TyperParameter

from iovkit.cli.coerce import PlainRuntimeParam, plain_runtime_param, use_plain_coercion
from iovkit.cli.main import app

TEXTS = [
    "1", "0", "-0", "-1", "+1", "007", "1_000", " 1", "1 ", "1.0", "1.5", "-2.5", ".5", "5.", "1e3", "1E-2", "0x10",
    "1,5", "１", "inf", "-inf", "nan", "Infinity", "", " ", "99999999999999999999", "123456789012345678",
    "0.05", "0.04", "0.1", "0.09", "1.0", "0.99", "10.0", "10.5", "500", "501", "65535", "65536",
    "True", "true", "TRUE", "yes", "Yes", "no", "on", "off", "t", "f", "y", "n", "2", " true",
    "table", "TABLE", "json", "JSON", "Json", " json", "html", "markdown", "junit", "xml", "negotiate", "NTLM",
    "simulator", "Simulator", "relay", "echo", "sink", "send",
    "x", "capture.csv", "./a/../b/", "/tmp", "/", ".", "..", "~", "-", "a b", "héllo.csv",
    "a\x00b", "a\tb", "a\nb", "\udcff.csv", "127.0.0.1:9464",
]  # fmt: skip
OTHERS: list[Any] = [1, 0, -3, 2**60, 1.0, 0.5, float("nan"), float("inf"), True, False, Path("x.csv"), b"x"]


def outcome(runtime: Any, value: Any, param: _TyperParameter, ctx: Context) -> tuple[str, str, str]:
    try:
        got = runtime.coerce(value, param=param, ctx=ctx)
    except ClickException as e:
        return "error", type(e).__name__, e.format_message()
    except Exception as e:
        return "raises", type(e).__name__, str(e)
    return "value", type(got).__name__, repr(got)


def walk(root: Command) -> list[tuple[_TyperParameter, Context]]:
    """Every typer parameter of the tree (help options included) with a context of its command."""
    found: list[tuple[_TyperParameter, Context]] = []
    todo = [(root, root.context_class(root, info_name="iovkit", **root.context_settings))]
    while todo:
        cmd, ctx = todo.pop()
        for param in [*cmd.params, cmd.get_help_option(ctx)]:
            if isinstance(param, _TyperParameter):
                found.append((param, ctx))
        if isinstance(cmd, TyperGroup):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                todo.append((sub, sub.context_class(sub, info_name=name, parent=ctx)))
    return found


def values_for(param: _TyperParameter, extra: tuple[str, ...] = ()) -> list[Any]:
    values: list[Any] = [*TEXTS, *extra, *OTHERS, param.default]
    if param.multiple or param.nargs == -1:
        return [(), [], ("x",), ("1", "2"), ("json", "JSON"), ("a", ""), ("ok", "a\x00b"), "x", *values]
    return values


def compare(param: _TyperParameter, ctx: Context, extra: tuple[str, ...] = ()) -> int:
    plain = plain_runtime_param(param.type_descriptor)
    assert plain is not None, (ctx.command_path, param.name, param.type_descriptor.annotation)
    theirs = build_runtime_param(param.type_descriptor)
    checked = 0
    for value in values_for(param, extra):
        assert outcome(plain, value, param, ctx) == outcome(theirs, value, param, ctx), (
            ctx.command_path,
            param.name,
            value,
        )
        checked += 1
    return checked


def test_every_parameter_of_every_command_converts_as_typer_does() -> None:
    root = typer.main.get_command(app)
    params = walk(root)
    assert len(params) > 150  # every command, root and help options included
    kinds = {repr(p.type_descriptor.annotation) for p, _ in params}
    assert {"<class 'bool'>", "<class 'int'>", "<class 'float'>", "<class 'str'>", "<class 'pathlib.Path'>"} <= kinds
    assert any("Literal" in k for k in kinds) and "list[pathlib.Path]" in kinds and "list[str]" in kinds
    assert sum(compare(p, ctx) for p, ctx in params) > 10_000


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def _shapes(
    must_exist: Annotated[Path, typer.Option(exists=True)] = Path("."),
    file_only: Annotated[Path, typer.Option(dir_okay=False)] = Path("f"),
    dir_only: Annotated[Path, typer.Option(file_okay=False)] = Path("d"),
    resolved: Annotated[Path, typer.Option(resolve_path=True)] = Path("r"),
    dash: Annotated[Path, typer.Option(allow_dash=True)] = Path("-"),
    writable: Annotated[Path, typer.Option(writable=True)] = Path("w"),
    color: Color = Color.RED,
    colors: Annotated[list[Color], typer.Option()] = [],  # noqa: B006 - typer's way to default a list
    loud: Annotated[Literal["a", "B"], typer.Option(case_sensitive=False)] = "a",
    ranged: Annotated[int, typer.Option(min=-5, max=5)] = 0,
    low: Annotated[float, typer.Option(min=0)] = 0.0,
    paths: Annotated[list[Path], typer.Option(exists=True)] = [],  # noqa: B006
) -> None:
    """Parameter shapes iovkit does not use yet, with typer's own checks behind them."""


def test_other_shapes_convert_as_typer_does(tmp_path: Path) -> None:
    """Path checks (their messages name the file), Enum choices, bounds of both signs: typer's answers."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "locked").write_text("x")
    os.chmod(tmp_path / "locked", 0o444)
    shapes = typer.Typer()
    shapes.command()(_shapes)
    cmd = typer.main.get_command(shapes)
    ctx = cmd.context_class(cmd, info_name="shapes")
    here = tuple(str(tmp_path / n) for n in ("a-file", "a-dir", "missing", "locked"))
    extra = (*here, "RED", "red", "Red", "green", "b", "B", "-5", "-6", "5", "6", "-0.0")
    params = [p for p in cmd.params if isinstance(p, _TyperParameter) and "completion" not in str(p.name)]
    assert len(params) == 12
    assert sum(compare(p, ctx, extra) for p in params) > 1000


def test_shapes_it_does_not_know_stay_typers() -> None:
    """A parser, a clamp, a date or a tuple: typer's own runtime param, as before (pydantic loads then)."""

    def odd(
        clamped: Annotated[int, typer.Option(min=0, max=3, clamp=True)] = 1,
        parsed: Annotated[int, typer.Option(parser=int)] = 1,
        when: datetime.datetime = datetime.datetime(2026, 1, 1),
        pair: tuple[int, str] = (1, "a"),
    ) -> None:
        """Shapes outside iovkit.cli.coerce."""

    odd_app = typer.Typer()
    odd_app.command()(odd)
    cmd = typer.main.get_command(odd_app)
    params = [
        p for p in cmd.params if isinstance(p, _TyperParameter) and p.name in ("clamped", "parsed", "when", "pair")
    ]
    assert [plain_runtime_param(p.type_descriptor) for p in params] == [None] * 4
    use_plain_coercion(cmd)
    assert [p._runtime_param for p in params] == [None] * 4


def test_the_tree_a_run_uses_has_plain_params_everywhere() -> None:
    root = typer.main.get_command(app)
    use_plain_coercion(root)
    assert all(isinstance(p.get_runtime_param(), PlainRuntimeParam) for p, _ in walk(root))


def test_diagnose_as_a_user_runs_it_does_not_import_pydantic(tmp_path: Path) -> None:
    """`iovkit diagnose FILE --format json` on a PDH-CSV pays for neither pydantic nor the whole command tree;
    a value typer must judge still gets typer's one-line error and exit 2."""
    from tests.fixtures import recordings

    csv = tmp_path / "typeperf.csv"
    csv.write_text(recordings.pdh_csv(), newline="")
    code = (
        "import sys; from iovkit.cli import main; rc = main.main(sys.argv[1:]); "
        "print(rc, sorted({m.split('.')[0] for m in sys.modules if m.startswith('pydantic')}), "
        "sorted(m for m in sys.modules if m.startswith('iovkit.cli.') and m.split('.')[2] in main.MODULES))"
    )
    run = [sys.executable, "-c", code, "diagnose", str(csv)]
    ok = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, check=True)
    assert '"verdict": "bottleneck"' in ok.stdout
    rc, loaded = ok.stdout.splitlines()[-1].split(" ", 1)
    assert (rc, loaded) == ("1", "[] ['iovkit.cli.diagnose']")  # no other command module, no pydantic
    bad = subprocess.run([*run, "--min-window", "1_0x"], capture_output=True, text=True, check=True)
    assert bad.stderr == (
        "iovkit: error: Invalid value for '--min-window': Input should be a valid number, unable to parse string "
        "as a number\n"
    )
    assert bad.stdout.splitlines()[-1].startswith("2 ['pydantic', ")  # typer judged it, through pydantic


def test_a_typer_without_these_internals_still_runs_every_command(tmp_path: Path) -> None:
    """typer>=0.15 is allowed and older typers have no runtime params: where iovkit.cli.coerce cannot be imported,
    a run converts through typer alone, with the same output and exit code."""
    from tests.fixtures import recordings

    csv = tmp_path / "typeperf.csv"
    csv.write_text(recordings.pdh_csv(), newline="")
    code = (
        "import sys\n"
        "if sys.argv[1] == 'without':\n"
        "    sys.modules['iovkit.cli.coerce'] = None  # importing it raises ImportError\n"
        "from iovkit.cli.main import main\n"
        "raise SystemExit(main(sys.argv[2:]))\n"
    )
    without, with_ = (
        subprocess.run(
            [sys.executable, "-c", code, how, "diagnose", str(csv), "-f", "JSON", "--min-window", "5"],
            capture_output=True,
            text=True,
            check=False,
        )
        for how in ("without", "with")
    )
    assert (without.returncode, without.stdout, without.stderr) == (with_.returncode, with_.stdout, with_.stderr)
    assert without.returncode == 1 and '"verdict": "bottleneck"' in without.stdout
