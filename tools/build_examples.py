#!/usr/bin/env python3
"""Build the example hosts shipped in iovkit/examples/ from the builders the tests use, so both stay one.

The Hyper-V examples are collector bundles in PowerShell 5.1's and 7's JSON shapes (tests/fixtures/hyperv_bundles.py,
facts in docs/reference/hyperv-objects.md); linux-cx5.tar.gz is a sysfs/procfs tree (tests/fixtures/linux_tree.py,
facts in docs/reference/linux-sysfs.md) read by the real collector and written by the real archive writer.
esxi-x710.txt is a pasted esxcli transcript kept as text.

    python3 tools/build_examples.py            write them
    python3 tools/build_examples.py --check    exit 1 naming every example that differs from its builder
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures import hyperv_bundles, linux_tree  # noqa: E402

EXAMPLES_DIR = ROOT / "iovkit" / "examples"


def built(tmp: Path) -> dict[str, bytes]:
    """Every generated example's bytes, by file name."""
    out = {name: (json.dumps(make(), indent=2) + "\n").encode() for name, make in hyperv_bundles.EXAMPLES.items()}
    linux_tree.build_example(tmp / "linux-cx5.tar.gz")
    out["linux-cx5.tar.gz"] = (tmp / "linux-cx5.tar.gz").read_bytes()
    return out


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        examples = built(Path(tmp))
    stale = []
    for name, data in examples.items():
        path = EXAMPLES_DIR / name
        if check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
    if stale:
        print(f"stale examples (run python3 tools/build_examples.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    if not check:
        print("wrote", ", ".join(examples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
