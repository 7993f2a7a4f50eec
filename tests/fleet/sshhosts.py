"""Real SSH hosts for fleet tests: one sshd per network namespace, reached over a veth pair.

Everything is made here and removed after: throw-away keys in a temp dir, namespaces named with the pid,
a /30 per veth pair in 10.232.<pid>.0/24 (the root-namespace end holds .1 of each /30, the namespace .2).
sshd listens only on the namespace's address and accepts only the generated key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class SshHost:
    namespace: str
    address: str  # where sshd listens (the namespace end of the veth)
    gateway: str  # the root-namespace end: where the controller is, seen from the host
    pid: int


def available() -> str | None:
    """None when SSH hosts can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "openssh-server/openssh-client not installed (.ci/run installs them)"
    if shutil.which("ip") is None:
        return "iproute2 not installed"
    return None


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=20)


@contextmanager
def ssh_hosts(count: int, workdir: Path) -> Iterator[tuple[list[SshHost], Path]]:
    """Start `count` sshd hosts; yields them and the client private key."""
    pid = os.getpid()
    net = f"10.232.{pid % 250}"
    key = workdir / "id_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    hostkey = workdir / "host_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey))
    auth = workdir / "authorized_keys"
    auth.write_text(Path(f"{key}.pub").read_text())
    auth.chmod(0o600)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    hosts: list[SshHost] = []
    procs: list[subprocess.Popen[bytes]] = []
    made: list[str] = []
    try:
        for k in range(count):
            ns, link = f"iovkf-{pid}-{k}", f"ivf{pid % 100000}x{k}"
            gw, addr = f"{net}.{4 * k + 1}", f"{net}.{4 * k + 2}"
            _run("ip", "netns", "add", ns)
            made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "addr", "add", f"{gw}/30", "dev", link)
            _run("ip", "link", "set", link, "up")
            _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            # the root namespace's other veth addresses (a reflector, a controller) through this pair's end
            _run("ip", "-n", ns, "route", "add", f"{net}.0/24", "via", gw)
            conf = workdir / f"sshd_{k}.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"ListenAddress {addr}:22",
                        f"HostKey {hostkey}",
                        f"AuthorizedKeysFile {auth}",
                        f"PidFile {workdir}/sshd_{k}.pid",
                        "PermitRootLogin prohibit-password",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "StrictModes no",
                        "MaxStartups 50",
                        "LogLevel ERROR",
                        "",
                    ]
                )
            )
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(workdir / f"sshd_{k}.log", "wb"),  # noqa: SIM115 - closed with the process
            )
            procs.append(proc)
            hosts.append(SshHost(ns, addr, gw, proc.pid))
        for h in hosts:
            _wait_listening(h)
        yield hosts, key
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)  # takes its veth pair along


def _wait_listening(h: SshHost, attempts: int = 200) -> None:
    """sshd is up when something listens on its address (ss in the namespace); bounded, no timing assertion."""
    for _ in range(attempts):
        out = subprocess.run(
            ["ip", "netns", "exec", h.namespace, "ss", "-Htln", f"src {h.address}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        if ":22" in out:
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd in {h.namespace} did not start listening on {h.address}:22")


def ssh_vars(key: Path, address: str) -> dict[str, str]:
    """Inventory variables for a host reached over this real SSH (host keys are throw-away: not recorded)."""
    return {
        "ansible_connection": "ssh",
        "ansible_host": address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        # no ControlPersist master left behind after the test (Ansible's default ssh_args start one)
        "ansible_ssh_args": "-o ControlMaster=no",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10",
    }
