"""The SR-IOV policy: which VM adapters should get Virtual Functions, and how the switch-over may proceed.

One model, read by `iovkit check` (to scope rules) and `iovkit plan` (to allocate VFs). Written in YAML:

    version: 1
    adapters:                       # in priority order: earlier entries get VFs first
      - vm: "relay-*"               # fnmatch glob on the VM name
        adapter: "*"                # glob on the adapter name
        iov_weight: 100             # 1..100
        queue_pairs: 4             # optional; default min(the VM's vCPUs, the NIC's per-VF queue limit)
    nics: ["Ethernet 2"]            # physical NICs (names) the plan may use; empty = those under the switch
    switches: ["External"]          # switches to convert; empty = every external switch in scope
    allow_second_switch: true       # may create a second IOV switch on a spare port for what does not fit
    second_switch_name: "SRIOV-2"
    management_os: keep             # keep | move | drop : what happens to the host's vNIC on a rebuilt switch
    relay: {port: 7777, rcvbuf: 4194304, workers: 2}   # inside a guest: what the GUEST-* tuning rules compare to

Without a policy every VM adapter on an external switch is in scope.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import InputError
from iovkit.fileio import read_text, validation_line
from iovkit.snapshot import HostSnapshot, VmAdapter


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdapterSelector(_Model):
    vm: str = Field("*", description="Glob on the VM name")
    adapter: str = Field("*", description="Glob on the adapter name")
    iov_weight: int = Field(100, ge=1, le=100)
    queue_pairs: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="VF receive queue pairs (IovQueuePairsRequested); None: min(the VM's vCPUs, the NIC's per-VF "
        "limit), since with a VF only the VF's queues spread receive interrupts in the guest",
    )

    def matches(self, adapter: VmAdapter) -> bool:
        return (
            adapter.vm_name is not None
            and fnmatch.fnmatchcase(adapter.vm_name, self.vm)
            and fnmatch.fnmatchcase(adapter.name, self.adapter)
        )


class RelayExpectations(_Model):
    """What the relay in this guest will ask for: the GUEST-* tuning rules compare the guest against it."""

    port: int = Field(7777, ge=1, le=65535, description="The relay's UDP port (conntrack NOTRACK rule)")
    rcvbuf: int = Field(4 << 20, ge=4096, description="The relay's --rcvbuf in bytes (vs net.core.rmem_max)")
    workers: int | None = Field(None, ge=1, description="Relay worker processes; None = one per vCPU")


class Policy(_Model):
    version: Literal[1] = 1
    adapters: list[AdapterSelector] = Field(default_factory=lambda: [AdapterSelector()])
    nics: list[str] = Field(default_factory=list)
    switches: list[str] = Field(default_factory=list)
    allow_second_switch: bool = False
    second_switch_name: str = "SRIOV-2"
    management_os: Literal["keep", "move", "drop"] = "keep"
    relay: RelayExpectations = Field(default_factory=lambda: RelayExpectations())

    def selector_for(self, adapter: VmAdapter) -> AdapterSelector | None:
        """The first selector that names this adapter (its position is the adapter's priority)."""
        return next((s for s in self.adapters if s.matches(adapter)), None)


def in_scope(snapshot: HostSnapshot, adapter: VmAdapter, policy: Policy | None) -> bool:
    """Is this adapter meant for SR-IOV? Without a policy: every VM adapter on an external switch."""
    if adapter.is_management_os or adapter.vm_name is None:
        return False
    if snapshot.host.platform == "esxi":
        # ESXi: without a policy, the adapters already of type SR-IOV passthrough; converting a vmxnet3 adapter
        # costs the VM vMotion, snapshots and HA, so it happens only when a policy names it.
        return adapter.kind == "sriov" if policy is None else policy.selector_for(adapter) is not None
    if policy is None:
        sw = snapshot.switch(adapter.switch_name) if adapter.switch_name else None
        return sw is not None and bool(snapshot.is_external(sw))  # the snapshot's one test (SwitchType, or a bound NIC)
    if policy.switches and adapter.switch_name not in policy.switches:
        # An adapter not on a named switch is still in scope when a selector names it explicitly.
        return any(s.vm != "*" and s.matches(adapter) for s in policy.adapters)
    return policy.selector_for(adapter) is not None


def adapters_in_scope(snapshot: HostSnapshot, policy: Policy | None) -> list[VmAdapter]:
    """In-scope adapters in priority order (policy selector order, then VM and adapter name)."""
    chosen = [a for a in snapshot.vm_adapters if in_scope(snapshot, a, policy)]

    def rank(a: VmAdapter) -> tuple[int, str, str]:
        if policy is None:
            return (0, a.vm_name or "", a.name)
        sel = policy.selector_for(a)
        return (policy.adapters.index(sel) if sel else len(policy.adapters), a.vm_name or "", a.name)

    return sorted(chosen, key=rank)


def policy_from_dict(data: Any, origin: str) -> Policy:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("a policy must be a YAML mapping", path=origin)
    if "schema_version" in data or "format" in data:  # a snapshot, bundle or plan handed over by mistake
        raise InputError(
            "this is an iovkit snapshot, bundle or plan, not a policy (expected `version: 1` and `adapters:`)",
            path=origin,
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        loc, msg = validation_line(err)
        raise InputError(msg, path=origin, field=loc) from err


def load_policy(path: Path) -> Policy:
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML{where}: {getattr(err, 'problem', err)}", path=str(path)) from err
    if data is None:  # an empty file is a failed copy far more often than a wish for the defaults
        raise InputError("the policy file is empty (expected `version: 1` and `adapters:`)", path=str(path))
    return policy_from_dict(data, str(path))
