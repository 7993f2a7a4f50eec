"""UDP traffic: the relay, the reflector, the load generator and the bench sweep, on one batched socket layer.

Only the `iovkit.traffic.mmsg` package does batched socket I/O. Sans-IO cores take bytes, an address and `now` and
return datagrams and deadlines: protocol.py and relaycore.py (the relay protocol), loadcore.py (the load
generator's wire format, schedule and counters). Around them: relay.py (worker processes), reflector.py (echo
loops), sender.py and loadgen.py (load), sweep.py (pure stepping and judging), benchrun.py (a whole bench),
results.py (the result model), compare.py, histo.py, plots.py. This package imports only iovkit.errors and
iovkit.fileio outside itself.
"""
