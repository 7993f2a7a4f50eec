"""What diagnose findings and remedies are: plain data shared by the rules (detect) and the remedy catalog.

Kept apart from detect so that the remedy catalog can name them without importing the rules (no circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from iovkit.diagnose.catalog import kind_of


@dataclass
class Finding:
    id: str
    severity: Literal["critical", "warning", "info"]
    summary: str
    core: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Only registered kinds exist (iovkit.diagnose.catalog); the catalog's severity is the one reported.
        self.severity = kind_of(self.id).severity

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "summary": self.summary,
            "core": self.core,
            "evidence": self.evidence,
        }


@dataclass
class Recommendation:
    rank: int
    id: str
    title: str
    why: str
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "title": self.title, "why": self.why, "commands": self.commands}
