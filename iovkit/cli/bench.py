"""`iovkit bench`: sweep the offered UDP rate, find the knee (`iovkit compare` is in cli/compare.py)."""

from __future__ import annotations

import math
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from iovkit.cli.common import err, out
from iovkit.cli.options import MEASURE, OUTPUT_PANEL, FormatTableJson, exit_codes, output_opt
from iovkit.errors import ExitCode, InputError
from iovkit.hostport import parse_hostport

if TYPE_CHECKING:
    from rich.table import Table

    from iovkit.traffic.results import AgentInfo, StepResult, SweepResult

BenchMode = Literal["echo", "relay", "send"]
AGENTS_PANEL = "Distributed load (Ansible)"

BENCH_HELP = """Sweep the offered UDP rate until loss or p99 breaks the objective, and report the knee.

Open loop: datagrams leave on schedule whatever the target does, and latency counts from the scheduled send
time. --local (the default without --target) starts an iovkit relay on 127.0.0.1 and sweeps it.
Writes the result JSON (settings, host, every step with percentiles, loss, reordering, duplicates, jitter,
per-core CPU and the encoded HDR histograms) and PNG + SVG plots beside it.

Examples: iovkit bench --local --rate 5000 --steps 6;  iovkit bench --target 10.0.0.4:7777 -o before.json;
iovkit bench --local --mode relay --clients 32 --sessions 8 --tick 64
"""


def _now_stem() -> str:
    return datetime.now().strftime("iovkit-bench-%Y%m%d-%H%M%S")


def _step_table(result: SweepResult) -> Table:
    from rich.table import Table

    t = Table(title=f"iovkit bench {result.settings.mode} -> {result.settings.target}", show_lines=False)
    kind = result.steps[0].latency_kind if result.steps else "rtt"
    for col in (
        "offered/s",
        "sent/s",
        "recv/s",
        "loss %",
        "reord",
        "dup",
        f"p50 us ({kind})",
        "p99 us",
        "p99.9 us",
        "max us",
        "p99 from send",
        "jitter us",
        "cpu us/pkt",
        "ok",
        "path / steal",
    ):
        t.add_column(col, justify="right")
    for s in result.steps:
        lat = s.latency_us
        t.add_row(
            f"{s.offered_pps:,.0f}",
            f"{s.achieved_pps:,.0f}",
            f"{s.received_pps:,.0f}",
            f"{s.loss_pct:.3f}",
            str(s.reordered),
            str(s.duplicates),
            _us(lat.p50),
            _us(lat.p99),
            _us(lat.p99_9),
            _us(lat.max),
            _us(s.latency_from_send_us.p99 if s.latency_from_send_us else None),
            _us(s.jitter_us),
            _us(s.cpu_us_per_packet),
            "yes" if s.within_objective else f"no: {s.failed_because}",
            _path_cell(s),
        )
    return t


def _agent_table(result: SweepResult) -> Table:
    """Each agent's share of each step, with how late it started against the common start time."""
    from rich.table import Table

    t = Table(title="agents (each step's share)", show_lines=False)
    for col in ("offered/s", "agent", "sent", "recv", "loss %", "p99 us", "late us", "clock offset us"):
        t.add_column(col, justify="left" if col == "agent" else "right")
    offsets = {a.name: a for a in result.agents}
    for s in result.steps:
        for a in s.agents:
            info = offsets.get(a.agent)
            t.add_row(
                f"{a.offered_pps:,.0f}",
                a.agent,
                f"{a.sent:,}",
                f"{a.received:,}",
                f"{a.loss_pct:.3f}",
                _us(a.latency_us.p99),
                _us(a.start_late_us),
                "-" if info is None else f"{info.clock_offset_us:+,.1f} ±{info.clock_rtt_us / 2:,.1f}",
            )
    return t


def _path_cell(s: StepResult) -> str:
    """The step's data path and steal: 'vf:eth1 st 0.1%', or 'INVALID: why'."""
    if s.invalid_because:
        return f"INVALID: {s.invalid_because}"
    paths = ",".join((s.target_path or {}).get("paths") or [])
    steal = "" if s.steal_pct is None else f"st {s.steal_pct:g}%"
    return " ".join(x for x in (paths, steal) if x) or "-"


def _print_wide(table: Table) -> None:
    """Tables at full width even into a pipe or file (rich would squeeze them to 80 columns)."""
    if out.is_terminal:
        out.print(table)
    else:
        from rich.console import Console

        Console(file=sys.stdout, width=200, highlight=False).print(table)


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def default_senders(target: str | None, mode: str, sessions: int) -> int:
    """One sender per CPU against another host; 1 on loopback, where the target shares these CPUs."""
    from iovkit.traffic.loadgen import cpu_count, is_local_target

    if target is None:
        return 1
    host, _port = parse_hostport(target, "--target")
    if is_local_target(host):
        return 1
    n = cpu_count()
    return max(1, min(n, sessions)) if mode == "relay" else n


def bench_cmd(
    local: Annotated[bool, typer.Option("--local", help="Start a relay on 127.0.0.1 and sweep it (default)")] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="HOST:PORT of a UDP reflector or iovkit relay", show_default=False, metavar="<host:port>"
        ),
    ] = None,
    mode: Annotated[
        BenchMode,
        typer.Option(
            "--mode",
            help="echo (round trip via any reflector), relay (clients in sessions, one-way latency) or send "
            "(one way, no replies: loads a sink, a NIC or a relay's drop path; with --local, iovkit's own sink "
            "counts what was delivered)",
        ),
    ] = "echo",
    rate: Annotated[
        str,
        typer.Option(
            "--rate",
            help="Offered datagrams/s of the first step, or max (one step as fast as the kernel takes them)",
            metavar="<rate|max>",
        ),
    ] = "2000",
    gso: Annotated[
        bool,
        typer.Option(
            "--gso/--no-gso",
            help="UDP GSO on send (up to 64 datagrams per send call, which then share a send time) and GRO in a "
            "--local relay or sink, where the kernel has them (Linux 4.18/5.0); --no-gso to compare",
        ),
    ] = True,
    step_factor: Annotated[float, typer.Option("--step-factor", help="Each step offers this times the last")] = 1.5,
    steps: Annotated[int, typer.Option("--steps", help="At most this many steps")] = 12,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats",
            help="Attempts at a rate before a miss counts: a step that misses the objective is run again, and the "
            "sweep ends only when every attempt at a rate missed (1: the first miss ends it)",
        ),
    ] = 2,
    max_rate: Annotated[
        float | None, typer.Option("--max-rate", help="Do not offer more than this", show_default=False)
    ] = None,
    step_seconds: Annotated[float, typer.Option("--step-seconds", help="Measured seconds per step")] = 1.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Unmeasured seconds before each step")] = 0.2,
    payload: Annotated[int, typer.Option("--payload", help="UDP payload bytes")] = 64,
    senders: Annotated[
        int | None,
        typer.Option(
            "--senders",
            help="Sender processes (histograms merge exactly). "
            "Default: one per CPU against a remote --target (one Python "
            "process sends about 300,000 datagrams/s), 1 on loopback (the "
            "relay needs the other cores)",
            show_default=False,
        ),
    ] = None,
    flows: Annotated[int, typer.Option("--flows", help="echo: source sockets (5-tuples) per sender")] = 4,
    batch: Annotated[int, typer.Option("--batch", help="Datagrams per sendmmsg (a receive takes at most 64)")] = 256,
    poisson: Annotated[bool, typer.Option("--poisson", help="Poisson arrivals instead of constant spacing")] = False,
    clients: Annotated[int, typer.Option("--clients", help="relay: clients in all sessions")] = 8,
    sessions: Annotated[int, typer.Option("--sessions", help="relay: sessions")] = 2,
    tick: Annotated[
        float | None,
        typer.Option(
            "--tick", help="relay: per-client tick rate (Hz); sets the first step to clients x tick", show_default=False
        ),
    ] = None,
    max_loss: Annotated[float, typer.Option("--max-loss", help="Objective: loss above this % fails a step")] = 1.0,
    max_p99: Annotated[float, typer.Option("--max-p99", help="Objective: p99 above this (us) fails a step")] = 2000.0,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file", help="relay mode with --target: relay key file (else IOVKIT_RELAY_KEY)", show_default=False
        ),
    ] = None,
    relay_workers: Annotated[int, typer.Option("--relay-workers", help="--local: relay worker processes")] = 1,
    kernel_ts: Annotated[
        bool,
        typer.Option("--kernel-ts/--no-kernel-ts", help="Use kernel receive timestamps where the kernel gives them"),
    ] = True,
    spin: Annotated[
        bool | None,
        typer.Option(
            "--spin/--no-spin",
            help="How to wait for each send time. Default: "
            "sleep with 1 us timer slack, then busy-poll the last 50 us (sharp "
            "send times without owning a core; with --no-kernel-ts it busy-polls "
            "every wait, since reading a reply late would count as latency). "
            "--spin: always busy-poll (a whole core; worse tails on a shared "
            "host); --no-spin: only sleep. The JSON records the choice and the "
            "process CPU it cost",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None, output_opt("Result JSON (plots beside it); default ./iovkit-bench-<time>.json")
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG and SVG plots", rich_help_panel=OUTPUT_PANEL)
    ] = True,
    fmt: FormatTableJson = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar", rich_help_panel=OUTPUT_PANEL)] = False,
    agents: Annotated[
        Path | None,
        typer.Option(
            "--agents",
            help="Ansible inventory of load hosts: one agent per host (started through Ansible) sends its share "
            "of every step from one common start time; results merge into one (echo mode, needs --target)",
            show_default=False,
            rich_help_panel=AGENTS_PANEL,
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option(
            "--limit",
            help="--agents: Ansible host pattern of the agents",
            show_default=False,
            metavar="<pattern>",
            rich_help_panel=AGENTS_PANEL,
        ),
    ] = None,
    agent_listen: Annotated[
        str,
        typer.Option(
            "--agent-listen",
            help="--agents: HOST:PORT the agents connect back to (port 0: any free one)",
            metavar="<host:port>",
            rich_help_panel=AGENTS_PANEL,
        ),
    ] = "0.0.0.0:0",
    target_stats: Annotated[
        str | None,
        typer.Option(
            "--target-stats",
            help="HOST:PORT of the target relay's --metrics server: each step records the relay host's data "
            "path, steal and CPU, and a path change marks the step invalid",
            show_default=False,
            metavar="<host:port>",
        ),
    ] = None,
    max_steal: Annotated[
        float, typer.Option("--max-steal", help="A step with more steal time (%, either host) is marked invalid")
    ] = 5.0,
) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from iovkit.fileio import ensure_writable
    from iovkit.traffic.benchrun import run_bench
    from iovkit.traffic.relay import load_key
    from iovkit.traffic.results import BenchSettings, Objective

    if agents is not None:
        if target is None:
            raise InputError("--agents needs --target (the reflector every agent sends to)", field="--agents")
        if mode != "echo":
            raise InputError("--agents runs echo mode (relay sessions need one clock)", field="--mode")
        if senders is None:
            senders = 1  # per agent: each agent host is its own machine
    elif limit is not None:
        raise InputError("--limit selects load agents: give --agents INVENTORY too", field="--limit")
    listen = parse_hostport(agent_listen, "--agent-listen", any_port=True)

    if local and target:
        raise InputError("give either --local or --target, not both", field="--target")
    if target_stats is not None:
        parse_hostport(target_stats, "--target-stats")
    if not math.isfinite(max_steal) or max_steal < 0:
        raise InputError(f"--max-steal cannot be negative (got {max_steal:g})", field="--max-steal")
    if not math.isfinite(warmup) or warmup < 0:
        raise InputError(f"the warm-up cannot be negative (got {warmup:g} s)", field="--warmup")
    if mode == "relay" and (clients < 2 or sessions < 1 or sessions > clients):
        raise InputError(
            f"relay mode needs at least 2 clients and 1..clients sessions (got {clients} clients in "
            f"{sessions} sessions)",
            field="--clients",
        )
    rate_max = rate.strip().lower() == "max"
    try:
        start_rate = 1.0 if rate_max else float(rate)
    except ValueError:
        raise InputError(f"expected a rate in datagrams/s or max, got {rate!r}", field="--rate") from None
    if not rate_max and not (math.isfinite(start_rate) and start_rate > 0):
        raise InputError(f"the rate must be above 0 datagrams/s (got {rate})", field="--rate")
    if tick is not None:
        if tick <= 0:
            raise InputError(f"the tick rate must be above 0 Hz (got {tick:g})", field="--tick")
        start_rate, rate_max = clients * tick, False
    relay_key = None
    if mode == "relay" and target is not None:
        relay_key = load_key("IOVKIT_RELAY_KEY", key_file, "relay key")
        if relay_key is None:
            raise InputError(
                "relay mode against --target needs the relay key: set IOVKIT_RELAY_KEY or pass --key-file",
                field="--key-file",
            )
    path = output or Path(_now_stem() + ".json")
    ensure_writable(path)  # before the sweep, not after minutes of traffic
    if not 1 <= repeats <= 10:
        raise InputError(f"must be 1..10 (got {repeats})", field="--repeats")
    if senders is None:
        senders = default_senders(target, mode, sessions)
    settings = BenchSettings(
        mode=mode,
        target=target or "127.0.0.1:0",
        payload=payload,
        step_seconds=step_seconds,
        warmup_seconds=warmup,
        start_rate=start_rate,
        rate_max=rate_max,
        gso=gso,
        repeats=repeats,
        step_factor=step_factor,
        max_rate=max_rate,
        max_steps=steps,
        senders=senders,
        flows=flows,
        batch=batch,
        poisson=poisson,
        clients=clients if mode == "relay" else None,
        sessions=sessions if mode == "relay" else None,
        tick_hz=tick,
        objective=Objective(max_loss_pct=max_loss, max_p99_us=max_p99),
        wait={None: "hybrid", True: "spin", False: "sleep"}[spin],
        kernel_timestamps=kernel_ts,
        target_stats=target_stats,
        max_steal_pct=max_steal,
    )
    show = not quiet and err.is_terminal
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[live]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show,
    )
    task = progress.add_task("starting", total=None, live="")
    step_total = step_seconds + warmup

    def on_start(r: float) -> None:
        progress.update(
            task,
            description="sending at max" if math.isinf(r) else f"offering {r:,.0f}/s",
            completed=0,
            total=step_total,
            live="",
        )

    def live(sent: int, received: int, p99: float | None) -> None:
        p = "-" if p99 is None else f"{p99:,.0f}"
        progress.update(task, advance=0.25, live=f"sent {sent:,} recv {received:,} p99 {p} us")

    def on_step(s: StepResult) -> None:
        if not quiet:
            verdict = "ok" if s.within_objective else f"stop: {s.failed_because}"
            if s.invalid_because:
                verdict += f"  INVALID: {s.invalid_because}"
            err.print(
                f"{s.offered_pps:>10,.0f}/s  recv {s.received_pps:>10,.0f}/s  loss {s.loss_pct:6.2f}%  "
                f"p99 {_us(s.latency_us.p99):>9} us  {verdict}"
            )

    with progress:
        if agents is not None:
            from iovkit.fleet.loadcoord import run_distributed

            def on_agents(infos: list[AgentInfo]) -> None:
                if not quiet:
                    for a in infos:
                        err.print(
                            f"agent {a.name} ({a.host.hostname}): clock offset {a.clock_offset_us:+,.1f} us "
                            f"(probe round trip {a.clock_rtt_us:,.1f} us)"
                        )

            result = run_distributed(
                settings,
                agents,
                limit,
                listen=listen,
                kernel_timestamps=kernel_ts,
                spin=spin,
                on_step=on_step,
                on_agents=on_agents,
            )
        else:
            result = run_bench(
                settings,
                kernel_timestamps=kernel_ts,
                spin=spin,
                relay_key=relay_key,
                local_workers=relay_workers if target is None else None,
                on_step=on_step,
                on_start=on_start if show else None,
                live=live if show else None,
            )
    result.write(path)
    written = [path]
    if plots and result.steps:
        from iovkit.traffic.plots import plot_sweep

        written += plot_sweep(result, path.with_suffix(""))
    if fmt == "json":
        sys.stdout.write(result.to_json() + "\n")
    else:
        _print_wide(_step_table(result))
        if result.agents:
            _print_wide(_agent_table(result))
        knee = (
            "none (the first step already broke the objective)"
            if result.knee_pps is None
            else f"{result.knee_pps:,.0f} datagrams/s"
        )
        if result.interrupted:
            knee = f"at least {knee} (interrupted)" if result.knee_pps is not None else "none yet (interrupted)"
        out.print(f"knee: {knee}; stopped: {result.stopped_because}")
        out.print(_drop_rates(result))
        out.print("wrote " + ", ".join(str(p) for p in written))
    if result.interrupted:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK if result.knee_pps is not None else ExitCode.FINDINGS)


def _drop_rates(result: SweepResult) -> str:
    """NDR and PDR (FD.io CSIT) beside the knee, with the attempts and spread behind each."""

    def one(name: str, rate: float | None) -> str:
        if rate is None:
            return f"{name}: none"
        s = next((r for r in result.rates if r.offered_pps == rate), None)
        if s is None:  # --rate max: NDR/PDR are single attempts inside the one summary
            return f"{name}: {rate:,.0f}/s"
        spread = (
            f"loss {s.loss_pct_min:.2f}-{s.loss_pct_max:.2f}%, "
            f"recv {s.received_pps_min:,.0f}-{s.received_pps_max:,.0f}/s"
        )
        return f"{name}: {rate:,.0f}/s ({s.attempts} attempt(s), {spread})"

    return f"{one('NDR (no loss)', result.ndr_pps)}; {one('PDR (<= 0.5% loss)', result.pdr_pps)}"


def register(app: typer.Typer) -> None:
    """Add `bench` to the app."""
    app.command(
        "bench",
        help=BENCH_HELP,
        rich_help_panel=MEASURE,
        epilog=exit_codes(
            "even the first step broke the objective", ok="a knee was found", extra={3: "target unreachable"}
        ),
    )(bench_cmd)
