#!/usr/bin/python
"""Ansible module: an iovkit host snapshot from the host Ansible reaches (Linux live or a tree), or a capture."""

from __future__ import annotations

DOCUMENTATION = r"""
module: iovkit_collect
short_description: Collect an iovkit SR-IOV host snapshot
description:
  - Reads this Linux/KVM host (sysfs, procfs, netlink, libvirt) with iovkit's collector, or a captured tree
    (C(root)), or any capture C(iovkit collect --from) reads (C(src)), and returns the snapshot.
  - Runs where Ansible connects, so iovkit must be importable by the Python Ansible uses there
    (C(pip install iovkit)). A Windows/Hyper-V host is collected with the C(collect) role's script task instead.
options:
  src:
    description: A capture to read instead of the live host (snapshot JSON, collector bundle, Format-List text,
      Get-NetView folder or .zip, Linux archive). Host variable C(iovkit_from) in the role.
    type: path
  root:
    description: Read a Linux host's files under this directory instead of C(/). Host variable C(iovkit_root).
    type: path
author: iovkit
"""

RETURN = r"""
snapshot:
  description: The host snapshot (C(iovkit schema) prints its JSON Schema).
  returned: success
  type: dict
"""

import sys

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={"src": {"type": "path"}, "root": {"type": "path"}},
        mutually_exclusive=[("src", "root")],
        supports_check_mode=True,
    )
    try:
        from iovkit.fleet.hostside import collect_snapshot
    except ImportError as err:
        module.fail_json(
            msg=f"iovkit is not importable by {sys.executable} on this host ({err}); install it there "
            "(pip install iovkit), point ansible_python_interpreter at a Python that has it, or set iovkit_from"
        )
        return
    try:
        snapshot = collect_snapshot(module.params["src"], module.params["root"])
    except Exception as err:  # an IovkitError is one line already; anything else names its type
        module.fail_json(msg=f"iovkit collect: {err}" if str(err) else f"iovkit collect: {type(err).__name__}")
        return
    module.exit_json(changed=False, snapshot=snapshot)


if __name__ == "__main__":
    main()
