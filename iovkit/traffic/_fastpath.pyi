"""Types of the C module built from _fastpath.c (see there)."""

def echo_plain(
    fd: int,
    buf: bytearray,
    limit: int,
    match_idx: int,
    match_req: int,
    match_clr: int,
    until_ns: int,
    spin_ns: int,
    quick_run: int,
    gro: bool = ...,
    /,
) -> tuple[int, int, int, bool, int, int]: ...
def echo_batch(
    fd: int,
    hdrs: int,
    batch: int,
    flags: int,
    match_idx: int,
    match_req: int,
    match_clr: int,
    /,
) -> tuple[int, int, int, int, int]: ...
