"""`iovkit fleet`: many hosts at once, through Ansible.

Ansible does the fan-out (inventories, limits, forks, WinRM and SSH, vault); iovkit collects with the same
collection Ansible users call from their own playbooks (ansible_collections/iovkit/fleet beside this file),
then judges every snapshot here, with the same checks, doctor and planner as one host, and adds the rules only
a fleet view can see. Ansible is imported only when a fleet command runs.
"""

from __future__ import annotations

from pathlib import Path

COLLECTIONS_PATH = Path(__file__).resolve().parent
"""The directory that holds ansible_collections/iovkit/fleet (an ANSIBLE_COLLECTIONS_PATH entry)."""

COLLECTION_DIR = COLLECTIONS_PATH / "ansible_collections" / "iovkit" / "fleet"
