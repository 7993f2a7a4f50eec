"""A tiny vSphere SOAP endpoint on 127.0.0.1 that answers from recorded responses (no internet, no vcsim).

Requests are keyed by method, the `_this` managed object and the first argument (a property name for `Fetch`,
a module name for `QueryConfiguredModuleOptionString`); each key's answer is a SOAP envelope stored under
fixtures/esxi/soap/. `record()` writes those envelopes from pyVmomi data objects (pyVmomi's own serializer), so
they are byte-for-byte what a server sends in that shape; `python3 -m tests.sources.vsphere_replay` rewrites them.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SOAP_DIR = Path(__file__).parent / "fixtures" / "esxi" / "soap"
VERSION = "vim.version.v8_0_3_0"
VERSION_ID = "8.0.3.0"

SERVICE_VERSIONS = f"""<?xml version="1.0" encoding="UTF-8" ?>
<namespaces version="1.0">
  <namespace>
    <name>urn:vim25</name>
    <version>{VERSION_ID}</version>
    <priorVersions>
      <version>8.0.2.0</version>
      <version>7.0.3.0</version>
    </priorVersions>
  </namespace>
</namespaces>
"""


def key_name(method: str, this: str, arg: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "__".join(x for x in (method, this, arg) if x)) + ".xml"


def envelope(method: str, value: Any, vtype: Any) -> str:
    from pyVmomi import SoapAdapter
    from pyVmomi.VmomiSupport import Object

    ns = SoapAdapter.SOAP_NSMAP.copy()
    ns["urn:vim25"] = ""
    body = ""
    if value is not None:
        body = SoapAdapter.SerializeToStr(
            value, Object(name="returnval", type=vtype, version=VERSION, flags=0), VERSION, ns
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + SoapAdapter.SOAP_START
        + f'<{method}Response xmlns="urn:vim25">{body}</{method}Response>'
        + SoapAdapter.SOAP_END
    )


def fault(text: str) -> str:
    from pyVmomi import SoapAdapter

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + SoapAdapter.SOAP_START
        + f"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{text}</faultstring>"
        '<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail>'
        "</soapenv:Fault>" + SoapAdapter.SOAP_END
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/vimServiceVersions.xml"):
            self._send(200, SERVICE_VERSIONS, "text/xml")
        else:
            self._send(404, "not found", "text/plain")

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        root = ET.fromstring(data)
        body = next(el for el in root if el.tag.endswith("Body"))
        call = body[0]
        method = call.tag.split("}")[-1]
        this_el = next((c for c in call if c.tag.split("}")[-1] == "_this"), None)
        this = f"{this_el.get('type')}-{this_el.text}" if this_el is not None else ""
        args = [c for c in call if c.tag.split("}")[-1] != "_this"]
        arg = args[0].text if args and method in ("Fetch", "QueryConfiguredModuleOptionString") else None
        self.server.calls.append((method, this, arg))
        if method == "Login" and self.server.password is not None:
            pwd = next((c.text for c in call if c.tag.split("}")[-1] == "password"), None)
            if pwd != self.server.password:
                self._send(500, fault("Cannot complete login due to an incorrect user name or password."))
                return
        f = SOAP_DIR / key_name(method, this, arg)
        if not f.exists():
            self._send(500, fault(f"not recorded: {f.name}"))
            return
        headers = {"Set-Cookie": 'vmware_soap_session="replay"; Path=/; HttpOnly'} if method == "Login" else {}
        self._send(200, f.read_text(encoding="utf-8"), "text/xml; charset=utf-8", headers)

    def _send(
        self, code: int, text: str, ctype: str = "text/xml; charset=utf-8", headers: dict[str, str] | None = None
    ) -> None:
        raw = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    calls: list[tuple[str, str, str | None]]
    password: str | None


@contextmanager
def replay_server(password: str | None = "secret") -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.calls = []
    srv.password = password
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()


# -- the recorded host: ESXi 8.0.3 with a ConnectX-4 Lx (API SR-IOV on vmnic3) and an I350 ------------------------


def recorded_host() -> dict[str, tuple[str, Any, Any]]:
    """key -> (method, value, declared type) for every request the collector makes against `esx02.lab`."""
    from datetime import UTC, datetime

    from pyVmomi import vim

    host = vim.HostSystem("ha-host")
    about = vim.AboutInfo(
        name="VMware ESXi",
        fullName="VMware ESXi 8.0.3 build-24280767",
        vendor="VMware, Inc.",
        version="8.0.3",
        build="24280767",
        apiType="HostAgent",
        apiVersion="8.0.3.0",
        osType="vmnix-x86",
        productLineId="embeddedEsx",
        instanceUuid="",
        licenseProductName="VMware ESX Server",
        licenseProductVersion="8.0",
    )
    content = vim.ServiceInstanceContent(
        rootFolder=vim.Folder("ha-folder-root"),
        propertyCollector=vim.PropertyCollector("ha-property-collector"),
        viewManager=vim.view.ViewManager("ViewManager"),
        sessionManager=vim.SessionManager("ha-sessionmgr"),
        about=about,
    )
    now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    session = vim.UserSession(
        key="52a1",
        userName="root",
        fullName="Administrator",
        loginTime=now,
        lastActiveTime=now,
        locale="en",
        messageLocale="en",
        extensionSession=False,
        ipAddress="127.0.0.1",
        userAgent="pyvmomi",
        callCount=0,
    )
    sriov_on = vim.host.SriovInfo(
        id="0000:1a:00.1",
        dependentDevice="0000:1a:00.1",
        passthruEnabled=False,
        passthruCapable=True,
        passthruActive=False,
        sriovEnabled=True,
        sriovCapable=True,
        sriovActive=True,
        numVirtualFunctionRequested=8,
        numVirtualFunction=8,
        maxVirtualFunctionSupported=127,
    )
    sriov_off = vim.host.SriovInfo(
        id="0000:1a:00.0",
        dependentDevice="0000:1a:00.0",
        passthruEnabled=False,
        passthruCapable=True,
        passthruActive=False,
        sriovEnabled=False,
        sriovCapable=True,
        sriovActive=False,
        numVirtualFunctionRequested=0,
        numVirtualFunction=0,
        maxVirtualFunctionSupported=127,
    )
    plain = vim.host.PciPassthruInfo(
        id="0000:18:00.0",
        dependentDevice="0000:18:00.0",
        passthruEnabled=False,
        passthruCapable=True,
        passthruActive=False,
    )

    def pnic(dev: str, pci: str, drv: str, mac: str, speed: int | None) -> Any:
        return vim.host.PhysicalNic(
            key=f"key-vim.host.PhysicalNic-{dev}",
            device=dev,
            pci=pci,
            driver=drv,
            mac=mac,
            linkSpeed=vim.host.PhysicalNic.LinkSpeedDuplex(speedMb=speed, duplex=True) if speed else None,
            spec=vim.host.PhysicalNic.Specification(),
            wakeOnLanSupported=False,
            vmDirectPathGen2Supported=False,
            resourcePoolSchedulerAllowed=True,
            autoNegotiateSupported=True,
        )

    network = vim.host.NetworkInfo(
        pnic=[
            pnic("vmnic0", "0000:18:00.0", "igbn", "ac:1f:6b:20:30:40", 1000),
            pnic("vmnic2", "0000:1a:00.0", "nmlx5_core", "b8:ce:f6:dc:74:22", 25000),
            pnic("vmnic3", "0000:1a:00.1", "nmlx5_core", "b8:ce:f6:dc:74:23", 25000),
        ]
    )
    config = vim.host.ConfigInfo(
        host=host, product=about, pciPassthruInfo=[plain, sriov_off, sriov_on], network=network
    )

    def pci(i: str, cls: int, vid: int, did: int, vname: str, dname: str) -> Any:
        bus, slot, fn = int(i[5:7], 16), int(i[8:10], 16), int(i[11], 16)
        signed = vid - 0x10000 if vid >= 0x8000 else vid  # xsd:short on the wire
        return vim.host.PciDevice(
            id=i,
            classId=cls,
            bus=bus,
            slot=slot,
            function=fn,
            vendorId=signed,
            subVendorId=signed,
            vendorName=vname,
            deviceId=did - 0x10000 if did >= 0x8000 else did,
            subDeviceId=0,
            parentBridge="",
            deviceName=dname,
        )

    hardware = vim.host.HardwareInfo(
        pciDevice=[
            pci("0000:00:00.0", 0x0600, 0x8086, 0x2020, "Intel Corporation", "Sky Lake-E DMI3 Registers"),
            pci("0000:18:00.0", 0x0200, 0x8086, 0x1521, "Intel Corporation", "I350 Gigabit Network Connection"),
            pci("0000:1a:00.0", 0x0200, 0x15B3, 0x1015, "Mellanox Technologies", "ConnectX-4 Lx EN NIC; 25GbE"),
            pci("0000:1a:00.1", 0x0200, 0x15B3, 0x1015, "Mellanox Technologies", "ConnectX-4 Lx EN NIC; 25GbE"),
        ],
        cpuPkg=[
            vim.host.CpuPackage(
                index=0,
                vendor="intel",
                hz=2100000000,
                busHz=100000000,
                description="Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz",
                threadId=[0, 1],
            )
        ],
        memorySize=274877906944,
        systemInfo=vim.host.SystemInfo(vendor="Dell Inc.", model="PowerEdge R640", uuid="4c4c4544-0042"),
        cpuInfo=vim.host.CpuInfo(numCpuPackages=1, numCpuCores=16, numCpuThreads=32, hz=2100000000),
    )
    summary = vim.host.Summary(
        host=host,
        rebootRequired=False,
        overallStatus="green",
        quickStats=vim.host.Summary.QuickStats(),
        config=vim.host.Summary.ConfigSummary(
            name="esx02.lab", port=443, product=about, vmotionEnabled=False, faultToleranceEnabled=False
        ),
    )
    runtime = vim.host.RuntimeInfo(inMaintenanceMode=False, connectionState="connected", powerState="poweredOn")
    capability = vim.host.Capability(deviceRebindWithoutRebootSupported=False)
    manager = vim.host.ConfigManager(kernelModuleSystem=vim.host.KernelModuleSystem("kernelModuleSystem"))
    vm1, vm2 = vim.VirtualMachine("1"), vim.VirtualMachine("2")

    def vm_config(name: str, devices: list[Any], reservation: int, locked: bool, ver: str) -> Any:
        return vim.vm.ConfigInfo(
            name=name,
            version=ver,
            guestFullName="Ubuntu Linux (64-bit)",
            guestId="ubuntu64Guest",
            hardware=vim.vm.VirtualHardware(numCPU=4, memoryMB=8192, device=devices),
            memoryAllocation=vim.ResourceAllocationInfo(reservation=reservation),
            memoryReservationLockedToMax=locked,
            files=vim.vm.FileInfo(vmPathName=f"[datastore1] {name}/{name}.vmx"),
            template=False,
            changeVersion="1",
            modified=now,
            uuid="564d",
            instanceUuid="5000",
            flags=vim.vm.FlagInfo(),
            defaultPowerOps=vim.vm.DefaultPowerOpInfo(),
        )

    def label(text: str) -> Any:
        return vim.Description(label=text, summary=text)

    sriov_card = vim.vm.device.VirtualSriovEthernetCard(
        key=13031,
        deviceInfo=label("SR-IOV network adapter 1"),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Relay-VLAN20"),
        sriovBacking=vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(
            physicalFunctionBacking=vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
                id="0000:1a:00.1", deviceId="0", systemId="BYPASS", vendorId=0, deviceName=""
            )
        ),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=False
        ),
        allowGuestOSMtuChange=False,
        macAddress="00:50:56:a1:10:11",
        addressType="generated",
        unitNumber=65,
    )
    vmxnet = vim.vm.device.VirtualVmxnet3(
        key=4000,
        deviceInfo=label("Network adapter 1"),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Relay-VLAN20"),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=True
        ),
        macAddress="00:50:56:a1:10:12",
        addressType="generated",
        unitNumber=7,
    )
    return {
        key_name("RetrieveServiceContent", "ServiceInstance-ServiceInstance", None): (
            "RetrieveServiceContent",
            content,
            vim.ServiceInstanceContent,
        ),
        key_name("Login", "SessionManager-ha-sessionmgr", None): ("Login", session, vim.UserSession),
        key_name("CreateContainerView", "ViewManager-ViewManager", None): (
            "CreateContainerView",
            vim.view.ContainerView("session[52a1]view-1"),
            vim.view.ContainerView,
        ),
        key_name("Fetch", "ContainerView-session[52a1]view-1", "view"): ("Fetch", [host], vim.ManagedObject.Array),
        key_name("DestroyView", "ContainerView-session[52a1]view-1", None): ("DestroyView", None, None),
        key_name("Fetch", "HostSystem-ha-host", "name"): ("Fetch", "esx02.lab", str),
        key_name("Fetch", "HostSystem-ha-host", "config"): ("Fetch", config, vim.host.ConfigInfo),
        key_name("Fetch", "HostSystem-ha-host", "hardware"): ("Fetch", hardware, vim.host.HardwareInfo),
        key_name("Fetch", "HostSystem-ha-host", "configManager"): ("Fetch", manager, vim.host.ConfigManager),
        key_name("Fetch", "HostSystem-ha-host", "summary"): ("Fetch", summary, vim.host.Summary),
        key_name("Fetch", "HostSystem-ha-host", "runtime"): ("Fetch", runtime, vim.host.RuntimeInfo),
        key_name("Fetch", "HostSystem-ha-host", "capability"): ("Fetch", capability, vim.host.Capability),
        key_name("Fetch", "HostSystem-ha-host", "vm"): ("Fetch", [vm1, vm2], vim.VirtualMachine.Array),
        key_name("QueryConfiguredModuleOptionString", "HostKernelModuleSystem-kernelModuleSystem", "nmlx5_core"): (
            "QueryConfiguredModuleOptionString",
            "",
            str,
        ),
        key_name("QueryConfiguredModuleOptionString", "HostKernelModuleSystem-kernelModuleSystem", "igbn"): (
            "QueryConfiguredModuleOptionString",
            "",
            str,
        ),
        key_name("Fetch", "VirtualMachine-1", "name"): ("Fetch", "relay-11", str),
        key_name("Fetch", "VirtualMachine-1", "config"): (
            "Fetch",
            vm_config("relay-11", [sriov_card], 8192, True, "vmx-21"),
            vim.vm.ConfigInfo,
        ),
        key_name("Fetch", "VirtualMachine-1", "runtime"): (
            "Fetch",
            vim.vm.RuntimeInfo(
                powerState="poweredOn",
                connectionState="connected",
                faultToleranceState="notConfigured",
                toolsInstallerMounted=False,
                numMksConnections=0,
                recordReplayState="inactive",
                onlineStandby=False,
                consolidationNeeded=False,
            ),
            vim.vm.RuntimeInfo,
        ),
        key_name("Fetch", "VirtualMachine-2", "name"): ("Fetch", "relay-12", str),
        key_name("Fetch", "VirtualMachine-2", "config"): (
            "Fetch",
            vm_config("relay-12", [vmxnet], 0, False, "vmx-19"),
            vim.vm.ConfigInfo,
        ),
        key_name("Fetch", "VirtualMachine-2", "runtime"): (
            "Fetch",
            vim.vm.RuntimeInfo(
                powerState="poweredOn",
                connectionState="connected",
                faultToleranceState="notConfigured",
                toolsInstallerMounted=False,
                numMksConnections=0,
                recordReplayState="inactive",
                onlineStandby=False,
                consolidationNeeded=False,
            ),
            vim.vm.RuntimeInfo,
        ),
        key_name("Logout", "SessionManager-ha-sessionmgr", None): ("Logout", None, None),
    }


def record() -> None:
    """Write every recorded envelope (run after changing `recorded_host`)."""
    SOAP_DIR.mkdir(parents=True, exist_ok=True)
    for old in SOAP_DIR.glob("*.xml"):
        old.unlink()
    for name, (method, value, vtype) in recorded_host().items():
        if name.startswith("_"):
            continue
        (SOAP_DIR / name).write_text(envelope(method, value, vtype), encoding="utf-8")


if __name__ == "__main__":
    record()
