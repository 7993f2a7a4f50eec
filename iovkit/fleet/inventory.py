"""The hosts an inventory and a limit pattern select, with their groups, read by Ansible's own parser.

Why before the run: a host Ansible never reports on (a limit typo, a parse problem) must still be a row or a
one-line error, and the fleet rules need each host's groups.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from iovkit.errors import InputError
from iovkit.fileio import read_text

IMPLICIT_GROUPS = ("all", "ungrouped")


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: list[str] = field(default_factory=list)


def select_hosts(inventory: Path, limit: str | None) -> list[InventoryHost]:
    """Hosts of `inventory` matching `limit` (Ansible's pattern syntax), in inventory order."""
    if not inventory.exists():
        raise InputError("no such file or directory", path=str(inventory), field="-i")
    if inventory.is_file():
        read_text(inventory)  # binary or wrongly encoded: one line here, not Ansible's garbled warnings
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[], parse=False)
    said = io.StringIO()  # Ansible's multi-line parser warnings: the error below says it in one line
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            parsed = manager.parse_source(str(inventory.resolve()))
    except Exception as err:  # ansible raises AnsibleError subclasses with multi-line text
        raise InputError(f"not an Ansible inventory: {_first_line(err)}", path=str(inventory)) from err
    if not parsed:
        why = _parser_reason(said.getvalue())
        raise InputError(
            "Ansible could not parse it as an inventory (YAML, INI or a script)" + (f": {why}" if why else ""),
            path=str(inventory),
        )
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


def _parser_reason(said: str) -> str:
    """The first reason Ansible's parsers gave ("Failed to parse inventory: ..."), on one line."""
    for m in re.finditer(r"Failed to parse inventory: ([^\n]+)", said):
        return m.group(1).strip()[:200]
    return ""
