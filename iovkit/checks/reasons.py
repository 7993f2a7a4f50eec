"""Classify Hyper-V IovSupportReasons strings and SriovSupport values into a category, a meaning and a fix.

The nine strings come from Microsoft KB 2762297 (reference hyperv.md §2). Matching is by case-insensitive
substring so that wrapped, truncated (`...`) or slightly reworded text still lands; anything unmatched is
kept verbatim as UNKNOWN, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReasonClass:
    category: str
    label: str
    fix: str
    firmware: bool  # fixed in firmware/hardware rather than by a command


_COLD = " Power the server off completely after changing firmware settings (a warm reboot may not apply them)."

# (substrings, class) in match order: the first whose any substring is found wins.
REASONS: list[tuple[tuple[str, ...], ReasonClass]] = [
    (
        ("second level address translation",),
        ReasonClass(
            "NO_SLAT",
            "processor has no SLAT (Intel EPT / AMD RVI-NPT)",
            "Hardware: SR-IOV needs a CPU with SLAT (Intel EPT, AMD RVI/NPT); move the workload to such a host.",
            True,
        ),
    ),
    (
        ("interrupt remapping",),
        ReasonClass(
            "NO_INTERRUPT_REMAP",
            "chipset does no interrupt remapping",
            "Firmware setting: enable Intel VT-d / AMD IOMMU (AMD-Vi) and x2APIC, or update the BIOS." + _COLD,
            True,
        ),
    ),
    (
        ("dma remapping",),
        ReasonClass(
            "NO_DMA_REMAP",
            "chipset does no DMA remapping",
            "Firmware setting: enable Intel VT-d / AMD IOMMU (AMD-Vi) (may be labelled IOMMU, I/O Virtualization)."
            + _COLD,
            True,
        ),
    ),
    (
        ("disable the use of i/o remapping",),
        ReasonClass(
            "IOMMU_DISABLED_BY_OS",
            "the OS boot configuration disables I/O remapping hardware",
            "bcdedit /enum {current}  (look for an IOMMU/DMA-remapping policy that disables it, remove it, reboot)",
            False,
        ),
    ),
    (
        ("chipset support for sr-iov", "i/o virtualization is enabled in the bios"),
        ReasonClass(
            "BIOS_IOV_OFF",
            "I/O virtualization is off in firmware (or the chipset lacks it)",
            "Firmware setting: enable SR-IOV Global Enable and Intel VT-d / AMD IOMMU (some systems have both "
            "settings in two places)." + _COLD,
            True,
        ),
    ),
    (
        ("incorrect information describing the hardware",),
        ReasonClass(
            "BAD_ACPI_TABLES",
            "firmware ACPI tables (DMAR/IVRS) describe the hardware wrongly",
            "Firmware update: the BIOS reports wrong DMAR/IVRS tables; install the vendor's latest BIOS.",
            True,
        ),
    ),
    (
        ("no pci express bus",),
        ReasonClass(
            "NO_PCIE",
            "system reports no PCI Express bus",
            "Hardware: this platform reports no PCI Express bus; SR-IOV is not possible on it.",
            True,
        ),
    ),
    (
        ("allow windows to control pci express",),
        ReasonClass(
            "NO_OSC_CONTROL",
            "firmware withholds PCI Express control from Windows (_OSC)",
            "Firmware update/setting: the BIOS must grant Windows native PCIe control through _OSC (look for "
            "'PCIe native control' / 'OS controls PCIe'); update the BIOS." + _COLD,
            True,
        ),
    ),
    (
        ("access control services",),
        ReasonClass(
            "NO_ACS",
            "no PCIe Access Control Services (ACS) at any root port",
            "Hardware/firmware: PCIe root ports lack ACS (common on consumer chipsets); enable ACS in firmware if "
            "offered, use a CPU-attached slot, or a server platform.",
            True,
        ),
    ),
]

UNKNOWN = ReasonClass(
    "UNKNOWN",
    "reason not recognised (shown verbatim)",
    "Read the reason text above; check firmware SR-IOV/IOMMU settings and the vendor's support.",
    True,
)


def classify_reason(text: str) -> ReasonClass:
    """The class of one IovSupportReasons string; UNKNOWN keeps the caller showing it verbatim."""
    low = " ".join(text.lower().split())
    for keys, cls in REASONS:
        if any(k in low for k in keys):
            return cls
    return UNKNOWN


@dataclass(frozen=True)
class SriovSupportInfo:
    ok: bool
    meaning: str
    fix: str  # may contain {nic} for the NIC name, already PowerShell-quoted by the caller


# Get-NetAdapterSriov SriovSupport (MSFT_NetAdapterSriovSettingData, hyperv.md §1.5)
SRIOV_SUPPORT: dict[str, SriovSupportInfo] = {
    "Supported": SriovSupportInfo(True, "SR-IOV should function on this NIC", ""),
    "Unknown": SriovSupportInfo(
        False,
        "support could not be determined",
        "Firmware setting: enable SR-IOV and I/O virtualization (VT-d/AMD-Vi) in the BIOS; needs Windows "
        "Server 2012 or newer.",
    ),
    "MissingAcs": SriovSupportInfo(
        False,
        "the PCIe slot lacks Access Control Services (ACS)",
        "Hardware: move the NIC to another PCIe slot (CPU-attached root port with ACS).",
    ),
    "MissingPfDriver": SriovSupportInfo(
        False,
        "the device or its driver lacks SR-IOV support",
        "Install the NIC vendor's current driver with SR-IOV support, then: Get-NetAdapterSriov -Name {nic}",
    ),
    "NoBusResources": SriovSupportInfo(
        False,
        "not enough PCIe bus numbers",
        "Firmware setting: free PCIe bus numbers (disable unused devices/slots) or use another slot.",
    ),
    "NoIoMmuSupport": SriovSupportInfo(
        False,
        "no SLAT, or the chipset lacks interrupt/DMA remapping, or I/O remapping is disabled",
        "Firmware setting: enable Intel VT-d / AMD IOMMU (AMD-Vi); see HV-HOST-IOV for the host's reasons.",
    ),
    "NoVfBarSpace": SriovSupportInfo(
        False,
        "not enough PCIe BAR (MMIO) space for the VFs",
        "Firmware setting: enable SR-IOV support and 'Above 4G decoding' (MMIO above 4 GB); or try another slot.",
    ),
    "NoOscSupport": SriovSupportInfo(
        False,
        "the BIOS does not hand PCIe control to Windows (_OSC)",
        "Firmware update: the BIOS must grant Windows native PCIe control (_OSC); update the BIOS.",
    ),
    "NotSupported": SriovSupportInfo(
        False, "the device has no SR-IOV capability", "Hardware: use an SR-IOV capable NIC."
    ),
}
