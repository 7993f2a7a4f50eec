#!/usr/bin/python
"""Ansible module: apply an iovkit plan on a Linux/KVM host with iovkit's journaled engine."""

from __future__ import annotations

DOCUMENTATION = r"""
module: iovkit_apply
short_description: Apply an iovkit SR-IOV plan on a Linux/KVM host
description:
  - Runs the plan's steps (sriov_numvfs, VF MAC/VLAN, libvirt hostdev) one by one, verifies each, journals
    them and rolls back on the first failure, exactly as C(iovkit apply --executor shell). Check mode is the dry
    run (nothing changes and the steps are returned). Running the task without check mode is the consent that
    C(--yes) gives on the command line. Undo with C(iovkit rollback JOURNAL --executor shell --yes).
options:
  plan:
    description: A plan JSON file on the host (C(iovkit plan ... -o plan.json), copied there).
    type: path
  plan_data:
    description: The plan itself, for example C(lookup('file', 'plan.json') | from_json) in a template.
    type: dict
  journal:
    description: The journal file (default beside C(plan)); needed with C(plan_data).
    type: path
  root:
    description: Prefix for sysfs paths (a test tree); ip and virsh steps only run against C(/).
    type: path
    default: /
  console:
    description: Accept steps that may cut the management connection (the operator is on the console).
    type: bool
    default: false
author: iovkit
"""

RETURN = r"""
status:
  description: dry-run, completed, already-applied, rolled-back or rollback-failed.
  returned: always
  type: str
steps:
  description: In check mode, the steps that would run (id, title, command).
  returned: always
  type: list
journal:
  description: The journal path.
  returned: always
  type: str
"""

import sys

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "path"},
            "plan_data": {"type": "dict"},
            "journal": {"type": "path"},
            "root": {"type": "path", "default": "/"},
            "console": {"type": "bool", "default": False},
        },
        required_one_of=[("plan", "plan_data")],
        mutually_exclusive=[("plan", "plan_data")],
        supports_check_mode=True,
    )
    try:
        from iovkit.fleet.hostside import apply_here
    except ImportError as err:
        module.fail_json(msg=f"iovkit is not importable by {sys.executable} on this host ({err}); install it there")
        return
    p = module.params
    try:
        result = apply_here(p["plan"], p["plan_data"], p["journal"], p["root"], module.check_mode, p["console"])
    except Exception as err:  # StepFailed: the steps done were rolled back; the message says which failed
        module.fail_json(msg=f"iovkit apply: {err}" if str(err) else f"iovkit apply: {type(err).__name__}")
        return
    if result["status"] in ("rolled-back", "rollback-failed"):
        module.fail_json(msg=f"iovkit apply: step {result['failed_step']} failed: {result['failure']}", **result)
        return
    module.exit_json(changed=result["status"] == "completed", **result)


if __name__ == "__main__":
    main()
