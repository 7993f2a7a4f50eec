"""The hosts an inventory and a limit pattern select, with their groups, read by Ansible's own parser.

Why before the run: a host Ansible never reports on (a limit typo, a parse problem) must still be a row or a
one-line error, and the fleet rules need each host's groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from iovkit.errors import InputError

IMPLICIT_GROUPS = ("all", "ungrouped")


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: list[str] = field(default_factory=list)


def select_hosts(inventory: Path, limit: str | None) -> list[InventoryHost]:
    """Hosts of `inventory` matching `limit` (Ansible's pattern syntax), in inventory order."""
    if not inventory.exists():
        raise InputError("no such file or directory", path=str(inventory), field="-i")
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[], parse=False)
    try:
        parsed = manager.parse_source(str(inventory))
    except Exception as err:  # ansible raises AnsibleError subclasses with multi-line text
        raise InputError(f"not an Ansible inventory: {_first_line(err)}", path=str(inventory)) from err
    if not parsed:
        raise InputError("Ansible could not parse it as an inventory (YAML, INI or a script)", path=str(inventory))
    manager._inventory.reconcile_inventory()  # what parse_sources() does after parsing (public API has no hook)
    if limit:
        manager.subset(limit)
    hosts = manager.get_hosts("all")
    if not hosts:
        where = f"matches --limit {limit!r}" if limit else "is in it"
        raise InputError(f"no host {where}", path=str(inventory))
    return [
        InventoryHost(h.name, sorted(g.name for g in h.get_groups() if g.name not in IMPLICIT_GROUPS)) for h in hosts
    ]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
