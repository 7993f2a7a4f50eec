"""Reading the files users hand us, with one-line errors that name the file and what is wrong."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from iovkit.errors import InputError


def read_text(path: Path, encoding: str = "utf-8-sig") -> str:
    """A text file; a missing, unreadable or wrongly encoded file is an InputError naming it."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError as err:
        raise InputError("no such file", path=str(path)) from err
    except IsADirectoryError as err:
        raise InputError("is a directory, not a file", path=str(path)) from err
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", path=str(path)) from err
    except UnicodeDecodeError as err:
        name = "UTF-8" if encoding.replace("_", "-").lower() in ("utf-8", "utf-8-sig", "utf8") else encoding
        raise InputError(f"not {name} text (byte {err.start}); is this the right file?", path=str(path)) from err


def write_text(path: Path, text: str, what: str = "") -> None:
    """Write a user's output file; an OSError (no folder, permissions, a full disk) is an InputError naming it."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write{' ' + what if what else ''}: {err.strerror or err}", path=str(path)) from err


def parse_json(text: str, origin: str) -> Any:
    """Decode JSON; a truncated or invalid document names its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"truncated or invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})", path=origin
        ) from err


def read_json(path: Path) -> Any:
    """A JSON file (a UTF-8 BOM, as Windows PowerShell 5.1 writes, is accepted)."""
    return parse_json(read_text(path), str(path))


def validation_line(err: ValidationError) -> tuple[str, str]:
    """(field path, message) of a pydantic error's first problem, with the offending value cut to one short line.

    Loaders share this so a wrong file (a whole snapshot where a name belongs) never floods the terminal.
    """
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    value = first.get("input")
    if isinstance(value, dict):
        shown = "{...}"
    elif isinstance(value, list):
        shown = "[...]"
    else:  # spelled as in the file (JSON/YAML scalars: "heavy", true, null), not as Python prints it
        shown = json.dumps(value, default=str)
        if len(shown) > 60:
            shown = shown[:57] + "..."
    return loc, f"{first['msg']} (value {shown})"


def ensure_writable(path: Path) -> None:
    """Refuse an output path that cannot be written before a long run starts, not after it ends."""
    if path.is_dir():
        raise InputError("cannot write: is a directory", path=str(path))
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write: no folder {str(parent)!r}", path=str(path))
    if not os.access(parent, os.W_OK):
        raise InputError("cannot write: permission denied", path=str(path))
    # Access bits do not tell everything (root passes them; /proc, read-only mounts, full disks do not take
    # new files), so open it for real: append mode leaves an existing file as it is, a new one is removed again.
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise InputError(f"cannot write: {err.strerror}", path=str(path)) from err
    if not existed:
        with contextlib.suppress(OSError):
            path.unlink()
