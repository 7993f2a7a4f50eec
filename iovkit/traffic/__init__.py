"""UDP traffic: the batched socket layer (mmsg), the relay protocol core (protocol), the relay, the load generator.

Only `iovkit.traffic.mmsg` does batched socket I/O; protocol cores take bytes, an address and `now` and return
datagrams and deadlines (sans-IO), so they are tested without sockets.
"""
