#!/usr/bin/python
"""Ansible module: one load agent of `iovkit bench --agents` (connects back to the controller and sends load)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: iovkit_load_agent
short_description: Run one iovkit load agent for a distributed bench
description:
  - Connects to the controller started by C(iovkit bench --agents), measures this host's clock against it,
    and sends this host's share of every step's UDP load at the common start time until the controller stops.
  - Needs iovkit importable by the Python Ansible uses on the host.
options:
  controller_port:
    description: The controller's TCP port.
    type: int
    required: true
  controller_host:
    description: The controller's address as this host reaches it. Default the SSH client address, or 127.0.0.1.
    type: str
  token:
    description: The run's token (from the controller's environment); never logged.
    type: str
    required: true
  name:
    description: This agent's name (the inventory host name).
    type: str
    required: true
author: iovkit
"""

RETURN = r"""
agent:
  description: Steps run, clock offset and probe round trip in microseconds.
  returned: success
  type: dict
"""

import sys

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "controller_port": {"type": "int", "required": True},
            "controller_host": {"type": "str"},
            "token": {"type": "str", "required": True, "no_log": True},
            "name": {"type": "str", "required": True},
        },
        supports_check_mode=False,
    )
    try:
        from iovkit.fleet.loadagent import controller_from_env, run_agent
    except ImportError as err:
        module.fail_json(
            msg=f"iovkit is not importable by {sys.executable} on this host ({err}); install it there "
            "(pip install iovkit) or point ansible_python_interpreter at a Python that has it"
        )
        return
    p = module.params
    host = p["controller_host"] or controller_from_env()
    try:
        summary = run_agent(host, p["controller_port"], p["token"], p["name"])
    except Exception as err:  # one line for the controller's error row
        module.fail_json(msg=str(err) or type(err).__name__)
        return
    module.exit_json(changed=False, agent=summary)


if __name__ == "__main__":
    main()
