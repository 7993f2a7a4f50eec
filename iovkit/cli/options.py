"""The CLI vocabulary, defined once: input, WinRM and output options, formats, help panels, exit codes.

Every command builds its signature from these so a flag means one thing everywhere and shows in the same help
panel. This module imports typer only (no pydantic, no snapshot, no traffic stack): `iovkit --version` and
`iovkit check --help` must start about as fast as typer itself (bench/startup.py measures it).

A new command reuses them like this:

    def fleet_cmd(inventory: ..., fmt: FormatTableJsonHtml = "table", output: OutputOpt = None) -> int: ...
    app.command("fleet", rich_help_panel=ASSESS, epilog=exit_codes(ok="every host ready", findings="..."))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperArgument, TyperOption

# Help panels: the top-level help groups commands in this order; options group by what they are about.
ASSESS = "Assess"
SWITCH_OVER = "Switch over"
MEASURE = "Measure"
REFERENCE = "Reference"
COMMAND_PANELS = (ASSESS, SWITCH_OVER, MEASURE, REFERENCE)

INPUT_PANEL = "Input"
WINRM_PANEL = "WinRM (remote Hyper-V host)"
OUTPUT_PANEL = "Output"

# Input: one host, from a snapshot file, a capture, a shipped example or a live host.
SnapshotArg = Annotated[
    Path | None,
    typer.Argument(help="A snapshot JSON written by `iovkit collect`", show_default=False, metavar="SNAPSHOT"),
]
FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="Anything collect reads: bundle, Format-List text, Get-NetView folder/.zip, Linux archive",
        show_default=False,
        rich_help_panel=INPUT_PANEL,
    ),
]
ExampleOpt = Annotated[
    str | None,
    typer.Option(
        "--example",
        help="A shipped example host (see `iovkit collect --list-examples`)",
        show_default=False,
        metavar="<name>",
        rich_help_panel=INPUT_PANEL,
    ),
]

# WinRM: the password never comes from argv (IOVKIT_PASSWORD or a prompt).
Auth = Literal["negotiate", "kerberos", "ntlm", "credssp"]
AUTHS: tuple[str, ...] = ("negotiate", "kerberos", "ntlm", "credssp")
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="Remote Hyper-V host over WinRM",
        show_default=False,
        metavar="<host>",
        rich_help_panel=WINRM_PANEL,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="WinRM user (password: IOVKIT_PASSWORD or prompt)",
        show_default=False,
        metavar="<user>",
        rich_help_panel=WINRM_PANEL,
    ),
]
AuthOpt = Annotated[Auth, typer.Option("--auth", help="WinRM authentication", rich_help_panel=WINRM_PANEL)]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        help="WinRM port (default 5985, or 5986 with --ssl)",
        min=1,
        max=65535,
        show_default=False,
        rich_help_panel=WINRM_PANEL,
    ),
]
SslOpt = Annotated[bool, typer.Option("--ssl/--no-ssl", help="WinRM over HTTPS", rich_help_panel=WINRM_PANEL)]

# vSphere (ESXi through the vSphere API): user from --user, password from IOVKIT_PASSWORD or a prompt.
VSPHERE_PANEL = "vSphere (ESXi host or vCenter)"
VsphereOpt = Annotated[
    str | None,
    typer.Option(
        "--vsphere",
        help="vCenter or ESXi host for the vSphere API (HOST[:PORT]); --user names the account",
        show_default=False,
        metavar="<host>",
        rich_help_panel=VSPHERE_PANEL,
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option("--insecure", help="Do not verify the vSphere server's certificate", rich_help_panel=VSPHERE_PANEL),
]
EsxiHostOpt = Annotated[
    str | None,
    typer.Option(
        "--esxi-host",
        help="Through vCenter: the ESXi host to read or change",
        show_default=False,
        metavar="<name>",
        rich_help_panel=VSPHERE_PANEL,
    ),
]

# Output: how a result prints (--format) and where a file goes (-o/--output).
TableJson = Literal["table", "json"]
TableJsonMarkdownJunit = Literal["table", "json", "markdown", "junit"]
TableJsonHtml = Literal["table", "json", "html"]
TableJsonMarkdownHtml = Literal["table", "json", "markdown", "html"]
HtmlJson = Literal["html", "json"]
_FORMAT_HELP = "How to print the result"
FormatTableJson = Annotated[
    TableJson, typer.Option("--format", "-f", help=_FORMAT_HELP, case_sensitive=False, rich_help_panel=OUTPUT_PANEL)
]
FormatTableJsonMarkdownJunit = Annotated[
    TableJsonMarkdownJunit,
    typer.Option("--format", "-f", help=_FORMAT_HELP, case_sensitive=False, rich_help_panel=OUTPUT_PANEL),
]
FormatTableJsonMarkdownHtml = Annotated[
    TableJsonMarkdownHtml,
    typer.Option("--format", "-f", help=_FORMAT_HELP, case_sensitive=False, rich_help_panel=OUTPUT_PANEL),
]
FormatHtmlJson = Annotated[
    HtmlJson, typer.Option("--format", "-f", help=_FORMAT_HELP, case_sensitive=False, rich_help_panel=OUTPUT_PANEL)
]
FormatTableJsonHtml = Annotated[
    TableJsonHtml, typer.Option("--format", "-f", help=_FORMAT_HELP, case_sensitive=False, rich_help_panel=OUTPUT_PANEL)
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr", rich_help_panel=OUTPUT_PANEL)
]


def output_opt(help: str) -> typer.models.OptionInfo:
    """`-o/--output FILE` in the Output panel; the help says what the file is and its default."""
    return typer.Option("--output", "-o", help=help, show_default=False, metavar="<file>", rich_help_panel=OUTPUT_PANEL)


OutputOpt = Annotated[Path | None, output_opt("Write the result here (default: standard output)")]


def duration_opt(help: str, **kw: object) -> typer.models.OptionInfo:
    """`--duration SECONDS`: the total run time of a command that samples or serves."""
    return typer.Option("--duration", help=help, metavar="<seconds>", **kw)  # type: ignore[arg-type]


# Exit codes (iovkit.errors.ExitCode, spelled here to keep this module free of imports).
# Exit 2 is also the answer of an input that cannot answer the question (diagnose: idle, insufficient-data); the
# README's exit-code line and every help page that can give it say it in these words.
CANNOT_ANSWER = "bad input, or an input that cannot answer (idle, insufficient data)"


def exit_codes(
    findings: str | None = None,
    ok: str = "fine",
    extra: dict[int, str | None] | None = None,
    cannot_answer: bool = False,
) -> str:
    """The epilog every command's help ends with: its exit codes in one line (an extra None drops a code);
    `cannot_answer` for a command whose input can be unable to answer (exit 2 then too)."""
    codes: dict[int, str | None] = {
        0: ok,
        2: CANNOT_ANSWER if cannot_answer else "bad input",
        70: "internal error",
        130: "interrupted",
    }
    if findings:
        codes[1] = findings
    codes.update(extra or {})
    return "Exit codes: " + "; ".join(f"{c} {what}" for c, what in sorted(codes.items()) if what) + "."


# Old spellings: still accepted for a while, each with a one-line notice on stderr. Keyed by command path.
# A value of (new, None) renames the option; (new, value) replaces a flag by an option with that value.
DEPRECATED: dict[tuple[str, ...], dict[str, tuple[str, str | None]]] = {
    ("doctor",): {"--seconds": ("--duration", None)},
    ("diagnose",): {"--seconds": ("--duration", None), "--record": ("--output", None)},
    ("bench",): {"--seconds": ("--step-seconds", None), "--json": ("--format", "json")},
    ("compare",): {"--plot": ("--output", None), "--json": ("--format", "json")},
    ("relay",): {"--rate": ("--rate-limit", None), "--json": ("--format", "json")},
    ("script", "counters"): {"--seconds": ("--duration", None)},
    ("script", "plan"): {"--output-dir": ("--output", None)},
}
# Old values of an option: (command path, option) -> {old: new}.
DEPRECATED_VALUES: dict[tuple[tuple[str, ...], str], dict[str, str]] = {
    (("diagnose",), "--format"): {"rich": "table"},
}


def _command_path(args: list[str]) -> tuple[str, ...]:
    """The command words at the front of argv (root options such as --debug skipped)."""
    words: list[str] = []
    for a in args:
        if a.startswith("-"):
            if words:
                break
            continue
        words.append(a)
        if words[0] != "script" or len(words) == 2:
            break
    return tuple(words)


def rewrite_deprecated(args: list[str], warn: list[str]) -> list[str]:
    """argv with old spellings replaced by new ones; one notice per old spelling is appended to `warn`."""
    path = _command_path(args)
    renames = DEPRECATED.get(path, {})
    values = {opt: m for (p, opt), m in DEPRECATED_VALUES.items() if p == path}
    if not renames and not values:
        return args
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out += args[i:]
            break
        name, eq, inline = a.partition("=")
        if name in renames:
            new, value = renames[name]
            if value is None:
                warn.append(f"{name} is deprecated; use {new}")
                out.append(f"{new}={inline}" if eq else new)
            else:
                warn.append(f"{name} is deprecated; use {new} {value}")
                out += [new, value]
            i += 1
            continue
        aliases = values.get(name) or (values.get("--format") if name == "-f" else None)
        if aliases is not None:
            raw = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
            if raw in aliases:
                warn.append(f"{name} {raw} is deprecated; use {name} {aliases[raw]}")
                out += [name, aliases[raw]]
                i += 1 if eq else 2
                continue
        out.append(a)
        i += 1
    return out


def _plain(label: str | None) -> str | None:
    """`<list[Path]>` -> `<path>...`: a repeatable value reads as one value that may repeat."""
    m = re.fullmatch(r"<list\[(\w+)\]>", label or "")
    return f"<{m.group(1).lower()}>..." if m else label


def _install_display_fix() -> None:
    """Flags show no `<bool>` in help (a flag takes no value, so there is no type to show), and repeatable values
    show `<path>...` rather than `<list[Path]>`.

    typer 0.2x prints every parameter's type; for a flag that is noise. Explicit metavars still win.
    """
    original = TyperOption.display_type_rich
    if getattr(original, "_iovkit", False):
        return
    original_arg = TyperArgument.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return _plain(original(self, ctx))

    def argument_type_rich(self: TyperArgument, ctx: Any) -> str | None:
        return _plain(original_arg(self, ctx))

    display_type_rich._iovkit = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type_rich  # type: ignore[method-assign,assignment]


_install_display_fix()
