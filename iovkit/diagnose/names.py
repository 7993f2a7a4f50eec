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

TABLE: tuple[Name, ...] = ()


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


def recognized(obj: str) -> bool:
    return fold(obj) in ENGLISH_OBJECTS
