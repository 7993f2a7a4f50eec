"""iovkit: find and remove the virtual-switch bottleneck for packet-heavy virtual machines.

Data flows one way: sources -> snapshot -> checks/diagnose/plan -> apply -> verify;
loadgen -> results -> compare/report.
"""

__version__ = "0.1.0"
