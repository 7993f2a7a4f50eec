"""`iovkit report`: real inputs made by iovkit itself, the page opened in headless Chromium (the Debian package).

What a reader of the page would notice: every section is there (or says what is missing), the script runs without
an error, nothing is fetched from anywhere, the check table filters by status, a day-long recording stays small.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iovkit.cli.main import main

SECTIONS = ("hosts", "diagnosis", "plan", "measurements", "guest", "fleet", "inputs")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")


def _iovkit(*args: str) -> int:
    return main(list(args))


def _recordings_module():  # type: ignore[no-untyped-def]

    from tests.fixtures import recordings as mod

    return mod


def _fleet_json(path: Path) -> None:
    from iovkit.fleet.model import FleetFinding, FleetHost, FleetResult, TopFinding

    result = FleetResult(
        tool_version="0.1.0",
        command="check",
        inventory="inventory.yml",
        started=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
        hosts=[
            FleetHost(
                name="hv01",
                status="ok",
                platform="hyperv",
                verdict="ready",
                vfs_total=62,
                vfs_used=3,
                vfs_free=59,
                headline="SR-IOV is ready",
            ),
            FleetHost(
                name="hv02",
                status="ok",
                platform="hyperv",
                verdict="not-ready",
                vfs_total=None,
                top=TopFinding(
                    id="HV-IOV-SWITCH",
                    status="fail",
                    message="switch without IOV",
                    fix="iovkit plan --host hv02 -o plan.json",
                ),
            ),
            FleetHost(name="hv03", status="unreachable", error="WinRM: connection refused"),
        ],
        findings=[
            FleetFinding(
                id="FLEET-SWITCH-NAME",
                title="one switch name",
                status="fail",
                group="all",
                hosts=["hv01", "hv02"],
                message="switch names differ",
            )
        ],
        verdict="not-ready",
        exit_code=1,
    )
    path.write_text(result.model_dump_json(by_alias=True, indent=1))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each input, made the way a user makes them (collect, plan, apply, bench), plus a guest capture."""
    d = tmp_path_factory.mktemp("report-inputs")
    p = {
        name: d / name
        for name in (
            "host.json",
            "plan.json",
            "counters.csv",
            "before.json",
            "after.json",
            "guest.json",
            "fleet.json",
            "sim.json",
        )
    }
    assert _iovkit("collect", "--example", "hyperv-i350-no-iov", "-q", "-o", str(p["host.json"])) == 0
    ready = d / "ready.json"
    assert _iovkit("collect", "--example", "hyperv-ready", "-q", "-o", str(ready)) == 0
    assert _iovkit("plan", str(p["host.json"]), "-o", str(p["plan.json"])) in (0, 1)
    journal = d / "plan.journal.jsonl"
    assert _iovkit(
        "apply",
        str(p["plan.json"]),
        "--executor",
        "simulator",
        "--sim-state",
        str(p["sim.json"]),
        "--yes",
        "--console",
        "--journal",
        str(journal),
    ) in (0, 4)
    p["journal"] = journal
    p["counters.csv"].write_text(_recordings_module().pdh_csv(), newline="")
    for name in ("before.json", "after.json"):  # a real sweep on loopback; an objective no step can miss
        assert (
            _iovkit(
                "bench",
                "--local",
                "--rate",
                "1000",
                "--steps",
                "3",
                "--step-factor",
                "2",
                "--step-seconds",
                "0.2",
                "--warmup",
                "0",
                "--max-loss",
                "100",
                "--max-p99",
                "10000000",
                "--no-plots",
                "-q",
                "-o",
                str(p[name]),
            )
            == 0
        )
    from iovkit.sources.linux import collect
    from tests.fixtures import guest_trees as gt

    gt.build_netvsc_vf(d / "guest-root")
    p["guest.json"].write_text(collect(d / "guest-root").to_json())
    _fleet_json(p["fleet.json"])
    p["ready.json"] = ready
    return p


def _headless(page: Path, tmp: Path, *extra: str) -> tuple[str, str, list[dict]]:  # type: ignore[type-arg]
    """Open the page; (DOM after scripts ran, chromium's log with console lines, the page's network requests)."""
    assert CHROMIUM is not None
    netlog = tmp / "net.json"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            # the browser's own update/time pings go to a closed local port, never off this machine
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    requests = [
        ev["params"]
        for ev in log["events"]
        if types.get(ev["type"]) == "URL_REQUEST_START_JOB"
        and "url" in ev.get("params", {})
        and ev["params"].get("initiator") != "not an origin"  # "not an origin": the browser itself
    ]
    return proc.stdout, proc.stderr, requests


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_full_report_renders_every_section_without_errors_or_requests(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    code = _iovkit(
        "report",
        str(inputs["host.json"]),
        str(inputs["counters.csv"]),
        str(inputs["plan.json"]),
        str(inputs["journal"]),
        str(inputs["before.json"]),
        str(inputs["guest.json"]),
        str(inputs["fleet.json"]),
        "--before",
        str(inputs["before.json"]),
        "--after",
        str(inputs["after.json"]),
        "-o",
        str(out),
    )
    assert code == 0, capsys.readouterr().err
    dom, stderr, requests = _headless(out, tmp_path, "--dump-dom")
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    assert re.search(r'<pre id="js-errors"></pre>', dom)  # and caught no error
    assert _console_lines(stderr) == []  # no console message at all (a CSP refusal would be one)
    assert [r.get("url") for r in requests if not str(r.get("url", "")).startswith(("file:", "data:"))] == []
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert 'class="absent"' not in dom  # every section had its data
    # per host: doctor verdict, the top fixes, the check table with its status filter
    assert "HOST-I350" in dom.upper() or "I350" in dom
    assert 'class="filters"' in dom and 'data-status="fail"' in dom
    # diagnosis: a plot with the bottleneck shaded and the estimate
    assert "Per-core network load over time (shaded: bottleneck windows)" in dom and "Saturates near" in dom
    # plan: allocations, steps, rollback; console warning for a switch carrying the management OS
    assert "Allocations" in dom and "rollback script" in dom and "Run this from the host console" in dom
    assert "Apply journal" in dom
    # measurements: the knee, percentiles against offered load, and before/after against the source's figures
    assert "Latency (rtt) against offered load" in dom and "50% less latency" in dom and "Before and after" in dom
    # guest data path and the fleet
    assert "Data path inside this VM" in dom and ">vf<" in dom
    assert "hv03" in dom and "FLEET-SWITCH-NAME" in dom
    # nothing in the DOM points off the page
    assert not re.search(r'(?:src|href|action)\s*=\s*"(?:https?:)?//', dom)
    assert "default-src 'none'" in dom


@needs_chromium
def test_status_filter_hides_other_rows(inputs: dict[str, Path], tmp_path: Path) -> None:
    """Clicking 'fail' in the check table leaves only failing rows visible (the page's own script does it)."""
    out = tmp_path / "report.html"
    assert _iovkit("report", str(inputs["host.json"]), "-o", str(out)) == 0
    html = out.read_text()
    click = (
        # after the page's own script (it ends the body), so the click runs once the filters are wired
        "<script>document.querySelector('.filters button[data-status=\"fail\"]').click();</script></body>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", click, 1))
    dom, stderr, _ = _headless(clicked, tmp_path, "--dump-dom")
    rows = re.findall(r'<tr data-status="([a-z-]+)"(?: class="([^"]*)")?>', dom)
    shown = {status for status, cls in rows if "hidden" not in cls}
    hidden = {status for status, cls in rows if "hidden" in cls}
    assert shown == {"fail"} and "pass" in hidden
    assert _console_lines(stderr) == []


def test_missing_parts_say_what_to_give(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert _iovkit("report", str(inputs["ready.json"]), "-o", str(out)) == 0
    html = out.read_text()
    for sid in SECTIONS:
        assert f'id="{sid}"' in html
    assert "No counter recording given" in html and "iovkit script counters" in html
    assert "No plan given" in html and "No bench result given" in html and "No guest capture given" in html


def test_inputs_are_told_apart_by_content_not_name(inputs: dict[str, Path], tmp_path: Path) -> None:
    """The same files under misleading names land in the same sections."""
    renamed = []
    for i, key in enumerate(("plan.json", "counters.csv", "before.json", "host.json")):
        target = tmp_path / f"input{i}.txt"
        target.write_bytes(inputs[key].read_bytes())
        renamed.append(str(target))
    out = tmp_path / "report.html"
    assert _iovkit("report", *renamed, "-o", str(out)) == 0
    html = out.read_text()
    table = html[html.index('id="inputs"') :]
    assert [k for k in ("plan", "counter recording", "bench result", "host snapshot / capture") if k in table] == [
        "plan",
        "counter recording",
        "bench result",
        "host snapshot / capture",
    ]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("hello world\n", "not an input iovkit report reads"), ("", "the file is empty")],
)
def test_a_file_that_is_no_input_is_one_line_exit_2(
    tmp_path: Path, content: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text(content)
    assert _iovkit("report", str(bad), "-o", str(tmp_path / "r.html")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and needle in err
    assert not (tmp_path / "r.html").exists()


def test_before_without_after_is_bad_input(inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _iovkit("report", "--before", str(inputs["before.json"])) == 2
    assert "--after" in capsys.readouterr().err
    assert _iovkit("report", "--before", str(inputs["host.json"]), "--after", str(inputs["after.json"])) == 2
    assert "not a bench result" in capsys.readouterr().err


def _day_long_recording(path: Path, interval: float = 1.0) -> None:
    """24 hours of 4 cores at one sample a second, idle but for a 5-minute single-core peak in the afternoon."""
    from iovkit.diagnose.model import Recording, key

    n = int(86400 / interval)
    start = datetime(2026, 11, 28, 0, 0, tzinfo=UTC).timestamp()
    rec = Recording(source="procfs", timestamps=[start + i * interval for i in range(n)], host="relay-host")
    peak = range(int(15 * 3600 / interval), int((15 * 3600 + 300) / interval))
    for core in range(4):
        busy = [8.0 + (i % 7) for i in range(n)]
        if core == 0:
            for i in peak:
                busy[i] = 99.0
        rec.counters.setdefault(key("processor", "% processor time"), {})[str(core)] = busy
    path.write_text(json.dumps(rec.to_json()))


def test_a_day_long_recording_gives_a_small_page(tmp_path: Path) -> None:
    rec = tmp_path / "day.json"
    _day_long_recording(rec)
    out = tmp_path / "report.html"
    assert _iovkit("report", str(rec), "-o", str(out)) == 0
    html = out.read_text()
    assert len(html.encode()) < 300_000  # the recording itself is megabytes
    assert rec.stat().st_size > 3_000_000
    points = max(len(m.split()) for m in re.findall(r'<polyline[^>]* points="([^"]*)"', html))
    assert points <= 800
    # the 5-minute peak in 24 hours survives the downsampling: core 0's line reaches the top of the plot
    svg = html[html.index("Per-core load over time") :]
    top_y = float(re.search(r'<rect class="frame" x="\d+" y="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    ys = [float(p.split(",")[1]) for p in re.search(r'<polyline[^>]* points="([^"]*)"', svg).group(1).split()]  # type: ignore[union-attr]
    assert min(ys) < top_y + 5


def test_version_and_help_do_not_import_the_report() -> None:
    code = (
        "import sys; from iovkit.cli.main import main; main(['report', '--help']); "
        "print('iovkit.report' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_fleet_html_is_the_report_fleet_view(tmp_path: Path) -> None:
    """`iovkit fleet ... --format html` writes the report's fleet view: same CSP, every host, unreachable named."""
    from iovkit.fleet.model import load_fleet_result
    from iovkit.report import fleet_page

    _fleet_json(tmp_path / "fleet.json")
    html = fleet_page(load_fleet_result(tmp_path / "fleet.json"))
    assert "default-src 'none'" in html and 'id="fleet"' in html
    rows = re.findall(r"<tr><td><b>(hv\d+)</b></td><td><span class=\"badge v-([a-z-]+)\">", html)
    assert rows == [("hv01", "ready"), ("hv02", "not-ready"), ("hv03", "unreachable")]
    assert "WinRM: connection refused" in html and "iovkit plan --host hv02 -o plan.json" in html


def test_plot_times_are_the_hosts_local_clock_when_the_recording_says_its_zone(tmp_path: Path) -> None:
    """typeperf writes local time and its zone; the plot's axis reads like the host's clock, and says so."""
    csv = tmp_path / "counters.csv"
    csv.write_text(_recordings_module().pdh_csv(tz="(Pacific Standard Time)(480)", n=30), newline="")
    out = tmp_path / "report.html"
    assert _iovkit("report", str(csv), "-o", str(out)) == 0
    html = out.read_text()
    assert "host local time (UTC-08:00)" in html
    ticks = re.findall(r'<text class="tick" x="[0-9.]+" y="\d+" text-anchor="middle">([0-9:]+)</text>', html)
    assert "21:42:40" in ticks  # the recording's own clock (START in diag_recordings), not UTC's 05:42


def test_a_getnetview_folder_is_read_as_capture_and_counters(tmp_path: Path) -> None:
    """Get-NetView holds the host's configuration and a CounterDetail.csv: the page has the host and its diagnosis."""

    from tests.fixtures import hyperv_bundles as builders

    folder = builders.netview_folder(tmp_path, builders.i350_bundle())
    (folder / "Counters").mkdir(exist_ok=True)
    (folder / "Counters" / "CounterDetail.csv").write_text(_recordings_module().pdh_csv(), newline="")
    out = tmp_path / "report.html"
    assert _iovkit("report", str(folder), "-o", str(out)) == 0
    html = out.read_text()
    inputs = html[html.index('id="inputs"') :]
    assert inputs.count(str(folder)) == 2
    assert "host snapshot / capture" in inputs and "counter recording" in inputs
    assert "No counter recording given" not in html and "No host snapshot" not in html


@pytest.mark.parametrize("example", ["linux-cx5", "esxi-x710", "hyperv-lbfo"])
def test_every_platform_reports(example: str, tmp_path: Path) -> None:
    snap, plan, out = tmp_path / "host.json", tmp_path / "plan.json", tmp_path / "report.html"
    assert _iovkit("collect", "--example", example, "-q", "-o", str(snap)) == 0
    args = [str(snap)]
    if _iovkit("plan", str(snap), "-o", str(plan)) in (0, 1) and plan.exists():
        args.append(str(plan))
    assert _iovkit("report", *args, "-o", str(out)) == 0
    html = out.read_text()
    assert 'class="badge v-' in html and 'id="checks-0"' in html


def test_report_as_json_carries_every_stage_result(inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = _iovkit(
        "report",
        str(inputs["host.json"]),
        str(inputs["counters.csv"]),
        str(inputs["plan.json"]),
        str(inputs["journal"]),
        "--before",
        str(inputs["before.json"]),
        "--after",
        str(inputs["after.json"]),
        "--format",
        "json",
    )
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["hosts"][0]["doctor"]["verdict"] == "not-ready"
    assert doc["diagnoses"][0]["diagnose"]["verdict"] == "bottleneck"
    assert doc["plans"][0]["plan"]["plan_id"] and "snapshot" not in doc["plans"][0]["plan"]
    assert doc["journals"][0]["status"] == "completed"
    assert doc["comparison"]["overall"] in ("better", "worse", "same", "mixed", "within noise")


def test_a_hosts_recording_is_named_beside_its_doctor_verdict(inputs: dict[str, Path], tmp_path: Path) -> None:
    """doctor samples only the machine it runs on; a recording of the same host given to the report is linked."""
    csv = tmp_path / "relay.csv"
    csv.write_text(_recordings_module().pdh_csv(host="HV-RELAY-01"), newline="")
    out = tmp_path / "report.html"
    assert _iovkit("report", str(inputs["host.json"]), str(csv), "-o", str(out)) == 0
    hosts = out.read_text().split('id="diagnosis"')[0]
    assert 'counters: <a href="#diag-0"><span class="badge v-bottleneck">BOTTLENECK</span></a>' in hosts


def test_a_folder_that_is_neither_capture_nor_counters_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "beach.txt").write_text("sand\n")
    assert _iovkit("report", str(folder)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a capture nor counters" in err and err.count(str(folder)) == 1


def test_examples_report_without_any_file(tmp_path: Path) -> None:
    """Try it without a host: --example, as every command that takes a snapshot."""
    out = tmp_path / "report.html"
    assert _iovkit("report", "--example", "hyperv-ready", "--example", "hyperv-lbfo", "-o", str(out)) == 0
    html = out.read_text()
    assert html.count('class="filters"') == 2 and "example hyperv-lbfo" in html
    assert _iovkit("report", "--example", "no-such-host") == 2


def test_fixes_point_at_the_input_given_not_where_it_came_from(tmp_path: Path) -> None:
    """A snapshot saved from an example and given as a file is planned from that file; --example from the example."""
    snap, out = tmp_path / "saved host.json", tmp_path / "report.html"
    assert _iovkit("collect", "--example", "hyperv-i350-no-iov", "-q", "-o", str(snap)) == 0
    assert _iovkit("report", str(snap), "-o", str(out)) == 0
    plans = re.compile(r"iovkit plan --[a-z]+ (?:'[^']*'|\S+)")
    assert set(plans.findall(out.read_text().replace("&#x27;", "'"))) == {f"iovkit plan --from '{snap}'"}
    assert _iovkit("report", "--example", "hyperv-i350-no-iov", "-o", str(out)) == 0
    assert set(plans.findall(out.read_text())) == {"iovkit plan --example hyperv-i350-no-iov"}
