"""The CLI vocabulary a user meets: --format choices listed, old spellings still work with one notice, grouped help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from iovkit.cli.main import app
from iovkit.cli.options import rewrite_deprecated


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # help rows unwrapped, as on a wide terminal


def _help(cli, *args: str) -> str:  # type: ignore[no-untyped-def]
    r = cli(*args, "--help")
    assert r.code == 0, r.err
    return " ".join(r.out.split())  # rich wraps long lines; compare on words


@pytest.mark.parametrize(
    ("command", "choices"),
    [
        (("check",), "table|json|markdown|junit"),
        (("doctor",), "table|json"),
        (("diagnose",), "table|json"),
        (("bench",), "table|json"),
        (("compare",), "table|json"),
        (("relay",), "table|json"),
        (("apply",), "table|json"),
        (("rollback",), "table|json"),
        (("fleet", "check"), "table|json|markdown|html"),
        (("report",), "html|json"),
    ],
)
def test_every_result_command_declares_its_formats(cli, command: tuple[str, ...], choices: str) -> None:  # type: ignore[no-untyped-def]
    text = _help(cli, *command)
    assert "--format" in text and f"<{choices}" in text


@pytest.mark.parametrize("command", ["check", "doctor", "diagnose", "bench", "compare", "relay"])
def test_a_bad_format_lists_the_valid_ones_in_one_line(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    r = cli(command, "--format", "xml")
    assert r.code == 2
    assert r.err.count("\n") == 1 and "'xml' is not one of" in r.err and "'table', 'json'" in r.err


def test_a_bad_mode_and_auth_list_the_valid_ones(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("bench", "--mode", "flood")
    assert r.code == 2 and "'echo', 'relay'" in r.err
    r = cli("check", "--example", "hyperv-ready", "--host", "h", "--auth", "basic")
    assert r.code == 2 and "'negotiate', 'kerberos', 'ntlm', 'credssp'" in r.err


def test_help_shows_no_type_for_flags_and_choices_instead_of_str(cli) -> None:  # type: ignore[no-untyped-def]
    for command in ("check", "bench", "relay", "diagnose", "collect", "apply", "report", "compare"):
        text = _help(cli, command)
        assert "<bool>" not in text and "<list[" not in text, command
    assert "--before <path>..." in _help(cli, "report")
    assert "--mode <echo|relay|send>" in _help(cli, "bench")
    assert "--mode <relay|echo|sockperf|sink>" in _help(cli, "relay")
    assert "--executor <local|winrm|shell|simulator|vsphere>" in _help(cli, "apply")
    assert "--auth <negotiate|kerberos|ntlm|credssp>" in _help(cli, "doctor")


def test_input_winrm_and_output_options_are_in_their_own_panels(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("check", "--help")
    panels = [line.strip("╭─ ").split(" ─")[0] for line in r.out.splitlines() if line.startswith("╭─")]
    assert panels == [
        "Arguments",
        "Options",
        "Input",
        "WinRM (remote Hyper-V host)",
        "vSphere (ESXi host or vCenter)",
        "Output",
    ]
    winrm = r.out.split("WinRM (remote Hyper-V host)")[1].split("╰")[0]
    for opt in ("--host", "--user", "--auth", "--port", "--ssl"):
        assert opt in winrm
    vsphere = r.out.split("vSphere (ESXi host or vCenter)")[1].split("╰")[0]
    for opt in ("--vsphere", "--insecure", "--esxi-host"):
        assert opt in vsphere


def test_top_level_help_groups_commands_in_order(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("--help")
    panels = [line.strip("╭─ ").split(" ─")[0] for line in r.out.splitlines() if line.startswith("╭─")]
    assert panels == ["Options", "Assess", "Switch over", "Measure", "Reference"]
    assert r.out.index("doctor") < r.out.index("check") < r.out.index("plan") < r.out.index("bench")
    assert "--install-completion" in r.out  # shell completion is on


@pytest.mark.parametrize(
    "command",
    [
        ("doctor",),
        ("collect",),
        ("check",),
        ("diagnose",),
        ("plan",),
        ("apply",),
        ("rollback",),
        ("monitor",),
        ("relay",),
        ("bench",),
        ("compare",),
        ("schema",),
        ("script", "plan"),
    ],
)
def test_each_command_help_ends_with_its_exit_codes(cli, command: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r = cli(*command, "--help")
    last = " ".join(r.out.strip().splitlines()[-3:])
    assert "Exit codes: 0 " in last and "2 bad input" in " ".join(last.split())


def test_every_registered_command_has_a_panel_and_exit_codes() -> None:
    """A command another module adds later must join the vocabulary too."""
    for info in app.registered_commands:
        assert info.rich_help_panel in ("Assess", "Switch over", "Measure", "Reference"), info.name
        assert info.epilog and info.epilog.startswith("Exit codes:"), info.name
    for group in app.registered_groups:
        assert group.rich_help_panel in ("Assess", "Switch over", "Measure", "Reference"), group.name
        assert group.typer_instance is not None
        for sub in group.typer_instance.registered_commands:
            assert sub.epilog and sub.epilog.startswith("Exit codes:"), (group.name, sub.name)


def test_old_spellings_work_with_one_notice(cli) -> None:  # type: ignore[no-untyped-def]
    new = cli("script", "counters", "--duration", "60")
    old = cli("script", "counters", "--seconds", "60")
    assert old.code == new.code == 0 and "typeperf" in old.out
    assert old.out == new.out
    assert old.err == "iovkit: warning: --seconds is deprecated; use --duration\n" and new.err == ""


@pytest.mark.parametrize(
    ("args", "expected", "notice"),
    [
        (["bench", "--json", "--seconds=2"], ["bench", "--format", "json", "--step-seconds=2"], 2),
        (["relay", "--rate", "100"], ["relay", "--rate-limit", "100"], 1),
        (["--debug", "compare", "a", "--plot", "x"], ["--debug", "compare", "a", "--output", "x"], 1),
        (["diagnose", "f.csv", "-f", "rich"], ["diagnose", "f.csv", "-f", "table"], 1),
        (["diagnose", "--live", "--record", "r.json"], ["diagnose", "--live", "--output", "r.json"], 1),
        (["script", "plan", "p.json", "--output-dir", "d"], ["script", "plan", "p.json", "--output", "d"], 1),
        (["bench", "--rate", "100"], ["bench", "--rate", "100"], 0),  # bench's --rate is the offered rate
        (["check", "--format", "json"], ["check", "--format", "json"], 0),
    ],
)
def test_rewrite_of_old_spellings(args: list[str], expected: list[str], notice: int) -> None:
    notes: list[str] = []
    assert rewrite_deprecated(args, notes) == expected
    assert len(notes) == notice


def test_deprecated_diagnose_format_rich_still_renders_the_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from tests.fixtures import recordings as recordings

    csv = tmp_path / "typeperf.csv"
    csv.write_text(recordings.pdh_csv(), newline="")
    new = cli("diagnose", str(csv), "--format", "table")
    old = cli("diagnose", str(csv), "--format", "rich")
    assert old.code == new.code == 1
    assert old.out == new.out
    assert old.err == "iovkit: warning: --format rich is deprecated; use --format table\n" + new.err


def test_version_does_not_import_the_heavy_parts() -> None:
    """`iovkit --version` must not pay for pydantic, the traffic stack or matplotlib (start-up time)."""
    code = (
        "import sys; from iovkit.cli.main import main; main(['--version']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'matplotlib', 'pyvmomi', "
        "'ansible') or m.startswith(('iovkit.traffic', 'iovkit.snapshot', 'iovkit.sources'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(r.stdout.splitlines()[-1].replace("'", '"')) == []


def test_apply_prints_its_result_as_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "plan.json"
    assert cli("plan", "--example", "hyperv-i350-no-iov", "-o", str(plan)).code in (0, 1)
    r = cli("apply", str(plan), "--executor", "simulator", "--sim-state", str(tmp_path / "sim.json"), "-f", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["status"] == "dry-run" and doc["steps"][0]["id"] == 1 and doc["journal"].endswith(".jsonl")


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [("iovkit che", "1", ["check"]), ("iovkit check --format ", "3", ["table", "json", "markdown", "junit"])],
)
def test_shell_completion_offers_commands_and_choices(words: str, cword: str, expected: list[str]) -> None:
    env = {**os.environ, "_IOVKIT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    r = subprocess.run([sys.executable, "-m", "iovkit"], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == expected


# Imports a help page must not pay for: typer's own renderer (rich.markdown and markdown_it, rich.traceback and
# pygments), rich at all (iovkit.cli.helplayout lays the page out) and pydantic (typer coerces unset root options
# through it). bench/startup.py measures the time.
_HELP_AVOIDS = ("pydantic", "markdown_it", "pygments", "rich", "typer.rich_utils")


@pytest.mark.parametrize("words", [("check",), ("fleet", "check"), ("script", "plan"), ()])
def test_help_does_not_import_rich_typers_renderer_or_pydantic(words: tuple[str, ...]) -> None:
    code = (
        "import sys; from iovkit.cli.main import main; "
        f"rc = main({[*words, '--help']!r}); "
        f"print(rc, sorted(m for m in sys.modules if m.startswith({_HELP_AVOIDS!r})))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Exit codes: 0 " in r.stdout and "╭─ " in r.stdout  # the page itself, panels and all
    assert r.stdout.splitlines()[-1] == "0 []"


@pytest.mark.parametrize("words", [(), ("check",), ("doctor",), ("fleet",), ("fleet", "plan"), ("script", "counters")])
def test_a_command_help_is_the_same_page_as_through_the_whole_tree(  # type: ignore[no-untyped-def]
    cli, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`iovkit CMD --help` builds CMD's module only, `iovkit --help` lists commands without their parameters;
    `iovkit --debug CMD --help` is a run of CMD alone: the same page as through the whole tree."""
    from iovkit.cli import main as cli_main

    monkeypatch.setenv("IOVKIT_DEBUG", "0")  # --debug sets it to 1: restored after the test
    short = cli(*words, "-h")
    run = cli("--debug", *words, "-h")
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", {})  # the whole tree, as before
    full = cli("--debug", *words, "-h")
    assert short.code == run.code == full.code == 0
    assert short.out == run.out == full.out and "Usage: iovkit " + " ".join(words) in short.out


def test_the_command_module_table_matches_the_tree() -> None:
    """main.COMMAND_MODULES says which module registers each command (the help path builds that one only)."""
    from iovkit.cli.main import COMMAND_MODULES, build_app

    names = [info.name for info in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(names) == sorted(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        alone = build_app((module,))
        assert name in [i.name for i in alone.registered_commands] + [g.name for g in alone.registered_groups]


def test_a_typo_under_a_command_in_a_help_request_is_an_error(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("fleet", "chekc", "--help")
    assert r.code == 2 and r.err.startswith("iovkit: error: ") and "chekc" in r.err


def test_exit_2_for_an_input_that_cannot_answer_is_said_alike_in_help_and_readme(cli) -> None:  # type: ignore[no-untyped-def]
    """diagnose exits 2 for idle and insufficient-data: its help, the root help and the README say so in one phrase."""
    phrase = "2 bad input, or an input that cannot answer (idle, insufficient data)"
    for command in (("diagnose",), ()):
        r = cli(*command, "--help")
        assert phrase in " ".join(r.out.split()), command
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8").split())
    assert (
        "2 bad input (a one-line error naming the file, field or value), or an input that cannot answer "
        "(idle, insufficient data" in readme
    )


@pytest.mark.parametrize("command", ["diagnose", "compare", "apply", "rollback", "check", "report"])
def test_every_argument_is_shown_in_capitals(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    """Usage lines name their arguments alike (SNAPSHOT, PLAN, ...), never a lower-case parameter name."""
    import re

    usage = next(line for line in cli(command, "--help").out.splitlines() if "Usage:" in line)
    args = re.findall(r"[\[{]([^\]}]+)[\]}]", usage.split("[OPTIONS]", 1)[1])
    assert args and all(a.isupper() for a in args), usage


@pytest.mark.parametrize(
    "words",
    [
        ("diagnose", "{csv}", "--format", "json"),
        ("diagnose", "{csv}", "-f", "TABLE", "--min-window", "5"),
        ("--debug", "diagnose", "{csv}", "-f", "json"),
        ("diagnose", "{csv}", "--format", "xml"),
        ("diagnose", "{csv}", "--min-window", "0"),
        ("diagnose", "{csv}", "--min-window", "1_0x"),
        ("diagnose", "{csv}", "--interval", "inf"),
        ("diagnose", "{csv}", "--fromm", "x"),
        ("diagnose", "{csv}", "extra"),
        ("diagnose",),
        ("diagnose", "{missing}"),
        ("check", "--example", "hyperv-i350-no-iov", "-f", "json", "--only", "IOMMU,SRIOV-NIC"),
        ("check", "--example", "hyperv-i350-no-iov", "--port", "70000"),
        ("check", "--example", "hyperv-i350-no-iov", "--auth", "NTLM", "-f", "junit"),
        ("check", "--list"),
        ("doctor", "--example", "hyperv-i350-no-iov", "--format", "markdown"),
        ("collect", "--list-examples"),
        ("collect", "--example", "nope"),
        ("plan", "--example", "nope"),
        ("apply", "{missing}", "--executor", "nope"),
        ("rollback", "{missing}"),
        ("compare", "{missing}", "--noise", "abc"),
        ("bench", "--rate", "-5"),
        ("relay", "--mode", "nope"),
        ("script", "counters", "--duration", "60"),
        ("script", "nope"),
        ("script",),
        ("fleet", "chekc"),
        ("report", "--example", "hyperv-i350-no-iov", "-f", "pdf"),
        ("schema",),
    ],
)
def test_a_run_through_its_command_alone_is_the_same_as_through_the_whole_tree(  # type: ignore[no-untyped-def]
    cli, words: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`iovkit [--debug] CMD ...` builds CMD's module alone: its output, errors and exit code are the whole tree's."""
    from iovkit.cli import main as cli_main
    from tests.fixtures import recordings

    csv = tmp_path / "typeperf.csv"
    csv.write_text(recordings.pdh_csv(), newline="")
    args = [w.format(csv=csv, missing=tmp_path / "missing.json") for w in words]
    monkeypatch.setenv("IOVKIT_DEBUG", "0")  # --debug sets it to 1: restored after the test
    module = cli_main.COMMAND_MODULES[args[1] if args[0] == "--debug" else args[0]]
    built: list[tuple[str, ...]] = []
    build_app = cli_main.build_app

    def counted(modules: tuple[str, ...] = cli_main.MODULES) -> typer.Typer:
        built.append(modules)
        return build_app(modules)

    monkeypatch.setattr(cli_main, "build_app", counted)
    monkeypatch.setattr(cli_main, "_APP", [])
    short = cli(*args)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", {})  # every run through the whole tree, as before
    full = cli(*args)
    assert built == [(module,), cli_main.MODULES]
    assert (short.code, short.out, short.err) == (full.code, full.out, full.err)
    assert "Traceback" not in short.err
