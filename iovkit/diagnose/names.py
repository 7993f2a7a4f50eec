"""Localized counter names -> English, for recordings made with the display language's names.

typeperf, logman and Perfmon record the names of the host's display language (field-notes.md: German en dash,
French names). diagnose reads them through this table; each row names its public source. A language or name
not in the table leaves the object unrecognized, and diagnose says in one line which objects it could not read
and that `iovkit script counters` records on any language (it resolves names through the Perflib indexes).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Name:
    lang: str  # BCP 47 tag of the display language
    kind: str  # "object" | "counter"
    local: str
    english: str
    source: str


# English objects diagnose reads (lower-case): a name in this set is not "unrecognized"
ENGLISH_OBJECTS = frozenset(
    {
        "processor",
        "processor information",
        "hyper-v hypervisor root virtual processor",
        "hyper-v hypervisor logical processor",
        "hyper-v hypervisor virtual processor",
        "hyper-v virtual switch",
        "hyper-v virtual switch processor",
        "hyper-v virtual switch port",
        "hyper-v virtual network adapter",
        "network interface",
        "network adapter",
        "udpv4",
        "udpv6",
    }
)

# Sources: "idx N" is the public source id the search tool gives a file when the repository is not named (the
# convention of ../shared/reference/hyperv.md); "Perflib 007" is a dump of a German host's
# HKLM\...\Perflib\CurrentLanguage\Counter list (index, name pairs); "docs" are Microsoft's localized pages.
_DE_PERFLIB = "Perflib 007 Counter dump of a de-DE host (idx 35588813879), index {}"
_DE_SCRIPT = "a de-DE admin's Hyper-V counter script (idx 180032261; field-notes.md)"
_FR_SCRIPT = "fr-FR Get-Counter list (idx 6864693765)"
TABLE: tuple[Name, ...] = (
    # German
    Name("de", "object", "Prozessor", "Processor", _DE_PERFLIB.format(238)),
    Name("de", "object", "Prozessorinformationen", "Processor Information", "de-DE scripts (idx 219065295, 15875187)"),
    Name("de", "object", "Netzwerkschnittstelle", "Network Interface", _DE_PERFLIB.format(510)),
    Name("de", "object", "Netzwerkadapter", "Network Adapter", _DE_SCRIPT),
    Name(
        "de",
        "object",
        "Hyper-V-Hypervisor \u2013 Stamm des virtuellen Prozessors",
        "Hyper-V Hypervisor Root Virtual Processor",
        _DE_SCRIPT,
    ),
    Name(
        "de",
        "object",
        "Hyper-V-Hypervisor \u2013 logischer Prozessor",
        "Hyper-V Hypervisor Logical Processor",
        _DE_SCRIPT,
    ),
    Name(
        "de",
        "object",
        "Hyper-V-Hypervisor \u2013 virtueller Prozessor",
        "Hyper-V Hypervisor Virtual Processor",
        _DE_SCRIPT,
    ),
    Name("de", "counter", "Prozessorzeit (%)", "% Processor Time", _DE_PERFLIB.format(6)),
    Name("de", "counter", "DPC-Zeit (%)", "% DPC Time", _DE_PERFLIB.format(696)),
    Name("de", "counter", "Interruptzeit (%)", "% Interrupt Time", _DE_PERFLIB.format(698)),
    Name("de", "counter", "% Gesamtausf\u00fchrungszeit", "% Total Run Time", _DE_PERFLIB.format(4896)),
    Name("de", "counter", "Empfangene Pakete/s", "Packets Received/sec", _DE_PERFLIB.format(266)),
    Name("de", "counter", "Pakete gesendet/s", "Packets Sent/sec", _DE_PERFLIB.format(452)),
    Name("de", "counter", "Pakete/s", "Packets/sec", _DE_PERFLIB.format(400)),
    Name("de", "counter", "Empfangene Pakete, verworfen", "Packets Received Discarded", _DE_PERFLIB.format(528)),
    # French
    Name("fr", "object", "Processeur", "Processor", "field-notes.md; fr-FR WinRM script (idx 4984644493)"),
    Name("fr", "object", "Informations sur le processeur", "Processor Information", "field-notes.md; " + _FR_SCRIPT),
    Name("fr", "object", "Interface r\u00e9seau", "Network Interface", _FR_SCRIPT),
    Name("fr", "object", "Carte r\u00e9seau", "Network Adapter", _FR_SCRIPT + "; idx 7688844904"),
    Name("fr", "counter", "% temps processeur", "% Processor Time", "field-notes.md; " + _FR_SCRIPT),
    Name("fr", "counter", "% temps d'interruption", "% Interrupt Time", _FR_SCRIPT),
    Name("fr", "counter", "% temps DPC", "% DPC Time", _FR_SCRIPT + "; idx 4984644493"),
    Name("fr", "counter", "Paquets re\u00e7us/s", "Packets Received/sec", _FR_SCRIPT + "; idx 7688844904"),
    Name("fr", "counter", "Paquets envoy\u00e9s/s", "Packets Sent/sec", _FR_SCRIPT),
    Name("fr", "counter", "Paquets/s", "Packets/sec", _FR_SCRIPT),
    # Spanish (Microsoft docs es-ES: Hyper-V bottleneck page idx 43733634206, counter table idx 15553559282)
    Name("es", "object", "Procesador", "Processor", "docs es-ES counter table (idx 15553559282)"),
    Name("es", "counter", "% de tiempo de procesador", "% Processor Time", "docs es-ES (idx 15553559282)"),
    Name("es", "counter", "% de tiempo de interrupci\u00f3n", "% Interrupt Time", "docs es-ES (idx 43733634206)"),
    Name("es", "counter", "% de tiempo de DPC", "% DPC Time", "docs es-ES (idx 43733634206, 15553559282)"),
    Name("es", "counter", "Paquetes recibidos/seg.", "Packets Received/sec", "docs es-ES (idx 43504410388)"),
    Name("es", "counter", "Paquetes enviados/seg.", "Packets Sent/sec", "docs es-ES (idx 43504410388)"),
    # Japanese (Microsoft docs ja-JP: BizTalk counter table idx 41795675341, network tuning idx 5944160158)
    Name("ja", "object", "\u30d7\u30ed\u30bb\u30c3\u30b5", "Processor", "docs ja-JP (idx 41795675341)"),
    Name(
        "ja",
        "object",
        "\u30d7\u30ed\u30bb\u30c3\u30b5\u60c5\u5831",
        "Processor Information",
        "docs ja-JP (idx 5944160158)",
    ),
    Name(
        "ja",
        "counter",
        "% \u30d7\u30ed\u30bb\u30c3\u30b5\u6642\u9593",
        "% Processor Time",
        "docs ja-JP (idx 41795675341, 5944160158)",
    ),
    # Korean
    Name(
        "ko",
        "object",
        "\ud504\ub85c\uc138\uc11c \uc815\ubcf4",
        "Processor Information",
        "a Rust PDH test on a ko-KR host (idx 61078600700)",
    ),
    Name(
        "ko",
        "counter",
        "% \ud504\ub85c\uc138\uc11c \uc2dc\uac04",
        "% Processor Time",
        "a Rust PDH test on a ko-KR host (idx 61078600700)",
    ),
    Name("ko", "object", "\ud504\ub85c\uc138\uc11c", "Processor", "docs ko-KR counter table (idx 912616981)"),
    Name("ko", "counter", "% \uc778\ud130\ub7fd\ud2b8 \uc2dc\uac04", "% Interrupt Time", "docs ko-KR (idx 912616981)"),
    Name("ko", "counter", "% DPC \uc2dc\uac04", "% DPC Time", "docs ko-KR (idx 912616981)"),
    # Simplified Chinese
    Name(
        "zh-CN", "object", "\u5904\u7406\u5668", "Processor", "typeperf on zh-CN hosts (idx 70414682932, 65981170056)"
    ),
    Name(
        "zh-CN",
        "counter",
        "% \u5904\u7406\u5668\u65f6\u95f4",
        "% Processor Time",
        "typeperf on zh-CN hosts (idx 70414682932, 65981170056)",
    ),
    Name("zh-CN", "counter", "% \u4e2d\u65ad\u65f6\u95f4", "% Interrupt Time", "docs zh-CN Hyper-V (idx 2508968442)"),
)


def fold(name: str) -> str:
    """Compare names the way a user reads them: case, dashes, apostrophes and spaces folded."""
    s = unicodedata.normalize("NFC", name).strip().lower()
    for dash in ("\u2013", "\u2014", "\u2012", "\u2212"):
        s = s.replace(dash, "-")
    s = s.replace("\u2019", "'").replace("\u00a0", " ")
    return " ".join(s.split())


def _index(kind: str) -> dict[str, Name]:
    return {fold(n.local): n for n in TABLE if n.kind == kind}


_OBJECTS = _index("object")
_COUNTERS = _index("counter")


def to_english(obj: str, counter: str, sidecar: dict[str, str] | None = None) -> tuple[str, str, str | None]:
    """(object, counter, language) in English; names not in the table come back as they are (language None).

    `sidecar` maps folded local names to English (written by `iovkit script counters` on the host); it wins.
    """
    if sidecar:
        o_en, c_en = sidecar.get(fold(obj)), sidecar.get(fold(counter))
        if o_en or c_en:
            return o_en or obj, c_en or counter, "sidecar"
    o = _OBJECTS.get(fold(obj))
    c = _COUNTERS.get(fold(counter))
    lang = o.lang if o else (c.lang if c else None)
    return (o.english if o else obj), (c.english if c else counter), lang


# Other English objects a recording commonly holds (typeperf -q on an English host): not a sign of another language
OTHER_ENGLISH = frozenset(
    {
        "memory",
        "paging file",
        "process",
        "processor",
        "system",
        "logicaldisk",
        "physicaldisk",
        "thread",
        "cache",
        "objects",
        "server",
        "redirector",
        "tcpv4",
        "tcpv6",
        "ipv4",
        "ipv6",
        "icmp",
        "icmpv6",
        "physical network interface card activity",
        "network qos policy",
        "per processor network interface card activity",
        "per processor network activity cycles",
        "rdma activity",
        "wfp",
        "wfpv4",
        "wfpv6",
    }
)
ENGLISH_PREFIXES = ("hyper-v virtual ", "hyper-v hypervisor", "hyper-v vm ", "hyper-v dynamic ", "vfp", "numa ")


def recognized(obj: str) -> bool:
    """An object diagnose reads, or another English object (neither says the host spoke another language)."""
    f = fold(obj)
    return f in ENGLISH_OBJECTS or f in OTHER_ENGLISH or f.startswith(ENGLISH_PREFIXES)
