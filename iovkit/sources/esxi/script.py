"""`iovkit script collect --esxi`: the ESXi shell commands whose output `iovkit collect --from` reads.

One POSIX sh script (ESXi's busybox ash runs it): each command is echoed after an `[root@host:~]` prompt line, so
the output parses exactly like a hand-pasted session. Nothing in it changes the host.
"""

from __future__ import annotations

SCRIPT = r"""# iovkit: read-only ESXi facts for SR-IOV (esxcli, vim-cmd, lspci, the .vmx files). Nothing is changed.
# Paste this into the ESXi shell (SSH) and copy everything it prints into a file, or save it and run
#   sh iovkit-esxi.sh > /tmp/iovkit-esxi.txt 2>&1
# then, where iovkit runs:  iovkit collect --from iovkit-esxi.txt -o esx.json
h=$(hostname -s 2>/dev/null || hostname)
r() { echo "[root@$h:~] $*"; eval "$*"; }
r esxcli system version get
r "vim-cmd hostsvc/hostsummary | grep -E 'rebootRequired|inMaintenanceMode|cpuModel'"
r esxcli network nic list
r esxcli network sriovnic list
for n in $(esxcli network nic list | awk 'NR>2 {print $1}'); do r esxcli network sriovnic vf list -n "$n"; done
for m in $(esxcli network nic list | awk 'NR>2 {print $3}' | sort -u); do
  r esxcli system module parameters list -m "$m"
  r esxcfg-module -g "$m"
done
r esxcli hardware pci pcipassthru list
r esxcli hardware pci list
r lspci
r esxcli vm process list
vim-cmd vmsvc/getallvms | sed -n 's|.*\[\(.*\)\] \(.*\.vmx\).*|/vmfs/volumes/\1/\2|p' | while read -r f; do
  r "cat '$f'"
done
r "grep -E 'DMAR|IOV' /var/log/vmkernel.log"
r "zcat /var/log/boot.gz 2>/dev/null | grep -E 'DMAR|IOV'"
"""


def esxi_collect_script() -> str:
    return SCRIPT
