"""What diagnose findings and remedies are: plain data shared by the rules (detect) and the remedy catalog.

Kept apart from detect so that the remedy catalog can name them without importing the rules (no circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class Finding:
    id: str
    severity: Literal["critical", "warning", "info"]
    summary: str
    core: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

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
