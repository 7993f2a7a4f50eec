"""A Hyper-V host simulator that keeps the documented behaviour the switch-over depends on (hyperv.md §1-§3).

- IOV is fixed when a switch is created (there is no Set to change it).
- New-VMSwitch -EnableIov $true gives IovSupport False and 0 VFs when the host's IovSupport is False, a NIC's
  SR-IOV is disabled or unsupported, or a NIC is in an LBFO team.
- Remove-VMSwitch disconnects its adapters (SwitchName null, Connected False) and removes the management-OS
  vNIC; New-VMSwitch -AllowManagementOS $true creates one named after the switch.
- VF capacity per port is its NumVFs. An adapter gets a VF (IovUsage > 0, VFDataPathActive True) only with
  IovWeight > 0, on an IOV switch with IovSupport, with a free VF, in a running VM with a guest VF driver
  (per-VM flag). An adapter keeps the VF it holds (port, FunctionID) while it stays eligible; free VFs go to
  the others in the order they were connected. A VF's MAC is its vNIC's (Get-NetAdapterSriovVf
  CurrentMacAddress, hyperv.md §1.6). Seeded from a snapshot, the VFs it lists stay where it lists them, so an
  untouched simulated host re-collects to the same facts.
- Deleting a VM adapter is counted (`deleted_adapters`): a runbook must never do it.

It consumes the same typed steps the executors do (`execute(step, phase)`), and exports its state as a
HostSnapshot so apply's staleness check and verification read it like a real host. State is a pydantic
model, saved as JSON for the CLI (`--sim-state`). Fault injection: `fail_step`/`fail_phase`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iovkit.errors import InputError
from iovkit.plan.model import (
    ConnectStep,
    CreateSwitchStep,
    DisconnectStep,
    EnableSriovStep,
    RecordStep,
    RemoveSwitchStep,
    SetIovStep,
    Step,
    SwitchSpec,
    VerifyVfStep,
)
from iovkit.snapshot import HostSnapshot, Team, VirtualFunction, VmAdapter, VSwitch


class SimError(Exception):
    """A cmdlet failed (the message is what PowerShell would say, roughly)."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimNic(_M):
    name: str
    description: str | None = None
    sriov_support: str | None = None
    sriov_enabled: bool | None = None
    num_vfs: int | None = None
    vfs_configured: int | None = None
    team: str | None = None


class SimSwitch(_M):
    name: str
    switch_type: str | None = "External"
    net_adapters: list[str] = Field(default_factory=list)
    net_adapter_names: list[str] = Field(default_factory=list)
    iov_enabled: bool | None = False
    iov_support: bool | None = False
    allow_management_os: bool | None = False
    embedded_teaming: bool | None = False


class SimVf(_M):
    pf: str
    index: int


class SimAdapter(_M):
    vm: str | None
    name: str
    is_management_os: bool = False
    switch: str | None = None
    connected: bool | None = None
    iov_weight: int | None = None
    queue_pairs: int | None = None
    mac: str | None = None
    seq: int = 0
    vf: SimVf | None = Field(None, description="The VF this adapter holds (kept while it stays eligible)")


class SimVm(_M):
    name: str
    state: str | None = "Running"
    guest_driver: bool = Field(True, description="The guest has a VF driver")


class SimState(_M):
    format: Literal["iovkit-hyperv-sim"] = "iovkit-hyperv-sim"
    host: str | None
    iov_supported: bool | None
    nics: list[SimNic]
    teams: list[Team] = Field(default_factory=list)
    switches: list[SimSwitch]
    vms: list[SimVm]
    adapters: list[SimAdapter]
    seq: int = 0
    deleted_adapters: int = 0
    fail_step: int | None = Field(None, description="Fault injection: this step id fails")
    fail_phase: Literal["action", "verify"] = "action"
    base: HostSnapshot = Field(description="The snapshot the simulator started from (fields it does not model)")


class Simulator:
    def __init__(self, state: SimState) -> None:
        self.s = state

    # -- construction and persistence ---------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snap: HostSnapshot) -> Simulator:
        adapters = [
            SimAdapter(
                vm=a.vm_name,
                name=a.name,
                is_management_os=a.is_management_os,
                switch=a.switch_name,
                connected=a.connected,
                iov_weight=a.iov_weight,
                queue_pairs=a.iov_queue_pairs_requested,
                mac=a.mac,
                seq=i,
            )
            for i, a in enumerate(snap.vm_adapters)
        ]
        for v in snap.vfs:
            owner = _vf_owner(v, adapters)
            if owner is not None and owner.vf is None:
                owner.vf = SimVf(pf=v.pf, index=v.index)
        state = SimState(
            host=snap.host.name,
            iov_supported=snap.iov.supported,
            nics=[
                SimNic(
                    name=n.name,
                    description=n.description,
                    sriov_support=n.sriov_support,
                    sriov_enabled=n.sriov_enabled,
                    num_vfs=n.vfs_total,
                    vfs_configured=n.vfs_configured,
                    team=n.team,
                )
                for n in snap.nics
            ],
            teams=[t.model_copy() for t in snap.teams],
            switches=[
                SimSwitch(
                    name=s.name,
                    switch_type=s.switch_type,
                    net_adapters=list(s.net_adapters or []),
                    net_adapter_names=list(s.net_adapter_names),
                    iov_enabled=s.iov_enabled,
                    iov_support=s.iov_support,
                    allow_management_os=s.allow_management_os,
                    embedded_teaming=s.embedded_teaming,
                )
                for s in snap.switches
            ],
            vms=[SimVm(name=v.name, state=v.state) for v in snap.vms],
            adapters=adapters,
            seq=len(adapters),
            base=snap,
        )
        return cls(state)

    @classmethod
    def load(cls, path: Path) -> Simulator:
        from iovkit.fileio import read_json, validation_line

        data = read_json(path)  # missing, unreadable, binary or truncated: one line naming the file
        try:
            return cls(SimState.model_validate(data))
        except ValidationError as err:
            loc, msg = validation_line(err)
            raise InputError(f"not a simulator state file ({loc}: {msg})", path=str(path)) from err

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(self.s.model_dump_json(indent=2), encoding="utf-8")
            tmp.replace(path)
        except OSError as err:
            raise InputError(f"cannot write the simulator state: {err.strerror}", path=str(path)) from err

    # -- lookups ------------------------------------------------------------------------------------
    def switch(self, name: str) -> SimSwitch | None:
        return next((s for s in self.s.switches if s.name == name), None)

    def nic(self, key: str) -> SimNic | None:
        return next((n for n in self.s.nics if key in (n.name, n.description)), None)

    def adapter(self, vm: str, name: str) -> SimAdapter:
        found = next((a for a in self.s.adapters if a.vm == vm and a.name == name), None)
        if found is None:
            raise SimError(f"Get-VMNetworkAdapter: no adapter {name!r} on VM {vm!r}")
        return found

    def switch_nic_names(self, sw: SimSwitch) -> list[str]:
        keys = list(sw.net_adapter_names) or list(sw.net_adapters)
        names: list[str] = []
        for k in keys:
            team = next((t for t in self.s.teams if t.name == k), None)
            if team is not None:
                names.extend(team.members)
            elif (n := self.nic(k)) is not None:
                names.append(n.name)
        return names

    def _lbfo(self, nic: SimNic) -> bool:
        return any(t.kind == "lbfo" and (nic.name in t.members or nic.team == t.name) for t in self.s.teams)

    # -- documented behaviour -----------------------------------------------------------------------
    def new_switch(self, spec: SwitchSpec) -> None:
        if self.switch(spec.name) is not None:
            raise SimError(f"New-VMSwitch: a switch named {spec.name!r} already exists")
        nics: list[SimNic] = []
        for key in spec.nics:
            team = next((t for t in self.s.teams if t.name == key), None)
            members = team.members if team else [key]
            for m in members:
                nic = self.nic(m)
                if nic is None:
                    raise SimError(f"New-VMSwitch: no network adapter {m!r}")
                nics.append(nic)
        for other in self.s.switches:
            taken = set(self.switch_nic_names(other)) & {n.name for n in nics}
            if taken:
                raise SimError(f"New-VMSwitch: {', '.join(sorted(taken))} is already bound to {other.name!r}")
        # IovSupport comes from the external port's capability (hyperv.md §1.2), whatever IovEnabled says;
        # a VF count needs both (checked where VFs are allocated).
        support = bool(
            self.s.iov_supported
            and all(n.sriov_enabled and n.sriov_support in (None, "Supported") and not self._lbfo(n) for n in nics)
        )
        self.s.switches.append(
            SimSwitch(
                name=spec.name,
                net_adapters=[n.description or n.name for n in nics],
                net_adapter_names=list(spec.nics),
                iov_enabled=spec.iov,
                iov_support=support,
                allow_management_os=spec.allow_management_os,
                embedded_teaming=spec.embedded_teaming,
            )
        )
        if spec.allow_management_os:
            self.s.seq += 1
            self.s.adapters.append(
                SimAdapter(
                    vm=None, name=spec.name, is_management_os=True, switch=spec.name, connected=True, seq=self.s.seq
                )
            )

    def remove_switch(self, name: str) -> None:
        sw = self.switch(name)
        if sw is None:
            raise SimError(f"Remove-VMSwitch: no switch named {name!r}")
        self.s.switches.remove(sw)
        self.s.adapters = [a for a in self.s.adapters if not (a.is_management_os and a.switch == name)]
        for a in self.s.adapters:
            if a.switch == name:
                a.switch, a.connected = None, False

    def connect(self, vm: str, name: str, switch: str) -> None:
        a = self.adapter(vm, name)
        if self.switch(switch) is None:
            raise SimError(f"Connect-VMNetworkAdapter: no switch named {switch!r}")
        self.s.seq += 1
        a.switch, a.connected, a.seq = switch, True, self.s.seq

    def disconnect(self, vm: str, name: str) -> None:
        a = self.adapter(vm, name)
        a.switch, a.connected = None, False

    def remove_adapter(self, vm: str, name: str) -> None:
        """Remove-VMNetworkAdapter: modelled only so a test can prove the runbook never calls it."""
        self.s.adapters.remove(self.adapter(vm, name))
        self.s.deleted_adapters += 1

    def _eligible(self, a: SimAdapter, sw: SimSwitch) -> bool:
        vm = next((v for v in self.s.vms if v.name == a.vm), None)
        return bool(
            a.vm
            and a.switch == sw.name
            and a.connected
            and (a.iov_weight or 0) > 0
            and vm is not None
            and vm.state == "Running"
            and vm.guest_driver
        )

    def settle(self) -> None:
        """Release the VFs of adapters no longer eligible (or whose VF is gone), then hand free VFs out in
        connection order. Idempotent: called after every step and before every read."""
        switches = {s.name: s for s in self.s.switches if s.iov_enabled and s.iov_support}
        taken: set[tuple[str, int]] = set()
        for a in sorted(self.s.adapters, key=lambda a: a.seq):
            sw = switches.get(a.switch or "")
            vf = a.vf
            if vf is None:
                continue
            ok = (
                sw is not None
                and self._eligible(a, sw)
                and vf.pf in self.switch_nic_names(sw)
                and vf.index < ((self.nic(vf.pf) or SimNic(name=vf.pf)).num_vfs or 0)
                and (vf.pf, vf.index) not in taken
            )
            if ok:
                taken.add((vf.pf, vf.index))
            else:
                a.vf = None
        for sw in sorted(switches.values(), key=lambda s: s.name):
            free = (
                (n, i)
                for n in self.switch_nic_names(sw)
                for i in range((self.nic(n) or SimNic(name=n)).num_vfs or 0)
                if (n, i) not in taken
            )
            for a in sorted(self.s.adapters, key=lambda a: a.seq):
                if a.vf is None and self._eligible(a, sw):
                    slot = next(free, None)
                    if slot is None:
                        break
                    taken.add(slot)
                    a.vf = SimVf(pf=slot[0], index=slot[1])

    def vf_assignments(self) -> dict[tuple[str, str], tuple[str, int]]:
        """(vm, adapter) -> (port, VF index), after applying the rules above."""
        self.settle()
        return {(a.vm or "", a.name): (a.vf.pf, a.vf.index) for a in self.s.adapters if a.vf is not None}

    def sriov_vfs(self, switch: str) -> list[VirtualFunction]:
        """Get-NetAdapterSriovVf on the switch's NICs."""
        sw = self.switch(switch)
        if sw is None:
            return []
        names = set(self.switch_nic_names(sw))
        return [
            VirtualFunction(pf=pf, index=i, vm=vm) for (vm, _), (pf, i) in self.vf_assignments().items() if pf in names
        ]

    # -- the typed steps ----------------------------------------------------------------------------
    def execute(self, step: Step, phase: Literal["action", "verify", "undo"]) -> str:
        """Run one phase of one step; raise SimError when the cmdlet or the verification fails."""
        if self.s.fail_step == step.id and phase == self.s.fail_phase:
            raise SimError(f"injected failure at step {step.id} ({phase})")
        if phase == "action":
            out = self._action(step)
            self.settle()
            return out
        if phase == "verify":
            self._verify(step)
            return "verified"
        out = self._undo(step)
        self.settle()
        return out

    def _action(self, step: Step) -> str:
        match step:
            case RecordStep():
                rows = [
                    {
                        "VMName": a.vm,
                        "Name": a.name,
                        "SwitchName": a.switch,
                        "Connected": a.connected,
                        "IovWeight": a.iov_weight,
                        "IovQueuePairsRequested": a.queue_pairs,
                    }
                    for a in self.s.adapters
                    if a.vm
                ]
                return json.dumps(rows)
            case EnableSriovStep(nic=name, num_vfs=num):
                nic = self.nic(name)
                if nic is None:
                    raise SimError(f"Enable-NetAdapterSriov: no adapter {name!r}")
                nic.sriov_enabled = True
                if num:
                    nic.num_vfs = num
            case DisconnectStep(vm=vm, adapter=ad):
                self.disconnect(vm, ad)
            case RemoveSwitchStep(switch=spec):
                self.remove_switch(spec.name)
            case CreateSwitchStep(switch=spec):
                self.new_switch(spec)
            case ConnectStep(vm=vm, adapter=ad, switch=sw):
                self.connect(vm, ad, sw)
            case SetIovStep(vm=vm, adapter=ad, iov_weight=w, queue_pairs=qp):
                a = self.adapter(vm, ad)
                a.iov_weight, a.queue_pairs = w, qp
            case VerifyVfStep():
                pass
            case _:
                raise SimError(f"the Hyper-V simulator cannot run a {step.kind} step")
        return ""

    def _verify(self, step: Step) -> None:
        match step:
            case RecordStep():
                pass
            case EnableSriovStep(nic=name, num_vfs=num):
                nic = self.nic(name)
                if nic is None or not nic.sriov_enabled or (num and (nic.num_vfs or 0) < num):
                    raise SimError(f"SR-IOV is not enabled on {name}")
            case DisconnectStep(vm=vm, adapter=ad):
                if self.adapter(vm, ad).switch is not None:
                    raise SimError(f"{vm}/{ad} is still connected")
            case RemoveSwitchStep(switch=spec):
                if self.switch(spec.name) is not None:
                    raise SimError(f"switch {spec.name} still exists")
            case CreateSwitchStep(switch=spec):
                sw = self.switch(spec.name)
                if sw is None:
                    raise SimError(f"switch {spec.name} does not exist")
                if spec.iov and not (sw.iov_enabled and sw.iov_support and self._vf_count(sw) > 0):
                    raise SimError(f"switch {spec.name} is not an IOV switch: IovSupport {sw.iov_support}")
            case ConnectStep(vm=vm, adapter=ad, switch=swname):
                if self.adapter(vm, ad).switch != swname:
                    raise SimError(f"{vm}/{ad} is not on {swname}")
            case SetIovStep(vm=vm, adapter=ad, iov_weight=w, queue_pairs=qp):
                a = self.adapter(vm, ad)
                if (a.iov_weight, a.queue_pairs) != (w, qp):
                    raise SimError(f"{vm}/{ad} IovWeight is not {w}")
            case VerifyVfStep(vm=vm, adapter=ad, switch=swname):
                self.adapter(vm, ad)
                if (vm, ad) not in self.vf_assignments():
                    raise SimError(f"{vm}/{ad}: VFDataPathActive is False")
                if not any(v.vm == vm for v in self.sriov_vfs(swname)):
                    raise SimError(f"Get-NetAdapterSriovVf lists no VF for {vm}")

    def _undo(self, step: Step) -> str:
        """Idempotent undo: look first, change only what is still different."""
        match step:
            case EnableSriovStep(nic=name, was_enabled=was, old_num_vfs=old):
                nic = self.nic(name)
                if nic is not None:
                    nic.sriov_enabled, nic.num_vfs = was, old
            case DisconnectStep(vm=vm, adapter=ad, switch=sw):
                if self.adapter(vm, ad).switch != sw:
                    self.connect(vm, ad, sw)
            case RemoveSwitchStep(switch=spec):
                if self.switch(spec.name) is None:
                    self.new_switch(spec)
            case CreateSwitchStep(switch=spec):
                made = self.switch(spec.name)
                if made is not None and made.iov_enabled == spec.iov:
                    self.remove_switch(spec.name)
            case ConnectStep(vm=vm, adapter=ad, switch=swname):
                if self.adapter(vm, ad).switch == swname:
                    self.disconnect(vm, ad)
            case SetIovStep(vm=vm, adapter=ad, old_iov_weight=w, old_queue_pairs=qp):
                a = self.adapter(vm, ad)
                a.iov_weight, a.queue_pairs = w, qp
        return ""

    def _vf_count(self, sw: SimSwitch) -> int:
        if not (sw.iov_enabled and sw.iov_support):
            return 0
        return sum((self.nic(n) or SimNic(name=n)).num_vfs or 0 for n in self.switch_nic_names(sw))

    # -- export -------------------------------------------------------------------------------------
    def to_snapshot(self) -> HostSnapshot:
        """The simulated host as `iovkit collect` would see it now."""
        base = self.s.base
        snap = base.model_copy(deep=True)
        snap.collected_at = datetime.now(UTC)
        snap.host.name = self.s.host
        snap.iov.supported = self.s.iov_supported
        vfs = self.vf_assignments()
        per_nic: dict[str, int] = {}
        for pf, _ in vfs.values():
            per_nic[pf] = per_nic.get(pf, 0) + 1
        base_nics = {n.name: n for n in snap.nics}
        for sn in self.s.nics:
            n = base_nics.get(sn.name)
            if n is not None:
                n.sriov_enabled, n.vfs_total, n.vfs_configured, n.team = (
                    sn.sriov_enabled,
                    sn.num_vfs,
                    sn.vfs_configured,
                    sn.team,
                )
                n.vfs_allocated = per_nic.get(sn.name, 0) if n.vfs_allocated is not None or sn.name in per_nic else None
        snap.teams = [t.model_copy() for t in self.s.teams]
        base_sw = {s.name: s for s in base.switches}
        switches: list[VSwitch] = []
        for ss in self.s.switches:
            vf_count = self._vf_count(ss)
            in_use = sum(1 for pf, _ in vfs.values() if pf in self.switch_nic_names(ss))
            upd: dict[str, Any] = {
                "switch_type": ss.switch_type,
                "net_adapters": ss.net_adapters,
                "net_adapter_names": ss.net_adapter_names,
                "iov_enabled": ss.iov_enabled,
                "iov_support": ss.iov_support,
                "allow_management_os": ss.allow_management_os,
                "embedded_teaming": ss.embedded_teaming,
                "vf_count": vf_count,
                "vfs_in_use": in_use,
            }
            old = base_sw.get(ss.name)
            if old is not None and old.iov_enabled == ss.iov_enabled:
                switches.append(old.model_copy(update=upd))
            else:
                switches.append(VSwitch(name=ss.name, **upd))
        snap.switches = switches
        base_ad = {(a.vm_name, a.name): a for a in base.vm_adapters}
        adapters: list[VmAdapter] = []
        for sa in self.s.adapters:
            got = vfs.get((sa.vm or "", sa.name)) if sa.vm else None
            upd = {
                "switch_name": sa.switch,
                "connected": sa.connected,
                "iov_weight": sa.iov_weight,
                "iov_queue_pairs_requested": sa.queue_pairs,
                "mac": sa.mac,
            }
            if sa.vm:
                upd.update(
                    iov_usage=1 if got else 0,
                    vf_data_path_active=bool(got),
                    iov_queue_pairs_assigned=(sa.queue_pairs or 1) if got else 0,
                )
            old_a = base_ad.get((sa.vm, sa.name))
            if old_a is not None:
                adapters.append(old_a.model_copy(update=upd))
            else:
                adapters.append(VmAdapter(vm_name=sa.vm, name=sa.name, is_management_os=sa.is_management_os, **upd))
        snap.vm_adapters = adapters
        base_vf = {(v.pf, v.index, v.vm): v for v in base.vfs}
        macs = {(a.vm or "", a.name): a.mac for a in self.s.adapters}
        out_vfs: list[VirtualFunction] = []
        for key, (pf, i) in vfs.items():
            mac = macs.get(key)
            old_vf = base_vf.get((pf, i, key[0]))
            if old_vf is not None and old_vf.mac == mac:
                out_vfs.append(old_vf.model_copy())
            else:
                out_vfs.append(VirtualFunction(pf=pf, index=i, vm=key[0], mac=mac))
        snap.vfs = sorted(out_vfs, key=lambda v: (_natural(v.pf), v.index))
        return snap

    def signature(self) -> dict[str, Any]:
        """What rollback must restore exactly: adapter -> switch, switch names and settings, weights, NICs."""
        return {
            "adapters": sorted(
                (a.vm or "", a.name, a.is_management_os, a.switch, a.connected, a.iov_weight, a.queue_pairs)
                for a in self.s.adapters
            ),
            "switches": sorted(
                (
                    s.name,
                    s.iov_enabled,
                    s.allow_management_os,
                    tuple(self.switch_nic_names(s)),
                    s.embedded_teaming,
                    s.switch_type,
                    s.iov_support,
                )
                for s in self.s.switches
            ),
            "nics": sorted((n.name, n.sriov_enabled, n.num_vfs) for n in self.s.nics),
            "deleted_adapters": self.s.deleted_adapters,
        }


def _natural(text: str) -> list[Any]:
    """'Port 10' after 'Port 2', like the collector's order."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]


def _vf_owner(vf: VirtualFunction, adapters: list[SimAdapter]) -> SimAdapter | None:
    """The VM adapter a listed VF belongs to: same VM and MAC, else the VM's only adapter."""
    mine = [a for a in adapters if a.vm is not None and a.vm == vf.vm]
    by_mac = [a for a in mine if vf.mac is not None and a.mac == vf.mac]
    if len(by_mac) == 1:
        return by_mac[0]
    return mine[0] if len(mine) == 1 else None
