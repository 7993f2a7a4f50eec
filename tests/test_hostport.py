"""HOST:PORT, parsed once for --target, --target-stats, --listen, --metrics and --agent-listen."""

from __future__ import annotations

import pytest

from iovkit.errors import InputError
from iovkit.hostport import parse_hostport


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:7777", ("127.0.0.1", 7777)),
        ("[::1]:7777", ("::1", 7777)),
        ("[fe80::1%eth0]:53", ("fe80::1%eth0", 53)),
        ("relay.example:65535", ("relay.example", 65535)),
        (" 10.0.0.4:1 ", ("10.0.0.4", 1)),
    ],
)
def test_addresses_to_send_to(text: str, want: tuple[str, int]) -> None:
    assert parse_hostport(text, "--target") == want


def test_listening_addresses_take_any_host_and_any_port() -> None:
    assert parse_hostport(":9464", "--listen", any_port=True, any_host="0.0.0.0") == ("0.0.0.0", 9464)
    assert parse_hostport("127.0.0.1:0", "--listen", any_port=True, any_host="0.0.0.0") == ("127.0.0.1", 0)
    assert parse_hostport("[::]:0", "--agent-listen", any_port=True) == ("::", 0)


@pytest.mark.parametrize(
    ("text", "kwargs", "says"),
    [
        ("127.0.0.1", {}, "expected HOST:PORT"),  # missing port
        ("127.0.0.1:", {}, "expected HOST:PORT"),
        ("127.0.0.1:http", {}, "expected HOST:PORT"),  # bad port
        ("127.0.0.1:-1", {}, "expected HOST:PORT"),
        ("127.0.0.1:70000", {}, "port must be 1..65535, got 70000"),
        ("127.0.0.1:0", {}, "port must be 1..65535, got 0"),  # a target needs a real port
        ("127.0.0.1:70000", {"any_port": True}, "port must be 0..65535, got 70000"),
        (":7777", {}, "the host is missing"),  # empty host where one is needed
        ("[]:7777", {}, "IPv6 address between [ ] is missing"),
        ("::1:7777", {}, "needs brackets ([::1]:7777)"),
        ("[::1:7777", {}, "unbalanced [ ]"),
    ],
)
def test_bad_values_are_one_line_naming_the_option_and_the_value(text: str, kwargs: dict, says: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_hostport(text, "--target", **kwargs)
    line = str(caught.value)
    assert says in line and "--target" in line and "\n" not in line
    assert caught.value.exit_code == 2


def test_the_cli_names_the_option(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("relay", "--listen", "::1:7777", "--duration", "0.1")
    assert r.code == 2 and r.err.count("\n") == 1 and "--listen" in r.err and "[::1]:7777" in r.err
    r = cli("bench", "--target", "127.0.0.1:99999", "--no-plots")
    assert r.code == 2 and r.err.count("\n") == 1 and "--target" in r.err and "1..65535" in r.err
