"""`iovkit check`: SR-IOV readiness rules over a host snapshot, with evidence and the exact fix.

Public face: `run_checks(snapshot, policy, only, skip_ids) -> CheckResult`, `all_rules()`, the models in
`catalog`, and the renderers in `render`. The verdict is defined in `iovkit.checks.catalog`.
"""

from __future__ import annotations

# The rule modules register their rules on import; the catalog itself never imports them (no circle).
# Registration order is report order (and the tie-break of doctor's top fixes), so the Hyper-V modules are
# imported in rule order: host, switch, VM adapters, VMQ, VF queues.
# isort: off
from iovkit.checks import hyperv  # noqa: F401
from iovkit.checks import hyperv_switch  # noqa: F401
from iovkit.checks import hyperv_adapters  # noqa: F401
from iovkit.checks import hyperv_vmq  # noqa: F401
from iovkit.checks import hyperv_queues  # noqa: F401

# isort: on
from iovkit.checks import (  # noqa: F401  (after the catalog they register into)
    esxi,
    esxi_vm,
    guest,
    linux,
)
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
