"""collect's one-screen summary says what a partial input did not contain."""

from __future__ import annotations


def test_partial_paste_names_what_is_missing(cli, tmp_path):
    paste = tmp_path / "ticket.txt"
    paste.write_text(
        "PS C:\\> Get-VMSwitch | Format-List *iov*\n\n"
        "IovEnabled        : True\n"
        "IovSupport        : False\n"
        "IovSupportReasons : {To use SR-IOV on this system, the system BIOS must be updated to allow Windows to "
        "control PCI Express. Contact your system manufacturer for an update.}\n"
    )
    r = cli("collect", "--from", str(paste))
    assert r.code == 0, r.err
    assert "not in this input" in r.err and "Get-VMHost" in r.err and "Get-VMNetworkAdapter" in r.err
    assert "every source was read" not in r.err


def test_full_example_reads_everything(cli):
    r = cli("collect", "--example", "hyperv-ready")
    assert r.code == 0
    assert "every source was read" in r.err and "not in this input" not in r.err
