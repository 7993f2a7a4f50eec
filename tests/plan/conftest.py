"""Plan tests: the I350 host and friends (see hosts.py)."""
