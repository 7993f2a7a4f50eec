"""Recordings in the host's display language: German and French names through the sourced table, the counters
script's sidecar on any language, and one line naming what a language iovkit cannot map leaves unrecognized."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iovkit.diagnose import names
from iovkit.diagnose.inputs import SIDECAR, load
from iovkit.diagnose.script import COUNTERS, counters_script
from tests.fixtures.recordings import peak_csv

EN_DASH = "\u2013"
GERMAN = {
    "Hyper-V Hypervisor Root Virtual Processor": f"Hyper-V-Hypervisor {EN_DASH} Stamm des virtuellen Prozessors",
    "Processor": "Prozessor",
    "Network Interface": "Netzwerkschnittstelle",
    "% Total Run Time": "% Gesamtausführungszeit",
    "% Interrupt Time": "Interruptzeit (%)",
    "% DPC Time": "DPC-Zeit (%)",
    "Packets Received/sec": "Empfangene Pakete/s",
    "Packets Sent/sec": "Pakete gesendet/s",
}
FRENCH = {
    "Processor Information": "Informations sur le processeur",
    "Network Interface": "Interface réseau",
    "% Interrupt Time": "% temps d’interruption",  # typographic apostrophe, as Windows writes it
    "% DPC Time": "% temps DPC",
    "Packets Received/sec": "Paquets reçus/s",
    "Packets Sent/sec": "Paquets envoyés/s",
}


def _localize(text: str, table: dict[str, str]) -> str:
    head, _, body = text.partition("\r\n")
    for en, local in sorted(table.items(), key=lambda kv: -len(kv[0])):
        head = head.replace(f"\\{en}(", f"\\{local}(").replace(f')\\{en}"', f')\\{local}"')
    return head + "\r\n" + body


def test_german_logman_recording_in_cp1252_is_read_and_flagged(cli, tmp_path: Path) -> None:
    f = tmp_path / "DataCollector01.csv"
    text = _localize(
        peak_csv(hours=0.5, peak_at=600, peak_s=300, cores=4, tz="(Mitteleuropäische Sommerzeit)(-120)"), GERMAN
    )
    assert "Stamm des virtuellen Prozessors(Root VP 0)\\% Gesamtausführungszeit" in text
    f.write_bytes(text.encode("cp1252"))  # the en dash is 0x96 in cp1252
    rec = load(f)
    assert rec.language == "de" and rec.unrecognized == []
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    assert doc["verdict"] == "bottleneck" and doc["windows"][0]["core"] == "0"
    assert doc["windows"][0]["start_local"].endswith("+02:00")


def test_french_recording_with_processor_information_is_read(cli, tmp_path: Path) -> None:
    f = tmp_path / "compteurs.csv"
    text = _localize(
        peak_csv(hours=0.5, peak_at=600, peak_s=300, cores=4, proc_info=True, tz="(Paris, Madrid (heure d’été))(-120)"),
        FRENCH,
    )
    assert "\\Informations sur le processeur(0,0)\\% temps d’interruption" in text
    f.write_bytes(text.encode("cp1252"))
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    assert doc["timezone"] == "Paris, Madrid (heure d’été)"
    hot = next(x for x in doc["findings"] if x["id"] == "SINGLE-CORE-SWITCH")
    assert hot["core"] == "0" and hot["evidence"]["nic_pps"] == pytest.approx(450_000, rel=0.01)


def test_every_table_row_names_its_source_and_the_six_languages_are_there() -> None:
    assert {n.lang for n in names.TABLE} >= {"de", "fr", "ja", "ko", "es", "zh-CN"}
    assert all(n.source.strip() for n in names.TABLE)
    for lang in ("de", "fr", "ja", "ko", "es", "zh-CN"):
        assert any(n.english == "% Processor Time" for n in names.TABLE if n.lang == lang), lang


def test_unsourced_language_gets_one_line_naming_the_objects_and_the_script(cli, tmp_path: Path) -> None:
    """Polish is not in the table: the objects are named, and the script that records on any language."""
    head = '"(PDH-CSV 4.0) (Środkowoeuropejski czas letni)(-120)","\\\\HV\\Procesor(0)\\Czas procesora (%)",'
    head += '"\\\\HV\\Procesor(1)\\Czas procesora (%)","\\\\HV\\Interfejs sieciowy(nic)\\Pakiety odebrane/s"'
    rows = [f'"09/22/2026 21:00:{s:02d}.000","99","5","300000"' for s in range(40)]
    f = tmp_path / "pl.csv"
    f.write_text(head + "\r\n" + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 2
    assert "'Procesor', 'Interfejs sieciowy'" in r.err and "iovkit script counters" in r.err
    assert r.err.count("\n") == 1


def _parser() -> Any:
    try:
        import tree_sitter as ts
        import tree_sitter_powershell as tsp

        return ts.Parser(ts.Language(tsp.language()))
    except ImportError:
        from tree_sitter_language_pack import get_parser

        return get_parser("powershell")


def _nodes(node: Any) -> list[Any]:
    out = [node]
    for child in node.children:
        out.extend(_nodes(child))
    return out


def test_counters_script_parses_and_resolves_names_through_perflib() -> None:
    text = counters_script(seconds=3600, interval=1)
    tree = _parser().parse(text.encode("utf-8"))
    bad = [(n.type, n.start_point) for n in _nodes(tree.root_node) if n.type == "ERROR" or n.is_missing]
    assert bad == []
    assert "Perflib\\009" in text and "Perflib\\CurrentLanguage" in text
    commands = {n.text.decode() for n in _nodes(tree.root_node) if n.type == "command_name"}
    assert {"Get-ItemProperty", "Set-Content", "typeperf", "logman"} <= commands
    assert f"-Path .\\{SIDECAR} " in text and "-Encoding Unicode" in text
    assert all(c in text for c in COUNTERS)


def test_recording_made_by_the_counters_script_on_a_localized_host(cli, tmp_path: Path) -> None:
    """What the script leaves on a German host: a CSV in local names and the sidecar (UTF-8 with BOM, as
    Set-Content -Encoding UTF8 writes on PowerShell 5.1) mapping them back; here with names the built-in table
    does not know, so only the sidecar can map them."""
    local = {**GERMAN, "Processor": "Prozessor-lokal", "% DPC Time": "DPC-Zeit (lokal)"}
    text = _localize(peak_csv(hours=0.5, peak_at=600, peak_s=300, cores=4), local)
    (tmp_path / "iovkit-counters_000001.csv").write_bytes(text.encode("cp1252"))
    r = cli("diagnose", str(tmp_path / "iovkit-counters_000001.csv"), "--format", "json")
    assert r.code != 1  # without the sidecar, "Prozessor-lokal" is not readable: no interrupt/DPC evidence
    lines = sorted(f"{lv}\t{en}" for en, lv in local.items())
    (tmp_path / SIDECAR).write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8-sig"))
    r = cli("diagnose", str(tmp_path / "iovkit-counters_000001.csv"), "--format", "json")
    assert r.code == 1, r.err
    assert json.loads(r.out)["windows"][0]["core"] == "0"


def test_get_counter_json_from_a_french_host_is_mapped(cli, tmp_path: Path) -> None:
    """Get-Counter returns lower-cased local paths; the same table maps them."""
    samples = []
    for i in range(40):
        ts = f"/Date({1790000000000 + i * 1000})/"
        for c, (intr, dpc) in enumerate([(31.0, 64.0), (0.5, 2.0)]):
            for ctr, v in (("% temps d’interruption", intr), ("% temps dpc", dpc)):
                path = f"\\\\hv-paris\\processeur({c})\\{ctr}"
                samples.append({"Path": path, "InstanceName": str(c), "CookedValue": v, "Timestamp": ts})
        for ctr, v in (("paquets reçus/s", 150_000.0), ("paquets envoyés/s", 300_000.0)):
            path = f"\\\\hv-paris\\interface réseau(mellanox connectx-4 lx)\\{ctr}"
            samples.append({"Path": path, "InstanceName": "mellanox connectx-4 lx", "CookedValue": v, "Timestamp": ts})
    f = tmp_path / "get-counter.json"
    f.write_text(json.dumps(samples), encoding="utf-8")
    r = cli("diagnose", str(f), "--format", "json")
    assert r.code == 1, r.err
    hot = next(x for x in json.loads(r.out)["findings"] if x["id"] == "SINGLE-CORE-SWITCH")
    assert hot["core"] == "0" and hot["evidence"]["nic_pps"] == 450_000
