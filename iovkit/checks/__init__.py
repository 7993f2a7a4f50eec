"""`iovkit check`: SR-IOV readiness rules over a host snapshot, with evidence and the exact fix.

Public face: `run_checks(snapshot, policy, only, skip_ids) -> CheckResult`, `all_rules()`, the models in
`catalog`, and the renderers in `render`. The verdict is defined in `iovkit.checks.catalog`.
"""

from __future__ import annotations

from iovkit.checks.catalog import (
    CheckResult,
    Finding,
    Rule,
    Scope,
    all_rules,
    run_checks,
    top_fixes,
)

__all__ = ["CheckResult", "Finding", "Rule", "Scope", "all_rules", "run_checks", "top_fixes"]
