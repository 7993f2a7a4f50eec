"""Types of the C module built from _datapath.c (see there)."""

def relay_plan(
    rx_at: int,
    n: int,
    i: int,
    off: int,
    mem: bytearray,
    cap: int,
    scap: int,
    hsize: int,
    now: float,
    rate: float,
    burst: float,
    max_datagram: int,
    tx: bytearray,
    tx_cap: int,
    gso: bool,
    reserve: int,
    /,
) -> tuple[int, int, int, int]: ...
def send_plan(fd: int, tx: bytearray, tx_cap: int, n_tx: int, /) -> tuple[int, int, bool]: ...
def sink_batch(fd: int, hdrs: int, batch: int, flags: int, /) -> tuple[int, int, int, int]: ...
def tx_layout() -> tuple[int, int, int, int, int]: ...
def name_hash(raw: bytes, /) -> int: ...
