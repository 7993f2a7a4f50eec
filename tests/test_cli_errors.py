"""What a user who hands iovkit the wrong thing sees: one `iovkit: error:` line naming the file, field or value.

Each test here reproduces a case found by using the CLI as a new user would (wrong, empty, truncated or binary
files, files of another kind, out-of-range values, an unwritable stdout, SIGTERM) and that once ended in a
traceback, a misleading message or a silent success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from iovkit.examples import example_path


def one_error_line(err: str) -> str:
    """The single error line; fails the test on a traceback or on more than one line."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("iovkit: error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def snapshot_file(tmp_path: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "host.json"
    assert cli("collect", "--example", "hyperv-i350-no-iov", "-q", "-o", str(path)).code == 0
    return path


@pytest.fixture
def plan_file(tmp_path: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "plan.json"
    assert cli("plan", "--example", "hyperv-i350-no-iov", "-o", str(path)).code in (0, 1)
    return path


@pytest.fixture
def sim_state(tmp_path: Path, cli, plan_file: Path) -> Path:  # type: ignore[no-untyped-def]
    """A simulator state, made by a dry run (which changes nothing else)."""
    path = tmp_path / "sim.json"
    assert cli("apply", str(plan_file), "--executor", "simulator", "--sim-state", str(path)).code == 0
    return path


BINARY = b"\xff\xfe\x00\x81garbage\x00"


# -- files that cannot be read, or are empty, cut off or of another kind ---------------------------------------


def test_unreadable_device_is_named_not_a_traceback(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("check", "/proc/self/mem")  # reading it at offset 0 fails with EIO
    assert r.code == 2
    assert one_error_line(r.err) == "iovkit: error: /proc/self/mem: cannot read: Input/output error"


def test_empty_snapshot_file_says_empty(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "host.json").write_text("")
    r = cli("check", str(tmp_path / "host.json"))
    assert r.code == 2
    assert one_error_line(r.err).endswith("host.json: the file is empty")


def test_truncated_snapshot_names_line_and_column(cli, snapshot_file: Path) -> None:  # type: ignore[no-untyped-def]
    snapshot_file.write_bytes(snapshot_file.read_bytes()[:300])
    r = cli("check", str(snapshot_file))
    line = one_error_line(r.err)
    assert r.code == 2
    assert "truncated or invalid JSON" in line and "(line " in line
    assert " at at " not in line  # json's "Unterminated string starting at" once ran into our " at line"


def test_truncated_netview_zip_is_called_truncated(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as z:
        z.writestr("msdbg.HV01/Get-VMSwitch.txt", "x" * 5000)
    cut = tmp_path / "msdbg.HV01.zip"
    cut.write_bytes(whole.read_bytes()[:200])
    r = cli("collect", "--from", str(cut))
    assert r.code == 2
    assert "msdbg.HV01.zip: truncated or corrupt .zip" in one_error_line(r.err)


def test_empty_policy_is_refused_not_taken_as_defaults(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pol = tmp_path / "policy.yaml"
    pol.write_text("")
    r = cli("plan", "--example", "hyperv-i350-no-iov", "--policy", str(pol))
    assert r.code == 2
    assert r.out == ""
    assert "policy.yaml: the policy file is empty" in one_error_line(r.err)


def test_snapshot_given_as_policy_is_named_short(cli, snapshot_file: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("check", "--example", "hyperv-ready", "--policy", str(snapshot_file))
    line = one_error_line(r.err)
    assert r.code == 2
    assert "not a policy" in line
    assert len(line) < 200  # it once printed a whole NIC record as "the value"


def test_binary_policy_says_utf8_not_codec_name(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pol = tmp_path / "policy.yaml"
    pol.write_bytes(BINARY)
    r = cli("check", "--example", "hyperv-ready", "--policy", str(pol))
    assert r.code == 2
    line = one_error_line(r.err)
    assert "policy.yaml: not UTF-8 text (byte 0)" in line and "utf-8-sig" not in line


def test_binary_journal_is_one_line(cli, tmp_path: Path, sim_state: Path) -> None:  # type: ignore[no-untyped-def]
    j = tmp_path / "other.journal.jsonl"
    j.write_bytes(BINARY)
    r = cli("rollback", str(j), "--executor", "simulator", "--sim-state", str(sim_state))
    assert r.code == 2
    assert "other.journal.jsonl: not an iovkit apply journal" in one_error_line(r.err)


@pytest.mark.parametrize("event", ["step-start", "step-end", "undo-end"])
def test_journal_event_without_step_is_named(cli, tmp_path: Path, sim_state: Path, event: str) -> None:  # type: ignore[no-untyped-def]
    j = tmp_path / "j.jsonl"
    j.write_text(
        json.dumps({"event": "begin", "plan_id": "x", "steps": []})
        + "\n"
        + json.dumps({"event": event, "result": "ok"})
        + "\n"
        + json.dumps({"event": "end"})
        + "\n"
    )
    r = cli("rollback", str(j), "--executor", "simulator", "--sim-state", str(sim_state))
    assert r.code == 2
    assert f"j.jsonl: line 2: a {event} event without a step number" in one_error_line(r.err)


def test_binary_and_wrong_sim_state(cli, plan_file: Path, snapshot_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = tmp_path / "sim.json"
    sim.write_bytes(BINARY)
    r = cli("apply", str(plan_file), "--executor", "simulator", "--sim-state", str(sim))
    assert r.code == 2
    assert "sim.json: not UTF-8 text" in one_error_line(r.err)
    r = cli("apply", str(plan_file), "--executor", "simulator", "--sim-state", str(snapshot_file))
    line = one_error_line(r.err)
    assert r.code == 2
    assert "host.json: not a simulator state file" in line and "validation errors" not in line


def test_unwritable_sim_state_is_named(cli, plan_file: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("apply", str(plan_file), "--executor", "simulator", "--sim-state", "/proc/iovkit-none/sim.json")
    assert r.code == 2
    assert "/proc/iovkit-none/sim.json: cannot write the simulator state" in one_error_line(r.err)


def test_simulator_refuses_a_linux_plan_instead_of_calling_it_stale(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "plan.json"
    assert cli("plan", "--example", "linux-cx5", "-o", str(plan)).code in (0, 1)
    r = cli("apply", str(plan), "--executor", "simulator", "--sim-state", str(tmp_path / "sim.json"))
    line = one_error_line(r.err)
    assert r.code == 2
    assert "--executor: the simulator models Hyper-V hosts only" in line and "stale" not in line
    assert not (tmp_path / "sim.json").exists()


def test_diagnose_snapshot_says_what_it_is_not(cli, snapshot_file: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("diagnose", str(snapshot_file))
    assert r.code == 2
    line = one_error_line(r.err)
    assert "neither Get-Counter output" in line and "missing field" not in line


def test_diagnose_reads_a_pdh_csv_resaved_without_quotes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Excel (or csv.writer) re-saves typeperf's CSV quoting only where needed; it is the same recording."""
    import csv

    from tests.fixtures import recordings as recordings

    quoted = tmp_path / "typeperf.csv"
    quoted.write_text(recordings.pdh_csv(), newline="")
    bare = tmp_path / "excel.csv"
    with quoted.open(newline="") as src, bare.open("w", newline="") as dst:
        csv.writer(dst).writerows(csv.reader(src))
    assert not bare.read_text().startswith('"')
    a = cli("diagnose", str(quoted), "-f", "json")
    b = cli("diagnose", str(bare), "-f", "json")
    assert b.err == "" and b.code == a.code == 1  # it was "not a PDH-CSV ..." and then "no data rows"
    assert b.out == a.out


@pytest.mark.skipif(not os.path.exists("/proc/net/softnet_stat"), reason="needs Linux /proc counters")
def test_live_record_to_a_missing_folder_fails_before_sampling(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "no-such-folder" / "rec.json"
    r = cli("diagnose", "--live", "--duration", "3", "-o", str(target))
    assert r.code == 2
    assert "sampling" not in r.err  # it sampled the whole period, then failed to save
    assert f"{target}: cannot write: no folder" in one_error_line(r.err)


def test_diagnose_empty_file_says_empty(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "c.csv").write_text("")
    r = cli("diagnose", str(tmp_path / "c.csv"))
    assert r.code == 2
    assert "c.csv: the file is empty" in one_error_line(r.err)


def test_collect_root_that_is_no_linux_tree(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("collect", "--root", str(tmp_path), "-q")
    assert r.code == 2
    assert r.out == ""  # it once printed an empty snapshot and exited 0
    assert "--root: no proc/ or sys/ under it" in one_error_line(r.err)


@pytest.mark.parametrize("args", [(), ("script",)])
def test_no_command_shows_help_and_says_why(cli, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r = cli(*args)
    assert r.code == 2
    assert ("Assess" in r.out and "Reference" in r.out) if not args else "counters" in r.out
    assert one_error_line(r.err) == "iovkit: error: missing command (the list is above)"  # was an empty message


@pytest.mark.parametrize(
    ("args", "name"), [(("apply",), "PLAN"), (("rollback",), "JOURNAL"), (("script", "plan"), "PLAN")]
)
def test_missing_argument_is_named_as_in_usage(cli, args: tuple[str, ...], name: str) -> None:  # type: ignore[no-untyped-def]
    r = cli(*args)
    assert r.code == 2
    assert one_error_line(r.err) == f"iovkit: error: Missing argument '{name}'."  # not the parameter 'plan_path'


# -- flag values -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "-1", "99999"])
def test_winrm_port_out_of_range_is_bad_input(cli, port: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("collect", "--host", "127.0.0.1", "--port", port)
    assert r.code == 2  # it was 3 (unreachable) after urllib3 failed to parse the URL
    assert "'--port'" in one_error_line(r.err)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--duration", "10", "--interval", "200"), "--interval"),
        (("--duration", "99999999999"), "--duration"),
    ],
)
def test_counters_script_refuses_useless_recordings(cli, args: tuple[str, ...], named: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("script", "counters", *args)
    assert r.code == 2
    assert r.out == ""
    assert one_error_line(r.err).startswith(f"iovkit: error: {named}: ")


def test_model_validation_from_an_option_is_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("bench", "--local", "--steps", "1", "--max-loss", "101", "--no-plots", "-q")
    assert r.code == 2
    assert "max_loss" in one_error_line(r.err)


def test_unexpected_exception_is_one_line_with_the_way_to_debug(cli) -> None:  # type: ignore[no-untyped-def]
    # `--rate nan` reached float->int conversion deep in the sweep; whatever the sweep does with it, the user
    # sees one line, never a traceback.
    r = cli("bench", "--local", "--steps", "1", "--rate", "nan", "--no-plots", "-q")
    assert r.code != 0
    one_error_line(r.err)


# -- secrets -----------------------------------------------------------------------------------------------------


def test_short_password_is_not_revealed_by_masking(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("IOVKIT_PASSWORD", "x")  # "Max retries exceeded" once became "Ma*** retries e***ceeded"
    r = cli("collect", "--host", "127.0.0.1", "--port", "1", "--user", "admin")
    line = one_error_line(r.err)
    assert r.code == 3
    assert "***" not in line
    assert line.endswith("Connection refused")  # the root cause, not urllib3's nested repr


# -- the process: stdout and signals (a real child process; these cannot be seen in-process) -----------------------


def _iovkit(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "iovkit", *args], **kw)  # type: ignore[call-overload, no-any-return]


def test_full_stdout_is_one_line_exit_2() -> None:
    with open("/dev/full", "wb") as full:
        p = _iovkit("schema", stdout=full, stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 2
    assert one_error_line(err.decode()) == "iovkit: error: standard output: No space left on device"


@pytest.mark.skipif(not os.path.exists("/proc/net/softnet_stat"), reason="needs Linux /proc counters")
def test_sigterm_ends_a_live_run_like_ctrl_c() -> None:
    p = _iovkit("diagnose", "--live", "--duration", "60", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    first = p.stderr.readline().decode()  # "sampling /proc ..." once the command runs
    assert first.startswith("sampling")
    p.send_signal(signal.SIGTERM)
    _, rest = p.communicate(timeout=30)
    assert p.returncode == 130
    assert rest.decode().strip() == "iovkit: interrupted"


def test_example_files_still_load(cli) -> None:  # type: ignore[no-untyped-def]
    """The guards above must not refuse what iovkit itself ships."""
    for name in ("hyperv-lbfo", "linux-cx5"):
        assert example_path(name).exists()
        assert cli("check", "--example", name, "-f", "json").code in (0, 1)


def test_bench_rejects_negative_warmup_and_empty_sessions(cli):
    r = cli("bench", "--local", "--warmup", "-1")
    assert r.code == 2 and "--warmup" in r.err and r.err.count("\n") == 1
    r = cli("bench", "--local", "--mode", "relay", "--clients", "0")
    assert r.code == 2 and "--clients" in r.err
    r = cli("compare", "a.json", "--after", "b.json", "--noise", "nan")
    assert r.code == 2 and "--noise" in r.err


def test_a_refused_choice_reads_as_one_plain_line(cli) -> None:  # type: ignore[no-untyped-def]
    """No validator jargon ("Value error,") between the option and what was wrong with the value."""
    r = cli("check", "--example", "hyperv-ready", "--format", "html")
    assert r.code == 2
    assert r.err.strip() == (
        "iovkit: error: Invalid value for '--format' / '-f': 'html' is not one of 'table', 'json', 'markdown', 'junit'."
    )


def test_rollback_given_the_plan_names_the_journal_it_wants(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`iovkit rollback plan.json` is an easy slip: the error names plan.journal.jsonl, the file apply wrote."""
    plan = tmp_path / "plan.json"
    assert cli("plan", "--example", "hyperv-i350-no-iov", "-o", str(plan)).code == 0
    sim = str(tmp_path / "sim.json")
    assert cli("apply", str(plan), "--executor", "simulator", "--sim-state", sim).code == 0  # a dry run
    r = cli("rollback", str(plan), "--executor", "simulator", "--sim-state", sim)
    assert r.code == 2
    assert "this is a plan, not its journal" in r.err and "plan.journal.jsonl" in r.err


def test_bare_iovkit_shows_the_same_list_as_the_whole_tree(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """`iovkit` alone is drawn from the parameterless listing (start-up); page, error and code are the whole tree's."""
    from iovkit.cli import main

    fast = cli()
    monkeypatch.setattr(main, "_help_only", lambda args: None)  # every run through the whole tree
    slow = cli()
    assert (fast.code, fast.out, fast.err) == (slow.code, slow.out, slow.err)
    assert fast.code == 2 and "Assess" in fast.out
