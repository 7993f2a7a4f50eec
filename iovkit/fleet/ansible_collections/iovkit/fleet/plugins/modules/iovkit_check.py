#!/usr/bin/python
"""Ansible module: iovkit's SR-IOV readiness checks on a snapshot, where iovkit is installed (delegate_to)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: iovkit_check
short_description: Check an iovkit host snapshot for SR-IOV readiness
description:
  - Runs every iovkit check on a snapshot (as returned by iovkit_collect), on a Windows collector's bundle
    (the collect role's script stdout), or on a capture file, and returns the verdict, the reason and the
    findings with their fixes. Usually run on the controller (C(delegate_to) localhost).
options:
  snapshot:
    description: A snapshot, e.g. C(iovkit_collected.snapshot).
    type: dict
  bundle:
    description: The PowerShell collector's output, e.g. C(iovkit_collected_windows.stdout).
    type: str
  esxi:
    description: The ESXi shell session the collect role printed, e.g. C(iovkit_collected_esxi.stdout).
    type: str
  src:
    description: A capture or snapshot file (anything C(iovkit collect --from) reads).
    type: path
  policy:
    description: An SR-IOV policy YAML naming the VMs/adapters in scope.
    type: path
  fail_on:
    description: Fail the task at this verdict or worse (partial includes not-ready).
    type: str
    choices: [never, not-ready, partial]
    default: never
author: iovkit
"""

RETURN = r"""
verdict:
  description: ready, partial or not-ready.
  returned: success
  type: str
reason:
  description: Why that verdict.
  returned: success
  type: str
top:
  description: The findings that matter most, with their fixes.
  returned: success
  type: list
findings:
  description: Every finding (id, status, scope, message, evidence, fix, missing facts).
  returned: success
  type: list
"""

import sys

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "snapshot": {"type": "dict"},
            "bundle": {"type": "str"},
            "esxi": {"type": "str"},
            "src": {"type": "path"},
            "policy": {"type": "path"},
            "fail_on": {"type": "str", "choices": ["never", "not-ready", "partial"], "default": "never"},
        },
        required_one_of=[("snapshot", "bundle", "esxi", "src")],
        mutually_exclusive=[("snapshot", "bundle", "esxi", "src")],
        supports_check_mode=True,
    )
    try:
        from iovkit.fleet.hostside import check_snapshot
    except ImportError as err:
        module.fail_json(
            msg=f"iovkit is not importable by {sys.executable} here ({err}); run it delegated to "
            "a host that has iovkit (delegate_to: localhost)"
        )
        return
    p = module.params
    try:
        result = check_snapshot(p["snapshot"], p["bundle"], p["src"], p["policy"], p["esxi"])
    except Exception as err:
        module.fail_json(msg=f"iovkit check: {err}" if str(err) else f"iovkit check: {type(err).__name__}")
        return
    failing = {"never": (), "not-ready": ("not-ready",), "partial": ("not-ready", "partial")}[p["fail_on"]]
    if result["verdict"] in failing:
        first = result["top"][0]["message"] if result["top"] else result["reason"]
        module.fail_json(msg=f"{result['host'] or 'host'}: {result['verdict']}: {first}", **result)
        return
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
